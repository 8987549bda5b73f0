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
from bnviz.lessons import LESSONS

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
    "noisy_bn",
    "ics",
    "landscape",
    "gamma_beta_only",
    "no_norm",
    "sigmoid_plateau",
    "bn_gradients",
    "gamma_beta_init",
)


@dataclass
class Rec:
    """The attributes a check reads, as RunRecord and the server's RunState have them."""

    config: RunConfig
    status: str = "finished"
    history: list[dict] = field(default_factory=list)
    layers: list[dict] = field(default_factory=list)
    diverged_step: int | None = None
    params: list[dict] = field(default_factory=list)
    units: list[dict] = field(default_factory=list)
    ics: list[dict] = field(default_factory=list)
    landscape: list[dict] = field(default_factory=list)
    slice: list[dict] = field(default_factory=list)


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
        rec([0.1, nan], status="diverged", input_scale=1000.0, norm="none"),
        rec([0.1, 0.9, 0.95], input_scale=1000.0, norm="batch"),
    ]
    bad = [*good[:2], rec([0.1, 0.6, 0.9], input_scale=1000.0, norm="none"), good[3]]
    ok, not_ok = check_cases("feature_scaling", good, bad)
    assert "diverged at step 10" in ok.summary and "95.0 %" in ok.summary
    assert "ended at 90.0 %" in not_ok.summary
    assert ok.effect.value == pytest.approx(85.0)  # a diverged run counts as chance
    weak_bn = [*good[:3], rec([0.1, 0.7, 0.75], input_scale=1000.0, norm="batch")]
    assert checks.feature_scaling(weak_bn).passed is False


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


def sited(r: Rec, site: str) -> Rec:
    """Layer probes as the engine records them with the norm before the activation (its input
    differs from the linear output) or after it (a norm_out probe)."""
    act_in = 1.0 if site == "before" else 0.7
    r.layers = [
        {"step": 0, "layer": 1, "point": "linear", "std": 0.7},
        {"step": 0, "layer": 1, "point": "act_in", "std": act_in},
    ] + ([{"step": 0, "layer": 1, "point": "norm_out", "std": 1.0}] if site == "after" else [])
    return r


def test_placement() -> None:
    def runs(sigmoid_after: float, relu_after_site: str = "after") -> list[Rec]:
        return [
            sited(rec([0.1, 0.98], activation="relu", placement="before"), "before"),
            sited(rec([0.1, 0.97], activation="relu", placement="after"), relu_after_site),
            sited(rec([0.1, 0.95], activation="sigmoid", placement="before"), "before"),
            sited(rec([0.1, sigmoid_after], activation="sigmoid", placement="after"), "after"),
        ]

    ok, _ = check_cases("placement", runs(0.96), runs(0.90))
    assert ("sigmoid: after", "96.0 %") in ok.figures
    assert ("relu, after: the probes show the norm", "after") in ok.figures
    assert ok.effect.value == pytest.approx(1.0) and ok.effect.direction == 0
    # the "after" run is the "before" run relabelled: identical runs compare nothing
    same = checks.placement(runs(0.96, relu_after_site="before"))
    assert same.passed is False and "labelled 'after' has its norm before" in same.summary


def normed(r: Rec) -> Rec:
    """Parameter records holding a norm layer's γ/β, as the engine's params rows of a BN run."""
    r.params = [{"step": 0, "layer": 1, "norm": {"weight": {"mean": 1.0}}}]
    return r


def test_regularization() -> None:
    def runs(bn_test: float) -> list[Rec]:
        return [
            rec([0.1, 0.95], train=1.0, norm="none", n_samples=300),
            rec([0.1, 0.94], train=0.97, norm="none", dropout=0.5, n_samples=300),
            normed(rec([0.1, bn_test], train=1.0, norm="batch", n_samples=300)),
            normed(rec([0.1, 0.95], train=0.86, norm="batch", dropout=0.5, n_samples=300)),
        ]

    ok, bad = check_cases("regularization", runs(0.97), runs(0.90))
    assert ("train–test gap: plain", "5.0 points") in ok.figures
    assert ("train–test gap: BN", "3.0 points") in ok.figures
    assert ("train–test gap: BN + dropout 0.5", "−9.0 points") in ok.figures
    assert "BN: 3.0" in ok.summary and "(+2.0 points)" in ok.summary
    assert "(−5.0 points)" in bad.summary
    # a plain run relabelled BN: its records hold no norm layer
    plain_as_bn = runs(0.95)
    plain_as_bn[2].params = []
    result = checks.regularization(plain_as_bn)
    assert result.passed is False and "records hold no norm layer" in result.summary


