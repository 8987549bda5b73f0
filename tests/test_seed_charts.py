"""bnviz.seed_charts: a lesson's arms over seeds, and their mean curves with a band."""

from __future__ import annotations

import pytest

from bnviz import seed_charts
from bnviz.lessons import LESSONS


def rows(accs: list[float]) -> list[dict]:
    return [
        {"epoch": e, "test_acc": a, "train_acc": a + 0.01, "test_loss": 1.0, "train_loss": 1.0}
        for e, a in enumerate(accs)
    ]


def test_arms_group_the_seeds_of_each_arm() -> None:
    configs = LESSONS["ioffe_fig1"].configs((0, 1, 2))
    arms = seed_charts.arms(configs)
    assert [label for label, _ in arms] == ["norm=none", "norm=batch"]
    assert [idx for _, idx in arms] == [[0, 2, 4], [1, 3, 5]]
    assert seed_charts.seeds_of(configs) == [0, 1, 2]


def test_seed_curves_mean_and_band() -> None:
    fig = seed_charts.seed_curves(
        ["norm=none", "norm=batch"],
        [[rows([0.1, 0.2]), rows([0.1, 0.4])], [rows([0.5, 0.9]), rows([0.5, 0.7])]],
        "acc",
        [[0, 1], [0, 1]],
    )
    by_name = {d.get("name"): d for d in fig["data"] if d.get("name")}
    assert by_name["norm=none"]["y"] == pytest.approx([0.1, 0.3])
    assert by_name["norm=batch"]["y"] == pytest.approx([0.5, 0.8])
    bands = [d for d in fig["data"] if d.get("fill") == "tonexty"]
    assert [b["y"] for b in bands] == [[0.1, 0.4], [0.5, 0.9]]  # the highest seed per epoch
    seed1 = by_name["norm=batch · seed 1"]
    assert seed1["visible"] == "legendonly" and seed1["y"] == [0.5, 0.7]
    assert "mean and range of 2 seeds" in fig["layout"]["title"]["subtitle"]["text"]
    shown = seed_charts.seed_curves(["a"], [[rows([0.1]), rows([0.2])]], "acc", show_seeds=True)
    assert all(d.get("visible", True) is True for d in shown["data"])


def test_seed_curves_skip_non_finite_points() -> None:
    """A diverged seed's missing accuracies do not pull the mean to zero."""
    diverged = rows([0.1, 0.2])
    diverged[1]["test_acc"] = None
    fig = seed_charts.seed_curves(["a"], [[rows([0.1, 0.6]), diverged]], "acc")
    mean = next(d for d in fig["data"] if d.get("name") == "a" and d["line"].get("width") == 3)
    assert mean["y"] == pytest.approx([0.1, 0.6])


def test_seed_sweep_mean_and_range_per_point() -> None:
    configs = LESSONS["lr_ladder"].configs((0, 1))
    accs = {0: 0.9, 1: 0.7}
    histories = [rows([0.1, accs[c.seed] - (0.5 if c.norm == "none" else 0)]) for c in configs]
    statuses = ["finished"] * len(configs)
    fig = seed_charts.seed_sweep(configs, histories, statuses)
    assert fig["layout"]["title"]["text"].endswith(" · 2 seeds")
    bn = next(d for d in fig["data"] if d.get("name") == "norm=batch")
    assert bn["y"] == pytest.approx([0.8] * 6)
    assert bn["error_y"]["array"] == pytest.approx([0.1] * 6)
    assert bn["error_y"]["arrayminus"] == pytest.approx([0.1] * 6)
    assert (
        seed_charts.seed_sweep(LESSONS["faster"].configs((0, 1)), [[]] * 4, ["queued"] * 4) is None
    )
