"""CUDA graphs for quiet steps (bnviz.graphs): the graph step trains as the eager one does.

On the CPU, a stand-in backend "replays" by calling the captured step's Python body (the host
counters a real replay leaves alone are put back), so the static-buffer logic — the batch's
indices, the loss buffer's slot, the counters, the warm-up undone — is checked everywhere:
the records must be byte-identical to eager training. On a CUDA machine the real graphs are
compared with eager steps (skipped elsewhere, as tests/test_gpu.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from bnviz import graphs
from bnviz.config import RunConfig
from bnviz.train import Stack, make_stacks, train_group

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def cfg(**kw: Any) -> RunConfig:
    """A small digits run: 22 steps an epoch at batch 64, two epochs."""
    base = dict(hidden=(16, 16), epochs=2, batch_size=64, record_every=4, device="cpu")
    return RunConfig(**{**base, **kw})


GROUPS = {
    "sgd, bn and none": [cfg(), cfg(norm="none", seed=1)],
    "momentum, wd, agc": [
        cfg(optimizer="momentum", weight_decay=0.01, agc=0.05),
        cfg(optimizer="momentum", weight_decay=0.01, agc=0.05, norm="none", lr=0.3),
    ],
    "norms, train_only": [
        cfg(norm=n, train_only=t, ghost_batch_size=16, num_groups=4)
        for n, t in (("ghost_batch", "all"), ("layer", "norm"), ("group", "all"))
    ],
    "cnn": [cfg(model="cnn", hidden=(4, 8), epochs=1, norm=n) for n in ("batch", "none")],
    "diverges": [
        cfg(lr=50.0, norm="none", activation="linear"),
        cfg(lr=0.01, norm="none", activation="linear", seed=1),
    ],
}


def run(configs: Sequence[RunConfig], device: str = "cpu") -> tuple[list[Stack], dict]:
    """The group's stacks, trained step by step, and every row they made by (run, kind)."""
    stacks = make_stacks(configs, torch.device(device))
    rows: dict[tuple[int, str], list[dict]] = {}
    for s in stacks:
        while not s.done:
            for j, kind, r in s.step():
                rows.setdefault((s.runs[j], kind), []).extend(r)
    return stacks, rows


def stand_in(body: Callable[[], None], device: torch.device) -> Callable[[], None]:
    """A CUDA graph's stand-in on the CPU: called as a capture calls it (warm-up, capture);
    its replay runs the body's kernels but, as a real replay, no host-side bookkeeping."""
    step_graph = body.__self__  # type: ignore[attr-defined]
    stack = step_graph.stack
    norms = [n for n in stack.net.norms if hasattr(n, "num_batches_tracked")]
    for _ in range(graphs.WARMUP_STEPS + 1):
        body()

    def replay() -> None:
        t, counts = stack.opt.t, [n.num_batches_tracked for n in norms]
        body()
        stack.opt.t = t
        for n, c in zip(norms, counts):
            n.num_batches_tracked = c

    return replay


@pytest.fixture
def simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graphs, "eager_reason", lambda stack: "")
    monkeypatch.setattr(graphs.StepGraph, "backend", staticmethod(stand_in))


@pytest.mark.parametrize("group", GROUPS)
def test_graph_steps_give_the_eager_records(group: str, simulated: None) -> None:
    configs = GROUPS[group]
    stacks, rows = run(configs)
    assert all(s.graph.ready and s.graph.replays > 0 for s in stacks)
    quiet = sum(s.graph.replays for s in stacks)
    assert quiet > sum(s.total for s in stacks) / 3  # most steps record nothing
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(graphs, "eager_reason", lambda stack: "the control")
        eager_stacks, eager_rows = run(configs)
    assert not any(s.graph.replays for s in eager_stacks)
    assert rows == eager_rows
    for s, e in zip(stacks, eager_stacks):
        torch.testing.assert_close(s.opt.flat, e.opt.flat, rtol=0, atol=0, equal_nan=True)
        assert s.opt.t == e.opt.t
        assert counted(s) == counted(e)
    if group == "diverges":  # frozen in a record after graph steps; the other run goes on
        assert stacks[0].active == [False, True] and stacks[0].t == stacks[0].total


def counted(s: Stack) -> list[int]:
    """The batches each norm counted (num_batches_tracked: a host counter)."""
    return [n.num_batches_tracked for n in s.net.norms if hasattr(n, "num_batches_tracked")]


def test_the_stand_in_would_see_a_wrong_slot(simulated: None, monkeypatch) -> None:
    """The control arm: a graph step writing its loss to the wrong slot of the buffer changes
    the train columns, so the comparison above can fail."""
    configs = GROUPS["sgd, bn and none"]
    _, good = run(configs)
    monkeypatch.setattr(graphs.StepGraph, "step", _off_by_one(graphs.StepGraph.step))
    _, bad = run(configs)
    key = (0, "history")
    assert [r["train_loss"] for r in good[key]] != [r["train_loss"] for r in bad[key]]


