"""measures: a contained probe leaves training bit-identical; each measure against a slow,
obviously correct reference (a copy of the model, torch.optim, autograd)."""

from __future__ import annotations

import pytest
import torch

from bnviz import train
from bnviz.config import RunConfig
from bnviz.measures import contained
from bnviz.train import Stack, records_to_json, train_group


def cfg(**kw) -> RunConfig:
    base = dict(hidden=(16, 16), epochs=1, batch_size=32, dataset="digits", record_every=5)
    base.update(kw)
    return RunConfig(**base)


def without_timing(d: dict) -> dict:
    for run in d["runs"]:
        run.pop("seconds")
    return d


GROUP = [  # fast path, autograd with dropout and noise streams, Adam state, ghost counters
    cfg(norm="batch", dropout=0.2, seed=1),
    cfg(norm="none", dropout=0.2, seed=2),
    cfg(norm="noisy_batch", dropout=0.1, seed=3),
    cfg(norm="ghost_batch", ghost_batch_size=8, optimizer="adam", lr=0.01, momentum=None),
    cfg(norm="batch", optimizer="momentum", activation="tanh", placement="after"),
]


def test_contained_trials_leave_records_bit_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = without_timing(records_to_json(train_group(GROUP, device="cpu")))
    real = Stack.step

    def meddling(self: Stack):  # before every step: a gradient, an update and a walk, undone
        x, y = self.data.x_train[:64], self.data.y_train[:64]
        xs = x.expand(self.m, -1, -1)
        yt = y[:, None].expand(-1, self.m)
        with contained(self) as fresh:
            self.gradient(xs, yt)
            self.opt.step()
            fresh()
            self.opt.flat.add_(1.0)
            self.train_step(xs, yt)
            self.evaluate(x, y)
        return real(self)

    monkeypatch.setattr(Stack, "step", meddling)
    meddled = without_timing(records_to_json(train_group(GROUP, device="cpu")))
    assert meddled == plain
    assert [r["status"] for r in plain["runs"]] == ["finished"] * len(GROUP)


def test_contained_restores_every_piece_of_state() -> None:
    (stack,) = train.make_stacks([GROUP[3]], torch.device("cpu"))
    for _ in range(3):
        stack.step()
    norm = stack.net.norms[0]
    before = (
        stack.opt.flat.clone(),
        stack.opt.grad.clone(),
        {k: v.clone() for k, v in stack.opt.state.items()},
        stack.opt.t,
        norm.running_mean.clone(),
        norm.num_batches_tracked,
        [g.get_state() for g in stack.net.generators],
    )
    x = stack.data.x_train[:32].expand(1, -1, -1)
    yt = stack.data.y_train[:32, None]
    with contained(stack):
        stack.train_step(x, yt)
        stack.train_step(x, yt)
        stack.net.eval()
    assert torch.equal(stack.opt.flat, before[0]) and torch.equal(stack.opt.grad, before[1])
    assert stack.opt.state.keys() == before[2].keys()
    assert all(torch.equal(stack.opt.state[k], v) for k, v in before[2].items())
    assert stack.opt.t == before[3]
    assert torch.equal(norm.running_mean, before[4]) and norm.num_batches_tracked == before[5]
    assert all(torch.equal(g.get_state(), s) for g, s in zip(stack.net.generators, before[6]))
    assert stack.net.training
