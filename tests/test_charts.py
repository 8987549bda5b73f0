"""charts: plain records → Plotly figure dicts (validated by plotly itself)."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest

from bnviz import charts
from bnviz.config import RunConfig
from bnviz.records import latest_layers, layer_series
from bnviz.train import train_group


@pytest.fixture(scope="module")
def runs():
    cfgs = [
        RunConfig(hidden=(16, 16), epochs=2, activation="sigmoid"),
        RunConfig(hidden=(16, 16), epochs=2, activation="sigmoid", norm="none"),
    ]
    return train_group(cfgs)


def valid(fig: dict) -> go.Figure:
    return go.Figure(fig)  # raises on any invalid property


def test_curves_one_colour_per_run_and_marks_divergence(runs):
    labels = ["bn", "none"]
    fig = charts.curves(labels, [r.history for r in runs], "acc", ["finished", "diverged"])
    valid(fig)
    lines = [t for t in fig["data"] if t.get("mode") == "lines"]
    assert len(lines) == 4  # test + train per run
    assert {t["line"]["color"] for t in lines[:2]} == {charts.color(0)}
    assert {t["line"]["color"] for t in lines[2:]} == {charts.color(1)}
    assert lines[0]["y"] == [h["test_acc"] for h in runs[0].history]
    markers = [t for t in fig["data"] if t.get("mode") == "markers+text"]
    assert len(markers) == 1 and markers[0]["text"] == ["diverged"]
    assert fig["layout"]["uirevision"] == "keep"
    assert fig["layout"]["font"]["size"] >= 16


def test_loss_axis_turns_log_only_when_a_loss_explodes(runs):
    hist = [r.history for r in runs]
    assert "type" not in charts.curves(["a", "b"], hist, "loss")["layout"]["yaxis"]
    exploded = [[*hist[0], {**hist[0][-1], "train_loss": 1e6, "epoch": 3}], hist[1]]
    assert charts.curves(["a", "b"], exploded, "loss")["layout"]["yaxis"]["type"] == "log"


def test_histograms_are_densities_on_the_fixed_edges(runs):
    latest = [latest_layers(r.layers, "act_in") for r in runs]
    fig = charts.histograms(["bn", "none"], latest, "act_in")
    valid(fig)
    bars = fig["data"]
    assert len(bars) == 4  # 2 runs × 2 layers
    row = latest[0][1]
    inside = (row["n"] - row["under"] - row["over"]) / row["n"]
    area = sum(y * w for y, w in zip(bars[0]["y"], bars[0]["width"]))
    assert area == pytest.approx(inside, rel=1e-6)
    assert fig["layout"]["xaxis2"]["anchor"] == "y2"


def test_percentile_bands(runs):
    series = [layer_series(r.layers, "act_in", 2) for r in runs]
    fig = charts.percentile_bands(["bn", "none"], series, "layer 2")
    valid(fig)
    fills = [t for t in fig["data"] if t.get("fill") == "toself"]
    assert len(fills) == 8  # 4 nested bands per run
    # every trace says its mode: plotly's default draws markers in colours not the run's
    assert all(t.get("mode") == "lines" for t in fig["data"])
    p50 = [t for t in fig["data"] if t.get("name") == "50th percentile"]
    assert p50[0]["y"] == [r["p50"] for r in series[0]]


def test_heatmaps_steps_on_x_two_per_row_at_most(runs):
    series = [layer_series(r.layers, "act_in", 2) for r in runs]
    heat = charts.heatmaps(["bn", "none"], series, "layer 2", shared_steps=True)
    valid(heat)
    lay = heat["layout"]
    t = heat["data"][0]
    assert t["x"] == [r["step"] for r in series[0]]  # steps on x, a bin per row of z
    assert len(t["z"]) == len(series[0][0]["hist"]["counts"]) and len(t["z"][0]) == len(t["x"])
    assert all(h["coloraxis"] == "coloraxis" for h in heat["data"])  # one colour scale
    # two runs side by side, titled by run; value ticks few; the step axis shared
    assert lay["xaxis"]["domain"][1] < lay["xaxis2"]["domain"][0]
    assert lay["yaxis"]["domain"] == lay["yaxis2"]["domain"]
    assert lay["yaxis"]["nticks"] <= 6 and lay["xaxis2"]["matches"] == "x"
    assert "title" in lay["yaxis"] and "title" not in lay["yaxis2"]  # no title in the gap
    assert [a["text"] for a in lay["annotations"]] == ["bn", "none"]
    # past two runs: one per row, full width, the figure taller by a row each
    four = charts.heatmaps(list("abcd"), series + series, "layer 2")
    valid(four)
    lay4 = four["layout"]
    assert all(lay4[f"xaxis{s}"]["domain"] == [0, 1] for s in ("", "2", "3", "4"))
    assert lay4["yaxis2"]["domain"][1] < lay4["yaxis"]["domain"][0]
    assert lay4["height"] > lay["height"] + 300
    assert "matches" not in lay4["xaxis2"]
    assert "title" not in lay4["xaxis"] and lay4["xaxis4"]["title"]["text"] == "step"
    # a run without rows at that point gets a panel that says so
    empty = charts.heatmaps(["a", "b"], [series[0], []], "norm output")
    valid(empty)
    assert len(empty["data"]) == 1
    assert "no probe here" in [a["text"] for a in empty["layout"]["annotations"]]


def test_compare_curves_marks_each_group(runs):
    hist = [r.history for r in runs]
    fig = charts.compare_curves(
        ["A · bn", "A · none", "B · bn"],
        ["A first group<br>bn", "A first group<br>none", "B second group<br>bn"],
        [0, 0, 1],
        hist + hist[:1],
    )
    valid(fig)
    tests = [t for t in fig["data"] if t.get("showlegend")]
    assert [t["name"] for t in tests] == ["A · bn", "A · none", "B · bn"]
    assert [t["marker"]["symbol"] for t in tests] == ["circle", "circle", "square"]
    assert [t["line"]["color"] for t in tests] == [charts.color(i) for i in range(3)]
    assert all(t["mode"] == "lines+markers" for t in tests)
    assert "second group" in tests[2]["hovertemplate"]
    # one group: plain lines, the long names still on hover
    one = charts.compare_curves(["bn"], ["G<br>bn"], [0], hist[:1], "loss")
    assert all(t["mode"] == "lines" and "G<br>bn" in t["hovertemplate"] for t in one["data"])


def test_per_layer_lines_with_guide(runs):
    fig = charts.per_layer_lines(
        ["bn", "none"],
        [r.params for r in runs],
        [1, 2, 3],
        lambda p: p.get("update_ratio"),
        "t",
        "ratio",
        log=True,
        guide=1e-3,
    )
    valid(fig)
    assert len(fig["data"]) == 6 and len(fig["layout"]["shapes"]) == 3
    assert fig["layout"]["yaxis"]["type"] == "log"


def test_empty_inputs_draw_empty_figures():
    for fig in (
        charts.curves([], [], "acc"),
        charts.histograms([], [], "act_in"),
        charts.percentile_bands([], [], "t"),
        charts.per_layer_lines([], [], [1], lambda p: 0, "t", "y"),
    ):
        valid(fig)


def test_a_point_some_runs_lack_draws_only_the_runs_that_have_it(runs):
    """norm_out exists only with placement=after: runs without it draw nothing, no error."""
    assert all(latest_layers(r.layers, "norm_out") == {} for r in runs)
    assert "norm_out" in charts.POINT_NAMES
    fig = charts.histograms(["bn", "none"], [{}, {}], "norm_out")
    valid(fig)
    assert fig["data"] == []
    # one run has it in layer 2 only
    fake = [{**r, "point": "norm_out"} for r in runs[0].layers if r["layer"] == 2]
    fig = charts.histograms(["bn", "none"], [latest_layers(fake, "norm_out"), {}], "norm_out")
    valid(fig)
    assert len(fig["data"]) == 1 and fig["layout"]["annotations"][0]["text"] == "layer 2"
    series = [layer_series(fake, "norm_out", 2), layer_series(runs[1].layers, "norm_out", 2)]
    valid(charts.percentile_bands(["bn", "none"], series, "layer 2"))


def _points(field, xs, series=("batch", "none")):
    """Synthetic sweep points: final 0.9 for batch, 0.5 for none; the last none run diverged,
    the one before it stalled."""
    out = []
    for s in series:
        for j, x in enumerate(xs):
            diverged = s == "none" and j == len(xs) - 1
            stalled = s == "none" and j == len(xs) - 2
            final = 0.3 if diverged else 0.1 if stalled else 0.9 if s == "batch" else 0.5
            out.append(
                {
                    "x": x,
                    "series": s,
                    "final": final,
                    "best": final + 0.05,
                    "status": "diverged" if diverged else "finished",
                    "stalled": final < 0.2,
                    "epoch": 3,
                }
            )
    return out


def test_sweep_final_solid_best_dotted_per_series_with_markers_and_log_x():
    fig = charts.sweep(_points("lr", [3.0, 0.1, 0.5]), "lr", "norm")
    valid(fig)
    final = [t for t in fig["data"] if t["mode"] == "lines+markers"]
    best = [t for t in fig["data"] if t["name"].endswith("· best")]
    assert [t["name"] for t in final] == ["norm=batch", "norm=none"]
    for i, (f, b) in enumerate(zip(final, best)):
        assert f["line"]["color"] == b["line"]["color"] == charts.color(i)
        assert b["line"]["dash"] == "dot" and "dash" not in f["line"]
        assert b["legendgroup"] == f["legendgroup"] and b["showlegend"] is False
    assert final[1]["x"] == [0.1, 0.5, 3.0]  # sorted along the axis
    # given as 3.0 (fine), 0.1 (stalled), 0.5 (diverged); drawn in x order
    assert final[1]["marker"]["symbol"] == ["circle-open", "x", "circle"]
    assert final[1]["customdata"][1] == "diverged" and "stalled" in final[1]["customdata"][0]
    assert "%{customdata}" in final[1]["hovertemplate"]
    legend_only = [t["name"] for t in fig["data"] if t["x"] == [None]]
    assert legend_only == ["diverged", "stalled (near chance)", "final", "best"]
    lay = fig["layout"]
    assert lay["xaxis"]["type"] == "log" and lay["xaxis"]["tickvals"] == [0.1, 0.5, 3.0]
    assert lay["yaxis"]["range"] == [0, 1.02] and lay["yaxis"]["tickformat"] == ".0%"
    assert lay["legend"]["orientation"] == "h" and lay["font"]["size"] >= 16


def test_sweep_x_axis_kind_follows_the_values():
    def xaxis(field, xs):
        fig = charts.sweep(_points(field, xs, series=(None,)), field, None)
        valid(fig)
        return fig["layout"]["xaxis"]

    assert xaxis("batch_size", [2, 4, 8])["type"] == "log"  # a log field, even when < 10×
    assert xaxis("weight_decay", [1e-4, 1e-3, 1e-2])["type"] == "log"  # spans ≥ 10×
    assert xaxis("dropout", [0.0, 0.2, 0.5])["type"] == "linear"  # 0: no log
    assert xaxis("momentum", [0.05, 0.1, 0.3])["type"] == "linear"
    act = xaxis("activation", ["relu", "tanh", "sigmoid"])
    assert act["type"] == "category"
    fig = charts.sweep(_points("activation", ["relu", "tanh", "sigmoid"], (None,)), "x", None)
    assert fig["data"][0]["x"] == ["relu", "tanh", "sigmoid"]  # text keeps the grid's order
    assert fig["data"][0]["name"] == "test accuracy"


def test_sweep_of_records_grows_with_the_runs(runs):
    from bnviz.config import grid
    from bnviz.records import sweep_points

    configs = grid(RunConfig(), {"lr": [0.1, 0.3, 1.0]})
    histories = [runs[0].history, runs[1].history[:1], []]  # the third has no rows yet
    points = sweep_points(configs, histories, ["finished", "running", "queued"], "lr", None)
    fig = charts.sweep(points, "lr", None)
    valid(fig)
    assert fig["data"][0]["x"] == [0.1, 0.3]
    assert fig["data"][0]["y"][0] == runs[0].history[-1]["test_acc"]
    valid(charts.sweep([], "norm", None))


def test_legend_below_hangs_a_long_legend_under_the_ticks(runs):
    labels = [f"norm=none, lr={i}" for i in range(12)]
    rows = [r.params for r in runs] * 6
    fig = charts.per_layer_lines(labels, rows, [1, 2], lambda x: x.get("grad_norm"), "t", "y")
    plot = 380 - fig["layout"]["margin"]["t"] - fig["layout"]["margin"]["b"]
    height = charts.legend_below(fig, 12, 380)
    valid(fig)
    lay = fig["layout"]
    legend = lay["legend"]
    assert legend["yanchor"] == "top" and legend["y"] < 0  # below the plot, not the edge
    assert legend["entrywidthmode"] == "fraction" and legend["entrywidth"] * 3 < 1
    assert lay["margin"]["b"] >= 40 + 4 * 32  # the ticks, then 4 rows of 3
    assert height - lay["margin"]["t"] - lay["margin"]["b"] == plot  # the plot keeps its height


def test_loss_slice_draws_each_run_and_names_the_empty_panels():
    grid = [-1.0, 0.0, 1.0]
    s = {"alphas": grid, "betas": grid, "loss": [[2.0, 1.0, 2.0], [1.0, 0.1, 1.0], [2, 1, None]]}
    fig = charts.loss_slice(["norm=batch", "norm=none"], [s, None])
    go.Figure(fig)  # valid for plotly
    (trace,) = fig["data"]
    assert trace["type"] == "contour" and trace["z"][1][1] == pytest.approx(-1.0)
    assert trace["z"][2][2] is None  # a non-finite loss stays a gap
    lay = fig["layout"]
    assert lay["xaxis2"]["visible"] is False and "visible" not in lay["xaxis"]
    assert [a["text"] for a in lay["annotations"]].count("no slice yet") == 1
    fig = charts.loss_slice(["a", "b"], [None, s], ["diverged: no slice", "no slice yet"])
    assert [a["text"] for a in fig["layout"]["annotations"]][-1] == "diverged: no slice"


def test_first_step_by_layer_draws_each_runs_first_step_per_layer():
    rows = [
        {"step": s, "layer": k, "grad_norm": (10.0 / k if s == 0 else 1.0)}
        for s in (0, 5)
        for k in (1, 2, 3)
    ]
    fig = charts.first_step_by_layer(["a", "b"], [rows, []], "grad_norm", "t", "‖∇W‖")
    go.Figure(fig)  # valid for plotly
    (line,) = fig["data"]  # the run without rows draws nothing
    assert line["x"] == [1, 2, 3] and line["y"] == [10.0, 5.0, 10.0 / 3]
    assert fig["layout"]["yaxis"]["type"] == "log"


def test_a_diverged_runs_wide_band_gets_its_own_scale_not_everyones(runs):
    """One run's ±50k band flattened every other run's band on a shared axis: that run gets
    its own y scale (marked in its title); the others keep one shared scale."""
    series = [layer_series(r.layers, "act_in", 2) for r in runs]
    wild = [
        {**r, "quantiles": [q * 1e5 for q in r["quantiles"]]} for r in series[1]
    ]  # the diverged one
    fig = charts.percentile_bands(["a", "b", "wild"], [series[0], series[0], wild], "t")
    valid(fig)
    titles = [a["text"] for a in fig["layout"]["annotations"][:3]]
    assert titles == ["a", "b", "wild · own y scale"]
    shared = fig["layout"]["yaxis"]["range"]
    assert fig["layout"]["yaxis2"]["range"] == shared
    assert fig["layout"]["yaxis3"]["range"][1] > 100 * shared[1]
    assert shared[1] - shared[0] < 100  # not stretched by the wild run
    # alike runs: one shared scale, no mark
    fig = charts.percentile_bands(["a", "b"], series, "t")
    assert not any("own y scale" in a["text"] for a in fig["layout"]["annotations"])


def test_multi_panel_axes_keep_ticks_level_and_title_the_step_axis(runs):
    """At 1024 px plotly turned a panel's step ticks on their side, into the legend; the
    step axes had no title next to the epoch axes; a subtitle sat over the panel titles."""
    params = [r.params for r in runs]
    fig = charts.per_layer_lines(
        ["bn", "none"],
        params,
        [1, 2],
        lambda x: x.get("grad_norm"),
        {"text": "t", "subtitle": {"text": "s"}},
        "g",
    )
    for k in ("xaxis", "xaxis2"):
        assert fig["layout"][k]["tickangle"] == 0
        assert fig["layout"][k]["title"]["text"] == "step"
    assert fig["layout"]["margin"]["t"] >= 110
    land = charts.landscape_bands(["a"], [[]])
    assert land["layout"]["xaxis3"]["title"]["text"] == "step"


def test_a_log_axis_without_data_shows_no_crowded_decades():
    """Before a run, plotly's default decades (0.1 … 10k) ran into each other on a short log
    panel (the ICS and landscape lessons' key charts at 1280×800); with data, ticks come from
    it."""
    empty = charts.landscape_bands(["a"], [[]])["layout"]
    logs = [k for k, v in empty.items() if k.startswith("yaxis") and v.get("type") == "log"]
    assert logs and all(empty[k]["showticklabels"] is False for k in logs)
    rows = [{"step": s, "loss_min": 0.1 * s + 0.1, "loss_max": 2.0, "beta": 3.0} for s in (1, 2)]
    full = charts.landscape_bands(["a"], [rows])["layout"]
    assert full["yaxis"].get("showticklabels", True) and full["yaxis"]["tickvals"]
