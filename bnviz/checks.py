"""One check per lesson: does a group's records show the lesson's claim, and with what figures.

A lesson trains its runs at several seeds (seed = data_seed); `over_seeds` splits a group's
records by seed, applies the lesson's check to each seed's runs and judges the claim over the
seeds by one rule (`RULE`): it must hold in every seed, and a claimed difference (the check's
`Effect`) must exceed its spread over the seeds. Each per-seed check states its thresholds,
calibrated on seeds of their own (docs/lessons.md), never tuned to pass a seed.

A check takes run records (anything with `.config`, `.status`, `.history`, `.layers` and
`.diverged_step`: the engine's RunRecord, the server's RunState) and returns a `Check`. Runs
are found by their config fields, never by position, so any record order works. A run that is
missing or has not ended (queued, running, cancelled, failed) makes the result `passed=None`.
A diverged run counts with its last finite test accuracy and is marked as diverged.
Accuracies in the records are fractions; figures and summaries speak in percent and points.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

ENDED = ("finished", "diverged")
SATURATING = ("sigmoid", "tanh")


@dataclass(frozen=True)
class Effect:
    """The size of a lesson's effect in one seed, as one signed number.

    `direction` +1: the claim is that it is positive (BN − plain accuracy, a gap removed, …);
    −1: negative; 0: the claim is that there is no difference (|value| within the check's
    bound), so no spread rule applies. `null`: the value that means "no effect" (0 for
    differences, 1 for ratios)."""

    name: str  # e.g. "BN − plain, final test accuracy"
    value: float
    unit: str = "points"
    direction: int = 1
    null: float = 0.0

    def _number(self, v: float, signed: bool) -> str:
        digits = {"×": 2, "steps": 0, "": 3}.get(self.unit, 1)
        sign = "+" if signed and self.null == 0 and v > 0 else ""
        return f"{sign}{v:.{digits}f}".replace("-", "−")

    def _unit(self) -> str:
        return self.unit if self.unit in ("×", "") else f" {self.unit}"

    def text(self, value: float | None = None) -> str:
        """e.g. "+41.2 points", "12.50×"."""
        return self._number(self.value if value is None else value, True) + self._unit()

    def with_spread(self, mean: float, sd: float) -> str:
        """e.g. "+41.2 ± 3.1 points"."""
        return f"{self._number(mean, True)} ± {self._number(sd, False)}{self._unit()}"


@dataclass(frozen=True)
class Check:
    """passed: True/False, or None when the records cannot tell yet; summary: one sentence
    saying what the records show; figures: (label, value text) rows for a table; effect: the
    effect's size in these records; seeds: for a verdict over seeds, each seed's own check."""

    passed: bool | None
    summary: str
    figures: tuple[tuple[str, str], ...] = ()
    effect: Effect | None = None
    seeds: tuple[tuple[int, Check], ...] = ()


NOT_YET = "not enough records yet"


def _pending(why: str = NOT_YET) -> Check:
    return Check(None, why[:1].upper() + why[1:] + ".")


# --- over seeds -------------------------------------------------------------------------------

RULE = (
    "The claim holds when it holds in every seed (each seed changes the initial weights, the "
    "data order and the train/test split) and, where it claims a difference, the mean effect "
    "over the seeds is larger than its spread (their standard deviation)."
)


def seed_of(config: Any) -> int:
    """A run's seed for grouping: lessons vary seed and data_seed together."""
    return int(config.seed)


def by_seed(records: Sequence[Any]) -> dict[int, list[Any]]:
    """The records split by seed, in increasing seed order."""
    out: dict[int, list[Any]] = {}
    for r in sorted(records, key=lambda r: seed_of(r.config)):
        out.setdefault(seed_of(r.config), []).append(r)
    return out