def with_rows(r: Rec, **kinds: list[dict]) -> Rec:
    for kind, rows in kinds.items():
        setattr(r, kind, rows)
    return r


def unit_rows(means: list[float], std: float = 1.0) -> list[dict]:
    """One unit of layer 1 whose mean is means[i] at probe i (step 10·i)."""
    return [
        {"step": 10 * i, "layer": 1, "unit": 0, "mean": m, "std": std} for i, m in enumerate(means)
    ]


def test_noisy_bn() -> None:
    def runs(noisy_acc: float, noisy_means: list[float]) -> list[Rec]:
        return [
            with_rows(rec([0.1, 0.85], norm="none"), units=unit_rows([0, 0.1, 0.2], std=0.5)),
            with_rows(rec([0.1, 0.98], norm="batch"), units=unit_rows([0, 0.001, 0.002])),
            with_rows(rec([0.1, noisy_acc], norm="noisy_batch"), units=unit_rows(noisy_means)),
            with_rows(rec([0.1, 0.5], norm="noise_only"), units=unit_rows([0, 0.4, -0.2])),
        ]

    ok, _ = check_cases("noisy_bn", runs(0.97, [0, 0.3, -0.3]), runs(0.90, [0, 0.3, -0.3]))
    # 4 points below BN, 9 above the plain net: closer to BN, it trains like BN
    assert checks.noisy_bn(runs(0.94, [0, 0.3, -0.3])).passed is True
    assert "0.45 σ on average with noisy BN" in ok.summary  # (0.3 + 0.6) / 2
    assert ("unit shift per probe (in σ): plain", "0.200") in ok.figures
    assert "the same noise without BN 50.0 %" in ok.summary
    # trains, but its units hardly move more than the plain net's: not the lesson's setting
    assert checks.noisy_bn(runs(0.97, [0, 0.1, 0.2])).passed is False
    no_units = [rec([0.1, 0.9], norm=n) for n in ("none", "batch", "noisy_batch", "noise_only")]
    assert checks.noisy_bn(no_units).passed is None


def ics_rows(rel: dict[int, float]) -> list[dict]:
    """ICS rows at two steps with ‖G − G′‖/‖G‖ = rel[layer] (‖G‖ = 2)."""
    return [
        {"step": s, "layer": layer, "l2": 2 * r, "cos": 1 - r, "grad_norm": 2.0}
        for s in (0, 50)
        for layer, r in rel.items()
    ]


def ics_pair(plain_rel: dict, bn_rel: dict, input_norm: str) -> list[Rec]:
    return [
        with_rows(rec([0.1, 0.95], norm="none", input_norm=input_norm), ics=ics_rows(plain_rel)),
        with_rows(rec([0.1, 0.98], norm="batch", input_norm=input_norm), ics=ics_rows(bn_rel)),
    ]


def test_ics() -> None:
    raw = ics_pair({2: 0.8, 3: 0.8, 4: 0.9}, {2: 0.4, 3: 0.4, 4: 0.3}, "none")
    std = ics_pair({2: 0.1, 3: 0.2, 4: 0.3}, {2: 0.4, 3: 0.4, 4: 0.25}, "standardize")
    same_std = ics_pair({2: 0.1, 3: 0.2, 4: 0.3}, {2: 0.1, 3: 0.2, 4: 0.3}, "standardize")
    ok, bad = check_cases("ics", raw + std, raw + same_std)
    assert "on raw inputs (0–16) 0.37 with BN vs 0.83 without" in ok.summary
    assert "(larger with BN at 2 of 3 layers)" in ok.summary
    assert "BN reduced it on raw inputs; on standardized ones BN's was larger, as" in ok.summary
    assert ("raw inputs (0–16), layer 2: ‖G − G′‖/‖G‖, norm=batch", "0.4") in ok.figures
    assert ok.effect.unit == "×" and ok.effect.value == pytest.approx(0.35 / 0.2)
    assert "on standardized ones BN's was not larger." in bad.summary
    one_setting = checks.ics(raw)
    assert one_setting.passed is None and "raw and standardized" in one_setting.summary
    bare = [
        rec([0.1, 0.95], norm=n, input_norm=i)
        for n in ("none", "batch")
        for i in ("none", "standardize")
    ]
    assert checks.ics(bare).passed is None


