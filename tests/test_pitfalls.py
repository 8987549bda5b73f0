"""The NumPy BN net of the train-vs-eval lesson (bnviz.pitfalls) against the same net in torch
(nn.Linear, nn.BatchNorm1d, torch.optim.SGD): forward in both modes, one SGD step, running
statistics for every momentum; and the pitfalls it shows, measured."""

from __future__ import annotations

import functools
import time

import numpy as np
import pytest
import torch
from torch import nn

from bnviz import pitfalls as pf
from bnviz.data import load_arrays


@functools.cache
def digits():
    xtr, ytr, xte, yte = load_arrays("digits")
    return xtr.astype(np.float64), ytr, xte.astype(np.float64), yte


def torch_net(net: pf.Net, momentum: float | None = 0.1) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(net.depth):
        lin = nn.Linear(*net.weights[i].shape[::-1]).double()
        bn = nn.BatchNorm1d(len(net.gammas[i]), momentum=momentum).double()
        with torch.no_grad():
            lin.weight[:], lin.bias[:] = torch.tensor(net.weights[i]), torch.tensor(net.biases[i])
            bn.weight[:], bn.bias[:] = torch.tensor(net.gammas[i]), torch.tensor(net.betas[i])
            rm, rv = net.running[momentum][i]
            bn.running_mean[:], bn.running_var[:] = torch.tensor(rm), torch.tensor(rv)
            bn.num_batches_tracked.fill_(net.steps)
        layers += [lin, bn, nn.ReLU()]
    last = nn.Linear(*net.weights[-1].shape[::-1]).double()
    with torch.no_grad():
        last.weight[:], last.bias[:] = torch.tensor(net.weights[-1]), torch.tensor(net.biases[-1])
    return nn.Sequential(*layers, last)


def test_forward_matches_torch_in_train_and_eval_mode():
    xtr, ytr, xte, _ = digits()
    net = pf.train_net(xtr, ytr, epochs=1)
    for momentum in (0.1, None):
        model = torch_net(net, momentum)
        model.eval()
        ref = model(torch.tensor(xte[:50])).detach().numpy()
        np.testing.assert_allclose(pf.forward(net, xte[:50], "eval", momentum)[0], ref, atol=1e-9)
    model.train()
    ref = model(torch.tensor(xte[:50])).detach().numpy()
    np.testing.assert_allclose(pf.forward(net, xte[:50], "train")[0], ref, atol=1e-9)


@pytest.mark.parametrize("momentum", [0.1, 0.01, None])
def test_sgd_steps_match_torch(momentum):
    xtr, ytr, _, _ = digits()
    net = pf.init_net(64, (64, 64), 10, seed=3)
    model = torch_net(net, momentum)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for t in range(3):
        idx = np.arange(32 * t, 32 * (t + 1))
        loss = pf.sgd_step(net, xtr[idx], ytr[idx], 0.1)
        opt.zero_grad()
        ref = nn.functional.cross_entropy(model(torch.tensor(xtr[idx])), torch.tensor(ytr[idx]))
        ref.backward()
        opt.step()
        assert abs(loss - ref.item()) < 1e-9
    linears = [m for m in model if isinstance(m, nn.Linear)]
    bns = [m for m in model if isinstance(m, nn.BatchNorm1d)]
    for i, lin in enumerate(linears):
        np.testing.assert_allclose(net.weights[i], lin.weight.detach().numpy(), atol=1e-9)
        np.testing.assert_allclose(net.biases[i], lin.bias.detach().numpy(), atol=1e-9)
    for i, bn in enumerate(bns):
        np.testing.assert_allclose(net.gammas[i], bn.weight.detach().numpy(), atol=1e-9)
        np.testing.assert_allclose(net.betas[i], bn.bias.detach().numpy(), atol=1e-9)
        rm, rv = net.running[momentum][i]
        np.testing.assert_allclose(rm, bn.running_mean.numpy(), atol=1e-9)
        np.testing.assert_allclose(rv, bn.running_var.numpy(), atol=1e-9)


def test_trains_fast_and_the_pitfalls_show():
    xtr, ytr, xte, yte = digits()
    t0 = time.perf_counter()
    net = pf.train_net(xtr, ytr)
    assert time.perf_counter() - t0 < 3.0
    eval_acc = (pf.predict(net, xte) == yte).mean()
    assert eval_acc >= 0.93
    # A forgotten eval(): large test batches are fine, small ones worse, one sample is chance.
    acc = {b: (pf.predict_train_mode(net, xte, b) == yte).mean() for b in (1, 8, 256)}
    assert abs(acc[256] - eval_acc) < 0.03
    assert acc[8] < acc[256]
    one = pf.predict_train_mode(net, xte, 1)
    assert len(set(one.tolist())) == 1  # every example gets the same prediction
    assert acc[1] < 0.2
    # Batches of one class each: normalizing removes what the class has in common.
    assert pf.accuracy_on_batches(net, xte, yte, pf.class_sorted(yte)) < 0.3
    # momentum 0.001 lags after 220 steps: its running statistics are still mostly 0 / 1.
    lag = (pf.predict(net, xte, 0.001) == yte).mean()
    assert lag < eval_acc


def test_the_lesson_states_the_steps_the_net_trains():
    """train_vs_eval's text names the step count of pitfalls.train_net (1,437 digits in
    batches of 32, the last partial one dropped: 44 a epoch × 5)."""
    from bnviz.lessons import LESSONS

    xtr, ytr, _, _ = digits()
    net = pf.train_net(xtr, ytr)
    assert net.steps == 220
    assert f"({net.steps} steps" in LESSONS["train_vs_eval"].text()


def test_an_examples_prediction_depends_on_its_batch_mates():
    xtr, ytr, xte, yte = digits()
    net = pf.train_net(xtr, ytr)
    rng = np.random.default_rng(0)
    mates = [rng.choice(np.arange(1, len(yte)), 7, replace=False) for _ in range(4)]
    probs = pf.with_batch_mates(net, xte, 0, mates)
    assert probs.shape == (4, 10)
    np.testing.assert_allclose(probs.sum(1), 1)
    assert np.ptp(probs, axis=0).max() > 1e-3  # the rows differ


def test_pollute_leaves_the_net_untouched():
    xtr, ytr, xte, yte = digits()
    net = pf.train_net(xtr, ytr, epochs=1)
    before = [r.copy() for r, _ in net.running[0.1]]
    polluted = pf.pollute(net, xte, pf.class_sorted(yte))
    for a, (b, _) in zip(before, net.running[0.1], strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(polluted.running[0.1][0][0], before[0])
