"""No host synchronisation inside a training step, and the sync-free dropout and noise draw
exactly what the per-run loops they replaced drew.

On a GPU, reading a tensor's value on the host (.item(), .tolist(), bool(t), float(t), a
boolean mask, a copy to the CPU) makes Python wait until every queued kernel has run, so the
loop can no longer queue the next step while the device works on this one. `NoHostSync` makes
each of those fail on the CPU too: a TorchFunctionMode sees every tensor method and torch
function called from Python (not the calls inside torch's own kernels: test_gpu.py adds CUDA's
sync detector for those where a GPU exists).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

from bnviz.config import RunConfig
from bnviz.models import Shape, StackedNet
from bnviz.norms import NoiseOnly, NoisyBatchNorm
from bnviz.train import Stack, make_stacks

# Tensor methods and torch functions whose result the host must wait for: a value (item,
# bool, …), a copy in host memory (tolist, numpy, cpu), or a size that depends on the values.
SYNCS = frozenset(
    {
        "item",
        "tolist",
        "numpy",
        "__array__",
        "cpu",
        "__bool__",
        "__int__",
        "__float__",
        "__complex__",
        "__index__",
        "__format__",
        "__repr__",
        "nonzero",
        "argwhere",
        "masked_select",
        "unique",
        "unique_consecutive",
        "equal",
        "allclose",
        "bincount",
        "repeat_interleave",
    }
)
INDEXING = frozenset({"__getitem__", "__setitem__", "index", "index_put", "index_put_"})


class HostSync(AssertionError):
    """A training step read a tensor's value on the host."""


def _has_mask(index: Any) -> bool:
    """Whether an index holds a boolean (or uint8) tensor: its result size needs nonzero()."""
    if isinstance(index, Tensor):
        return index.dtype in (torch.bool, torch.uint8)
    if isinstance(index, (tuple, list)):
        return any(_has_mask(i) for i in index)
    return False