def land_rows(loss_var: float, diff: float, beta: float) -> list[dict]:
    return [
        {"step": s, "loss_min": 1.0, "loss_max": 1.0 + loss_var, "grad_diff_min": 0.0}
        | {"grad_diff_max": diff, "beta": beta}
        for s in (0, 50, 100)
    ]


def land_pair(plain: tuple, bn: tuple, input_norm: str) -> list[Rec]:
    return [
        with_rows(
            rec([0.1, 0.95], norm="none", input_norm=input_norm), landscape=land_rows(*plain)
        ),
        with_rows(rec([0.1, 0.98], norm="batch", input_norm=input_norm), landscape=land_rows(*bn)),
    ]


def test_landscape() -> None:
    grid = [{"step": 99, "loss": [[0.5, 2.0], [1.0, 0.1]], "alphas": [-1, 1], "betas": [-1, 1]}]
    raw = land_pair((0.2, 4.0, 15.0), (0.01, 0.4, 9.0), "none")
    raw[0].slice = grid
    std = land_pair((0.03, 0.5, 4.0), (0.01, 0.4, 8.0), "standardize")
    smoother_std = land_pair((0.03, 0.5, 4.0), (0.01, 0.4, 3.0), "standardize")
    ok, bad = check_cases("landscape", raw + std, raw + smoother_std)
    assert "on raw inputs (0–16) 3 of 3 measures smaller with BN" in ok.summary
    assert "on standardized inputs 2 of 3 measures smaller with BN" in ok.summary
    assert "β-smoothness is larger on standardized ones" in ok.summary
    assert ("raw inputs (0–16), 2-D slice, highest loss: norm=none", "2") in ok.figures
    assert ok.effect.value == pytest.approx(15 / 9)  # the weakest ratio
    assert "and on standardized ones too" in bad.summary
    half = land_pair((0.2, 4.0, 5.0), (0.01, 0.4, 9.0), "none") + std
    assert "shows on raw inputs only in part" in checks.landscape(half).summary
    assert checks.landscape(half).passed is False
    bare = [
        rec([0.1, 0.95], norm=n, input_norm=i)
        for n in ("none", "batch")
        for i in ("none", "standardize")
    ]
    assert checks.landscape(bare).passed is None


def test_gamma_beta_only() -> None:
    def runs(norm_only: float) -> list[Rec]:
        return [
            rec([0.1, 0.98], train_only="all"),
            rec([0.1, norm_only], train_only="norm"),
            rec([0.1, 0.9], train_only="classifier"),
        ]

    ok, _ = check_cases("gamma_beta_only", runs(0.95), runs(0.4))
    assert "Training only γ and β (600 numbers) reached 95.0 %" in ok.summary
    assert (
        "9.5× chance" in ok.summary and "only the last layer (1,010 numbers) 90.0 %" in ok.summary
    )
    assert ok.effect.value == pytest.approx(5.0)
    assert checks.gamma_beta_only(runs(0.99)).passed is False  # not below full training
    assert checks.gamma_beta_only(runs(0.85)).passed is False  # below the last layer alone


def deep(kaiming_agc: float, default_plain: float = 0.09) -> list[Rec]:
    acc = {
        ("none", "default"): (default_plain, default_plain),
        ("none", "kaiming"): (0.2, kaiming_agc),
        ("batch", "default"): (0.95, 0.85),
        ("batch", "kaiming"): (0.94, 0.8),
    }
    return [
        rec([0.1, a], norm=n, init=i, agc=lam, hidden=(64,) * 16)
        for (n, i), accs in acc.items()
        for lam, a in zip((0.0, 0.01), accs)
    ]


def test_no_norm() -> None:
    ok, _ = check_cases("no_norm", deep(0.88), deep(0.35))
    assert "16 layers without BN: default init 9.0 %" in ok.summary
    assert "kaiming init + AGC λ=0.01 88.0 %" in ok.summary
    assert ("final test acc: norm=none, init=kaiming, agc=0.01", "88.0 %") in ok.figures
    assert checks.no_norm(deep(0.88, default_plain=0.5)).passed is False
    assert checks.no_norm(deep(0.88)[:4]).passed is None


