"""Plain-record helpers shared by the CLI, the jobs and the charts: the kinds of rows
(`RECORDERS`), labels, summaries, progress, CSV.

A run record is the dict written by the engine (see docs/records.md): config, status and
one list of rows per kind — history, layers, params, and the measures' kinds. Each kind is
one `Recorder` declaration below; the engine, the run store, the worker's snapshots, the CSV
writers and the CLI iterate over them. Nothing here knows about torch or Streamlit.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .columns import fold
from .config import FIELDS, RunConfig, from_dict, to_dict, value_text

# Quantiles in layer rows: TensorBoard's distribution basis points (±0.5/1/1.5 σ of a
# normal) and Ioffe & Szegedy's 15/50/85th percentiles, as fractions.
BASIS_POINTS = (0.0, 0.0668, 0.1587, 0.3085, 0.5, 0.6915, 0.8413, 0.9332, 1.0)
IOFFE_POINTS = (0.15, 0.5, 0.85)

HISTORY_COLUMNS = ("step", "epoch", "train_loss", "train_acc", "test_loss", "test_acc")
LAYER_CSV_COLUMNS = (
    "step",
    "layer",
    "point",
    "mean",
    "std",
    "p15",
    "p50",
    "p85",
    "saturated",
    "dead",
)

# When a kind is recorded (the engine's cadences: recorders.Recording's schedule):
EVERY = {
    "record": "every record_every·60 samples seen (RunConfig.record_steps), at step 0 and the end; "
    "on training sets over 1,500 samples as many times an epoch as on 1,500, and at each epoch's "
    "end, the test passes not at an epoch's end on a fixed subset (the row's test_samples says "
    "how many)",
    "probe": "the layer-probe steps: every k-th record step (≤ ~100 per run) and the last",
    "measure": "the measure steps (≤ ~MAX_MEASURES per run) while config.measures asks for it",
    "end": "once, after the last step, while config.measures asks for it (the slice also on "
    "demand, for a finished or stopped group: bnviz.saved)",
}


@dataclass(frozen=True)
class Recorder:
    """One kind of record row: its name in the records, when it is recorded and its columns.

    `numbers`: columns every row has, each a number or null (the charts index them; the run
    store checks them); `keys`: integer columns that say what a row is about (layer, unit);
    `csv`: the CSV columns (default: step, keys, numbers); `measure`: the config.measures
    value that switches it on ("" = always recorded). The engine's code for a kind is
    recorders.Recording's (history, layers, params, units) or bnviz.measures.MEASURES[kind].
    """

    kind: str
    every: str  # a key of EVERY
    title: str  # what a row holds, for people
    numbers: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    csv: tuple[str, ...] = ()
    measure: str = ""

    def columns(self) -> tuple[str, ...]:
        return self.csv or ("step", *self.keys, *self.numbers)

    def on(self, measures: str) -> bool:
        """Whether a run whose config.measures is `measures` records this kind."""
        return not self.measure or measures in (self.measure, "all")


RECORDERS: tuple[Recorder, ...] = (
    Recorder(
        "history",
        "record",
        "losses and accuracies (train: the steps since the last record; test: eval mode)",
        numbers=("train_loss", "train_acc", "test_loss", "test_acc"),
        csv=HISTORY_COLUMNS,
    ),
    Recorder(
        "layers",
        "probe",
        "per layer and probe point: mean, std, quantiles and a histogram of the activations",
        numbers=("mean", "std", "p15", "p50", "p85"),
        keys=("layer",),
        csv=LAYER_CSV_COLUMNS,
    ),
    Recorder(
        "params",
        "probe",
        "per layer: ‖∇W‖, ‖W‖, ‖ΔW‖/‖W‖ and the norm's γ, β and running statistics",
        numbers=("grad_norm", "weight_norm", "update_ratio"),
        keys=("layer",),
    ),
    Recorder(
        "units",
        "probe",
        "a few units of every hidden layer: their activation input's distribution over the batch",
        numbers=("mean", "std", "p15", "p50", "p85"),
        keys=("layer", "unit"),
        measure="units",
    ),
    Recorder(
        "ics",
        "measure",
        "internal covariate shift per layer: ‖G − G′‖ and cos(G, G′), G′ after the earlier "
        "layers' update (Santurkar et al. 2018)",
        numbers=("l2", "cos", "grad_norm"),
        keys=("layer",),
        measure="ics",
    ),
    Recorder(
        "landscape",
        "measure",
        "along the gradient: loss and gradient change over a grid of steps, β-smoothness",
        numbers=("loss_min", "loss_max", "grad_diff_min", "grad_diff_max", "beta"),
        measure="landscape",
    ),
    Recorder(
        "slice",
        "end",
        "the loss on a 2-D grid around the final weights (two filter-normalized directions)",
        numbers=("loss_center",),
        measure="landscape",
    ),
)
KINDS = tuple(r.kind for r in RECORDERS)
RECORDER = {r.kind: r for r in RECORDERS}
BASE_KINDS = ("history", "layers", "params")  # always in a run's dict, even when empty


class RunRecord:
    """Everything recorded about one run: what the engine returns and the server keeps.

    Rows are in `rows[kind]` for every kind of RECORDERS; `r.history`, `r.layers`, … read
    the same lists. Built with the kinds as keywords (RunRecord(cfg, history=[...])) or `rows`.
    """

    __match_args__ = ("config",)

    def __init__(
        self,
        config: RunConfig,
        status: str = "queued",
        message: str = "",
        device: str = "",
        seconds: float = 0.0,
        diverged_step: int | None = None,
        rows: dict[str, list[dict]] | None = None,
        step: int | None = None,
        **kinds: list[dict],
    ) -> None:
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise TypeError(f"RunRecord got unknown kinds of rows: {sorted(unknown)}")
        self.config, self.status, self.message, self.device = config, status, message, device
        self.seconds, self.diverged_step = seconds, diverged_step
        self.step = step  # last step a status change reported (not saved)
        given = {**(rows or {}), **kinds}
        self.rows: dict[str, list[dict]] = {k: given.get(k, []) for k in KINDS}

    def __getattr__(self, name: str) -> list[dict]:
        if name in KINDS and "rows" in self.__dict__:
            return self.__dict__["rows"][name]
        raise AttributeError(name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunRecord) and vars(self) == vars(other)

    def __repr__(self) -> str:
        n = ", ".join(f"{k}={len(v)}" for k, v in self.rows.items() if v)
        return f"RunRecord({self.config.label()!r}, {self.status!r}, rows: {n or 'none'})"

    def replace(self, **changes: Any) -> RunRecord:
        """A copy with some attributes changed (rows: a dict of kind → list)."""
        d = {**vars(self), **changes}
        return RunRecord(**d)

    def copy_rows(self) -> RunRecord:
        """A copy whose row lists can be read while the original's grow."""
        return self.replace(rows={k: list(v) for k, v in self.rows.items()})

    def to_dict(self) -> dict:
        return {
            "config": to_dict(self.config),
            "status": self.status,
            "message": self.message,
            "device": self.device,
            "seconds": round(self.seconds, 3),
            "diverged_step": self.diverged_step,
            **{k: v for k, v in self.rows.items() if v or k in BASE_KINDS},
        }

    @classmethod
    def from_dict(cls, d: dict) -> RunRecord:
        return cls(
            config=from_dict(d["config"], strict=False),
            status=d.get("status", "finished"),
            message=d.get("message", ""),
            device=d.get("device", ""),
            seconds=d.get("seconds", 0.0),
            diverged_step=d.get("diverged_step"),
            rows={k: d.get(k, []) for k in KINDS},
        )


