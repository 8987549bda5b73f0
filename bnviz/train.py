"""The training engine: one group of runs, trained in lockstep, recording what happens inside.

No UI and no threads here. `train_group` partitions the configs into stacks (runs that can be
one batched network, see models.stack_key), keeps every data set as one tensor on the device,
and advances the stack that is furthest behind (in epochs) one step at a time, so that every
run of a comparison grows together. Records are plain dicts of numbers (see docs/records.md).
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .config import RunConfig
from .data import Dataset, load_dataset
from .graphs import StepGraph
from .models import stack_order
from .recorders import MAX_LAYER_SNAPSHOTS, Recording, Rows
from .records import RunRecord
from .stack import Stack as TrainingStack

__all__ = [
    "MAX_LAYER_SNAPSHOTS",
    "STATUSES",
    "Stack",
    "make_stacks",
    "records_to_json",
    "train_group",
]


def _threads_from_env() -> int:
    """Torch CPU threads while training: BNVIZ_THREADS, a whole number ≥ 1, else 1. A bad
    value is logged and ignored here (the dashboard's worker must start); the CLI refuses it
    as bad input before this module is imported (`cli._check_threads_env`)."""
    text = os.environ.get("BNVIZ_THREADS", "1")
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        logging.getLogger(__name__).warning(
            "BNVIZ_THREADS=%r is not a whole number ≥ 1: training with 1 thread", text[:40]
        )
        return 1
    return n


CPU_THREADS = _threads_from_env()  # torch threads while training
STATUSES = ("queued", "running", "finished", "diverged", "cancelled", "failed")

Event = dict[str, Any]


def resolve_device(name: str = "auto") -> torch.device:
    """CUDA if available, else Apple MPS, else the CPU (for name 'auto')."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda was asked for, but no CUDA GPU is available")
    if name == "mps" and not _mps_available():
        raise RuntimeError(
            "device=mps was asked for, but Apple's MPS is not available here (it exists only "
            "on macOS with Apple silicon); use device=auto or cpu"
        )
    return torch.device(name)


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def device_label(dev: torch.device) -> str:
    """The device as the dashboard names it, e.g. "cuda (NVIDIA H200)" or "cpu"."""
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    return dev.type


class Stack(TrainingStack):
    """A stack (stack.Stack: the training) and its records (recorders.Recording): `step` is
    one update of every run and the rows due around it. On CUDA the steps that record
    nothing replay a captured graph (graphs.StepGraph), captured after the first step."""

    def __init__(
        self, runs: list[int], configs: list[RunConfig], data: Dataset, device: torch.device
    ) -> None:
        super().__init__(runs, configs, data, device)
        self.rec = Recording(self)
        self.graph = StepGraph(self, self.rec)

    def step(self) -> Rows:
        """One update of every run in the stack and the records due at it."""
        t, rec = self.t, self.rec
        out: Rows = rec.history(0, initial=True) if t == 0 else []
        if self.graph.ready and rec.quiet(t):
            self.graph.step(self.indices())
            self.t += 1
            return out + rec.after(t, None, None, None)
        x, y = self._batch()
        yt = y.t()  # (B, M)
        rows, probes = rec.before(t, x, yt)
        logits, losses = self.train_step(x, yt, probes)
        rec.count(logits, losses, yt)
        self.t += 1
        out += rows + rec.after(t, x, yt, probes)
        if self.graph.wanted and not self.done:
            self.graph.capture()  # after a step that recorded: never inside a quiet one
        return out


def data_key(cfg: RunConfig) -> tuple:
    """The fields that choose a config's data: configs with equal keys share one Dataset."""
    return (
        cfg.dataset,
        cfg.n_samples,
        cfg.noise,
        cfg.test_fraction,
        cfg.data_seed,
        cfg.input_norm,
        cfg.input_scale,
    )


def load_data(
    cfg: RunConfig,
    device: str | torch.device = "cpu",
    loader: Callable[..., Dataset] = load_dataset,
) -> Dataset:
    """The config's data set on `device` (data.load_dataset caches the arrays per key)."""
    return loader(
        cfg.dataset,
        n_samples=cfg.n_samples,
        noise=cfg.noise,
        test_fraction=cfg.test_fraction,
        seed=cfg.data_seed,
        device=device,
        input_norm=cfg.input_norm,
        input_scale=cfg.input_scale,
    )