def test_sigmoid_plateau() -> None:
    plateau = [0.1] * 160 + [0.3, 0.55, 0.8, 0.92, 0.94]  # 50 % at step 1610
    good = [rec(plateau, norm="none"), rec([0.1, 0.3, 0.6, 0.92, 0.97], norm="batch")]
    ok, _ = check_cases("sigmoid_plateau", good, [rec([0.1] * 165, norm="none"), good[1]])
    assert "after 1610 steps, 80× as many as BN's 20" in ok.summary
    assert ("steps to 90 %: norm=batch", "30") in ok.figures
    # control arms: BN swapped for its plain twin, or the plain net trained only 20 epochs
    assert checks.sigmoid_plateau([good[0], rec(plateau, norm="batch")]).passed is False
    short = checks.sigmoid_plateau([rec([0.1] * 46, norm="none"), good[1]])
    assert short.passed is False and "did not leave the plateau in 450 steps" in short.summary


def grad_rows(g1: float, depth: int) -> list[dict]:
    """Param rows at steps 0 and 20: ‖∇W‖ g1 at layer 1, 1 at every later layer and the
    classifier (layer depth + 1); at step 20 all 1 (only the first step counts)."""
    return [
        {"step": s, "layer": k, "grad_norm": g1 if (k == 1 and s == 0) else 1.0}
        for s in (0, 20)
        for k in range(1, depth + 2)
    ]


def gradient_runs(deep_bn: float, deep_plain: float = 0.6) -> list[Rec]:
    ratios = {(4, "none"): 0.6, (4, "batch"): 1.6, (16, "none"): deep_plain, (16, "batch"): deep_bn}
    return [
        with_rows(rec([0.1, 0.8], hidden=(64,) * d, norm=n), params=grad_rows(g, d))
        for (d, n), g in ratios.items()
    ]


def test_bn_gradients() -> None:
    ok, _ = check_cases("bn_gradients", gradient_runs(18.0), gradient_runs(3.0))
    assert "18× the classifier's in the 16-layer BN net (1.6× with 4 layers)" in ok.summary
    assert ("16 layers, norm=batch: layer 1 / classifier", "18") in ok.figures
    # control arm: the deep BN net swapped for its plain twin (Kaiming init, level gradients)
    assert checks.bn_gradients(gradient_runs(0.6)).passed is False
    # a plain net whose gradients grow as much is no contrast
    assert checks.bn_gradients(gradient_runs(18.0, deep_plain=9.0)).passed is False
    no_params = [
        rec([0.1, 0.8], hidden=(64,) * d, norm=n) for d in (4, 16) for n in ("none", "batch")
    ]
    assert checks.bn_gradients(no_params).passed is None


def affine_rows(moved: float) -> list[dict]:
    """Param rows of 3 BN layers (+ the classifier) at steps 0 and 450: γ within 0.002 of 1
    and β of 0 at step 0; at 450 the last layer's γ spans 1 ± `moved`."""

    def summary(mean: float, half: float) -> dict:
        return {"mean": mean, "std": half / 2, "min": mean - half, "max": mean + half}

    rows = []
    for step, spread in ((0, 0.002), (450, moved)):
        for layer in (1, 2, 3):
            s = spread if layer == 3 or step == 0 else 0.01
            norm = {"weight": summary(1.0, s), "bias": summary(0.0, s / 2)}
            rows.append({"step": step, "layer": layer, "grad_norm": 1.0, "norm": norm})
        rows.append({"step": step, "layer": 4, "grad_norm": 1.0, "classifier": True})
    return rows


def test_gamma_beta_init() -> None:
    def runs(moved: float) -> list[Rec]:
        return [
            with_rows(rec([0.1, 0.97], activation=a), params=affine_rows(moved))
            for a in ("relu", "sigmoid")
        ]

    ok, _ = check_cases("gamma_beta_init", runs(0.2), runs(0.02))
    assert "relu: largest |γ − 1| 0.002 after the first step, 0.200 at the end" in ok.summary
    assert ("sigmoid: mean γ of layer 3 at the end", "1.000") in ok.figures
    # control arm: γ and β frozen (train_only=classifier) stay at 1 and 0
    assert checks.gamma_beta_init(runs(0.0)).passed is False
    assert checks.gamma_beta_init([rec([0.1, 0.9], norm="none")]).passed is None


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
def test_lesson_holds_over_its_seeds(name: str, lesson_records: Any) -> None:
    """The real engine, at the lesson's own seeds (one group): the claim holds by RULE."""
    records = lesson_records(name)
    assert all(r.status in ("finished", "diverged") for r in records), [r.message for r in records]
    result = LESSONS[name].check(records)
    assert result.passed is True, (result.summary, result.figures)
    n = len(LESSONS[name].seeds)
    assert f"Held in {n} of {n} seeds" in result.summary and f"over {n} seeds" in result.summary
    assert [s for s, _ in result.seeds] == list(LESSONS[name].seeds)


