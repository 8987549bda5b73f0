"""The live chart's incremental protocol and decimation: `dashboard.chart_stream` makes the
patches in Python, the component's own JavaScript (`live_chart._PATCH_JS`, `_DECIMATE_JS`)
applies them and decimates, run here in Node on the figures bnviz draws."""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import pytest

from bnviz import charts
from dashboard.chart_stream import KEEP_REVS, ChartStream
from dashboard.live_chart import _DECIMATE_JS, _PATCH_JS

NODE = shutil.which("node") or shutil.which("nodejs")
needs_node = pytest.mark.skipif(NODE is None, reason="Node.js runs the component's JavaScript")


def run_js(body: str, data: object) -> object:
    """Run `body` (JavaScript using `input`, printing with `out(...)`) after the component's
    functions, with `data` as `input`."""
    script = (
        f"{_PATCH_JS}\n{_DECIMATE_JS}\n"
        "const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n"
        "const out = (v) => process.stdout.write(JSON.stringify(v));\n"
        f"{body}"
    )
    done = subprocess.run(
        [NODE, "-e", script], input=json.dumps(data), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def history(n: int, seed: float = 0.0) -> list[dict]:
    return [
        {
            "step": 10 * e,
            "epoch": e,
            "train_loss": 1 / (e + 1 + seed),
            "train_acc": 1 - 1 / (e + 2),
            "test_loss": 1.1 / (e + 1),
            "test_acc": 0.9 - 1 / (e + 3 + seed),
        }
        for e in range(n)
    ]


def layer_rows(n: int) -> list[dict]:
    return [
        {
            "step": 10 * k,
            "hist": {"edges": [-1.0, 0.0, 1.0, 2.0], "counts": [k % 3, 2, 1]},
            "n": 3 + k % 3,
        }
        for k in range(n)
    ]


def curve_figures(lengths: list[int], statuses: list[str] | None = None) -> list[dict]:
    s = statuses or ["running", "running"]
    return [
        charts.curves(["BN", "no BN"], [history(n), history(n, 0.5)], "loss", s) for n in lengths
    ]


def apply_all(first: dict, patches: list, wholes: list | None = None) -> dict:
    """The component's model after a full figure and then each patch (or an error); a patch
    None is the whole figure, as the server sends it then (`whole`)."""
    patches = [p if p is not None else {"whole": w} for p, w in zip(patches, wholes or [])]
    return run_js(
        "let m = {data: input.first.data, layout: input.first.layout};"
        "for (const p of input.patches) { if (p.whole) { m = p.whole; continue; }"
        "if (!applyPatch(m, p)) { out({error: p.rev}); process.exit(0); } }"
        "out({data: m.data, layout: m.layout});",
        {"first": first, "patches": patches},
    )


@needs_node
def test_a_viewer_that_skipped_ticks_catches_up_in_one_patch():
    figs = curve_figures([3, 4, 9, 30, 31])
    stream = ChartStream()
    stream.push(figs[0])
    have = stream.rev
    for f in figs[1:]:
        stream.push(f)  # the viewer draws none of these ticks
    patch = stream.patch(have)
    assert patch is not None and patch["from"] == have and patch["rev"] == stream.rev
    assert all("full" not in t for _, t in patch["traces"]), "appended points only"
    want = {"data": figs[-1]["data"], "layout": figs[-1]["layout"]}
    assert apply_all(figs[0], [patch], [None]) == want


@needs_node
def test_patches_every_tick_rebuild_the_owners_figure_for_each_chart_kind():
    """Curves (appended), percentile bands (an outline rewritten each time), heatmaps (z rows
    that each grow), a run that diverges (a marker trace appears: new trace count)."""
    kinds = {
        "curves": curve_figures([0, 1, 2, 5, 6], ["running"] * 2)
        + curve_figures([7], ["running", "diverged"]),
        "bands": [
            charts.percentile_bands(
                ["a"],
                [
                    [
                        {
                            "step": k,
                            "quantiles": [k + d / 2 for d in range(-4, 5)],
                            "p15": k - 1,
                            "p50": k,
                            "p85": k + 1,
                        }
                        for k in range(n)
                    ]
                ],
                "t",
            )
            for n in (1, 2, 5)
        ],
        "histograms": [
            charts.histograms(["a"], [{1: {**r, "layer": 1}} for r in layer_rows(k)[-1:]], "act_in")
            for k in (1, 2, 3)
        ],
        "heatmaps": [
            charts.heatmaps(["a", "b"], [layer_rows(n), layer_rows(n)], "t") for n in (1, 3, 4)
        ],
    }
    for name, figs in kinds.items():
        stream = ChartStream()
        stream.push(figs[0])
        patches = []
        for f in figs[1:]:
            have = stream.rev
            stream.push(f)
            patches.append(stream.patch(have))
        wholes = [{"data": f["data"], "layout": f["layout"]} for f in figs[1:]]
        got = apply_all(figs[0], patches, wholes)
        if name == "curves":  # the diverged marker adds a trace: that tick is a whole figure
            assert patches[-1] is None and None not in patches[:-1]
        else:
            assert None not in patches
        assert got == {"data": figs[-1]["data"], "layout": figs[-1]["layout"]}, name


def test_a_refresh_sends_the_new_rows_whatever_the_history():
    """2000 epochs drawn; one more epoch: the patch holds the new points, not the history."""
    stream = ChartStream()
    stream.push(curve_figures([2000])[0])
    have = stream.rev
    stream.push(curve_figures([2001])[0])
    patch = stream.patch(have)
    whole = len(json.dumps(stream.figure))
    size = len(json.dumps(patch))
    assert size < 1000 < whole / 100, (size, whole)
    assert {t["at"]["x"] for _, t in patch["traces"]} == {2000}
    assert stream.patch(stream.rev)["traces"] == []  # nothing new: an empty patch


def test_whole_figure_when_the_viewer_is_unknown_or_too_far_behind():
    stream = ChartStream()
    assert stream.patch(None) is None and stream.patch(0) is None
    for n in range(KEEP_REVS + 2):
        stream.push(curve_figures([n])[0])
    assert stream.patch(1) is None  # forgotten: the whole figure, once
    assert stream.patch(stream.rev - 1) is not None
    assert ChartStream().token != stream.token


def test_layout_changes_send_only_the_changed_keys_or_the_whole_layout():
    a = {"data": [], "layout": {"title": "a", "xaxis": {"range": [0, 1]}, "extra": 1}}
    b = {"data": [], "layout": {"title": "a", "xaxis": {"range": [0, 2]}, "extra": 1}}
    c = {"data": [], "layout": {"title": "a", "xaxis": {"range": [0, 2]}}}
    stream = ChartStream()
    stream.push(a)
    stream.push(b)
    assert stream.patch(1)["layout"] == {"xaxis": {"range": [0, 2]}}
    stream.push(c)
    p = stream.patch(2)
    assert p["replace"] and p["layout"] == c["layout"]
    assert stream.patch(1)["layout"] == c["layout"]


@needs_node
def test_a_patch_that_does_not_fit_is_refused():
    figs = curve_figures([5, 8, 9])
    stream = ChartStream()
    stream.push(figs[0])
    stream.push(figs[1])
    stream.push(figs[2])
    patch = stream.patch(2)  # from 8 points; the model has 5
    assert apply_all(figs[0], [patch], [None]) == {"error": 3}


def decimate(x: list, y: list, range_: list | None, buckets: int) -> list[int] | None:
    return run_js(
        "out(decimateTrace({type: 'scatter', x: input.x, y: input.y}, input.r, input.b));",
        {"x": x, "y": y, "r": range_, "b": buckets},
    )


@needs_node
def test_decimation_keeps_each_buckets_extremes_and_zoom_is_full_resolution():
    n = 100_000
    x = list(range(n))
    y = [math.sin(i / 500) + (3.0 if i == 54_321 else 0.0) for i in x]
    y[70_000] = None  # a gap stays a gap
    keep = decimate(x, y, None, 300)
    assert 300 <= len(keep) <= 4 * 300 + 2 * 4 * 38 + 2
    assert keep == sorted(set(keep)) and keep[0] == 0 and keep[-1] == n - 1
    assert 54_321 in keep and 70_000 in keep  # the spike, the gap
    values = [y[i] for i in keep if y[i] is not None]
    assert max(values) == max(v for v in y if v is not None)
    assert min(values) == min(v for v in y if v is not None)
    # zoomed to 200 points: every one of them drawn, and the curve still reaches both ends
    zoom = decimate(x, y, [1000, 1199], 300)
    assert set(range(1000, 1200)) <= set(zoom)
    assert zoom[0] == 0 and zoom[-1] == n - 1 and len(zoom) < 600
    assert decimate(x[:1500], y[:1500], None, 300) is None  # short traces are drawn whole
    assert decimate([3, 2] * 5000, [0] * 10_000, None, 300) is None  # x that goes back


def test_a_rewritten_trace_sends_only_the_keys_that_changed():
    """A histogram's bins stay, its heights change: only the heights cross the wire."""
    figs = [
        charts.histograms(["a"], [{1: {**r, "layer": 1}} for r in layer_rows(k)[-1:]], "act_in")
        for k in (1, 2)
    ]
    stream = ChartStream()
    stream.push(figs[0])
    stream.push(figs[1])
    ((_, t),) = stream.patch(1)["traces"]
    assert set(t) == {"set"} and set(t["set"]) <= {"y", "hovertemplate"}, t


@needs_node
def test_a_patch_from_an_older_revision_applies_to_a_newer_model():
    """The server patches from the revision before the last one it sent, so that a message
    the browser skipped is no loss: applied on top of that message it gives the same."""
    for figs in (
        curve_figures([3, 5, 8]),
        [charts.heatmaps(["a"], [layer_rows(n)], "t") for n in (1, 2, 4)],
    ):
        stream = ChartStream()
        for f in figs:
            stream.push(f)
        want = {"data": figs[-1]["data"], "layout": figs[-1]["layout"]}
        skipped = apply_all(figs[0], [stream.patch(1)], [None])
        both = apply_all(figs[0], [_patch_between(figs[0], figs[1]), stream.patch(1)], [None] * 2)
        assert skipped == want and both == want


def _patch_between(a: dict, b: dict) -> dict:
    stream = ChartStream()
    stream.push(a)
    stream.push(b)
    return stream.patch(1)