def _off_by_one(step: Callable) -> Callable:
    def wrong(self: graphs.StepGraph, idx: torch.Tensor) -> None:
        self.rec.n_steps = max(0, self.rec.n_steps - 1)
        step(self, idx)
        self.rec.n_steps += 1

    return wrong


def test_a_failed_capture_leaves_the_stack_eager_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(body: Callable[[], None], device: torch.device) -> Callable[[], None]:
        body()  # half a warm-up, then the capture fails
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(graphs, "eager_reason", lambda stack: "")
    monkeypatch.setattr(graphs.StepGraph, "backend", staticmethod(broken))
    configs = GROUPS["momentum, wd, agc"]
    stacks, rows = run(configs)
    for s in stacks:
        assert not s.graph.ready and s.graph.replays == 0
        assert s.graph.reason.startswith("capture failed, eager steps: RuntimeError: operation")
    monkeypatch.setattr(graphs, "eager_reason", lambda stack: "the control")
    assert run(configs)[1] == rows  # the failed warm-up was undone


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (dict(optimizer="adam"), "Adam"),
        (dict(dropout=0.1), "dropout"),
        (dict(norm="noisy_batch"), "noise"),
        (dict(momentum=None), "cumulative"),
        ({}, ""),
    ],
)
def test_which_stacks_stay_eager(change: dict, reason: str, monkeypatch) -> None:
    fake = SimpleNamespace(device=torch.device("cuda"), configs=[cfg(), cfg(**change)])
    got = graphs.eager_reason(fake)  # type: ignore[arg-type]
    assert (reason in got) if reason else got == ""
    monkeypatch.setenv("BNVIZ_CUDA_GRAPHS", "0")
    assert "switched off" in graphs.eager_reason(fake)  # type: ignore[arg-type]
    cpu = SimpleNamespace(device=torch.device("cpu"), configs=fake.configs)
    assert graphs.eager_reason(cpu).startswith("not on CUDA")  # type: ignore[arg-type]


# --- on a CUDA device -------------------------------------------------------------------------


def close_rows(a: dict, b: dict) -> None:
    """Graph and eager rows of the same run: same keys and steps, numbers within 1e-4."""
    assert a.keys() == b.keys()
    for key in a:
        assert len(a[key]) == len(b[key]), key
        for ra, rb in zip(a[key], b[key]):
            for k in ("step", "epoch", "train_loss", "train_acc", "test_loss", "test_acc"):
                if k not in ra and k not in rb:
                    continue
                if ra[k] is None or rb[k] is None:  # non-finite values are recorded as None
                    assert ra[k] is rb[k], (key, k)
                else:
                    assert ra[k] == pytest.approx(rb[k], rel=1e-4, abs=1e-5), (key, k)


@cuda
@pytest.mark.gpu
@pytest.mark.parametrize("group", GROUPS)
def test_cuda_graphs_train_as_eager_steps(group: str, monkeypatch: pytest.MonkeyPatch) -> None:
    configs = [c.replace(device="cuda") for c in GROUPS[group]]
    stacks, rows = run(configs, "cuda")
    for s in stacks:
        assert s.graph.reason == "" and s.graph.replays > 0, s.graph.reason
    monkeypatch.setenv("BNVIZ_CUDA_GRAPHS", "0")
    eager_stacks, eager_rows = run(configs, "cuda")
    assert all(s.graph.replays == 0 for s in eager_stacks)
    close_rows(rows, eager_rows)
    for s, e in zip(stacks, eager_stacks):
        assert s.active == e.active
        torch.testing.assert_close(s.opt.flat, e.opt.flat, rtol=1e-4, atol=1e-5, equal_nan=True)


@cuda
@pytest.mark.gpu
def test_cuda_graph_runs_report_divergence_and_finish() -> None:
    configs = [c.replace(device="cuda") for c in GROUPS["diverges"]]
    graph = train_group(configs, device="cuda")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BNVIZ_CUDA_GRAPHS", "0")
        eager = train_group(configs, device="cuda")
    assert [r.status for r in graph] == [r.status for r in eager] == ["diverged", "finished"]
    assert graph[0].diverged_step == eager[0].diverged_step


@cuda
@pytest.mark.gpu
def test_cuda_stacks_that_stay_eager_still_train() -> None:
    configs = [cfg(device="cuda", dropout=0.2), cfg(device="cuda", optimizer="adam", lr=0.01)]
    stacks, _ = run(configs, "cuda")
    assert all(s.graph.replays == 0 and s.graph.reason for s in stacks)
    assert all(s.t == s.total for s in stacks)
