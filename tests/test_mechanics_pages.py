"""The mechanics lessons' own pages in AppTest: each renders with its text, sources and charts;
widgets change what is computed; the numbers shown are the library's."""

from __future__ import annotations

import ast
import math

import pytest

from bnviz.lessons import LESSONS
from dashboard.live_chart import drawn_figure
from tests.test_lessons import open_page

PAGES = [s for s, x in LESSONS.items() if x.page]


pytestmark = pytest.mark.usefixtures("fresh_server")  # conftest: a store of its own


def spec(at, key: str) -> dict:
    """The Plotly figure of the live chart whose element key is `key`."""
    for chart in at.get("component_instance"):
        if key in chart.proto.id:
            return drawn_figure(at.session_state, key)
    raise AssertionError(f"no chart {key}")


TAB_KEYS = {"bn_step_by_step": "sbs-tab", "bn_inference": "inf-tab", "train_vs_eval": "tve-tab"}


def open_tab(at, slug: str, label: str):
    """The page with one tab open (only the open tab's content is drawn)."""
    at.session_state[TAB_KEYS[slug]] = label
    return at.run()


def widget(seq, key: str):
    return next(w for w in seq if w.key == key)


def test_every_mechanics_lesson_has_a_page():
    assert set(PAGES) == {
        "error_surface",
        "bn_step_by_step",
        "whitening",
        "bn_inference",
        "train_vs_eval",
    }
    order = list(LESSONS)
    assert order[:2] == ["error_surface", "feature_scaling"]
    assert order.index("train_vs_eval") < order.index("faster")


@pytest.mark.parametrize("slug", PAGES)
def test_page_renders_text_sources_and_charts(slug):
    at = open_page(slug)
    assert not at.exception, [e.value for e in at.exception]
    assert any("The claim" in m.value for m in at.markdown)
    assert any("Sources: " in c.value for c in at.caption)
    index = list(LESSONS).index(slug) + 1
    assert any(f"lesson {index} of {len(LESSONS)}" in h.value for h in at.subheader)
    assert at.get("component_instance"), "no chart"
    assert not any(b.label == "Run this experiment" for b in at.button)


def test_gamma_slider_and_undo():
    at = open_tab(open_page("bn_step_by_step"), "bn_step_by_step", "γ and β")
    before = spec(at, "sbs-affine")
    widget(at.slider, "sbs-gamma").set_value(2.5).run()
    assert not at.exception
    after = spec(at, "sbs-affine")
    assert after["data"][2]["x"] != before["data"][2]["x"]  # y's histogram moved
    widget(at.toggle, "sbs-undo").set_value(True).run()
    text = " ".join(m.value for m in at.markdown)
    err = float(text.split("max |y − x| over the batch = **")[1].split("**")[0])
    assert err < 1e-9


def test_coupling_moves_the_other_samples():
    at = open_tab(open_page("bn_step_by_step"), "bn_step_by_step", "Coupling and gradient")
    widget(at.slider, "sbs-delta").set_value(5.0).run()
    text = " ".join(m.value for m in at.markdown)
    moved = float(text.split("moved by up to **")[1].split("**")[0])
    assert moved > 0.01


def test_error_surface_lr_diverges_raw_only():
    at = open_page("error_surface")
    widget(at.select_slider, "es-lr").set_value(0.5).run()
    assert not at.exception
    table = next(m.value for m in at.markdown if "largest stable lr" in m.value)
    raw, std = (line.split("|")[-2].strip() for line in table.splitlines()[2:4])
    assert raw.startswith("diverged") and not std.startswith("diverged"), table


def test_inference_folded_map_is_eval_mode():
    at = open_tab(open_page("bn_inference"), "bn_inference", "Folded map")
    widget(at.slider, "inf-gamma").set_value(2.0).run()
    text = " ".join(m.value for m in at.markdown)
    diff = float(text.split("eval mode| = **")[1].split("**")[0])
    assert diff < 1e-6


def test_train_vs_eval_shows_the_pitfalls():
    at = open_page("train_vs_eval")
    assert not at.exception, [e.value for e in at.exception]
    bars = spec(at, "tve-acc")["data"][0]
    acc = dict(zip(bars["y"], bars["x"], strict=True))
    assert acc["eval(): running statistics"] > 90
    assert acc["train mode, test batches of 1"] < 20
    open_tab(at, "train_vs_eval", "Batch-mates")
    widget(at.number_input, "tve-example").set_value(5).run()
    assert not at.exception
    z = spec(at, "tve-mates")["data"][0]["z"]
    assert len(z) == 7  # eval row + 4 random + 2 one-class batches