def varied_fields(configs: Sequence[RunConfig]) -> list[str]:
    """Fields whose values differ among the configs, in FIELDS order."""
    return [n for n in FIELDS if len({getattr(c, n) for c in configs}) > 1]


def group_labels(configs: Sequence[RunConfig]) -> list[str]:
    """A short distinct label per run: the values of the fields that vary in the group."""
    fields = [f for f in varied_fields(configs) if f != "device"]
    if not fields:
        return [f"run {i + 1}" for i in range(len(configs))]
    return [", ".join(f"{f}={value_text(getattr(c, f))}" for f in fields) for c in configs]


# Fields whose value names itself in a group's name ("sigmoid", not "activation sigmoid"), and
# fields left out of it (they change where or how often it is measured, not the experiment).
_BARE_FIELDS = ("dataset", "model", "activation", "optimizer")
_UNNAMED_FIELDS = ("device", "record_every")


def _name_value(v: object) -> str:
    if isinstance(v, tuple):  # hidden widths: 3×100, or 64-32
        return f"{len(v)}×{v[0]}" if len(v) > 1 and len(set(v)) == 1 else "-".join(map(str, v))
    if isinstance(v, float):
        return f"{v:g}"
    return value_text(v)


def _name_part(f: str, values: Sequence[object], sep: str) -> str:
    texts = [_name_value(v) for v in values]
    text = f"{texts[0]} … {texts[-1]}" if len(texts) > 3 else sep.join(texts)
    return text if f in _BARE_FIELDS else f"{f} {text}"


