"""One check per lesson: does a group's records show the lesson's claim, and with what figures.

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
from dataclasses import dataclass
from typing import Any

ENDED = ("finished", "diverged")
SATURATING = ("sigmoid", "tanh")


@dataclass(frozen=True)
class Check:
    """passed: True/False, or None when the records cannot tell yet; summary: one sentence
    saying what the records show; figures: (label, value text) rows for a table."""

    passed: bool | None
    summary: str
    figures: tuple[tuple[str, str], ...] = ()


NOT_YET = "not enough records yet"


def _pending(why: str = NOT_YET) -> Check:
    return Check(None, why[:1].upper() + why[1:] + ".")


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
    return Check(faster_both and gap <= 2.0, summary, tuple(figures))


def ioffe_fig1(records: Sequence[Any]) -> Check:
    """The plain sigmoid net stays below 20 % test accuracy; with BN it reaches 95 %."""
    plain, bn = _find(records, norm="none"), _find(records, norm="batch")
    if wait := _unready([plain, bn]):
        return wait
    a_plain, a_bn = _final(plain), _final(bn)
    figures = (
        ("final test acc: norm=none", _acc_text(plain)),
        ("final test acc: norm=batch", _acc_text(bn)),
    )
    summary = (
        f"Without BN the net ended at {_pct(a_plain)} test accuracy (chance is 10 %), "
        f"with BN at {_pct(a_bn)}."
    )
    return Check(a_plain < 0.20 and a_bn >= 0.95, summary, figures)


def saturation(records: Sequence[Any]) -> Check:
    """For each sigmoid/tanh pair: the plain net's last hidden layer is ≥ 3× as saturated as
    BN's (and saturated at all), and BN reaches 80 % test accuracy."""
    acts = [a for a in _values(records, "activation") if a in SATURATING]
    if not acts:
        return _pending("no sigmoid or tanh runs in this group")
    figures, passed, parts = [], True, []
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
        parts.append(f"{act} {_pct(s_plain)} without BN vs {_pct(s_bn)} with it")
    summary = (
        "Share of saturated units in the last hidden layer at the end: " + "; ".join(parts) + "."
    )
    return Check(passed, summary, tuple(figures))


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
    return Check(broke and _final(bn) >= 0.90, summary, tuple(figures))


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
    return Check(margin >= 30, summary, tuple(figures))


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
    return Check(passed, summary + ".", tuple(figures))


def placement(records: Sequence[Any]) -> Check:
    """For each activation, BN before and after it end within 3 points of each other."""
    normed = [r for r in records if r.config.norm != "none"]
    acts = _values(normed, "activation") if normed else []
    if not acts:
        return _pending()
    figures, parts, passed = [], [], True
    for act in acts:
        before = _find(normed, activation=act, placement="before")
        after = _find(normed, activation=act, placement="after")
        if wait := _unready([before, after]):
            return wait
        figures += [(f"{act}: before", _acc_text(before)), (f"{act}: after", _acc_text(after))]
        diff = 100 * (_final(after) - _final(before))
        passed &= abs(diff) <= 3
        parts.append(f"{act} {_pct(_final(before))} before vs {_pct(_final(after))} after")
    summary = "Final test accuracy with BN " + "; ".join(parts) + "."
    return Check(passed, summary, tuple(figures))


def regularization(records: Sequence[Any]) -> Check:
    """BN's train–test gap is smaller than the plain net's; dropout runs with and without BN
    (any drop probability) are shown next to them."""
    named = {
        "plain": _find(records, norm="none", dropout=0.0),
        "BN": _find(records, norm="batch", dropout=0.0),
    }
    for r in sorted(records, key=lambda r: (r.config.norm != "none", r.config.dropout)):
        if r.config.dropout > 0 and r.config.norm in ("none", "batch"):
            key = f"dropout {_num(r.config.dropout)}"
            named.setdefault(key if r.config.norm == "none" else f"BN + {key}", r)
    # the lesson compares BN with dropout: it needs a dropout run with BN and one without
    if not (any(k.startswith("dropout") for k in named) and any("+" in k for k in named)):
        return _pending()
    if wait := _unready(list(named.values())):
        return wait
    gaps = {k: 100 * (_final_train(r) - _final(r)) for k, r in named.items()}
    figures = []
    for k, r in named.items():
        figures += [
            (f"train acc: {k}", _pct(_final_train(r))),
            (f"test acc: {k}", _acc_text(r)),
            (f"train–test gap: {k}", f"{gaps[k]:.1f} points".replace("-", "−")),
        ]
    listed = "; ".join(f"{k}: {v:.1f}".replace("-", "−") for k, v in gaps.items())
    summary = (
        f"Train–test gap in points — {listed} (train accuracy is measured while training, with "
        f"dropout on and batch statistics, so a gap can be negative); test accuracy "
        f"{_pct(_final(named['BN']))} with BN, {_pct(_final(named['plain']))} without."
    )
    return Check(gaps["BN"] < gaps["plain"], summary, tuple(figures))


def feature_scaling(records: Sequence[Any]) -> Check:
    """Inputs on two scales: at the preset's lr the plain net diverges or stays below 50 % while
    it trains (≥ 70 %) on standardized inputs; BN reaches 90 % on the stretched inputs."""
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
    passed = broke and _final(runs[lo, "none"]) >= 0.70 and bn_hi >= 0.90
    return Check(passed, summary, tuple(figures))


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
    )
}