def make_stacks(
    configs: Sequence[RunConfig],
    device: torch.device,
    loader: Callable[..., Dataset] = load_dataset,
) -> list[Stack]:
    """Group configs into stacks (models.stack_order: one batched network each)."""
    data: dict[tuple, Dataset] = {}
    stacks = []
    for idx in stack_order(configs):
        cfg = configs[idx[0]]
        key = data_key(cfg)
        if key not in data:
            data[key] = load_data(cfg, device, loader)
        ds = data[key]
        if ds.n_train < cfg.batch_size:
            raise ValueError(
                f"batch_size={cfg.batch_size} is larger than the {ds.n_train} "
                f"training samples of {cfg.dataset}"
            )
        stacks.append(Stack(idx, [configs[i] for i in idx], ds, device))
    return stacks


def train_group(
    configs: Sequence[RunConfig],
    *,
    should_stop: Callable[[], bool] | None = None,
    on_event: Callable[[Event], None] | None = None,
    device: str | torch.device | None = None,
    threads: int | None = None,
    on_end: Callable[[list[Stack]], None] | None = None,
    loader: Callable[..., Dataset] = load_dataset,
) -> list[RunRecord]:
    """Train every config together; returns one RunRecord per config, in order.

    `threads`: torch CPU threads while training (default BNVIZ_THREADS, else 1, unless
    OMP_NUM_THREADS is set); the previous setting is restored afterwards.
    `should_stop` is polled before each step (stop within one step → 'cancelled');
    `on_event` receives {"type": "rows", "run", "kind", "rows"} as records are made and
    {"type": "status", "run", "status", "message", "step"} when a run's status changes.
    `on_end` receives the stacks at their final weights once training ends (finished or
    stopped, not failed): the worker saves them for measures taken later (bnviz.saved).
    `loader`: data.load_dataset's signature (a benchmark passes data of its own).
    """
    emit = on_event or (lambda e: None)
    records = [RunRecord(c) for c in configs]
    start = time.perf_counter()
    before = torch.get_num_threads()
    if threads is None and "OMP_NUM_THREADS" not in os.environ:
        # These nets are tiny: one thread is as fast, and two spin-wait badly when anything
        # else (the web server, another run) wants the CPU — 10× slower seen on 2 cores.
        threads = CPU_THREADS
    if threads:
        torch.set_num_threads(threads)
    try:
        return _train(configs, records, start, should_stop, emit, device, on_end, loader)
    finally:
        torch.set_num_threads(before)


def _train(
    configs: Sequence[RunConfig],
    records: list[RunRecord],
    start: float,
    should_stop: Callable[[], bool] | None,
    emit: Callable[[Event], None],
    device: str | torch.device | None,
    on_end: Callable[[list[Stack]], None] | None = None,
    loader: Callable[..., Dataset] = load_dataset,
) -> list[RunRecord]:
    """The body of train_group."""

    def set_status(i: int, status: str, message: str = "", step: int | None = None) -> None:
        r = records[i]
        r.status, r.message, r.seconds = status, message, time.perf_counter() - start
        emit({"type": "status", "run": i, "status": status, "message": message, "step": step})

    try:
        dev = torch.device(device) if device is not None else resolve_device(configs[0].device)
        for r in records:
            r.device = str(dev)
        stacks = make_stacks(configs, dev, loader)
        for i in range(len(configs)):
            set_status(i, "running")
        while True:
            live = [s for s in stacks if not s.done]
            if not live:
                break
            if should_stop is not None and should_stop():
                for s in live:
                    for j, run in enumerate(s.runs):
                        if s.active[j]:
                            set_status(run, "cancelled", "stopped by the user", s.t)
                if on_end is not None:
                    on_end(stacks)
                return records
            s = min(live, key=lambda s: s.progress)
            was_active = list(s.active)
            for j, kind, rows in s.step():
                run = s.runs[j]
                records[run].rows[kind].extend(rows)
                emit({"type": "rows", "run": run, "kind": kind, "rows": rows})
            for j, (a, b) in enumerate(zip(was_active, s.active)):
                if a and not b:
                    step = int(s.rec.diverged_at[j])
                    records[s.runs[j]].diverged_step = step
                    set_status(s.runs[j], "diverged", f"non-finite loss at step {step}", step)
            if s.done:
                for j, run in enumerate(s.runs):
                    if s.active[j]:
                        set_status(run, "finished", step=s.t)
        if on_end is not None:
            on_end(stacks)
    except Exception as e:
        msg = _failure_message(e)
        for i, r in enumerate(records):
            if r.status in ("queued", "running"):
                set_status(i, "failed", msg)
    return records


def _failure_message(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if isinstance(e, torch.OutOfMemoryError):
        return f"out of memory on the device: {text}. Try a smaller batch_size or network."
    where = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    loc = f" (in {where.name})" if where else ""
    return f"{type(e).__name__}: {text}{loc}"


def records_to_json(records: Sequence[RunRecord]) -> dict:
    """The records file: {"runs": [...]} (schema in docs/records.md)."""
    return {"runs": [r.to_dict() for r in records]}
