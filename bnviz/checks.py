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
from itertools import pairwise
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
    steps = max(int(row["step"]) for row in plain.history)
    summary = (
        f"After {steps} steps the net without BN was at {_pct(a_plain)} test accuracy (chance "
        f"is 10 %), with BN at {_pct(a_bn)}."
    )
    if _steps_to(plain, 0.50) is None:  # never left chance by much: say what that means
        summary += " The plain net has not left its plateau yet; the next lesson trains longer."
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
    plain net's, and it still ends within 3 points of BN."""
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
        and acc["noisy BN"] >= acc["BN"] - 0.03
    )
    return Check(passed, summary, tuple(figures))


def _bn_pair(records: Sequence[Any], kind: str) -> tuple[Any, Any, Check | None]:
    """The plain and the BN run, or a pending Check (not ended, or no `kind` records)."""
    plain, bn = _find(records, norm="none"), _find(records, norm="batch")
    if wait := _unready([plain, bn]):
        return plain, bn, wait
    if not (_rows(plain, kind) and _rows(bn, kind)):
        return plain, bn, _pending(f"no {kind} records (measures={kind}) in this group")
    return plain, bn, None


def _relative_ics(rows: list[dict], layer: int) -> float | None:
    return _median(
        [x["l2"] / x["grad_norm"] for x in rows if x["layer"] == layer and x.get("grad_norm")]
    )


def ics(records: Sequence[Any]) -> Check:
    """Santurkar et al.'s finding: BN does not reduce internal covariate shift. At every layer
    BN's relative ICS ‖G − G′‖/‖G‖ (median over the measure steps) is at least the plain net's."""
    plain, bn, wait = _bn_pair(records, "ics")
    if wait:
        return wait
    layers = sorted(
        {x["layer"] for x in _rows(bn, "ics")} & {x["layer"] for x in _rows(plain, "ics")}
    )
    figures, larger, smaller = [], [], []
    for layer in layers:
        rel = {
            n: _relative_ics(_rows(r, "ics"), layer) for n, r in (("none", plain), ("batch", bn))
        }
        cos = {
            n: _median([x["cos"] for x in _rows(r, "ics") if x["layer"] == layer])
            for n, r in (("none", plain), ("batch", bn))
        }
        for n in ("none", "batch"):
            figures.append((f"layer {layer}: ‖G − G′‖/‖G‖, norm={n}", f"{rel[n]:.3g}"))
            figures.append((f"layer {layer}: cos(G, G′), norm={n}", f"{cos[n]:.3f}"))
        (larger if rel["batch"] >= rel["none"] else smaller).append(str(layer))
    figures += [("final test acc: norm=none", _acc_text(plain))]
    figures += [("final test acc: norm=batch", _acc_text(bn))]
    if not smaller:
        found = "larger with BN at every layer, as Santurkar et al. found"
    elif not larger:
        found = "smaller with BN at every layer, unlike Santurkar et al."
    else:
        found = (
            f"larger with BN at layer {', '.join(larger)} and smaller at layer {', '.join(smaller)}"
        )
    summary = (
        f"Relative ICS ‖G − G′‖/‖G‖ (median over the measure steps) was {found}; BN ended at "
        f"{_pct(_final(bn))}, the plain net at {_pct(_final(plain))}."
    )
    return Check(not smaller, summary, tuple(figures))


LANDSCAPE = {  # measure → (its name, the value of one landscape row)
    "loss variation": lambda x: x["loss_max"] - x["loss_min"],
    "gradient predictiveness": lambda x: x["grad_diff_max"],
    "β-smoothness": lambda x: x["beta"],
}


def landscape(records: Sequence[Any]) -> Check:
    """Santurkar et al.'s Fig. 4: with BN the loss varies less along the gradient, the gradient
    changes less (max ‖∇L(w − ηg) − g‖) and the effective β-smoothness is smaller — each as
    the median over the measure steps, at the same learning rate."""
    plain, bn, wait = _bn_pair(records, "landscape")
    if wait:
        return wait
    figures, parts, passed = [], [], True
    for name, value in LANDSCAPE.items():
        m = {
            n: _median([value(x) for x in _rows(r, "landscape")])
            for n, r in (("none", plain), ("batch", bn))
        }
        figures += [(f"{name}: norm={n}", f"{m[n]:.3g}") for n in ("none", "batch")]
        smaller = m["batch"] < m["none"]
        passed &= smaller
        parts.append(
            f"{name} {m['batch']:.3g} vs {m['none']:.3g} ({'smaller' if smaller else 'larger'})"
        )
    for n, r in (("none", plain), ("batch", bn)):
        grid = _rows(r, "slice")
        if grid:
            top = max(v for row in grid[-1]["loss"] for v in row if _ok(v))
            figures.append((f"2-D slice, highest loss on the grid: norm={n}", f"{top:.3g}"))
    agree = sum(p.endswith("(smaller)") for p in parts)
    summary = (
        f"Median over the measure steps, BN vs the plain net: {'; '.join(parts)} — "
        f"{agree} of 3 as in Santurkar et al.'s Fig. 4."
    )
    return Check(passed, summary, tuple(figures))


CHANCE = 0.10  # ten classes (digits, MNIST, CIFAR-10)


def gamma_beta_only(records: Sequence[Any]) -> Check:
    """Training only the norms' γ and β of a random net reaches ≥ 5× chance (50 %); full
    training ends higher. The last layer alone is shown next to them."""
    names = {"all": "every parameter", "norm": "only γ and β", "classifier": "only the last layer"}
    runs = {k: _find(records, train_only=k) for k in names}
    if wait := _unready(list(runs.values())):
        return wait
    acc = {k: _final(r) for k, r in runs.items()}
    figures = [(f"final test acc: {names[k]}", _acc_text(r)) for k, r in runs.items()]
    cfg = runs["norm"].config
    n_affine = 2 * sum(w for i, w in enumerate(cfg.hidden, start=1) if cfg.norm_on(i))
    summary = (
        f"Training only γ and β ({n_affine} numbers) reached {_pct(acc['norm'])} test accuracy "
        f"({acc['norm'] / CHANCE:.1f}× chance, which is 10 %); every parameter "
        f"{_pct(acc['all'])}, only the last layer {_pct(acc['classifier'])}."
    )
    return Check(acc["norm"] >= 5 * CHANCE and acc["all"] > acc["norm"], summary, tuple(figures))


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
    return Check(passed, summary, tuple(figures))


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
    figures, parts, passed = [], [], True
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
        last = max(means)
        parts.append(
            f"{name}: largest |γ − 1| {g0:.3f} after the first step, {g1:.3f} at the end "
            f"(layer {last}'s mean γ {means[last]:.3f}), largest |β| {b1:.3f}"
        )
    summary = "γ started at 1 and β at 0; training moved them — " + "; ".join(parts) + "."
    return Check(passed, summary, tuple(figures))


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
    return Check(passed, summary, tuple(figures))


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
