"""BN's arithmetic in NumPy (bnviz.mechanics) against PyTorch: F.batch_norm, nn.BatchNorm1d/2d in
train and eval mode, autograd — in float64, to 1e-6 or closer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bnviz import mechanics as mx
from bnviz.data import load_arrays

TOL = 1e-9  # float64 on both sides: far inside the 1e-6 the pages promise


def digits_layer(m: int = 32, units: int = 20, seed: int = 0) -> np.ndarray:
    """Pre-activations (m, units) of a fresh Linear(64, units) on a real batch of digits."""
    x = load_arrays("digits")[0].astype(np.float64)[:m]
    w, b = mx.linear_init(64, units, seed)
    return x @ w.T + b


def test_alg1_equals_batch_norm_in_training_mode():
    z = digits_layer()
    rng = np.random.default_rng(1)
    gamma, beta = rng.normal(1, 0.3, z.shape[1]), rng.normal(0, 0.5, z.shape[1])
    s = mx.normalize(z, gamma, beta)
    zt = torch.tensor(z)
    ref = F.batch_norm(zt, None, None, torch.tensor(gamma), torch.tensor(beta), training=True)
    np.testing.assert_allclose(s.y, ref.numpy(), atol=TOL)
    np.testing.assert_allclose(s.mean, zt.mean(0).numpy(), atol=TOL)
    np.testing.assert_allclose(s.var, zt.var(0, unbiased=False).numpy(), atol=TOL)
    np.testing.assert_allclose(s.xhat.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(s.xhat.var(0), s.var / (s.var + mx.EPS), atol=1e-12)


def test_identity_affine_gives_the_input_back():
    s = mx.normalize(digits_layer())
    g, b = mx.identity_affine(s)
    again = mx.normalize(s.x, g, b)
    np.testing.assert_allclose(again.y, s.x, atol=1e-12)


def test_conv_statistics_per_channel_equal_batchnorm2d():
    x = load_arrays("digits")[0].astype(np.float64)[:16].reshape(16, 1, 8, 8)
    rng = np.random.default_rng(0)
    w, b = rng.normal(0, 0.3, (6, 1, 3, 3)), rng.normal(0, 0.1, 6)
    acts = mx.conv3x3(x, w, b)
    conv = F.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), padding=1)
    np.testing.assert_allclose(acts, conv.numpy(), atol=TOL)
    bn = torch.nn.BatchNorm2d(6).double().train()
    s = mx.normalize(acts)
    np.testing.assert_allclose(s.y, bn(conv).detach().numpy(), atol=TOL)
    assert mx.reduce_axes(4) == (0, 2, 3) and s.m == 16 * 8 * 8
    # running_var stores the unbiased variance over N·H·W values
    np.testing.assert_allclose(
        bn.running_var.numpy(), 0.9 + 0.1 * s.var * s.m / (s.m - 1), atol=TOL
    )


@pytest.mark.parametrize("shape", [(32, 20), (8, 5, 4, 4)])
def test_gradient_through_the_statistics_equals_autograd(shape):
    rng = np.random.default_rng(2)
    x = rng.normal(3, 2, shape)
    c = shape[1]
    gamma, beta = rng.normal(1, 0.3, c), rng.normal(0, 0.5, c)
    dy = rng.normal(0, 1, shape)
    s = mx.normalize(x, gamma, beta)
    dx, dg, db = mx.backward(s, dy)
    xt = torch.tensor(x, requires_grad=True)
    gt = torch.tensor(gamma, requires_grad=True)
    bt = torch.tensor(beta, requires_grad=True)
    y = F.batch_norm(xt, None, None, gt, bt, training=True)
    (y * torch.tensor(dy)).sum().backward()
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=TOL)
    np.testing.assert_allclose(dg, gt.grad.numpy(), atol=TOL)
    np.testing.assert_allclose(db, bt.grad.numpy(), atol=TOL)
    # With the statistics detached (constants), autograd gives the simple per-sample rule.
    xt2 = torch.tensor(x, requires_grad=True)
    mean = xt2.detach().mean(mx.reduce_axes(len(shape)), keepdim=True)
    var = xt2.detach().var(mx.reduce_axes(len(shape)), unbiased=False, keepdim=True)
    view = (1, c) + (1,) * (len(shape) - 2)
    y2 = (xt2 - mean) / torch.sqrt(var + mx.EPS) * gt.detach().view(view) + bt.detach().view(view)
    (y2 * torch.tensor(dy)).sum().backward()
    np.testing.assert_allclose(mx.backward_constant_stats(s, dy), xt2.grad.numpy(), atol=TOL)


def test_gradient_through_the_statistics_is_orthogonal_to_one_and_xhat():
    s = mx.normalize(digits_layer(), eps=0.0)  # exact only at ε = 0: x̂ has variance σ²/(σ²+ε)
    dx, _, _ = mx.backward(s, np.random.default_rng(0).normal(size=s.x.shape))
    np.testing.assert_allclose(dx.sum(0), 0, atol=1e-9)
    np.testing.assert_allclose((dx * s.xhat).sum(0), 0, atol=1e-9)


def test_batch_of_one_normalizes_to_beta_and_passes_no_gradient():
    x = digits_layer(m=1)
    s = mx.normalize(x, beta=np.full(x.shape[1], 0.7))
    np.testing.assert_allclose(s.y, 0.7)
    dx, _, _ = mx.backward(s, np.ones_like(x))
    np.testing.assert_allclose(dx, 0)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        F.batch_norm(torch.tensor(x), None, None, training=True)


def test_changing_one_sample_moves_every_output():
    s = mx.normalize(digits_layer(m=16))
    t = mx.change_one(s, 3, 5.0, unit=2)
    moved = np.abs(t.y[:, 2] - s.y[:, 2])
    assert (moved > 1e-3).all()  # every sample of that unit moved
    np.testing.assert_array_equal(t.y[:, [0, 1]], s.y[:, [0, 1]])  # other units: untouched


@pytest.mark.parametrize("momentum", [0.1, 0.01, None])
def test_running_statistics_follow_batchnorm1d(momentum):
    z = digits_layer(m=200, units=6)
    m = 20
    index = mx.batches(len(z), m, np.random.default_rng(0))
    means, variances = mx.batch_stats(z, index)
    rm, rv = mx.running_trace(means, variances, m, momentum)
    bn = torch.nn.BatchNorm1d(6, momentum=momentum).double().train()
    for t, idx in enumerate(index):
        bn(torch.tensor(z[idx]))
        np.testing.assert_allclose(rm[t], bn.running_mean.numpy(), atol=TOL)
        np.testing.assert_allclose(rv[t], bn.running_var.numpy(), atol=TOL)


def test_population_statistics_and_the_unbiased_factor():
    z = digits_layer(m=1000, units=4)
    m = 10
    index = mx.batches(len(z), m, np.random.default_rng(0))
    means, variances = mx.batch_stats(z, index)
    pop_mean, pop_var = mx.population_stats(means, variances, m)
    np.testing.assert_allclose(pop_mean, z[index.ravel()].mean(0), atol=TOL)
    # E[σ²_B] ≈ (m−1)/m · Var: the factor undoes it (loose: a sample estimate)
    np.testing.assert_allclose(pop_var, z.var(0, ddof=1), rtol=0.1)
    np.testing.assert_allclose(pop_var, m / (m - 1) * variances.mean(0), atol=TOL)
    # With momentum=None over one pass, BatchNorm1d ends at Alg. 2's figures.
    rm, rv = mx.running_trace(means, variances, m, None)
    np.testing.assert_allclose(rm[-1], pop_mean, atol=TOL)
    np.testing.assert_allclose(rv[-1], pop_var, atol=TOL)


def test_folded_map_equals_eval_mode():
    z = digits_layer(m=64, units=10)
    rng = np.random.default_rng(3)
    gamma, beta = rng.normal(1, 0.3, 10), rng.normal(0, 0.5, 10)
    mean, var = rng.normal(0, 1, 10), rng.uniform(0.2, 3, 10)
    bn = torch.nn.BatchNorm1d(10).double().eval()
    with torch.no_grad():
        bn.weight[:], bn.bias[:] = torch.tensor(gamma), torch.tensor(beta)
        bn.running_mean[:], bn.running_var[:] = torch.tensor(mean), torch.tensor(var)
    ref = bn(torch.tensor(z)).detach().numpy()
    a, c = mx.fold(gamma, beta, mean, var)
    np.testing.assert_allclose(a * z + c, ref, atol=1e-6)
    np.testing.assert_allclose(mx.eval_norm(z, mean, var, gamma, beta), ref, atol=TOL)
    # folded into the Linear before it
    x = load_arrays("digits")[0].astype(np.float64)[:64]
    w, b = mx.linear_init(64, 10, 0)
    w2, b2 = mx.fold_into_linear(w, b, a, c)
    ref2 = bn(torch.tensor(x @ w.T + b)).detach().numpy()
    np.testing.assert_allclose(x @ w2.T + b2, ref2, atol=1e-6)


def test_spread_shrinks_with_the_batch():
    z = digits_layer(m=1437, units=3)
    out = mx.spread(z, 0, [2, 8, 32, 128], n_batches=300)
    sds = [s.mean_sd for s in out]
    assert sds == sorted(sds, reverse=True)
    # μ_B's spread is σ/√m (sampling without replacement makes it a bit smaller)
    for s in out:
        assert 0.8 < s.mean_sd / (z[:, 0].std() / np.sqrt(s.m)) < 1.2
    assert out[0].std_sd > out[-1].std_sd


def test_linear_init_matches_torch_bounds():
    w, b = mx.linear_init(64, 100, 0)
    assert w.shape == (100, 64) and np.abs(w).max() <= 1 / 8 and np.abs(b).max() <= 1 / 8