# --- every check fails on its control arm ------------------------------------------------------


def relabel(records: list[Any], effect: dict, control: dict) -> list[Any]:
    """The records with each run matching `effect` (config fields) replaced by the run of its
    seed that matches `control` (with the effect run's other fields), under the effect run's
    config: the effect's arm swapped for its control, as a skeptic would test the check."""
    out = []
    for r in records:
        if all(getattr(r.config, k) == v for k, v in effect.items()):
            twin = r.config.replace(**control)
            (src,) = [x for x in records if x.config == twin]
            r = src.replace(config=r.config)
        out.append(r)
    assert out != records
    return out


def planted(r: Any, points: float) -> Any:
    """A copy of a run whose test accuracy is `points` lower at every record."""
    history = [row | {"test_acc": row["test_acc"] - points / 100} for row in r.history]
    return r.replace(rows={**r.rows, "history": history})


# lesson → (the effect's arm, its control): config fields that select them
CONTROLS: dict[str, list[tuple[dict, dict]]] = {
    "faster": [({"norm": "batch"}, {"norm": "none"})],
    "ioffe_fig1": [({"norm": "batch"}, {"norm": "none"})],
    "saturation": [({"norm": "batch"}, {"norm": "none"})],
    "lr_ladder": [({"norm": "batch"}, {"norm": "none"})],
    "init_scale": [({"norm": "batch"}, {"norm": "none"})],
    "batch_size": [({"norm": "batch"}, {"norm": "layer"})],  # a norm that ignores the batch
    "feature_scaling": [({"norm": "batch"}, {"norm": "none"})],
    "noisy_bn": [({"norm": "noisy_batch"}, {"norm": "noise_only"})],
    "regularization": [({"norm": "batch"}, {"norm": "none"})],
    "ics": [
        ({"norm": "batch", "input_norm": "none"}, {"norm": "none"}),
        ({"norm": "batch", "input_norm": "standardize"}, {"norm": "none"}),
    ],
    "landscape": [
        ({"norm": "batch", "input_norm": "none"}, {"norm": "none"}),
        ({"norm": "batch", "input_norm": "standardize"}, {"norm": "none"}),
    ],
    "gamma_beta_only": [({"train_only": "norm"}, {"train_only": "classifier"})],
    "no_norm": [({"norm": "none", "init": "kaiming", "agc": 0.01}, {"agc": 0.0})],
    # a claim of no difference: the "after" arm is the "before" run (identical runs)
    "placement": [({"placement": "after"}, {"placement": "before"})],
    "sigmoid_plateau": [({"norm": "batch"}, {"norm": "none"})],
    "bn_gradients": [({"norm": "batch"}, {"norm": "none"})],
}
# Lessons whose control is not an arm of their group but the same runs trained otherwise:
# lesson → the fields that, set on every run, remove the effect (γ and β frozen: only the
# classifier trains, so they cannot move).
TRAINED_CONTROLS: dict[str, dict] = {"gamma_beta_init": {"train_only": "classifier"}}


def test_every_lesson_has_a_control() -> None:
    assert set(CONTROLS) | set(TRAINED_CONTROLS) == set(LESSON_PRESETS)
    assert not set(CONTROLS) & set(TRAINED_CONTROLS)


@pytest.mark.parametrize("name", LESSON_PRESETS)
def test_check_fails_on_its_control_arm(name: str, preset_records: Any) -> None:
    """The effect's arm swapped for its control (BN → its no-BN twin, noisy BN → the same noise
    without BN, γ/β only → the last layer only, AGC → no AGC, …): the check fails, at one
    seed and over the seeds."""
    records = preset_records(name)
    assert CHECKS[name](records).passed is True
    if name in TRAINED_CONTROLS:
        from bnviz import train

        configs = [r.config.replace(**TRAINED_CONTROLS[name]) for r in records]
        control_runs = train.train_group(configs, device="cpu")
        assert CHECKS[name](control_runs).passed is False
        assert checks.over_seeds(CHECKS[name], control_runs).passed is False
    for effect, control in CONTROLS.get(name, []):
        swapped = relabel(records, effect, control)
        result = CHECKS[name](swapped)
        assert result.passed is False, (effect, result.summary)
        assert checks.over_seeds(CHECKS[name], swapped).passed is False