def group_name(configs: Sequence[RunConfig], max_len: int = 80) -> str:
    """What a group is, for people: the shared fields that differ from the defaults, then what
    varies (values in the group's order), e.g. "sigmoid, lr 0.5 · norm batch vs none"; a field
    with more than 3 values by its ends ("lr 0.1 … 3"). The shared part is cut first past
    `max_len` characters; "defaults" when nothing differs."""
    if not configs:
        return "empty group"
    default = RunConfig()
    varied = [f for f in varied_fields(configs) if f not in _UNNAMED_FIELDS]
    shared = [
        _name_part(f, [getattr(configs[0], f)], "")
        for f in FIELDS
        if f not in varied
        and f not in _UNNAMED_FIELDS
        and getattr(configs[0], f) != getattr(default, f)
    ]
    values = {f: list(dict.fromkeys(getattr(c, f) for c in configs)) for f in varied}
    sep = " vs " if len(varied) == 1 else "/"
    what = " × ".join(_name_part(f, values[f], sep) for f in varied)
    room = max_len - len(what) - 3  # " · "
    kept = list(shared)
    while kept and len(", ".join(kept + ["…"] * (len(kept) < len(shared)))) > room:
        kept.pop()
    base = ", ".join(kept + ["…"] * (len(kept) < len(shared)))
    return " · ".join(p for p in (base, what) if p) or "defaults"


STALLED_ACC = 0.2  # final test accuracy below this: near chance (10 classes), the run stalled


def sweep_axes(configs: Sequence[RunConfig]) -> tuple[str, str | None] | None:
    """The swept field (varied, ≥ 3 distinct values; a non-`norm` one preferred, then the one
    with most values) and the series field (`norm` if it varies, else another varied field, or
    None); None when no field takes ≥ 3 values."""
    fields = [f for f in varied_fields(configs) if f != "device"]
    counts = {f: len({getattr(c, f) for c in configs}) for f in fields}
    swept = [f for f in fields if counts[f] >= 3]
    if not swept:
        return None
    field = max(swept, key=lambda f: (f != "norm", counts[f]))  # first of equals: FIELDS order
    others = [f for f in fields if f != field]
    by = "norm" if "norm" in others else (others[0] if others else None)
    return field, by


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _series(cfg: RunConfig, by: str | None, rest: Sequence[str]) -> str | None:
    parts = [value_text(getattr(cfg, by))] if by else []
    parts += [f"{f}={value_text(getattr(cfg, f))}" for f in rest]
    return ", ".join(parts) or None


