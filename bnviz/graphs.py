"""CUDA graphs for the steps that record nothing: one captured step per stack, replayed.

A tiny net's step on a GPU is a few hundred kernel launches of microseconds each; Python and
the launches, not the GPU, bound it. A CUDA graph captures the whole quiet step once — the
batch's gather from the data set, forward, backward, the optimizer's update and the step's
loss and hits into the recording's device buffers (recorders.Recording.count) — and replays
it with one launch. What changes between steps lives in static tensors the graph reads: the
batch's sample indices (`idx`, copied in before each replay), the slot of the loss buffer
(`at`), the per-element learning rates (freezing a diverged run zeroes its part in place).

Record steps (probes, measures) and the CPU stay eager. A stack whose step reads the host or
draws random numbers from its runs' generators (Adam's step count, dropout, noisy BN, a
cumulative running average) stays eager too, and says why (`StepGraph.reason`); so does one
whose capture fails, with the error, so one failure costs speed, not the run.
BNVIZ_CUDA_GRAPHS=0 switches graphs off (benchmarks compare both).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import Tensor

from .measures import contained
from .recorders import Recording
from .stack import Stack

WARMUP_STEPS = 2  # eager steps on a side stream before the capture (undone: measures.contained)


def enabled() -> bool:
    return os.environ.get("BNVIZ_CUDA_GRAPHS", "1") != "0"


def eager_reason(stack: Stack) -> str:
    """Why the stack's quiet steps cannot be one graph ("" when they can)."""
    configs = stack.configs
    if stack.device.type != "cuda":
        return f"not on CUDA ({stack.device.type})"
    if not enabled():
        return "switched off (BNVIZ_CUDA_GRAPHS=0)"
    if any(c.optimizer == "adam" for c in configs):
        return "Adam's bias correction reads the step count on the host"
    if any(c.dropout > 0 or c.norm in ("noisy_batch", "noise_only") for c in configs):
        return "dropout or noise draws from the runs' own generators"
    if any(c.momentum is None and c.norm != "none" for c in configs):
        return "a cumulative running average reads the batch count on the host"
    return ""


class StepGraph:
    """The captured quiet step of one stack: `capture` once (after a record step), then
    `step` for each step that records nothing."""

    def __init__(self, stack: Stack, rec: Recording) -> None:
        self.stack, self.rec = stack, rec
        self.reason = eager_reason(stack)
        self.captured: bool | None = None  # None: not tried; False: the capture failed
        self.replay: Callable[[], None] = _nothing
        self.replays = 0
        self.counters: list[tuple[torch.nn.Module, int]] = []  # (norm, batches counted a step)
        if not self.reason:
            dev = stack.device
            self.idx = torch.zeros(stack.m, stack.batch_size, dtype=torch.long, device=dev)
            self.at = torch.zeros(1, dtype=torch.long, device=dev)  # the loss buffer's slot

    @staticmethod
    def backend(body: Callable[[], None], device: torch.device) -> Callable[[], None]:
        """Capture body as a CUDA graph; returns its replay (tests swap in a CPU stand-in)."""
        return cuda_graph(body, device)

    @property
    def ready(self) -> bool:
        return bool(self.captured)

    @property
    def wanted(self) -> bool:
        """Not captured yet, and nothing known against it."""
        return self.captured is None and not self.reason

    def _body(self) -> None:
        """One quiet step on the static tensors (what the graph holds)."""
        s, rec = self.stack, self.rec
        x, y = s.data.x_train[self.idx], s.data.y_train[self.idx]
        yt = y.t()
        logits, losses = s.train_step(x, yt)
        with torch.no_grad():
            hits = (logits.argmax(-1) == yt).sum(0)
            rec.step_loss.index_copy_(0, self.at, losses.detach()[None])
            rec.step_hits.index_copy_(0, self.at, hits[None])

    def capture(self) -> None:
        """Capture the quiet step; on any failure keep the stack eager, with the reason."""
        s, rec = self.stack, self.rec
        norms = [n for n in s.net.norms if hasattr(n, "num_batches_tracked")]
        buffers = rec.step_loss.clone(), rec.step_hits.clone()
        try:
            self.idx.copy_(s.perm[:, : s.batch_size])  # any real batch: the warm-up's
            self.at.fill_(0)
            with contained(s):  # the warm-up trains for real: contained undoes it
                before = [n.num_batches_tracked for n in norms]
                replay = self.backend(self._body, s.device)
                self.counters = [
                    (n, (n.num_batches_tracked - b) // (WARMUP_STEPS + 1))
                    for n, b in zip(norms, before)
                ]
            self.replay, self.captured = replay, True
        except Exception as e:  # any failure: the eager step still works
            self.captured = False
            self.reason = f"capture failed, eager steps: {type(e).__name__}: {e}"[:300]
        finally:  # and the warm-up's losses were never a step's
            rec.step_loss.copy_(buffers[0])
            rec.step_hits.copy_(buffers[1])

    def step(self, idx: Tensor) -> None:
        """One quiet step: the batch's indices (M, B) in, one replay, the host's counters."""
        self.idx.copy_(idx)
        self.at.fill_(self.rec.n_steps)
        self.replay()
        self.rec.n_steps += 1
        self.stack.opt.t += 1
        for n, k in self.counters:
            n.num_batches_tracked += k
        self.replays += 1


def cuda_graph(body: Callable[[], None], device: torch.device) -> Callable[[], None]:
    """body captured as a CUDA graph (torch.cuda.graphs' whole-network recipe): a warm-up of
    WARMUP_STEPS calls on a side stream (cuBLAS handles, autograd's first-call allocations),
    then one call captured, which does not run. Returns the graph's replay."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(WARMUP_STEPS):
            body()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        body()
    return graph.replay


def _nothing() -> None:
    pass