@pytest.mark.parametrize(
    ("rho", "scale", "m"),
    [(-0.99, 0.1, 2), (-0.99, 10.0, 256), (0.99, 0.1, 256), (0.99, 10.0, 2), (0.0, 1.0, 2)],
)
def test_whitening_at_either_end_of_every_slider(rho, scale, m):
    """Every slider at its ends (ρ = ±0.99, std 0.1 and 10, m = 2 and 256): the page draws,
    BN keeps the correlation and whitening removes it wherever the batch allows."""
    at = open_page("whitening")
    widget(at.slider, "wh-rho").set_value(rho)
    widget(at.select_slider, "wh-scale").set_value(scale)
    widget(at.select_slider, "wh-m").set_value(m).run()
    assert not at.exception, [e.value for e in at.exception]
    fig = spec(at, "wh-scatter")
    assert len(fig["data"]) == 3 and all(len(t["x"]) == m for t in fig["data"])
    table = next(t.value for t in at.markdown if t.value.startswith("| batch |"))
    rows = {r.split("|")[1].strip(): r.split("|")[2:-1] for r in table.splitlines()[2:]}
    corr = {k: float(v[-1]) for k, v in rows.items()}
    assert all(math.isfinite(float(c)) for v in rows.values() for c in v)
    assert corr["BN: each feature"] == pytest.approx(corr["raw"], abs=1e-3)
    if m > 2:
        assert abs(corr["whitened"]) < 0.01
    assert "On the digits" in " ".join(t.value for t in at.markdown)


def _ends(w) -> list:
    """A widget's two extreme values (slider, select_slider or number_input)."""
    if w.type == "select_slider":  # options as shown: numbers on these pages
        return [ast.literal_eval(w.options[0]), ast.literal_eval(w.options[-1])]
    return [w.proto.min, w.proto.max]


@pytest.mark.parametrize("slug", PAGES)
def test_every_slider_at_both_ends_of_its_range(slug):
    """No crash at either end of any slider or number box of a mechanics page, in every tab
    (train_vs_eval's batch of 64 asked for 63 batch-mates of a class with 29–42 test digits)."""
    at = open_page(slug)
    labels = [t.label for t in at.tabs] or [None]
    kinds = ("slider", "select_slider", "number_input")
    seen = 0
    for label in labels:
        if label is not None:
            open_tab(at, slug, label)
            assert not at.exception, (slug, label, [e.value for e in at.exception])
        keys = [(kind, w.key) for kind in kinds for w in getattr(at, kind) if w.key]
        seen += len(keys)
        for kind, key in keys:
            for end in (0, 1):
                w = next(x for x in getattr(at, kind) if x.key == key)  # fresh after each run
                value = _ends(w)[end]
                w.set_value(int(value) if kind == "number_input" else value).run()
                assert not at.exception, (slug, label, key, value, [e.value for e in at.exception])
    assert seen, slug


def test_only_the_open_tab_is_drawn():
    """A chart drawn in a hidden tab was laid out at zero width (labels cut to "()"): each
    tab's charts exist only while it is open."""
    at = open_page("bn_step_by_step")

    def drawn(key: str) -> bool:
        return any(key in c.proto.id for c in at.get("component_instance"))

    assert drawn("sbs-hist") and not drawn("sbs-affine")
    open_tab(at, "bn_step_by_step", "γ and β")
    assert drawn("sbs-affine") and not drawn("sbs-hist")


def _colors(obj) -> set[str]:
    """Every colour string in a figure (any key ending in "color")."""
    out: set[str] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k.endswith("color") and isinstance(v, str):
                out.add(v.lower())
            elif k.endswith("color") and isinstance(v, list):
                out |= {x.lower() for x in v if isinstance(x, str)}
            else:
                out |= _colors(v)
    elif isinstance(obj, list):
        for v in obj:
            out |= _colors(v)
    return out


@pytest.mark.parametrize("slug", PAGES)
def test_no_chart_ink_vanishes_on_the_dark_theme(slug):
    """Dark lines and markers (the minimum's ✖, the eval-mode line, dotted population lines)
    are the palette's inks, which the live chart swaps for the theme's text colour: black
    vanished on the dark theme's black background."""
    from bnviz.palette import GUIDE, INK, INK_SOFT

    at = open_page(slug)
    labels = [t.label for t in at.tabs] or [None]
    dark = {"black", "#000", "#000000", "#111", "#111111", "#222222", "#333", "#333333"}
    for label in labels:
        if label is not None:
            open_tab(at, slug, label)
        sent = at.session_state["_live_chart_sent"]
        for chart in at.get("component_instance"):
            key = next(k for k in sent if k in chart.proto.id)  # its figure, not its patch
            colors = _colors(drawn_figure(at.session_state, key)["data"])
            assert not colors & dark, (slug, label, chart.proto.id, colors & dark)
    assert {INK, INK_SOFT, GUIDE} <= {"#222", "#444", "#888"}  # live_chart's INK set


def test_error_surface_shows_a_divergence_at_step_one_on_a_chart():
    """At s = 1000 the raw inputs diverge at step 1: the loss chart marks it (✖ with its step)
    and the contour panel says so — it was only in the table."""
    at = open_page("error_surface")
    widget(at.select_slider, "es-scale").set_value(1000).run()
    assert not at.exception
    losses = spec(at, "es-losses")
    marks = [t for t in losses["data"] if "diverged at step 1" in str(t.get("text"))]
    assert len(marks) == 1 and marks[0]["x"][-1] == 1
    assert all(v is not None for t in losses["data"] for v in t["y"])  # nothing overflowed
    notes = [a["text"] for a in spec(at, "es-surface")["layout"]["annotations"]]
    assert sum("diverged at step 1" in n for n in notes) == 1