def sweep_points(
    configs: Sequence[RunConfig],
    histories: Sequence[Sequence[dict]],
    statuses: Sequence[str],
    field: str,
    by: str | None,
) -> list[dict]:
    """One point per run that has a finite test accuracy so far: x (the run's value of `field`:
    a number, or its text for other fields), series (its value of `by` as text, or None; with
    more varied fields, their `name=value` too, e.g. "batch, batch_size=8", so no two runs of a
    series share an x), final (last finite test accuracy), best, status, stalled (final <
    STALLED_ACC), epoch."""
    rest = [f for f in varied_fields(configs) if f not in (field, by, "device")]
    points = []
    for cfg, rows, status in zip(configs, histories, statuses):
        accs = [(r.get("epoch"), r["test_acc"]) for r in rows if _finite(r.get("test_acc"))]
        if not accs:
            continue  # not started yet (or no finite record): drawn once it has one
        x = getattr(cfg, field)
        numeric = isinstance(x, (int, float)) and not isinstance(x, bool)
        final = accs[-1][1]
        points.append(
            {
                "x": x if numeric else value_text(x),
                "series": _series(cfg, by, rest),
                "final": final,
                "best": max(a for _, a in accs),
                "status": status,
                "stalled": final < STALLED_ACC,
                "epoch": accs[-1][0],
            }
        )
    return points


def status_text(status: str, message: str = "", diverged_step: int | None = None) -> str:
    if status == "diverged" and diverged_step is not None:
        return f"diverged at step {diverged_step}"
    if status == "failed" and message:
        return f"failed: {message}"
    return status


ENDED = ("finished", "diverged", "cancelled", "failed", "interrupted")


def run_progress(status: str, history: Sequence[dict], epochs: int) -> float:
    """The share of its epochs a run has done (from its last history row's epoch); 1 once it
    has ended, whatever its epoch."""
    if status in ENDED:
        return 1.0
    done = history[-1].get("epoch") or 0.0 if history else 0.0
    return min(1.0, done / epochs)


def summary(history: Sequence[dict]) -> dict[str, float | None]:
    """Final train/test accuracy and the best test accuracy of a history."""
    if not history:
        return {"train_acc": None, "test_acc": None, "best_test_acc": None}
    tests = [h["test_acc"] for h in history if h.get("test_acc") is not None]
    return {
        "train_acc": history[-1].get("train_acc"),
        "test_acc": history[-1].get("test_acc"),
        "best_test_acc": max(tests) if tests else None,
    }


def rows_csv(labels: Sequence[str], runs: Iterable[Sequence[dict]], cols: Sequence[str]) -> str:
    """Every row of every run as CSV: the run's label, then `cols` (empty where missing)."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(("run", *cols))
    for label, rows in zip(labels, runs):
        for r in rows:
            w.writerow((label, *(r.get(c) for c in cols)))
    return out.getvalue()


def kind_csv(kind: str, labels: Sequence[str], runs: Iterable[Sequence[dict]]) -> str:
    """Every row of one kind of every run as CSV: the run's label, then the kind's columns
    (its Recorder's; lists such as histograms are left out)."""
    return rows_csv(labels, runs, RECORDER[kind].columns())


def history_csv(labels: Sequence[str], histories: Iterable[Sequence[dict]]) -> str:
    """Every history row of every run as CSV, with the run's label in the first column."""
    return kind_csv("history", labels, histories)


def layer_csv(labels: Sequence[str], layer_rows: Iterable[Sequence[dict]]) -> str:
    """Per-layer probe summaries (no histograms) as CSV."""
    return kind_csv("layers", labels, layer_rows)


def latest_layers(rows: Sequence[dict], point: str) -> dict[int, dict]:
    """The most recent probe row of each layer at one probe point (a new dict; read
    incrementally from tick to tick, `columns.fold`)."""

    def step(old: dict | None, new: Sequence[dict]) -> dict:
        out = dict(old or {})
        for r in new:
            if r["point"] == point:
                out[r["layer"]] = r  # rows arrive in step order: the last one wins
        return out

    return dict(fold(rows, ("latest", point), step))


def layer_series(rows: Sequence[dict], point: str, layer: int) -> list[dict]:
    """Probe rows of one layer and point over training (a new list; read incrementally from
    tick to tick, `columns.fold`)."""

    def step(old: list | None, new: Sequence[dict]) -> list:
        return (old or []) + [r for r in new if r["point"] == point and r["layer"] == layer]

    return list(fold(rows, ("series", point, layer), step))
