"""Tests for bnviz.checks: each check on small hand-made records (pass, fail, incomplete, any
order), then each lesson preset trained on the real engine must pass its check."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from bnviz import checks
from bnviz.checks import CHECKS, Check
from bnviz.config import PRESETS, RunConfig

LESSON_PRESETS = (
    "faster",
    "ioffe_fig1",
    "saturation",
    "lr_ladder",
    "init_scale",
    "batch_size",
    "placement",
    "regularization",
    "feature_scaling",
)


@dataclass
class Rec:
    """The attributes a check reads, as RunRecord and the server's RunState have them."""

    config: RunConfig
    status: str = "finished"
    history: list[dict] = field(default_factory=list)
    layers: list[dict] = field(default_factory=list)
    diverged_step: int | None = None


def rec(
    test: list[float],
    *,
    train: float | None = None,
    status: str = "finished",
    sat: float | None = None,
    every: int = 10,
    **fields: Any,
) -> Rec:
    """A run whose test accuracy is `test[i]` at step i·every (nan: non-finite after divergence);
    train accuracy `train` at the end; a saturated share `sat` at the last hidden layer."""
    history = [
        {"step": i * every, "epoch": i, "train_loss": 1.0, "train_acc": 0.5, "test_loss": 1.0}
        | {"test_acc": None if math.isnan(a) else a}
        for i, a in enumerate(test)
    ]
    if train is not None and history:
        history[-1]["train_acc"] = train
    layers = []
    if sat is not None:
        last = (len(test) - 1) * every
        for layer, share in ((1, 0.0), (2, 0.0), (3, sat)):  # only the last layer counts
            layers.append({"step": 0, "layer": layer, "point": "act_out", "saturated": 0.0})
            layers.append({"step": last, "layer": layer, "point": "act_out", "saturated": share})
    cfg = RunConfig(**fields)
    diverged = None
    if status == "diverged":
        diverged = next(i * every for i, a in enumerate(test) if math.isnan(a))
    return Rec(cfg, status, history, layers, diverged)


def assert_any_order(check: Any, records: list[Rec]) -> Check:
    """The check's result, which must not depend on the order of the records."""
    result = check(records)
    shuffled = records[::-1]
    random.Random(0).shuffle(shuffled)
    assert check(shuffled) == result
    assert check(records[::-1]) == result
    return result


def incomplete(records: list[Rec]) -> list[list[Rec]]:
    """Variants that cannot be judged: a run still running, a run missing, no history yet."""
    running = [*records[:-1], Rec(records[-1].config, "running", records[-1].history[:1])]
    empty = [*records[:-1], Rec(records[-1].config, "queued")]
    return [running, records[:-1], empty]


def check_cases(name: str, good: list[Rec], bad: list[Rec]) -> tuple[Check, Check]:
    check = CHECKS[name]
    ok, not_ok = assert_any_order(check, good), assert_any_order(check, bad)
    assert ok.passed is True, ok
    assert not_ok.passed is False, not_ok
    for result in (ok, not_ok):
        assert result.summary.endswith(".") and "\n" not in result.summary
        assert result.figures and all(
            isinstance(a, str) and isinstance(b, str) for a, b in result.figures
        )
    for records in incomplete(good):
        pending = check(records)
        assert pending.passed is None and "not enough records" in pending.summary.lower()
    return ok, not_ok


def test_every_lesson_has_a_check() -> None:
    assert set(CHECKS) == set(LESSON_PRESETS)
    assert set(LESSON_PRESETS) <= set(PRESETS)


def test_feature_scaling() -> None:
    nan = math.nan
    good = [
        rec([0.1, 0.8, 0.86], input_scale=1.0, norm="none"),
        rec([0.1, 0.95, 0.98], input_scale=1.0, norm="batch"),
        rec([0.1, nan], status="diverged", input_scale=100.0, norm="none"),
        rec([0.1, 0.9, 0.95], input_scale=100.0, norm="batch"),
    ]
    bad = [*good[:2], rec([0.1, 0.6, 0.9], input_scale=100.0, norm="none"), good[3]]
    ok, not_ok = check_cases("feature_scaling", good, bad)
    assert "diverged at step 10" in ok.summary and "95.0 %" in ok.summary
    assert "ended at 90.0 %" in not_ok.summary