class NoHostSync(TorchFunctionMode):
    """Raises HostSync on any operation in SYNCS, on boolean-mask indexing and on
    torch.where(condition) (nonzero in disguise), called from Python while it is active."""

    def __torch_function__(
        self, func: Callable, types: Sequence[type], args: Sequence = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if (
            name in SYNCS
            or (name in INDEXING and _has_mask(args[1:2]))
            or (name == "where" and len(args) + len(kwargs) == 1)
        ):
            raise HostSync(f"host sync inside a training step: {name}")
        return func(*args, **kwargs)


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    """One torch thread, as train_group trains: two spin-wait badly on a busy 2-core CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def quiet_steps(configs: Sequence[RunConfig], device: str = "cpu") -> list[list[int]]:
    """Per stack, the steps that record nothing (Stack.step returns no rows): found by
    training the group once, so whatever the recording schedule is, it decides."""
    quiet = []
    for stack in make_stacks(configs, torch.device(device)):
        steps = []
        while not stack.done:
            t = stack.t
            if not stack.step():
                steps.append(t)
        quiet.append(steps)
    return quiet


def train_guarded(
    configs: Sequence[RunConfig], guard: Callable[[], Any], device: str = "cpu"
) -> list[Stack]:
    """Train the group, each stack's quiet steps (quiet_steps) inside `guard()`; the others,
    which record, outside it. Returns the stacks, trained."""
    stacks = make_stacks(configs, torch.device(device))
    for stack, quiet in zip(stacks, quiet_steps(configs, device), strict=True):
        assert quiet, "no step without a record: nothing would be checked"
        todo = set(quiet)
        while not stack.done:
            if stack.t in todo:
                with guard():
                    assert stack.step() == []
            else:
                stack.step()
    return stacks


def cfg(**kw: Any) -> RunConfig:
    """A small digits run: 20 steps an epoch, two epochs (an epoch start among the steps)."""
    base = dict(hidden=(16, 16), n_samples=400, batch_size=20, epochs=2, lr=0.05)
    return RunConfig(**{**base, **kw})


GROUPS = {
    "batch": [cfg(norm="batch"), cfg(norm="none", seed=1)],
    "batch_dropout": [cfg(norm="batch", dropout=0.3), cfg(norm="none", dropout=0.0, seed=1)],
    "dropout_one_run": [cfg(norm="none", dropout=0.5)],
    "noisy_batch": [cfg(norm="noisy_batch", dropout=0.2), cfg(norm="noisy_batch", seed=1)],
    "noise_only": [cfg(norm="noise_only"), cfg(norm="none", seed=1)],
    "layer": [cfg(norm="layer", dropout=0.1), cfg(norm="none", seed=1)],
    "group": [cfg(norm="group", num_groups=4)],
    "ghost_batch": [cfg(norm="ghost_batch", ghost_batch_size=5, placement="after")],
    "batch_scratch": [cfg(norm="batch_scratch", momentum=None)],
    "adam_wd_agc": [
        cfg(norm="batch", optimizer="adam", weight_decay=1e-3, agc=0.1, train_only="norm"),
        cfg(norm="batch", optimizer="adam", seed=1),
    ],
    "momentum": [cfg(norm="none", optimizer="momentum", dropout=0.2)],
    "cnn": [
        cfg(model="cnn", hidden=(4, 4), norm="batch", dropout=0.1),
        cfg(model="cnn", hidden=(4, 4), norm="none", seed=1),
    ],
    "cnn_noisy": [cfg(model="cnn", hidden=(4, 4), norm="noisy_batch")],
}


@pytest.mark.parametrize("group", GROUPS)
def test_no_host_sync_in_a_training_step(group: str) -> None:
    for stack in train_guarded(GROUPS[group], NoHostSync):
        assert stack.t == stack.total and all(stack.active)


@pytest.mark.parametrize(
    "sync",
    [
        lambda t: t.item(),
        lambda t: t.tolist(),
        lambda t: bool(t.sum() > 0),
        lambda t: float(t.sum()),
        lambda t: int(t.sum()),
        lambda t: [0, 1, 2][t.long()[0]],
        lambda t: t.cpu(),
        lambda t: t.numpy(),
        lambda t: t[t > 0],
        lambda t: t.masked_fill(t > 0, 0)[t != 0],
        lambda t: t.__setitem__(t > 0, 0.0),
        lambda t: torch.nonzero(t),
        lambda t: torch.where(t > 0),
        lambda t: f"{t.sum():.2f}",
    ],
)
def test_the_guard_catches_host_syncs(sync: Callable[[Tensor], Any]) -> None:
    t = torch.tensor([0.5, -1.0, 2.0])
    with NoHostSync():
        t + 1, t[1:], t[torch.tensor([0, 2])], torch.where(t > 0, t, 0)  # these are fine
        with pytest.raises(HostSync):
            sync(t)


def test_the_guard_catches_the_per_step_tolist_this_module_removed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A dropout mask that read drop_p every step (as it once did) fails the step test."""
    original = StackedNet._dropout_mask

    def reads_drop_p(self: StackedNet, x: Tensor, wide: bool = True) -> Tensor | None:
        self.drop_p.tolist()
        return original(self, x, wide)

    monkeypatch.setattr(StackedNet, "_dropout_mask", reads_drop_p)
    with pytest.raises(HostSync, match="tolist"):
        train_guarded(GROUPS["dropout_one_run"], NoHostSync)


class CountFetches(TorchFunctionMode):
    """Counts the host syncs (SYNCS) called from Python, but not numpy(): probes.sort_rows
    sorts a CPU tensor's own memory with NumPy, which is no fetch (on a GPU it sorts there)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_function__(
        self, func: Callable, types: Sequence[type], args: Sequence = (), kwargs: dict | None = None
    ) -> Any:
        name = getattr(func, "__name__", "")
        if name in SYNCS - {"numpy", "__array__"}:
            self.names.append(name)
        return func(*args, **(kwargs or {}))


def test_a_record_step_fetches_once_per_kind_of_record() -> None:
    """History, layers (with params) and units rows each move their numbers to the host in
    one copy, not one per layer, run or statistic."""
    configs = [
        cfg(norm="batch", measures="units", record_every=3),
        cfg(norm="none", measures="units", record_every=3, seed=1),
    ]
    (stack,) = make_stacks(configs, torch.device("cpu"))
    stack.step()  # the first probe step also fetches the histograms' edges, fixed once
    seen: set[str] = set()
    while not stack.done:
        with CountFetches() as fetches:
            kinds = {kind for _, kind, _ in stack.step()}
        assert len(fetches.names) == len(kinds & {"history", "layers", "units"}), (
            kinds,
            fetches.names,
        )
        seen |= kinds
    assert {"history", "layers", "params", "units"} <= seen


def test_freezing_a_diverged_run_reads_nothing_on_the_host() -> None:
    (stack,) = make_stacks(GROUPS["batch"], torch.device("cpu"))
    lr = stack.opt.lr.clone()
    with NoHostSync():
        stack.opt.freeze(1)
    assert torch.equal(stack.opt.lr, torch.where(stack.opt.run_of == 1, 0.0, lr))


# --- the sync-free dropout and noise equal the per-run loops they replaced, to the bit ----------

DIGITS = Shape(64, 10, (1, 8, 8))


def old_dropout_mask(net: StackedNet, x: Tensor, wide: bool = True) -> Tensor | None:
    """StackedNet._dropout_mask as it was: a loop over runs reading drop_p every call."""
    if not (net.training and net.use_dropout):
        return None
    if not wide and net.m > 1:
        b, c = x.shape[1], x.shape[2]
    else:
        b, c = x.shape[0], x.shape[1] // net.m
    rest = x.shape[2:] if wide else ()
    keep = []
    for g, p in zip(net.generators, net.drop_p.tolist()):
        if p == 0:
            keep.append(torch.ones((b, c, *rest), dtype=x.dtype, device=x.device))
            continue
        r = torch.rand((b, c, *rest), generator=g, device=x.device)
        keep.append((r >= p).to(x.dtype) / (1 - p))
    return torch.cat(keep, dim=1) if wide or net.m == 1 else torch.stack(keep)


def old_noise(layer: NoisyBatchNorm, y: Tensor) -> Tensor:
    """NoisyBatchNorm._noise as it was: a loop over runs, three draws and the arithmetic each."""
    if not layer.training or not layer.generators:
        return y
    b, _, s = y.shape
    parts = []
    for g in layer.generators:
        mu = (torch.rand(1, layer.c, 1, generator=g) * 2 - 1) * layer.noise_mean
        sd = torch.rand(1, layer.c, 1, generator=g) * layer.noise_std
        parts.append(mu + sd * torch.randn(b, layer.c, s, generator=g))
    return y + torch.cat(parts, dim=1).to(y.dtype)


def streams(seeds: Sequence[int]) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


@pytest.mark.parametrize(
    "drops",
    [(0.5,), (0.0, 0.3), (0.1, 0.2, 0.0, 0.9), (0.25, 0.25), (1e-7, 0.95), (0.0, 0.0, 0.1)],
)
@pytest.mark.parametrize("layout", ["wide", "wide_conv", "per_run"])
def test_dropout_mask_equals_the_per_run_loop(drops: tuple[float, ...], layout: str) -> None:
    configs = [RunConfig(hidden=(8,), norm="none", dropout=p, seed=i) for i, p in enumerate(drops)]
    net = StackedNet(configs, DIGITS)
    m, b, c = len(drops), 6, 8
    x = {
        "wide": torch.zeros(b, m * c),
        "wide_conv": torch.zeros(b, m * c, 4, 4),
        "per_run": torch.zeros(m, b, c) if m > 1 else torch.zeros(b, c),
    }[layout]
    seeds = [10 + i for i in range(m)]
    for _ in range(3):  # successive steps keep drawing the same streams
        net.set_generators(streams(seeds))
        new = net._dropout_mask(x, wide=layout != "per_run")
        after_new = [g.get_state() for g in net.generators]
        net.set_generators(streams(seeds))
        old = old_dropout_mask(net, x, wide=layout != "per_run")
        after_old = [g.get_state() for g in net.generators]
        assert new.shape == old.shape == x.shape and new.dtype == old.dtype
        assert torch.equal(new, old)
        assert all(torch.equal(a, o) for a, o in zip(after_new, after_old))
        seeds = [s + 100 for s in seeds]


@pytest.mark.parametrize("kind", [NoisyBatchNorm, NoiseOnly])
@pytest.mark.parametrize("m, shape", [(1, (5, 3, 1)), (3, (7, 4, 1)), (2, (4, 3, 9))])
def test_noise_equals_the_per_run_loop(
    kind: type[NoisyBatchNorm], m: int, shape: tuple[int, int, int]
) -> None:
    b, c, s = shape
    layer = kind(m, c, RunConfig(norm="noisy_batch", noise_mean=0.3, noise_std=0.8))
    y = torch.randn(b, m * c, s, generator=torch.Generator().manual_seed(1))
    for seeds in ([1, 2, 3][:m], [7, 8, 9][:m]):
        layer.generators = streams(seeds)
        new = [layer._noise(y) for _ in range(2)]
        after_new = [g.get_state() for g in layer.generators]
        layer.generators = streams(seeds)
        old = [old_noise(layer, y) for _ in range(2)]
        after_old = [g.get_state() for g in layer.generators]
        assert all(torch.equal(n, o) for n, o in zip(new, old))
        assert all(torch.equal(a, o) for a, o in zip(after_new, after_old))
