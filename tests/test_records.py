"""records: labels, summaries and CSV from plain records."""

from __future__ import annotations

import csv
import io

from bnviz.config import RunConfig, grid
from bnviz.records import (
    group_labels,
    group_name,
    history_csv,
    latest_layers,
    layer_csv,
    layer_series,
    status_text,
    summary,
    sweep_axes,
    sweep_points,
    varied_fields,
)


def test_labels_name_what_varies():
    cfgs = [RunConfig(), RunConfig(norm="none"), RunConfig(norm="none", lr=0.5)]
    assert varied_fields(cfgs) == ["norm", "lr"]
    assert group_labels(cfgs) == ["norm=batch, lr=0.1", "norm=none, lr=0.1", "norm=none, lr=0.5"]
    assert group_labels([RunConfig(), RunConfig()]) == ["run 1", "run 2"]
    assert group_labels([RunConfig(hidden=(8,)), RunConfig(hidden=(8, 8))]) == [
        "hidden=8",
        "hidden=8,8",
    ]


def test_group_name_says_what_differs_from_the_defaults():
    sig = RunConfig(activation="sigmoid", lr=0.5)
    assert group_name([sig, sig.replace(norm="none")]) == "sigmoid, lr 0.5 · norm batch vs none"
    assert group_name([RunConfig(), RunConfig(norm="none")]) == "norm batch vs none"
    assert group_name([RunConfig()]) == "defaults"
    assert group_name([sig]) == "sigmoid, lr 0.5"
    # device and record_every change where and how often it is measured, not the experiment
    assert group_name([RunConfig(record_every=5, device="cpu")]) == "defaults"
    # widths read as 3×100 or 64-32; floats without trailing zeros; values in the group's order
    wide = grid(RunConfig(hidden=(64, 32), init="normal"), {"hidden": [(8, 8, 8), (4,)]})
    assert group_name(wide) == "init normal · hidden 3×8 vs 4"
    # two fields: values joined by "/", fields by "×"; a field of > 3 values by its ends
    sweep = grid(RunConfig(epochs=5), {"lr": [0.1, 0.2, 0.5, 1.0, 3.0], "norm": ["none", "batch"]})
    assert group_name(sweep) == "epochs 5 · norm none/batch × lr 0.1 … 3"
    sat = grid(RunConfig(), {"activation": ["sigmoid", "tanh"], "norm": ["none", "batch"]})
    assert group_name(sat) == "sigmoid/tanh × norm none/batch"


def test_group_name_cuts_the_shared_part_first():
    many = RunConfig(
        dataset="mnist1d",
        hidden=(64, 32),
        activation="tanh",
        dropout=0.2,
        init="xavier",
        optimizer="adam",
        lr=0.003,
        batch_size=128,
        weight_decay=0.001,
        epochs=50,
    )
    name = group_name([many, many.replace(norm="none")], max_len=60)
    assert len(name) <= 60
    assert name.startswith("mnist1d, hidden 64-32, tanh, ")
    assert name.endswith(", … · norm batch vs none")
    assert group_name([many, many.replace(norm="none")], max_len=10) == "… · norm batch vs none"


def test_status_and_summary():
    assert status_text("diverged", "", 12) == "diverged at step 12"
    assert status_text("failed", "boom") == "failed: boom"
    assert status_text("finished") == "finished"
    hist = [
        {"train_acc": 0.5, "test_acc": 0.4},
        {"train_acc": 0.9, "test_acc": 0.8},
        {"train_acc": 0.95, "test_acc": 0.7},
    ]
    assert summary(hist) == {"train_acc": 0.95, "test_acc": 0.7, "best_test_acc": 0.8}
    assert summary([])["best_test_acc"] is None


def test_history_csv_round_trips():
    rows = [
        {
            "step": 0,
            "epoch": 0.0,
            "train_loss": 2.3,
            "train_acc": 0.1,
            "test_loss": 2.3,
            "test_acc": 0.1,
        }
    ]
    text = history_csv(["a, b"], [rows])
    back = list(csv.DictReader(io.StringIO(text)))
    assert back[0]["run"] == "a, b" and float(back[0]["train_loss"]) == 2.3


def test_latest_layers_keeps_the_last_row_per_layer():
    rows = [
        {"step": s, "layer": layer, "point": p}
        for s in (0, 10)
        for layer in (1, 2)
        for p in ("linear", "act_in")
    ]
    latest = latest_layers(rows, "act_in")
    assert set(latest) == {1, 2} and all(r["step"] == 10 for r in latest.values())


