"""measures: a contained probe leaves training bit-identical; each measure against a slow,
obviously correct reference (a copy of the model, torch.optim, autograd)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bnviz import measures, probes, train
from bnviz.config import RunConfig
from bnviz.data import load_dataset
from bnviz.measures import contained
from bnviz.models import StackedNet
from bnviz.stack import cross_entropy
from bnviz.train import Stack, records_to_json, train_group

N_TRAIN = load_dataset("digits").n_train


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


# --- the measures against slow references ------------------------------------------------------


def reference_net(stack: Stack) -> StackedNet:
    """An independent copy of the stack's net (same weights and running statistics), trained
    with autograd (no fast path) and torch.optim."""
    net = StackedNet(stack.configs, stack.shape)
    net.load_state_dict(stack.net.state_dict())
    net.train()
    return net


def ref_grads(net: StackedNet, x, yt) -> list[torch.Tensor]:
    for p in net.parameters():
        p.grad = None
    losses = cross_entropy(net(x), yt)
    losses.sum().backward()
    return [w.grad.detach().clone() for w in net.weights]


def layer_params(net: StackedNet, layer: int) -> list[torch.nn.Parameter]:
    """Weights, bias, γ and β of 1-based layer `layer`."""
    out = [net.weights[layer - 1], net.biases[layer - 1]]
    norm = net.norm_of(layer) if layer <= net.depth else None
    return out + ([norm.weight, norm.bias] if norm is not None and norm.affine else [])


def trained_stack(c: RunConfig, steps: int = 5) -> tuple[Stack, torch.Tensor, torch.Tensor]:
    (stack,) = train.make_stacks([c], torch.device("cpu"))
    for _ in range(steps):
        stack.step()
    x, y = stack.data.x_train[:32], stack.data.y_train[:32]
    return stack, x.expand(1, -1, -1).contiguous(), y[:, None].contiguous()


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_ics_equals_torch_optim_and_autograd(norm: str) -> None:
    c = cfg(norm=norm, hidden=(12, 10, 8), activation="tanh", lr=0.3)
    stack, x, yt = trained_stack(c)
    (rows,) = measures.ics(stack, 5, x, yt)
    assert [r["layer"] for r in rows] == [2, 3, 4]
    ref = reference_net(stack)
    g = ref_grads(ref, x, yt)
    for r in rows:
        net = reference_net(stack)
        opt = torch.optim.SGD(
            [p for j in range(1, r["layer"]) for p in layer_params(net, j)], lr=0.3
        )
        ref_grads(net, x, yt)
        opt.step()
        g2 = ref_grads(net, x, yt)[r["layer"] - 1]
        a, b = g[r["layer"] - 1].flatten(), g2.flatten()
        assert r["l2"] == pytest.approx((a - b).norm().item(), rel=1e-4, abs=1e-9)
        assert r["cos"] == pytest.approx(
            torch.nn.functional.cosine_similarity(a, b, 0).item(), abs=1e-5
        )
        assert r["grad_norm"] == pytest.approx(a.norm().item(), rel=1e-4)
    assert any(r["l2"] > 0 for r in rows)


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_landscape_equals_autograd_along_the_gradient(norm: str) -> None:
    c = cfg(norm=norm, hidden=(12, 10), activation="relu", lr=0.2)
    stack, x, yt = trained_stack(c)
    (rows,) = measures.landscape(stack, 5, x, yt)
    (row,) = rows
    ref = reference_net(stack)
    ref_grads(ref, x, yt)
    params = list(ref.parameters())
    g0 = [p.grad.detach().clone() for p in params]
    gnorm = torch.sqrt(sum((g * g).sum() for g in g0))
    losses, diffs, betas = [], [], []
    for f in measures.FACTORS:
        net = reference_net(stack)
        with torch.no_grad():
            for p, g in zip(net.parameters(), g0):
                p -= f * 0.2 * g
        loss = cross_entropy(net(x), yt).sum()
        grads = torch.autograd.grad(loss, list(net.parameters()))
        d = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(grads, g0)))
        losses.append(loss.item())
        diffs.append(d.item())
        betas.append(d.item() / (f * 0.2 * gnorm.item()))
    assert row["etas"] == pytest.approx([f * 0.2 for f in measures.FACTORS])
    assert row["losses"] == pytest.approx(losses, rel=1e-4)
    assert row["grad_diffs"] == pytest.approx(diffs, rel=1e-4, abs=1e-7)
    assert row["loss_min"] == pytest.approx(min(losses), rel=1e-4)
    assert row["loss_max"] == pytest.approx(max(losses), rel=1e-4)
    assert row["beta"] == pytest.approx(max(betas), rel=1e-4)


def test_loss_slice_center_directions_and_a_corner() -> None:
    c = cfg(norm="batch", hidden=(12, 10), lr=0.2)
    stack, _, _ = trained_stack(c)
    d1, d2 = measures.directions(stack)
    for w in stack.net.weights:  # filter-normalized: every unit's row as long as the weights'
        a = stack.opt.offset(w)
        for d in (d1, d2):
            rows = d[a : a + w.numel()].view_as(w).flatten(2).norm(dim=2)
            torch.testing.assert_close(rows, w.detach().flatten(2).norm(dim=2))
    (rows,) = measures.loss_slice(stack, 9, points=3, span=0.5)
    (row,) = rows
    n = min(measures.SLICE_SAMPLES, stack.data.n_train)
    x = stack.data.x_train[:n][None]
    yt = stack.data.y_train[:n, None]
    for (i, b), (j, a) in [((1, 0.0), (1, 0.0)), ((0, -0.5), (2, 0.5))]:
        net = reference_net(stack)
        with torch.no_grad():
            for p in net.parameters():
                k = stack.opt.offset(
                    next(
                        q
                        for q in stack.net.parameters()
                        if q.shape == p.shape and torch.equal(q, p)
                    )
                )
                p += a * d1[k : k + p.numel()].view_as(p) + b * d2[k : k + p.numel()].view_as(p)
            want = cross_entropy(net(x), yt).item()
        assert row["loss"][i][j] == pytest.approx(want, rel=1e-4)
    assert row["loss_center"] == row["loss"][1][1]
    assert row["alphas"] == row["betas"] == [-0.5, 0.0, 0.5]


def test_measures_leave_the_records_bit_identical() -> None:
    group = [g.replace(epochs=2) for g in GROUP[:3]]
    off = train_group(group, device="cpu")
    on = train_group([g.replace(measures="all") for g in group], device="cpu")
    for a, b in zip(off, on):
        assert a.status == b.status == "finished"
        for kind in ("history", "layers", "params"):
            assert a.rows[kind] == b.rows[kind], kind
        assert b.ics and b.landscape and b.units and len(b.slice) == 1
        assert not (a.ics or a.landscape or a.units or a.slice)


def test_measure_rows_and_cadence() -> None:
    c = cfg(hidden=(8, 8, 8), epochs=3, measures="all", record_every=5)
    (rec,) = train_group([c], device="cpu")
    total = 3 * (N_TRAIN // 32)
    every = measures.measure_every(total, c.record_steps())  # 9 steps at batch 32
    steps = sorted({r["step"] for r in rec.ics})
    assert steps == sorted({*range(0, total, every), total - 1})
    assert steps == [r["step"] for r in rec.landscape]
    assert {r["layer"] for r in rec.ics} == {2, 3, 4}
    for r in rec.ics:
        assert r["l2"] >= 0 and -1 <= r["cos"] <= 1
    for r in rec.landscape:
        assert r["loss_min"] <= r["loss_max"] and r["beta"] > 0 and len(r["etas"]) == 5
        assert r["etas"][-1] / r["etas"][0] >= 10
    (s,) = rec.slice
    assert s["step"] == total and len(s["loss"]) == len(s["alphas"]) == measures.SLICE_POINTS
    layer_steps = sorted({r["step"] for r in rec.layers})
    assert sorted({r["step"] for r in rec.units}) == layer_steps
    for r in rec.units:
        assert 0 <= r["unit"] < 3 and r["p15"] <= r["p50"] <= r["p85"]
        assert sum(r["hist"]["counts"]) + r["under"] + r["over"] == 32


def test_unit_stats_against_numpy() -> None:
    g = torch.Generator().manual_seed(0)
    m, b, c = 3, 50, 7
    t = torch.randn(m, b, c, generator=g)
    v = probes.unit_values(t, m, 2, per_run=True)
    wide = t.transpose(0, 1).reshape(b, m * c)
    torch.testing.assert_close(probes.unit_values(wide, m, 2, per_run=False), v)
    assert v.shape == (m * 2, b)
    torch.testing.assert_close(v[2 * 1 + 1], t[1, :, 1])
    edges = probes.unit_edges(v)
    table, hist = probes.unit_stats(v, edges)
    for r in range(v.shape[0]):
        x = v[r].numpy().astype(np.float64)
        assert table[r, 0].item() == pytest.approx(x.mean(), abs=1e-5)
        assert table[r, 1].item() == pytest.approx(x.std(), abs=1e-5)
        want = np.quantile(x, [0.15, 0.5, 0.85])
        np.testing.assert_allclose(table[r, 2:].numpy(), want, rtol=1e-5, atol=1e-5)
        e = edges[r].numpy().astype(np.float64)
        counts, _ = np.histogram(x, bins=e)
        inside = hist[r, 1:-1].numpy()
        assert abs(inside - counts).sum() <= 2  # a value on an edge may fall either side
        assert hist[r].sum().item() == b


def test_train_only_and_agc() -> None:
    c = cfg(norm="batch", lr=0.2)
    group = [c.replace(train_only="norm"), c.replace(train_only="classifier", seed=1), c]
    (stack,) = train.make_stacks(group, torch.device("cpu"))
    before = [p.detach().clone() for p in stack.net.parameters()]
    stack.step()
    moved = [
        (p.detach() != b).reshape(3, -1).any(1)
        if p.dim() > 1
        else (p.detach() != b).view(3, -1).any(1)
        for p, b in zip(stack.net.parameters(), before)
    ]
    names = [n for n, _ in stack.net.named_parameters()]
    for name, mv in zip(names, moved):
        is_norm, is_cls = name.startswith("norms"), name.endswith(f".{stack.net.depth}")
        assert mv.tolist() == [is_norm, is_cls, True], name
    # AGC: every hidden unit's step ≤ λ·lr·max(‖w_unit‖, 1e-3); the classifier unclipped
    (plain,) = train.make_stacks([cfg(norm="none", init_scale=3.0, lr=0.5)], torch.device("cpu"))
    (agc,) = train.make_stacks(
        [cfg(norm="none", init_scale=3.0, lr=0.5, agc=0.01)], torch.device("cpu")
    )
    w0 = [w.detach().clone() for w in agc.net.weights]
    agc.step()
    plain.step()
    for i, (w, b) in enumerate(zip(agc.net.weights, w0)):
        step = (w.detach() - b).flatten(2).norm(dim=2)
        most = 0.01 * 0.5 * b.flatten(2).norm(dim=2).clamp_min(1e-3)
        if i < agc.net.depth:
            assert (step <= most * (1 + 1e-4)).all()
        else:
            torch.testing.assert_close(w.detach(), plain.net.weights[i].detach())