def test_sigmoid_plateau_fails_when_the_plain_net_trains_as_briefly_as_ioffe_fig1(
    preset_records: Any,
) -> None:
    """The "train longer" claim needs the long run: the plain net's records from `ioffe_fig1`
    (a few hundred steps, still on its plateau) in place of the long one fail it."""
    long = {r.config.norm: r for r in preset_records("sigmoid_plateau")}
    short = {r.config.norm: r for r in preset_records("ioffe_fig1")}
    swapped = [short["none"].replace(config=long["none"].config), long["batch"]]
    assert checks.sigmoid_plateau(swapped).passed is False


@pytest.mark.parametrize(
    ("name", "arm"), [("placement", {}), ("regularization", {"norm": "batch", "dropout": 0.0})]
)
def test_no_difference_claim_fails_on_a_planted_difference(
    name: str, arm: dict, preset_records: Any
) -> None:
    """A claim of no difference (placement, BN's slight regularization) fails once one arm is
    10 points lower than it trained (the bound is 3 points)."""
    records = preset_records(name)
    target = {"placement": "after", "activation": "sigmoid"} if name == "placement" else arm
    out = [
        planted(r, 10.0) if all(getattr(r.config, k) == v for k, v in target.items()) else r
        for r in records
    ]
    assert CHECKS[name](out).passed is False


# --- the verdict over seeds --------------------------------------------------------------------


def seeded(records: list[Rec], seed: int) -> list[Rec]:
    for r in records:
        r.config = r.config.replace(seed=seed, data_seed=seed)
    return records


def fig1(plain: float, bn: float, seed: int) -> list[Rec]:
    return seeded([rec([0.1, plain], norm="none"), rec([0.1, bn], norm="batch")], seed)


def test_over_seeds_counts_the_seeds_and_gives_the_effect_with_its_spread() -> None:
    records = fig1(0.1, 0.96, 0) + fig1(0.08, 0.97, 1) + fig1(0.12, 0.95, 2)
    result = assert_any_order(lambda r: checks.over_seeds(checks.ioffe_fig1, r), records)
    assert result.passed is True
    assert "Held in 3 of 3 seeds (0, 1, 2)" in result.summary
    # BN − plain: 86, 89, 83 points → mean 86, sample std 3
    assert "BN − plain, final test accuracy = +86.0 ± 3.0 points over 3 seeds" in result.summary
    assert ("final test acc: norm=batch", "96.0 % · 97.0 % · 95.0 %") in result.figures
    assert [s for s, _ in result.seeds] == [0, 1, 2]
    assert all(c.passed for _, c in result.seeds)


def test_over_seeds_fails_when_one_seed_fails() -> None:
    records = fig1(0.1, 0.96, 0) + fig1(0.3, 0.97, 5)
    result = checks.over_seeds(checks.ioffe_fig1, records)
    assert result.passed is False and "Held in 1 of 2 seeds (0, 5)" in result.summary
    assert ("held in", "1 of 2 seeds (0 ✓, 5 ✗)") in result.figures


def test_over_seeds_fails_when_the_effect_is_within_its_spread() -> None:
    """Every seed passes its own check, but the effect swings: not larger than its spread."""
    effects = [0.5, 20.0, 0.5]

    def check(records: list[Rec]) -> Check:
        e = effects[records[0].config.seed]
        return Check(True, "ok.", (("x", "1"),), checks.Effect("gain", e))

    records = [seeded([rec([0.1, 0.5])], s)[0] for s in range(3)]
    result = checks.over_seeds(check, records)
    assert result.passed is False and "not larger than its spread" in result.summary
    effects[1] = 1.0
    assert checks.over_seeds(check, records).passed is True


def test_over_seeds_waits_for_every_seed() -> None:
    records = [*fig1(0.1, 0.96, 0), seeded([Rec(RunConfig(norm="none"), "running")], 1)[0]]
    records.append(seeded([rec([0.1, 0.96], norm="batch")], 1)[0])
    result = checks.over_seeds(checks.ioffe_fig1, records)
    assert result.passed is None and result.summary.startswith("Seed 1: ")
    assert checks.over_seeds(checks.ioffe_fig1, []).passed is None