def spread(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample standard deviation; 0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def over_seeds(check: Callable[[Sequence[Any]], Check], records: Sequence[Any]) -> Check:
    """The lesson's verdict over its seeds (`RULE`): each seed's runs checked on their own; the
    summary says in how many seeds the claim held and gives the effect as mean ± spread."""
    groups = by_seed(records)
    if not groups:
        return _pending()
    results = tuple((s, check(runs)) for s, runs in groups.items())
    for s, r in results:
        if r.passed is None:
            return Check(None, r.summary if len(results) == 1 else f"Seed {s}: {r.summary}")
    n = len(results)
    held = [s for s, r in results if r.passed]
    effects = [r.effect for _, r in results if r.effect is not None]
    seeds_text = ", ".join(str(s) for s, _ in results)
    summary = f"Held in {len(held)} of {n} seed{'s' * (n != 1)} ({seeds_text})"
    passed = len(held) == n
    figures: list[tuple[str, str]] = [
        (
            "held in",
            f"{len(held)} of {n} seeds ("
            + ", ".join(f"{s} {'✓' if r.passed else '✗'}" for s, r in results)
            + ")",
        ),
    ]
    if len(effects) == n:
        e = effects[0]
        mean, sd = spread([x.value for x in effects])
        size = e.with_spread(mean, sd)
        summary += f": {e.name} = {size} over {n} seed{'s' * (n != 1)}"
        figures.append((f"effect: {e.name}", f"{size} (mean ± spread)"))
        if e.direction and not e.direction * (mean - e.null) > sd:
            passed = False
            summary += " — the mean effect is not larger than its spread"
    summary += "."
    # Each figure once, its value in every seed (· between seeds, in seed order).
    labels: dict[str, list[str]] = {}
    for _, r in results:
        for label, _ in r.figures:
            labels.setdefault(label, [])
    for label, values in labels.items():
        for _, r in results:
            values.append(dict(r.figures).get(label, "–"))
    figures += [(label, " · ".join(values)) for label, values in labels.items()]
    return Check(passed, summary, tuple(figures), seeds=results)


# --- reading records --------------------------------------------------------------------------


def _find(records: Sequence[Any], **fields: Any) -> Any | None:
    """The first record whose config has all these field values (None if there is none)."""
    for r in records:
        if all(getattr(r.config, k) == v for k, v in fields.items()):
            return r
    return None


def _unready(runs: Sequence[Any | None]) -> Check | None:
    """A pending Check if any run is missing or has not ended, else None."""
    if any(r is None for r in runs):
        return _pending()
    for r in runs:
        if r.status not in ENDED:
            if r.status in ("cancelled", "failed"):
                return _pending(f"a run ({r.config.label()}) was {r.status}: run the group again")
            return _pending()
    if any(_final(r) is None for r in runs):
        return _pending()
    return None


def _ok(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _final(r: Any) -> float | None:
    """The last finite test accuracy (a fraction), None if there is none."""
    for row in reversed(r.history):
        if _ok(row.get("test_acc")):
            return float(row["test_acc"])
    return None


CHANCE = 0.10  # ten classes (digits, MNIST, CIFAR-10)


def _end(r: Any) -> float:
    """The accuracy a run ends with for an effect's size: a diverged run's weights are not
    finite and its predictions are no better than chance, whatever it reached before."""
    return CHANCE if r.status == "diverged" else float(_final(r))


def _points(a: float, b: float) -> float:
    """a − b in percentage points (accuracies as fractions)."""
    return 100 * (a - b)


def _final_train(r: Any) -> float | None:
    for row in reversed(r.history):
        if _ok(row.get("train_acc")):
            return float(row["train_acc"])
    return None


def _steps_to(r: Any, level: float) -> int | None:
    """The first recorded step at which test accuracy reached `level` (None: never)."""
    for row in r.history:
        if _ok(row.get("test_acc")) and row["test_acc"] >= level:
            return int(row["step"])
    return None


def _saturated(r: Any) -> float | None:
    """Saturated share of the last hidden layer's activation output at its last probe."""
    rows = [x for x in r.layers if x.get("point") == "act_out" and _ok(x.get("saturated"))]
    if not rows:
        return None
    last = max(rows, key=lambda x: (x["layer"], x["step"]))  # deepest layer, latest step
    return float(last["saturated"])


def _pct(acc: float | None) -> str:
    return "–" if acc is None else f"{100 * acc:.1f} %"


def _acc_text(r: Any) -> str:
    """Final test accuracy, marked when the run diverged."""
    text = _pct(_final(r))
    if r.status == "diverged":
        step = f" at step {r.diverged_step}" if r.diverged_step is not None else ""
        text += f" (diverged{step})"
    return text


def _num(v: float) -> str:
    return f"{v:g}"


def _values(records: Sequence[Any], name: str) -> list[Any]:
    return sorted({getattr(r.config, name) for r in records})


# --- one check per lesson ---------------------------------------------------------------------


def faster(records: Sequence[Any]) -> Check:
    """BN reaches 90 % and 95 % test accuracy in fewer steps and ends within 2 points."""
    plain, bn = _find(records, norm="none"), _find(records, norm="batch")
    if wait := _unready([plain, bn]):
        return wait
    figures, faster_both = [], True
    for level in (0.90, 0.95):
        s_plain, s_bn = _steps_to(plain, level), _steps_to(bn, level)
        for name, s in (("none", s_plain), ("batch", s_bn)):
            figures.append(
                (f"steps to {100 * level:.0f} %: norm={name}", "never" if s is None else str(s))
            )
        faster_both &= s_bn is not None and (s_plain is None or s_bn < s_plain)
    a_plain, a_bn = _final(plain), _final(bn)
    figures += [("final test acc: norm=none", _acc_text(plain))]
    figures += [("final test acc: norm=batch", _acc_text(bn))]
    gap = 100 * abs(a_bn - a_plain)
    s95 = [_steps_to(r, 0.95) for r in (bn, plain)]
    reach = [f"in {s} steps" if s is not None else "never" for s in s95]
    summary = (
        f"BN reached 95 % test accuracy {reach[0]}, the plain net {reach[1]}; they ended "
        f"{gap:.1f} points apart ({_pct(a_bn)} with BN, {_pct(a_plain)} without)."
    )
    last = int(plain.history[-1]["step"])  # "never" counts as the run's last step: a bound
    saved = (s95[1] if s95[1] is not None else last) - (s95[0] if s95[0] is not None else last)
    effect = Effect("steps to 95 %, plain − BN (never = the last step)", saved, "steps")
    return Check(faster_both and gap <= 2.0, summary, tuple(figures), effect)


def ioffe_fig1(records: Sequence[Any]) -> Check:
    """The plain sigmoid net stays below 20 % test accuracy; with BN it reaches 90 % (9× chance;
    95 % was too thin a bar: 94.2 % at seed 104 of the calibration, docs/lessons.md)."""
    plain, bn = _find(records, norm="none"), _find(records, norm="batch")
    if wait := _unready([plain, bn]):
        return wait
    a_plain, a_bn = _final(plain), _final(bn)
    figures = (
        ("final test acc: norm=none", _acc_text(plain)),
        ("final test acc: norm=batch", _acc_text(bn)),
    )
    steps = max(int(row["step"]) for row in plain.history)
    summary = (
        f"After {steps} steps the net without BN was at {_pct(a_plain)} test accuracy (chance "
        f"is 10 %), with BN at {_pct(a_bn)}."
    )
    if _steps_to(plain, 0.50) is None:  # never left chance by much: say what that means
        summary += " The plain net has not left its plateau yet; the next lesson trains longer."
    effect = Effect("BN − plain, final test accuracy", _points(a_bn, a_plain))
    return Check(a_plain < 0.20 and a_bn >= 0.90, summary, figures, effect)


def saturation(records: Sequence[Any]) -> Check:
    """For each sigmoid/tanh pair: the plain net's last hidden layer is ≥ 3× as saturated as
    BN's (and saturated at all), and BN reaches 80 % test accuracy."""
    acts = [a for a in _values(records, "activation") if a in SATURATING]
    if not acts:
        return _pending("no sigmoid or tanh runs in this group")
    figures, passed, parts, gains = [], True, [], []
    for act in acts:
        plain = _find(records, activation=act, norm="none")
        bn = _find(records, activation=act, norm="batch")
        if wait := _unready([plain, bn]):
            return wait
        s_plain, s_bn = _saturated(plain), _saturated(bn)
        if s_plain is None or s_bn is None:
            return _pending()
        figures += [
            (f"saturated share: {act}, norm=none", _pct(s_plain)),
            (f"saturated share: {act}, norm=batch", _pct(s_bn)),
            (f"final test acc: {act}, norm=none", _acc_text(plain)),
            (f"final test acc: {act}, norm=batch", _acc_text(bn)),
        ]
        passed &= s_plain > 0 and s_plain >= 3 * s_bn and _final(bn) >= 0.80
        gains.append(_points(s_plain, s_bn))
        parts.append(f"{act} {_pct(s_plain)} without BN vs {_pct(s_bn)} with it")
    summary = (
        "Share of saturated units in the last hidden layer at the end: " + "; ".join(parts) + "."
    )
    effect = Effect("saturated share, plain − BN (the smaller over the activations)", min(gains))
    return Check(passed, summary, tuple(figures), effect)


def lr_ladder(records: Sequence[Any]) -> Check:
    """At the largest learning rate the plain net diverges or stays below 50 %, BN reaches 90 %."""
    lrs = _values(records, "lr")
    pairs = {
        lr: (_find(records, lr=lr, norm="none"), _find(records, lr=lr, norm="batch")) for lr in lrs
    }
    if wait := _unready([r for pair in pairs.values() for r in pair]):
        return wait
    figures = []
    for lr, (plain, bn) in pairs.items():
        figures += [(f"lr={_num(lr)}: norm=none", _acc_text(plain))]
        figures += [(f"lr={_num(lr)}: norm=batch", _acc_text(bn))]
    top = lrs[-1]
    plain, bn = pairs[top]
    broke = plain.status == "diverged" or _final(plain) < 0.50
    what = "diverged" if plain.status == "diverged" else f"ended at {_pct(_final(plain))}"

    def best_lr(i: int) -> str:
        ok = [lr for lr, pair in pairs.items() if _final(pair[i]) >= 0.90]
        return _num(max(ok)) if ok else "none"

    summary = (
        f"At the largest learning rate, {_num(top)}, the plain net {what} and BN reached "
        f"{_pct(_final(bn))}; the largest rate reaching 90 % was {best_lr(0)} without BN and "
        f"{best_lr(1)} with it."
    )
    effect = Effect(
        f"BN − plain at lr {_num(top)}, final test accuracy (diverged = chance)",
        _points(_end(bn), _end(plain)),
    )
    return Check(broke and _final(bn) >= 0.90, summary, tuple(figures), effect)


def init_scale(records: Sequence[Any]) -> Check:
    """BN's worst final test accuracy over the init scales beats the plain net's by 30 points."""
    scales = _values(records, "init_scale")
    runs = {(s, n): _find(records, init_scale=s, norm=n) for s in scales for n in ("none", "batch")}
    if wait := _unready(list(runs.values())):
        return wait
    figures = [(f"init_scale={_num(s)}: norm={n}", _acc_text(r)) for (s, n), r in runs.items()]
    worst = {
        n: min(((s, _final(r)) for (s, m), r in runs.items() if m == n), key=lambda x: x[1])
        for n in ("none", "batch")
    }
    (s_plain, a_plain), (s_bn, a_bn) = worst["none"], worst["batch"]
    margin = 100 * (a_bn - a_plain)
    summary = (
        f"Over init scales {_num(scales[0])}–{_num(scales[-1])}, BN's worst final test accuracy "
        f"was {_pct(a_bn)} (at {_num(s_bn)}), the plain net's {_pct(a_plain)} "
        f"(at {_num(s_plain)}): {margin:.0f} points apart."
    )
    figures += [("worst final: norm=none", _pct(a_plain)), ("worst final: norm=batch", _pct(a_bn))]
    effect = Effect("worst final test accuracy over the scales, BN − plain", margin)
    return Check(margin >= 30, summary, tuple(figures), effect)


def batch_size(records: Sequence[Any]) -> Check:
    """At the smallest batch BN ends ≥ 30 points below LayerNorm and GroupNorm; at every batch
    size ≥ 32 it is within 3 points of the best of the three."""
    sizes, norms = _values(records, "batch_size"), ("batch", "layer", "group")
    runs = {(b, n): _find(records, batch_size=b, norm=n) for b in sizes for n in norms}
    if wait := _unready(list(runs.values())):
        return wait
    acc = {k: _final(r) for k, r in runs.items()}
    figures = [(f"batch_size={b}: norm={n}", _acc_text(r)) for (b, n), r in runs.items()]
    small = sizes[0]
    below = 100 * (min(acc[small, "layer"], acc[small, "group"]) - acc[small, "batch"])
    large = [b for b in sizes if b >= 32]
    behind = {b: 100 * (max(acc[b, n] for n in norms) - acc[b, "batch"]) for b in large}
    summary = (
        f"At batch size {small} BN ended at {_pct(acc[small, 'batch'])}, LayerNorm at "
        f"{_pct(acc[small, 'layer'])} and GroupNorm at {_pct(acc[small, 'group'])}"
    )
    if large:
        worst = max(behind.values())
        summary += (
            f"; at batch sizes ≥ 32 BN was at most {worst:.1f} points behind the best"
            if worst > 0
            else "; at batch sizes ≥ 32 BN was the best of the three"
        )
    passed = below >= 30 and all(v <= 3 for v in behind.values())
    effect = Effect(f"at batch {small}: the lower of LN, GN − BN", below)
    return Check(passed, summary + ".", tuple(figures), effect)


def _norm_site(r: Any) -> str:
    """Where the records put a run's norm: "after" the activation (its output is probed as
    norm_out), "before" it (the activation's input differs from the layer's linear output),
    or "none" — read from the layer probes, whatever the run's config says."""
    if any(x.get("point") == "norm_out" for x in r.layers):
        return "after"
    linear = {(x["step"], x["layer"]): x.get("std") for x in r.layers if x["point"] == "linear"}
    for x in r.layers:
        lin = linear.get((x["step"], x["layer"]))
        if x["point"] != "act_in" or not (_ok(x.get("std")) and _ok(lin)):
            continue
        if abs(x["std"] - lin) > 1e-6 * (1 + abs(x["std"])):
            return "before"
    return "none"


def placement(records: Sequence[Any]) -> Check:
    """For each activation, BN before and after it end within 3 points of each other — and the
    two runs really differ where the claim says: the layer probes show the norm before the
    activation in the one and after it in the other (identical runs do not pass)."""
    normed = [r for r in records if r.config.norm != "none"]
    acts = _values(normed, "activation") if normed else []
    if not acts:
        return _pending()
    figures, parts, passed, diffs, misplaced = [], [], True, [], []
    for act in acts:
        before = _find(normed, activation=act, placement="before")
        after = _find(normed, activation=act, placement="after")
        if wait := _unready([before, after]):
            return wait
        figures += [(f"{act}: before", _acc_text(before)), (f"{act}: after", _acc_text(after))]
        for r, where in ((before, "before"), (after, "after")):
            site = _norm_site(r)
            figures.append((f"{act}, {where}: the probes show the norm", site))
            if site != where:
                misplaced.append(f"the {act} run labelled '{where}' has its norm {site}")
        diff = _points(_final(after), _final(before))
        diffs.append(diff)
        passed &= abs(diff) <= 3
        parts.append(f"{act} {_pct(_final(before))} before vs {_pct(_final(after))} after")
    summary = "Final test accuracy with BN " + "; ".join(parts)
    if misplaced:
        passed = False
        summary += " — but " + "; ".join(misplaced) + ", so nothing was compared"
    effect = Effect("largest |after − before|, final test accuracy", max(map(abs, diffs)))
    return Check(passed, summary + ".", tuple(figures), replace(effect, direction=0))


def _has_norm(r: Any) -> bool:
    """Whether a run's parameter records hold a norm layer's γ/β (whatever its config says)."""
    return any(x.get("norm") for x in r.params)


def regularization(records: Sequence[Any]) -> Check:
    """BN's regularization is slight: in every seed BN's final test accuracy is within 3 points
    of the plain net's (both without dropout). Measured over seeds 100–104 it was +0.6 ± 2.1
    points (docs/lessons.md): no larger than the seed-to-seed spread. Dropout's runs, with and
    without BN, are shown next to them with every run's train–test gap. The BN run's records
    must hold a norm layer (a plain run relabelled BN does not pass)."""
    named = {
        "plain": _find(records, norm="none", dropout=0.0),
        "BN": _find(records, norm="batch", dropout=0.0),
    }
    for r in sorted(records, key=lambda r: (r.config.norm != "none", r.config.dropout)):
        if r.config.dropout > 0 and r.config.norm in ("none", "batch"):
            key = f"dropout {_num(r.config.dropout)}"
            named.setdefault(key if r.config.norm == "none" else f"BN + {key}", r)
    # the lesson shows BN next to dropout: it needs a dropout run with BN and one without
    if not (any(k.startswith("dropout") for k in named) and any("+" in k for k in named)):
        return _pending()
    if wait := _unready(list(named.values())):
        return wait
    gaps = {k: _points(_final_train(r), _final(r)) for k, r in named.items()}
    figures = []
    for k, r in named.items():
        figures += [
            (f"train acc: {k}", _pct(_final_train(r))),
            (f"test acc: {k}", _acc_text(r)),
            (f"train–test gap: {k}", f"{gaps[k]:.1f} points".replace("-", "−")),
        ]
    listed = "; ".join(f"{k}: {v:.1f}".replace("-", "−") for k, v in gaps.items())
    diff = _points(_final(named["BN"]), _final(named["plain"]))
    summary = (
        f"Test accuracy {_pct(_final(named['BN']))} with BN, {_pct(_final(named['plain']))} "
        f"without ({diff:+.1f} points); train–test gap in points — {listed} (train accuracy is "
        f"measured while training, with dropout on and batch statistics, so a gap can be "
        f"negative)"
    ).replace("-", "−")
    passed = abs(diff) <= 3
    if not _has_norm(named["BN"]):
        passed = False
        summary += " — but the BN run's records hold no norm layer"
    effect = Effect("BN − plain, final test accuracy", diff, direction=0)
    return Check(passed, summary + ".", tuple(figures), effect)


def feature_scaling(records: Sequence[Any]) -> Check:
    """Inputs on two scales: at the preset's lr the plain net diverges or stays below 50 % while
    it trains (≥ 70 %) on standardized inputs; BN trains (≥ 80 %) on the stretched inputs."""
    scales = _values(records, "input_scale")
    if len(scales) < 2:
        return _pending("no runs with two input scales in this group")
    lo, hi = scales[0], scales[-1]
    runs = {
        (s, n): _find(records, input_scale=s, norm=n) for s in (lo, hi) for n in ("none", "batch")
    }
    if wait := _unready(list(runs.values())):
        return wait
    figures = [(f"input_scale={_num(s)}: norm={n}", _acc_text(r)) for (s, n), r in runs.items()]
    plain = runs[hi, "none"]
    broke = plain.status == "diverged" or _final(plain) < 0.50
    what = "diverged" if plain.status == "diverged" else f"ended at {_pct(_final(plain))}"
    if plain.status == "diverged" and plain.diverged_step is not None:
        what += f" at step {plain.diverged_step}"
    bn_hi, bn_lo = _final(runs[hi, "batch"]), _final(runs[lo, "batch"])
    summary = (
        f"With every other feature ×{_num(hi)} the plain net {what} "
        f"({_pct(_final(runs[lo, 'none']))} at ×{_num(lo)}); with BN it reached {_pct(bn_hi)} "
        f"({_pct(bn_lo)} at ×{_num(lo)})."
    )
    passed = broke and _final(runs[lo, "none"]) >= 0.70 and bn_hi >= 0.80
    effect = Effect(
        f"at ×{_num(hi)}: BN − plain, final test accuracy (diverged = chance)",
        _points(_end(runs[hi, "batch"]), _end(plain)),
    )
    return Check(passed, summary, tuple(figures), effect)


# --- why does BN work? (the measures of config.measures) -----------------------------------------


def _rows(r: Any, kind: str) -> list[dict]:
    """A run's rows of one measure kind (records without the attribute have none)."""
    return list(getattr(r, kind, None) or [])


def _median(values: Sequence[float]) -> float | None:
    v = sorted(x for x in values if _ok(x))
    if not v:
        return None
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


def _unit_shift(r: Any) -> float | None:
    """How far a unit's distribution moves between consecutive probes: |μ_{t+1} − μ_t| / σ_t of
    each recorded unit (records "units"), averaged over units and probe pairs; None: no rows."""
    by_unit: dict[tuple[int, int], list[dict]] = {}
    for u in _rows(r, "units"):
        by_unit.setdefault((u["layer"], u["unit"]), []).append(u)
    moves = []
    for rows in by_unit.values():
        rows.sort(key=lambda u: u["step"])
        for a, b in pairwise(rows):
            if _ok(a.get("mean")) and _ok(b.get("mean")) and _ok(a.get("std")) and a["std"] > 0:
                moves.append(abs(b["mean"] - a["mean"]) / a["std"])
    return sum(moves) / len(moves) if moves else None


def noisy_bn(records: Sequence[Any]) -> Check:
    """Noisy BN's units move ≥ 10× as far between probes as plain BN's and further than the
    plain net's, and it still trains like BN: its final test accuracy is closer to BN's than
    to the plain net's (Santurkar et al.: "similar to standard BN"). A fixed 3-point bar was
    too thin: noisy BN ended 3.4 points below BN at seed 2 (docs/lessons.md)."""
    names = {"plain": "none", "BN": "batch", "noisy BN": "noisy_batch", "noise only": "noise_only"}
    runs = {k: _find(records, norm=n) for k, n in names.items()}
    if wait := _unready(list(runs.values())):
        return wait
    shift = {k: _unit_shift(r) for k, r in runs.items()}
    if any(v is None for v in shift.values()):
        return _pending("no per-unit records (measures=units) in this group")
    acc = {k: _final(r) for k, r in runs.items()}
    figures = [(f"final test acc: {k}", _acc_text(r)) for k, r in runs.items()]
    figures += [(f"unit shift per probe (in σ): {k}", f"{v:.3f}") for k, v in shift.items()]
    summary = (
        f"Between probes a unit's mean moved {shift['noisy BN']:.2f} σ on average with noisy BN, "
        f"{shift['BN']:.3f} σ with BN and {shift['plain']:.2f} σ without a norm; noisy BN ended "
        f"at {_pct(acc['noisy BN'])} test accuracy (BN {_pct(acc['BN'])}, no norm "
        f"{_pct(acc['plain'])}, the same noise without BN {_pct(acc['noise only'])})."
    )
    passed = (
        shift["noisy BN"] >= 10 * shift["BN"]
        and shift["noisy BN"] > shift["plain"]
        and acc["BN"] - acc["noisy BN"] < acc["noisy BN"] - acc["plain"]
    )
    effect = Effect(
        "noisy BN − the same noise without BN, final test accuracy",
        _points(acc["noisy BN"], acc["noise only"]),
    )
    return Check(passed, summary, tuple(figures), effect)


def _bn_pair(records: Sequence[Any], kind: str, **fields: Any) -> tuple[Any, Any, Check | None]:
    """The plain and the BN run (with these other fields), or a pending Check (not ended, or
    no `kind` records)."""
    plain, bn = _find(records, norm="none", **fields), _find(records, norm="batch", **fields)
    if wait := _unready([plain, bn]):
        return plain, bn, wait
    if not (_rows(plain, kind) and _rows(bn, kind)):
        return plain, bn, _pending(f"no {kind} records (measures={kind}) in this group")
    return plain, bn, None


def _relative_ics(rows: list[dict], layer: int) -> float | None:
    return _median(
        [x["l2"] / x["grad_norm"] for x in rows if x["layer"] == layer and x.get("grad_norm")]
    )


SETTINGS = {"none": "raw inputs (0–16)", "standardize": "standardized inputs"}


def _settings(records: Sequence[Any]) -> list[str] | Check:
    """The lesson's two input settings, raw first, or a pending Check."""
    have = _values(records, "input_norm")
    if set(have) != set(SETTINGS):
        return _pending("no runs on both raw and standardized inputs in this group")
    return list(SETTINGS)


def ics(records: Sequence[Any]) -> Check:
    """Whether BN reduces internal covariate shift depends on the inputs. Relative ICS
    ‖G − G′‖/‖G‖ per layer (median over the measure steps), averaged over the layers: on raw
    inputs the plain net's is larger than BN's (BN reduces it); on standardized inputs BN's is
    larger (Santurkar et al.'s finding: BN does not reduce it). The effect is the weaker of
    the two ratios, each taken in its claimed direction."""
    settings = _settings(records)
    if isinstance(settings, Check):
        return settings
    figures, parts, ratios = [], [], {}
    for setting in settings:
        plain, bn, wait = _bn_pair(records, "ics", input_norm=setting)
        if wait:
            return wait
        layers = sorted(
            {x["layer"] for x in _rows(bn, "ics")} & {x["layer"] for x in _rows(plain, "ics")}
        )
        rel = {
            n: [_relative_ics(_rows(r, "ics"), layer) for layer in layers]
            for n, r in (("none", plain), ("batch", bn))
        }
        name = SETTINGS[setting]
        for i, layer in enumerate(layers):
            figures += [
                (f"{name}, layer {layer}: ‖G − G′‖/‖G‖, norm={n}", f"{rel[n][i]:.3g}")
                for n in ("none", "batch")
            ]
        mean = {n: sum(v) / len(v) for n, v in rel.items()}
        larger = sum(b > p for b, p in zip(rel["batch"], rel["none"]))
        ratios[setting] = mean["batch"] / mean["none"]
        figures += [
            (f"{name}: final test acc, norm={n}", _acc_text(r))
            for n, r in (("none", plain), ("batch", bn))
        ]
        parts.append(
            f"on {name} {mean['batch']:.2f} with BN vs {mean['none']:.2f} without "
            f"(larger with BN at {larger} of {len(layers)} layers)"
        )
    raw, std = ratios["none"], ratios["standardize"]
    summary = (
        f"Relative ICS averaged over the layers: {'; '.join(parts)} — BN "
        f"{'reduced' if raw < 1 else 'did not reduce'} it on raw inputs; on standardized ones "
        f"BN's was {'larger, as Santurkar et al. found' if std > 1 else 'not larger'}."
    )
    effect = Effect(
        "weaker ratio: plain ÷ BN on raw, BN ÷ plain on standardized",
        min(1 / raw, std),
        "×",
        null=1.0,
    )
    return Check(raw < 1 and std > 1, summary, tuple(figures), effect)


LANDSCAPE = {  # measure → the value of one landscape row
    "loss variation": lambda x: x["loss_max"] - x["loss_min"],
    "gradient predictiveness": lambda x: x["grad_diff_max"],
    "β-smoothness": lambda x: x["beta"],
}


def landscape(records: Sequence[Any]) -> Check:
    """Santurkar et al.'s Fig. 4 depends on the inputs. Each measure's median over the measure
    steps, BN against the plain net at the same lr: on raw inputs all three are smaller with
    BN (a smoother landscape, as in the paper); on standardized inputs BN's β-smoothness is
    larger (not smoother). The effect is the weakest of those four ratios, each taken in its
    claimed direction."""
    settings = _settings(records)
    if isinstance(settings, Check):
        return settings
    figures, parts, ratios = [], [], []
    for setting in settings:
        plain, bn, wait = _bn_pair(records, "landscape", input_norm=setting)
        if wait:
            return wait
        name, smaller = SETTINGS[setting], []
        for measure, value in LANDSCAPE.items():
            m = {
                n: _median([value(x) for x in _rows(r, "landscape")])
                for n, r in (("none", plain), ("batch", bn))
            }
            figures += [(f"{name}, {measure}: norm={n}", f"{m[n]:.3g}") for n in ("none", "batch")]
            if m["batch"] < m["none"]:
                smaller.append(measure)
            if setting == "none":
                ratios.append(m["none"] / m["batch"])  # claimed: smaller with BN
            elif measure == "β-smoothness":
                ratios.append(m["batch"] / m["none"])  # claimed: larger with BN
        for n, r in (("none", plain), ("batch", bn)):
            grid = _rows(r, "slice")
            if grid:
                top = max(v for row in grid[-1]["loss"] for v in row if _ok(v))
                figures.append((f"{name}, 2-D slice, highest loss: norm={n}", f"{top:.3g}"))
        parts.append(
            f"on {name} {len(smaller)} of 3 measures smaller with BN"
            + (f" ({', '.join(smaller)})" if 0 < len(smaller) < 3 else "")
        )
    summary = (
        f"BN against the plain net, median over the measure steps: {'; '.join(parts)} — "
        "Santurkar et al.'s smoother landscape shows on raw inputs"
        + ("" if all(x > 1 for x in ratios[:3]) else " only in part")
        + (
            ", and BN's β-smoothness is larger on standardized ones."
            if ratios[3] > 1
            else ", and on standardized ones too."
        )
    )
    effect = Effect("weakest ratio in the claimed direction", min(ratios), "×", null=1.0)
    return Check(all(x > 1 for x in ratios), summary, tuple(figures), effect)


def gamma_beta_only(records: Sequence[Any]) -> Check:
    """Frankle et al.: training only the norms' γ and β of a random deep net reaches ≥ 5×
    chance (50 %) and beats training only the last layer; full training ends higher."""
    names = {"all": "every parameter", "norm": "only γ and β", "classifier": "only the last layer"}
    runs = {k: _find(records, train_only=k) for k in names}
    if wait := _unready(list(runs.values())):
        return wait
    acc = {k: _final(r) for k, r in runs.items()}
    figures = [(f"final test acc: {names[k]}", _acc_text(r)) for k, r in runs.items()]
    cfg = runs["norm"].config
    n_affine = 2 * sum(w for i, w in enumerate(cfg.hidden, start=1) if cfg.norm_on(i))
    n_last = (cfg.hidden[-1] + 1) * 10
    summary = (
        f"Training only γ and β ({n_affine:,} numbers) reached {_pct(acc['norm'])} test accuracy "
        f"({acc['norm'] / CHANCE:.1f}× chance, which is 10 %); only the last layer "
        f"({n_last:,} numbers) {_pct(acc['classifier'])}, every parameter {_pct(acc['all'])}."
    )
    passed = acc["norm"] >= 5 * CHANCE and acc["all"] > acc["norm"] > acc["classifier"]
    effect = Effect("only γ and β − only the last layer", _points(acc["norm"], acc["classifier"]))
    return Check(passed, summary, tuple(figures), effect)


def no_norm(records: Sequence[Any]) -> Check:
    """A deep net without BN: with PyTorch's default init it stays near chance (< 20 %) with or
    without AGC; Kaiming init + AGC reaches 80 % and beats Kaiming init alone by 20 points at
    the same lr; BN (default init, no clipping) reaches 85 %."""
    inits, agcs = _values(records, "init"), _values(records, "agc")
    careful = [i for i in inits if i != "default"]
    if "default" not in inits or not careful or 0.0 not in agcs or len(agcs) < 2:
        return _pending("no runs with default and careful init, with and without agc")
    init, lam = careful[0], agcs[-1]
    runs = {
        (n, i, a): _find(records, norm=n, init=i, agc=a)
        for n in ("none", "batch")
        for i in ("default", init)
        for a in (0.0, lam)
    }
    if wait := _unready(list(runs.values())):
        return wait
    acc = {k: _final(r) for k, r in runs.items()}

    def name(k: tuple[str, str, float]) -> str:
        return f"norm={k[0]}, init={k[1]}" + (f", agc={_num(k[2])}" if k[2] else "")

    figures = [(f"final test acc: {name(k)}", _acc_text(r)) for k, r in runs.items()]
    depth = len(runs["none", init, lam].config.hidden)
    plain_default = max(acc["none", "default", a] for a in (0.0, lam))
    gain = acc["none", init, lam] - acc["none", init, 0.0]
    summary = (
        f"{depth} layers without BN: default init {_pct(acc['none', 'default', 0.0])} "
        f"({_pct(acc['none', 'default', lam])} with AGC), {init} init "
        f"{_acc_text(runs['none', init, 0.0])}, {init} init + AGC λ={_num(lam)} "
        f"{_pct(acc['none', init, lam])}; with BN {_pct(acc['batch', 'default', 0.0])} "
        f"({_pct(acc['batch', 'default', lam])} with AGC)."
    )
    passed = (
        plain_default < 0.20
        and acc["none", init, lam] >= 0.80
        and gain >= 0.20
        and acc["batch", "default", 0.0] >= 0.85
    )
    effect = Effect(f"{init} init: with AGC − without, final test accuracy", 100 * gain)
    return Check(passed, summary, tuple(figures), effect)


def _affine(r: Any, step: int) -> list[dict]:
    """The param rows of `step` that carry a norm's vectors (γ = weight, β = bias)."""
    return [p for p in r.params if p["step"] == step and "weight" in p.get("norm", {})]


def _drift(rows: list[dict]) -> tuple[float, float]:
    """Largest |γ − 1| and |β| over every unit of these rows' layers (from min and max)."""
    g = max(
        max(abs(p["norm"]["weight"]["min"] - 1), abs(p["norm"]["weight"]["max"] - 1)) for p in rows
    )
    b = max(max(abs(p["norm"]["bias"]["min"]), abs(p["norm"]["bias"]["max"])) for p in rows)
    return g, b


def gamma_beta_init(records: Sequence[Any]) -> Check:
    """γ = 1 and β = 0 at the start (every unit within 0.01 after the first step), and training
    moves them: at the end some unit's γ or β is ≥ 0.05 away from 1 or 0, in the BN runs of
    both a ReLU and a sigmoid net."""
    runs = [_find(records, norm="batch", activation=a) for a in ("relu", "sigmoid")]
    if wait := _unready(runs):
        return wait
    figures, parts, passed, moved = [], [], True, []
    for r in runs:
        steps = sorted({p["step"] for p in r.params if "weight" in p.get("norm", {})})
        if not steps:
            return _pending("no γ/β records (param rows) in this group")
        name = r.config.activation
        g0, b0 = _drift(_affine(r, steps[0]))
        g1, b1 = _drift(_affine(r, steps[-1]))
        figures += [
            (f"{name}: largest |γ − 1|, |β| after the first step", f"{g0:.3f}, {b0:.3f}"),
            (f"{name}: largest |γ − 1|, |β| at step {steps[-1]}", f"{g1:.3f}, {b1:.3f}"),
        ]
        means = {p["layer"]: p["norm"]["weight"]["mean"] for p in _affine(r, steps[-1])}
        figures += [
            (f"{name}: mean γ of layer {k} at the end", f"{v:.3f}") for k, v in means.items()
        ]
        figures += [(f"final test acc: {name}", _acc_text(r))]
        passed &= max(g0, b0) <= 0.01 and max(g1, b1) >= 0.05
        moved.append(max(g1, b1) - max(g0, b0))
        last = max(means)
        parts.append(
            f"{name}: largest |γ − 1| {g0:.3f} after the first step, {g1:.3f} at the end "
            f"(layer {last}'s mean γ {means[last]:.3f}), largest |β| {b1:.3f}"
        )
    summary = "γ started at 1 and β at 0; training moved them — " + "; ".join(parts) + "."
    # the smaller of the two nets' moves: the claim is that training moves γ/β in both
    effect = Effect("largest move of γ or β by training (the smaller net's)", min(moved), "")
    return Check(passed, summary, tuple(figures), effect)


def sigmoid_plateau(records: Sequence[Any]) -> Check:
    """Trained long enough, the plain sigmoid net learns: it reaches 50 % test accuracy (leaves
    the plateau at chance), but only after ≥ 10× as many steps as BN, which reaches 90 %."""
    plain, bn = _find(records, norm="none"), _find(records, norm="batch")
    if wait := _unready([plain, bn]):
        return wait
    s50 = {"none": _steps_to(plain, 0.50), "batch": _steps_to(bn, 0.50)}
    s90 = {"none": _steps_to(plain, 0.90), "batch": _steps_to(bn, 0.90)}
    figures = []
    for level, steps in (("50", s50), ("90", s90)):
        for n in ("none", "batch"):
            figures.append((f"steps to {level} %: norm={n}", _never(steps[n])))
    figures += [("final test acc: norm=none", _acc_text(plain))]
    figures += [("final test acc: norm=batch", _acc_text(bn))]
    last = max(int(row["step"]) for row in plain.history)
    ratio = None  # the plain net's steps to 50 % over BN's
    if s50["none"] is None:
        left = f"did not leave the plateau in {last} steps (50 % never reached)"
    else:
        left = f"left the plateau — 50 % test accuracy — after {s50['none']} steps"
        if s50["batch"] is not None:
            ratio = s50["none"] / max(s50["batch"], 1)
            left += f", {ratio:.0f}× as many as BN's {s50['batch']}"
    summary = (
        f"The plain sigmoid net {left}; it {_reached(s90['none'])} and ended at "
        f"{_pct(_final(plain))}; BN {_reached(s90['batch'])} and ended at {_pct(_final(bn))}."
    )
    passed = ratio is not None and ratio >= 10 and s90["batch"] is not None
    effect = None if ratio is None else Effect("plain ÷ BN, steps to 50 %", ratio, "×", null=1.0)
    return Check(passed, summary, tuple(figures), effect)


def _never(steps: int | None) -> str:
    return "never" if steps is None else str(steps)


def _reached(steps: int | None, level: str = "90 %") -> str:
    return f"never reached {level}" if steps is None else f"reached {level} after {steps} steps"


def _first_grads(r: Any) -> dict[int, float]:
    """{layer: ‖∇W‖} of the first param rows (the gradient at initialization; the classifier
    is layer depth + 1)."""
    rows = [p for p in r.params if _ok(p.get("grad_norm"))]
    if not rows:
        return {}
    first = min(p["step"] for p in rows)
    return {int(p["layer"]): float(p["grad_norm"]) for p in rows if p["step"] == first}


def bn_gradients(records: Sequence[Any]) -> Check:
    """At initialization the deepest BN net's first-layer gradient is ≥ 5× its classifier's,
    and that ratio is ≥ 3× the shallowest BN net's and ≥ 3× the plain net's of its depth."""
    depths = sorted({len(r.config.hidden) for r in records})
    if len(depths) < 2:
        return _pending("no runs of two depths in this group")
    runs = {
        (d, n): next((r for r in records if len(r.config.hidden) == d and r.config.norm == n), None)
        for d in (depths[0], depths[-1])
        for n in ("none", "batch")
    }
    if wait := _unready(list(runs.values())):
        return wait
    grads = {k: _first_grads(r) for k, r in runs.items()}
    if any(len(g) < 2 for g in grads.values()):
        return _pending("no gradient norms (param rows) in this group")
    ratio = {k: g[1] / g[max(g)] for k, g in grads.items()}
    figures = []
    for (d, n), g in grads.items():
        figures += [
            (f"{d} layers, norm={n}: ‖∇W‖ layer 1", f"{g[1]:.3g}"),
            (f"{d} layers, norm={n}: ‖∇W‖ classifier", f"{g[max(g)]:.3g}"),
            (f"{d} layers, norm={n}: layer 1 / classifier", f"{ratio[d, n]:.3g}"),
        ]
    lo, hi = depths[0], depths[-1]
    summary = (
        f"At the first step, layer 1's gradient norm was {ratio[hi, 'batch']:.3g}× the "
        f"classifier's in the {hi}-layer BN net ({ratio[lo, 'batch']:.3g}× with {lo} layers); "
        f"without BN, {ratio[hi, 'none']:.3g}× with {hi} layers and {ratio[lo, 'none']:.3g}× "
        f"with {lo}."
    )
    passed = (
        ratio[hi, "batch"] >= 5
        and ratio[hi, "batch"] >= 3 * ratio[lo, "batch"]
        and ratio[hi, "batch"] >= 3 * ratio[hi, "none"]
    )
    name = f"{hi} layers: BN's layer-1 ÷ classifier gradient, over the plain net's"
    effect = Effect(name, ratio[hi, "batch"] / ratio[hi, "none"], "×", null=1.0)
    return Check(passed, summary, tuple(figures), effect)


CHECKS: dict[str, Callable[[Sequence[Any]], Check]] = {
    f.__name__: f
    for f in (
        faster,
        ioffe_fig1,
        saturation,
        lr_ladder,
        init_scale,
        batch_size,
        placement,
        regularization,
        feature_scaling,
        noisy_bn,
        ics,
        landscape,
        gamma_beta_only,
        no_norm,
        sigmoid_plateau,
        bn_gradients,
        gamma_beta_init,
    )
}
