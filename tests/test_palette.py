"""One visual language: a fixed colour per norm on every chart, a shade per value of the
other varied fields."""

from __future__ import annotations

from bnviz import charts, palette
from bnviz.config import NORMS, PRESETS, RunConfig


def test_every_norm_has_its_own_colour():
    assert set(palette.NORM_COLORS) == set(NORMS)
    assert len(set(palette.NORM_COLORS.values())) == len(NORMS)


def test_a_norm_has_its_colour_in_every_group():
    """BN was blue on the Train page and red on the lessons (colours went by run index)."""
    two = palette.run_colors([RunConfig(norm="batch"), RunConfig(norm="none")])
    flipped = palette.run_colors([RunConfig(norm="none"), RunConfig(norm="batch")])
    assert two == [palette.NORM_COLORS["batch"], palette.NORM_COLORS["none"]]
    assert flipped == two[::-1]
    alone = palette.run_colors([RunConfig(norm="layer")])
    assert alone == [palette.NORM_COLORS["layer"]]


def test_the_other_varied_field_is_a_shade_darkest_first():
    """batch_size's text points at "the batch-2 curves": the darkest shade of each norm."""
    configs = PRESETS["batch_size"].configs()
    colors = palette.run_colors(configs)
    assert len(set(colors)) == len(configs)  # 12 runs, 12 colours
    for norm in ("batch", "layer", "group"):
        mine = [(c.batch_size, col) for c, col in zip(configs, colors) if c.norm == norm]
        lum = [sum(int(col[i : i + 2], 16) for i in (1, 3, 5)) for _, col in sorted(mine)]
        assert lum == sorted(lum), (norm, mine)  # batch 2 darkest … 64 lightest


def test_sweep_lines_of_norms_take_the_norms_colours():
    points = [
        {"series": s, "x": x, "final": 0.9, "best": 0.9, "status": "finished", "stalled": False}
        for s in ("none", "batch")
        for x in (0.1, 1.0, 3.0)
    ]
    fig = charts.sweep(points, "lr", "norm")
    named = {t["name"]: t["line"]["color"] for t in fig["data"] if t.get("showlegend", True)}
    assert named["norm=batch"] == palette.NORM_COLORS["batch"]
    assert named["norm=none"] == palette.NORM_COLORS["none"]
