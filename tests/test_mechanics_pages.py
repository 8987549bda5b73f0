"""The mechanics lessons' own pages in AppTest: each renders with its text, sources and charts;
widgets change what is computed; the numbers shown are the library's."""

from __future__ import annotations

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


def widget(seq, key: str):
    return next(w for w in seq if w.key == key)


def test_every_mechanics_lesson_has_a_page():
    assert set(PAGES) == {"error_surface", "bn_step_by_step", "bn_inference", "train_vs_eval"}
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
    at = open_page("bn_step_by_step")
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
    at = open_page("bn_step_by_step")
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
    at = open_page("bn_inference")
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
    widget(at.number_input, "tve-example").set_value(5).run()
    assert not at.exception
    z = spec(at, "tve-mates")["data"][0]["z"]
    assert len(z) == 7  # eval row + 4 random + 2 one-class batches