def test_faster() -> None:
    good = [
        rec([0.1, 0.5, 0.8, 0.91, 0.96, 0.97], norm="none"),
        rec([0.1, 0.92, 0.96, 0.97, 0.98, 0.98], norm="batch"),
    ]
    ok, _ = check_cases(
        "faster", good, [good[0], rec([0.1, 0.5, 0.8, 0.9, 0.93, 0.99], norm="batch")]
    )
    assert ("steps to 95 %: norm=batch", "20") in ok.figures
    assert ("steps to 95 %: norm=none", "40") in ok.figures
    assert "in 20 steps" in ok.summary and "in 40 steps" in ok.summary
    # faster, but ending 3 points lower: not "the same accuracy"
    lower = rec([0.1, 0.92, 0.96, 0.94, 0.94, 0.94], norm="batch")
    assert checks.faster([good[0], lower]).passed is False
    # the plain net never gets there: BN is faster
    never = rec([0.1, 0.5, 0.8, 0.91, 0.93, 0.949], norm="none")
    result = checks.faster([never, rec([0.1, 0.92, 0.96, 0.96], norm="batch")])
    assert ("steps to 95 %: norm=none", "never") in result.figures
    assert result.passed is True and "the plain net never" in result.summary


def test_ioffe_fig1() -> None:
    good = [rec([0.1, 0.09], norm="none"), rec([0.1, 0.96], norm="batch")]
    bad = [rec([0.1, 0.3], norm="none"), good[1]]
    ok, _ = check_cases("ioffe_fig1", good, bad)
    assert "9.0 %" in ok.summary and "96.0 %" in ok.summary


def test_saturation() -> None:
    good = [
        rec([0.1, 0.8], norm="none", activation="sigmoid", sat=0.6),
        rec([0.1, 0.9], norm="batch", activation="sigmoid", sat=0.01),
        rec([0.1, 0.7], norm="none", activation="tanh", sat=0.8),
        rec([0.1, 0.9], norm="batch", activation="tanh", sat=0.02),
    ]
    bad = [*good[:3], rec([0.1, 0.9], norm="batch", activation="tanh", sat=0.5)]
    ok, _ = check_cases("saturation", good, bad)
    assert ("saturated share: tanh, norm=none", "80.0 %") in ok.figures
    # saturation is fine but BN does not train
    untrained = [*good[:3], rec([0.1, 0.5], norm="batch", activation="tanh", sat=0.0)]
    assert checks.saturation(untrained).passed is False
    relu = [rec([0.1, 0.9], norm=n, activation="relu") for n in ("none", "batch")]
    assert checks.saturation(relu).passed is None


def ladder(top_plain: Rec, top_bn: Rec) -> list[Rec]:
    runs = [rec([0.1, 0.95], lr=lr, norm=n) for lr in (0.1, 0.3, 1.0) for n in ("none", "batch")]
    return [*runs, top_plain, top_bn]


def test_lr_ladder() -> None:
    diverged = rec([0.1, 0.2, math.nan], lr=3.0, norm="none", status="diverged")
    good = ladder(diverged, rec([0.1, 0.93], lr=3.0, norm="batch"))
    bad = ladder(rec([0.1, 0.6], lr=3.0, norm="none"), good[-1])
    ok, _ = check_cases("lr_ladder", good, bad)
    assert ("lr=3: norm=none", "20.0 % (diverged at step 20)") in ok.figures
    assert "the plain net diverged" in ok.summary
    # stuck below 50 % without diverging also counts as broken; BN must reach 90 %
    stuck = ladder(rec([0.1, 0.3], lr=3.0, norm="none"), good[-1])
    assert checks.lr_ladder(stuck).passed is True
    weak_bn = ladder(diverged, rec([0.1, 0.85], lr=3.0, norm="batch"))
    assert checks.lr_ladder(weak_bn).passed is False


def test_init_scale() -> None:
    def runs(bn_worst: float) -> list[Rec]:
        return [
            rec([0.1, 0.09], init_scale=0.1, norm="none"),
            rec([0.1, 0.95], init_scale=0.1, norm="batch"),
            rec([0.1, 0.9], init_scale=1.0, norm="none"),
            rec([0.1, 0.97], init_scale=1.0, norm="batch"),
            rec([0.1, 0.12, math.nan], init_scale=10.0, norm="none", status="diverged"),
            rec([0.1, bn_worst], init_scale=10.0, norm="batch"),
        ]

    ok, bad = check_cases("init_scale", runs(0.85), runs(0.35))
    assert ("worst final: norm=none", "9.0 %") in ok.figures
    assert ("init_scale=10: norm=none", "12.0 % (diverged at step 20)") in ok.figures
    assert "85.0 % (at 10)" in ok.summary and "9.0 % (at 0.1)" in ok.summary
    assert "26 points apart" in bad.summary