def test_a_point_some_runs_lack_gives_empty_results():
    rows = [{"step": 0, "layer": layer, "point": "act_in"} for layer in (1, 2)]
    with_norm = [*rows, {"step": 0, "layer": 2, "point": "norm_out"}]
    assert latest_layers(rows, "norm_out") == {} and layer_series(rows, "norm_out", 2) == []
    assert set(latest_layers(with_norm, "norm_out")) == {2}
    assert layer_series(with_norm, "norm_out", 1) == []
    text = layer_csv(["a"], [with_norm])
    assert [r["point"] for r in csv.DictReader(io.StringIO(text))][-1] == "norm_out"


def test_sweep_axes_picks_the_field_with_three_values_and_the_series():
    base = RunConfig()
    lr_norm = grid(base, {"norm": ["none", "batch"], "lr": [0.1, 0.5, 3.0]})
    assert sweep_axes(lr_norm) == ("lr", "norm")
    # norm is the x axis only when nothing else takes ≥ 3 values
    assert sweep_axes(grid(base, {"norm": ["batch", "layer", "none"]})) == ("norm", None)
    by_batch = grid(base, {"norm": ["batch", "layer", "none"], "batch_size": [8, 32]})
    assert sweep_axes(by_batch) == ("norm", "batch_size")
    # two fields with ≥ 3 values: the one with more values is swept, the other is the series
    both = grid(base, {"batch_size": [8, 16, 32, 64], "lr": [0.1, 0.5, 3.0]})
    assert sweep_axes(both) == ("batch_size", "lr")
    even = grid(base, {"batch_size": [8, 16, 32], "lr": [0.1, 0.5, 3.0]})
    assert sweep_axes(even) == ("lr", "batch_size")  # equals: FIELDS order
    assert sweep_axes(grid(base, {"norm": ["none", "batch"], "lr": [0.1, 1.0]})) is None
    assert sweep_axes([]) is None


def test_sweep_points_final_best_status_and_runs_without_rows_skipped():
    configs = grid(RunConfig(), {"norm": ["batch", "none"], "lr": [0.1, 3.0]})
    histories = [
        [
            {"epoch": 1, "test_acc": 0.5},
            {"epoch": 2, "test_acc": 0.9},
            {"epoch": 3, "test_acc": 0.8},
        ],
        [],  # not started: skipped
        [{"epoch": 1, "test_acc": 0.3}, {"epoch": 1.5, "test_acc": None}],  # diverged
        [{"epoch": 1, "test_acc": 0.11}],  # near chance
    ]
    statuses = ["finished", "queued", "diverged", "running"]
    points = sweep_points(configs, histories, statuses, "lr", "norm")
    assert [(p["x"], p["series"]) for p in points] == [(0.1, "batch"), (0.1, "none"), (3.0, "none")]
    assert points[0] == {
        "x": 0.1,
        "series": "batch",
        "final": 0.8,
        "best": 0.9,
        "status": "finished",
        "stalled": False,
        "epoch": 3,
    }
    assert points[1]["final"] == 0.3 and points[1]["status"] == "diverged"  # last finite acc
    assert points[2]["stalled"] and not points[1]["stalled"]
    # text x for non-numeric fields, no series without `by`
    acts = grid(RunConfig(), {"activation": ["relu", "tanh", "sigmoid"]})
    rows = [[{"epoch": 1, "test_acc": 0.5}]] * 3
    pts = sweep_points(acts, rows, ["finished"] * 3, "activation", None)
    assert [p["x"] for p in pts] == ["relu", "tanh", "sigmoid"]
    assert {p["series"] for p in pts} == {None}


def test_sweep_series_name_every_other_varied_field():
    """norm × lr × batch_size: lr is swept, each (norm, batch_size) pair is its own series."""
    configs = grid(
        RunConfig(), {"norm": ["batch", "none"], "lr": [0.1, 0.5, 3.0], "batch_size": [8, 32]}
    )
    assert sweep_axes(configs) == ("lr", "norm")
    rows = [[{"epoch": 1, "test_acc": 0.5}]] * len(configs)
    points = sweep_points(configs, rows, ["finished"] * len(configs), "lr", "norm")
    series = {p["series"] for p in points}
    assert series == {f"{n}, batch_size={b}" for n in ("batch", "none") for b in (8, 32)}
    assert len({(p["x"], p["series"]) for p in points}) == len(configs)  # no two share a point
