"""On a CUDA machine: the engine trains there and matches the CPU. Skipped (and reported as
skipped, not passed) where no GPU exists, as in CI."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch

from bnviz.config import RunConfig
from bnviz.train import train_group
from tests.test_syncs import GROUPS, NoHostSync, train_guarded

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]

CONFIGS = [
    RunConfig(hidden=(32, 32), epochs=2, norm=n, dropout=d)
    for n, d in (("batch", 0.0), ("none", 0.0), ("noisy_batch", 0.1), ("ghost_batch", 0.0))
] + [RunConfig(model="cnn", hidden=(8, 8), epochs=1, norm="batch")]


def test_engine_runs_on_cuda_and_tracks_the_cpu():
    gpu = train_group(CONFIGS, device="cuda")
    cpu = train_group(CONFIGS, device="cpu")
    for g, c in zip(gpu, cpu):
        assert g.status == "finished", g.message
        assert g.device.startswith("cuda")
        assert len(g.history) == len(c.history)
        # Same seeds and data; kernels differ, so compare where training ends up, loosely.
        assert g.history[-1]["test_acc"] == pytest.approx(c.history[-1]["test_acc"], abs=0.1)


@contextmanager
def no_sync_at_all() -> Iterator[None]:
    """NoHostSync (what Python asks for) and CUDA's own detector, which also sees the syncs
    inside torch's kernels and copies (a blocking host-to-device copy, an internal .item())."""
    before = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with NoHostSync():
            yield
    finally:
        torch.cuda.set_sync_debug_mode(before)


@pytest.mark.parametrize("group", GROUPS)
def test_no_host_sync_in_a_cuda_training_step(group: str) -> None:
    """Every step that records nothing, an epoch start included, queues its kernels without
    waiting for the GPU (test_syncs.py checks the same on the CPU, Python-side)."""
    for stack in train_guarded(GROUPS[group], no_sync_at_all, device="cuda"):
        assert stack.t == stack.total and all(stack.active)