def sizes(bn_small: float, bn_large: float) -> list[Rec]:
    out = []
    for b, accs in (
        (2, (bn_small, 0.94, 0.95)),
        (8, (0.95, 0.96, 0.96)),
        (64, (bn_large, 0.96, 0.95)),
    ):
        for n, a in zip(("batch", "layer", "group"), accs):
            out.append(rec([0.1, a], batch_size=b, norm=n))
    return out


def test_batch_size() -> None:
    ok, _ = check_cases("batch_size", sizes(0.3, 0.97), sizes(0.7, 0.97))
    assert "batch size 2 BN ended at 30.0 %" in ok.summary
    assert checks.batch_size(sizes(0.3, 0.92)).passed is False  # 4 points behind at 64
    assert checks.batch_size(sizes(0.3, 0.94)).passed is True  # 2 points behind


def test_placement() -> None:
    def runs(sigmoid_after: float) -> list[Rec]:
        return [
            rec([0.1, 0.98], activation="relu", placement="before"),
            rec([0.1, 0.97], activation="relu", placement="after"),
            rec([0.1, 0.95], activation="sigmoid", placement="before"),
            rec([0.1, sigmoid_after], activation="sigmoid", placement="after"),
        ]

    ok, _ = check_cases("placement", runs(0.96), runs(0.90))
    assert ("sigmoid: after", "96.0 %") in ok.figures


def test_regularization() -> None:
    def runs(bn_test: float) -> list[Rec]:
        return [
            rec([0.1, 0.95], train=1.0, norm="none", n_samples=300),
            rec([0.1, 0.94], train=0.97, norm="none", dropout=0.5, n_samples=300),
            rec([0.1, bn_test], train=1.0, norm="batch", n_samples=300),
            rec([0.1, 0.95], train=0.86, norm="batch", dropout=0.5, n_samples=300),
        ]

    ok, bad = check_cases("regularization", runs(0.97), runs(0.94))
    assert ("train–test gap: plain", "5.0 points") in ok.figures
    assert ("train–test gap: BN", "3.0 points") in ok.figures
    assert ("train–test gap: BN + dropout 0.5", "−9.0 points") in ok.figures
    assert "BN: 3.0" in ok.summary and "BN: 6.0" in bad.summary


def test_cancelled_run_asks_for_a_rerun() -> None:
    runs = [rec([0.1, 0.5], norm="none", status="cancelled"), rec([0.1, 0.96], norm="batch")]
    result = checks.ioffe_fig1(runs)
    assert result.passed is None and "cancelled" in result.summary


# --- the presets keep their promises -----------------------------------------------------------


def test_preset_grids_span_what_the_lessons_claim() -> None:
    def values(name: str, field_name: str) -> list:
        return sorted({getattr(c, field_name) for c in PRESETS[name].configs()})

    lrs = values("lr_ladder", "lr")
    assert len(lrs) >= 5 and lrs[-1] / lrs[0] >= 30
    scales = values("init_scale", "init_scale")
    assert scales[-1] / scales[0] >= 100
    batches = values("batch_size", "batch_size")
    assert batches[0] == 2 and batches[-1] >= 64 and len(batches) >= 3
    assert values("batch_size", "norm") == ["batch", "group", "layer"]
    assert values("regularization", "n_samples") != [0]
    for name in LESSON_PRESETS:
        assert {c.dataset for c in PRESETS[name].configs()} == {"digits"}


@pytest.mark.parametrize("name", LESSON_PRESETS)
def test_preset_shows_its_effect(name: str, preset_records: Any) -> None:
    """The real engine, at the preset's default seed: the lesson's claim holds."""
    records = preset_records(name)
    assert all(r.status in ("finished", "diverged") for r in records), [r.message for r in records]
    result = CHECKS[name](records)
    assert result.passed is True, (result.summary, result.figures)
