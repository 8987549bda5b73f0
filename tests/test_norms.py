"""bnviz.norms against PyTorch's own layers, micrograd-style: build the same thing twice, compare.

Every check runs forward *and* backward (gradients w.r.t. the input, γ and β) and compares the
running statistics after several training steps, in float64 so tolerances can be tight.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bnviz.config import RunConfig
from bnviz.norms import (
    BatchNorm,
    GhostBatchNorm,
    GroupNorm,
    InstanceNorm,
    LayerNorm,
    NoisyBatchNorm,
    ScratchBatchNorm,
    make_norm,
)

TOL = dict(rtol=1e-9, atol=1e-10)


def cfg(**kw) -> RunConfig:
    base = dict(hidden=(16, 16), epochs=1, batch_size=32, dataset="digits")
    base.update(kw)
    return RunConfig(**base)


def ours(norm: str, m: int, c: int, **kw) -> nn.Module:
    """One of our stacked norm layers in float64, with random (non-trivial) γ and β."""
    layer = make_norm(m, c, cfg(norm=norm, **kw)).double()
    if layer.affine:
        g = torch.Generator().manual_seed(123)
        with torch.no_grad():
            layer.weight.copy_(torch.rand(m * c, generator=g, dtype=torch.float64) + 0.5)
            layer.bias.copy_(torch.randn(m * c, generator=g, dtype=torch.float64))
    return layer


def copy_affine(dst: nn.Module, src: nn.Module, sl: slice = slice(None)) -> None:
    with torch.no_grad():
        dst.weight.copy_(src.weight[sl])
        dst.bias.copy_(src.bias[sl])


def batch(shape: tuple[int, ...], seed: int, shift: float = 0.0, scale: float = 1.0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64) * scale + shift


def forward_backward(
    layer: nn.Module, x: Tensor, gy: Tensor
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """Output, dL/dx, dL/dγ, dL/dβ for the loss sum(y · gy)."""
    x = x.clone().requires_grad_(True)
    for p in layer.parameters():
        p.grad = None
    y = layer(x)
    (y * gy).sum().backward()
    w = getattr(layer, "weight", None)
    b = getattr(layer, "bias", None)
    return (
        y.detach(),
        x.grad,
        None if w is None else w.grad.clone(),
        None if b is None else b.grad.clone(),
    )


def assert_close(a: Tensor | None, b: Tensor | None, **tol) -> None:
    assert (a is None) == (b is None)
    if a is not None:
        torch.testing.assert_close(a, b, **(tol or TOL))


def shape_for(dim: str, b: int, c: int) -> tuple[int, ...]:
    return (b, c) if dim == "1d" else (b, c, 3, 4)


def torch_bn(dim: str, c: int, **kw) -> nn.Module:
    cls = nn.BatchNorm1d if dim == "1d" else nn.BatchNorm2d
    return cls(c, **kw).double()


# --- BatchNorm (torch kernel) and ScratchBatchNorm (plain tensor ops) vs torch.nn.BatchNorm ---


@pytest.mark.parametrize("norm", ["batch", "batch_scratch"])
@pytest.mark.parametrize("dim", ["1d", "2d"])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_matches_torch_training_and_eval(norm: str, dim: str, momentum) -> None:
    c = 5
    mine = ours(norm, 1, c, momentum=momentum)
    ref = torch_bn(dim, c, momentum=momentum)
    copy_affine(ref, mine)
    mine.train(), ref.train()
    for step in range(4):  # batches with different means and spreads move the running stats
        x = batch(shape_for(dim, 8, c), step, shift=step - 1.5, scale=1 + step)
        gy = batch(shape_for(dim, 8, c), 100 + step)
        for a, b in zip(forward_backward(mine, x, gy), forward_backward(ref, x, gy)):
            assert_close(a, b)
        assert_close(mine.running_mean, ref.running_mean)
        assert_close(mine.running_var, ref.running_var)
    assert mine.num_batches_tracked == int(ref.num_batches_tracked) == 4
    # the running stats moved well away from their (0, 1) start
    assert mine.running_mean.abs().max() > 0.1
    assert (mine.running_var - 1).abs().max() > 0.1

    mine.eval(), ref.eval()
    x = batch(shape_for(dim, 6, c), 50, shift=0.7, scale=2.0)
    gy = batch(shape_for(dim, 6, c), 51)
    before = mine.running_mean.clone(), mine.running_var.clone()
    for a, b in zip(forward_backward(mine, x, gy), forward_backward(ref, x, gy)):
        assert_close(a, b)
    # eval uses (and leaves alone) the running statistics
    assert torch.equal(mine.running_mean, before[0])
    assert torch.equal(mine.running_var, before[1])
    y = mine(x)
    expected = (x - mine.running_mean.view(1, -1, *[1] * (x.dim() - 2))) / torch.sqrt(
        mine.running_var.view(1, -1, *[1] * (x.dim() - 2)) + mine.eps
    )
    expected = expected * mine.weight.view(1, -1, *[1] * (x.dim() - 2)) + mine.bias.view(
        1, -1, *[1] * (x.dim() - 2)
    )
    assert_close(y.detach(), expected.detach())


@pytest.mark.parametrize("norm", ["batch", "batch_scratch"])
@pytest.mark.parametrize("dim", ["1d", "2d"])
def test_running_var_is_unbiased_per_channel(norm: str, dim: str) -> None:
    """momentum=1: the running stats *are* the last batch's mean and unbiased variance."""
    c = 3
    mine = ours(norm, 1, c, momentum=1.0)
    mine.train()
    x = batch(shape_for(dim, 4, c), 7, shift=2.0, scale=3.0)
    mine(x)
    per_channel = x.transpose(0, 1).reshape(c, -1)  # (C, batch × H × W)
    n = per_channel.shape[1]
    assert n == (4 if dim == "1d" else 4 * 3 * 4)
    assert_close(mine.running_mean, per_channel.mean(1))
    assert_close(mine.running_var, per_channel.var(1, unbiased=True))
    biased = per_channel.var(1, unbiased=False)
    assert_close(mine.running_var, biased * n / (n - 1))
    assert not torch.allclose(mine.running_var, biased)


@pytest.mark.parametrize("norm", ["batch", "batch_scratch"])
@pytest.mark.parametrize("dim", ["1d", "2d"])
def test_normalizes_with_biased_batch_statistics(norm: str, dim: str) -> None:
    c = 4
    mine = ours(norm, 1, c, affine=False)
    mine.train()
    x = batch(shape_for(dim, 6, c), 3, shift=-1.0, scale=4.0)
    y = mine(x).detach()
    per_channel = y.transpose(0, 1).reshape(c, -1)
    assert_close(per_channel.mean(1), torch.zeros(c, dtype=torch.float64), atol=1e-12, rtol=0)
    # biased variance: x̂ has variance 1/(1 + eps/σ²), just under 1
    var = per_channel.var(1, unbiased=False)
    assert torch.all(var < 1) and torch.all(var > 1 - 1e-5)


@pytest.mark.parametrize("norm", ["batch", "batch_scratch"])
@pytest.mark.parametrize("dim", ["1d", "2d"])
def test_track_running_stats_false_uses_batch_stats_in_eval(norm: str, dim: str) -> None:
    c = 4
    mine = ours(norm, 1, c, track_running_stats=False)
    ref = torch_bn(dim, c, track_running_stats=False)
    copy_affine(ref, mine)
    assert mine.running_mean is None and mine.running_var is None
    for mode in ("train", "eval"):
        getattr(mine, mode)(), getattr(ref, mode)()
        x = batch(shape_for(dim, 8, c), 11, shift=3.0, scale=2.0)
        gy = batch(shape_for(dim, 8, c), 12)
        for a, b in zip(forward_backward(mine, x, gy), forward_backward(ref, x, gy)):
            assert_close(a, b)
    # eval output of a shifted batch is still centred: batch statistics, not running ones
    y = mine(batch(shape_for(dim, 8, c), 13, shift=10.0)).detach()
    centred = (y - mine.bias.view(1, -1, *[1] * (y.dim() - 2))).transpose(0, 1).reshape(c, -1)
    assert centred.mean(1).abs().max() < 1e-9


@pytest.mark.parametrize("norm", ["batch", "batch_scratch"])
@pytest.mark.parametrize("dim", ["1d", "2d"])
def test_affine_false(norm: str, dim: str) -> None:
    c = 4
    mine = ours(norm, 1, c, affine=False)
    ref = torch_bn(dim, c, affine=False)
    assert mine.weight is None and mine.bias is None and not list(mine.parameters())
    for mode in ("train", "train", "eval"):
        getattr(mine, mode)(), getattr(ref, mode)()
        x = batch(shape_for(dim, 8, c), 21, shift=1.0, scale=2.0)
        gy = batch(shape_for(dim, 8, c), 22)
        for a, b in zip(forward_backward(mine, x, gy), forward_backward(ref, x, gy)):
            assert_close(a, b)
    assert_close(mine.running_var, ref.running_var)


def test_scratch_equals_kernel_batchnorm_on_a_stack() -> None:
    m, c = 3, 4
    a, b = ours("batch", m, c), ours("batch_scratch", m, c)
    assert isinstance(a, BatchNorm) and isinstance(b, ScratchBatchNorm)
    for step in range(3):
        x = batch((10, m * c, 2, 2), step, shift=step, scale=step + 1)
        gy = batch((10, m * c, 2, 2), 40 + step)
        for u, v in zip(forward_backward(a, x, gy), forward_backward(b, x, gy)):
            assert_close(u, v)
    assert_close(a.running_var, b.running_var)


# --- runs of a stack never mix --------------------------------------------------------------


@pytest.mark.parametrize("norm", ["batch", "batch_scratch"])
@pytest.mark.parametrize("dim", ["1d", "2d"])
def test_stacked_batchnorm_equals_separate_modules(norm: str, dim: str) -> None:
    m, c = 3, 4
    mine = ours(norm, m, c)
    refs = [torch_bn(dim, c) for _ in range(m)]
    for r, ref in enumerate(refs):
        copy_affine(ref, mine, slice(r * c, (r + 1) * c))
    for step in range(3):
        # each run gets its own scale, so shared statistics would be caught
        x = torch.cat(
            [
                batch(shape_for(dim, 8, c), 10 * step + r, shift=r, scale=1 + 2 * r)
                for r in range(m)
            ],
            dim=1,
        )
        gy = batch(shape_for(dim, 8, m * c), 99 + step)
        y, gx, gw, gb = forward_backward(mine, x, gy)
        for r, ref in enumerate(refs):
            s = slice(r * c, (r + 1) * c)
            ry, rgx, rgw, rgb = forward_backward(ref, x[:, s], gy[:, s])
            assert_close(y[:, s], ry)
            assert_close(gx[:, s], rgx)
            assert_close(gw[s], rgw)
            assert_close(gb[s], rgb)
            assert_close(mine.running_mean[s], ref.running_mean)
            assert_close(mine.running_var[s], ref.running_var)
    mine.eval()
    for ref in refs:
        ref.eval()
    x = batch(shape_for(dim, 5, m * c), 77)
    y = mine(x).detach()
    for r, ref in enumerate(refs):
        s = slice(r * c, (r + 1) * c)
        assert_close(y[:, s], ref(x[:, s]).detach())


# --- ghost batch norm ------------------------------------------------------------------------


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("dim", ["1d", "2d"])
def test_ghost_batch_equals_chunkwise_torch_bn(momentum, dim: str) -> None:
    m, c, g, b = 2, 3, 4, 12
    mine = ours("ghost_batch", m, c, ghost_batch_size=g, batch_size=b, momentum=momentum)
    assert isinstance(mine, GhostBatchNorm)
    refs = [torch_bn(dim, c, momentum=momentum) for _ in range(m)]
    for r, ref in enumerate(refs):
        copy_affine(ref, mine, slice(r * c, (r + 1) * c))
    for step in range(3):
        x = batch(shape_for(dim, b, m * c), step, shift=step - 1, scale=1 + step)
        # chunks with different offsets: per-chunk statistics differ from whole-batch ones
        x = x + torch.arange(b // g, dtype=x.dtype).repeat_interleave(g).view(
            -1, *[1] * (x.dim() - 1)
        )
        gy = batch(shape_for(dim, b, m * c), 30 + step)
        y, gx, gw, gb = forward_backward(mine, x, gy)
        for r, ref in enumerate(refs):
            s = slice(r * c, (r + 1) * c)
            xs = x[:, s].clone().requires_grad_(True)
            ref.weight.grad = ref.bias.grad = None
            ys = torch.cat([ref(xs[k : k + g]) for k in range(0, b, g)])
            (ys * gy[:, s]).sum().backward()
            assert_close(y[:, s], ys.detach())
            assert_close(gx[:, s], xs.grad)
            assert_close(gw[s], ref.weight.grad)
            assert_close(gb[s], ref.bias.grad)
            assert_close(mine.running_mean[s], ref.running_mean)
            assert_close(mine.running_var[s], ref.running_var)
    assert mine.num_batches_tracked == 3 * (b // g) == int(refs[0].num_batches_tracked)
    # whole-batch BN would give a different output
    whole = F.batch_norm(x, None, None, mine.weight, mine.bias, True, 0.0, mine.eps)
    assert not torch.allclose(y, whole.detach())
    mine.eval()
    for ref in refs:
        ref.eval()
    x = batch(shape_for(dim, 5, m * c), 8)
    y = mine(x).detach()
    for r, ref in enumerate(refs):
        s = slice(r * c, (r + 1) * c)
        assert_close(y[:, s], ref(x[:, s]).detach())


def test_ghost_batch_without_running_stats_uses_whole_batch_in_eval() -> None:
    mine = ours("ghost_batch", 1, 3, ghost_batch_size=4, batch_size=8, track_running_stats=False)
    assert mine.running_mean is None
    x = batch((12, 3), 5, shift=2.0)
    mine.eval()
    expected = F.batch_norm(x, None, None, mine.weight, mine.bias, True, 0.0, mine.eps)
    assert_close(mine(x).detach(), expected.detach())


# --- per-sample norms: layer, group, instance -------------------------------------------------


@pytest.mark.parametrize("dim", ["1d", "2d"])
def test_layer_norm_matches_torch(dim: str) -> None:
    m, c = 2, 6
    mine = ours("layer", m, c)
    assert isinstance(mine, LayerNorm) and mine.running_mean is None
    x = batch(shape_for(dim, 5, m * c), 1, scale=3.0) + torch.arange(5.0, dtype=torch.float64).view(
        -1, *[1] * (len(shape_for(dim, 5, m * c)) - 1)
    )
    gy = batch(x.shape, 2)
    y, gx, gw, gb = forward_backward(mine, x, gy)
    xs = x.clone().requires_grad_(True)
    w = mine.weight.detach().clone().requires_grad_(True)
    b = mine.bias.detach().clone().requires_grad_(True)
    parts = []
    for r in range(m):
        s = slice(r * c, (r + 1) * c)
        xr = xs[:, s]
        xhat = F.layer_norm(xr, xr.shape[1:], eps=mine.eps)  # over units (and pixels)
        view = (1, c, *[1] * (x.dim() - 2))
        parts.append(xhat * w[s].view(view) + b[s].view(view))  # γ/β per unit/channel
    ref = torch.cat(parts, dim=1)
    (ref * gy).sum().backward()
    assert_close(y, ref.detach())
    assert_close(gx, xs.grad)
    assert_close(gw, w.grad)
    assert_close(gb, b.grad)


@pytest.mark.parametrize("dim", ["1d", "2d"])
def test_group_norm_matches_torch(dim: str) -> None:
    m, c, groups = 3, 8, 4
    mine = ours("group", m, c, num_groups=groups)
    assert isinstance(mine, GroupNorm)
    refs = [nn.GroupNorm(groups, c).double() for _ in range(m)]
    for r, ref in enumerate(refs):
        copy_affine(ref, mine, slice(r * c, (r + 1) * c))
    x = batch(shape_for(dim, 5, m * c), 3, scale=2.0)
    gy = batch(x.shape, 4)
    y, gx, gw, gb = forward_backward(mine, x, gy)
    for r, ref in enumerate(refs):
        s = slice(r * c, (r + 1) * c)
        ry, rgx, rgw, rgb = forward_backward(ref, x[:, s], gy[:, s])
        assert_close(y[:, s], ry)
        assert_close(gx[:, s], rgx)
        assert_close(gw[s], rgw)
        assert_close(gb[s], rgb)


def test_instance_norm_matches_torch() -> None:
    m, c = 2, 3
    mine = ours("instance", m, c, model="cnn")
    assert isinstance(mine, InstanceNorm)
    refs = [nn.InstanceNorm2d(c, affine=True).double() for _ in range(m)]
    for r, ref in enumerate(refs):
        copy_affine(ref, mine, slice(r * c, (r + 1) * c))
    x = batch((4, m * c, 5, 5), 6, shift=1.0, scale=3.0)
    gy = batch(x.shape, 7)
    y, gx, gw, gb = forward_backward(mine, x, gy)
    for r, ref in enumerate(refs):
        s = slice(r * c, (r + 1) * c)
        ry, rgx, rgw, rgb = forward_backward(ref, x[:, s], gy[:, s])
        assert_close(y[:, s], ry)
        assert_close(gx[:, s], rgx)
        assert_close(gw[s], rgw)
        assert_close(gb[s], rgb)


@pytest.mark.parametrize(
    ("norm", "dim", "kw"),
    [
        ("layer", "1d", {}),
        ("layer", "2d", {}),
        ("group", "1d", {"num_groups": 2}),
        ("group", "2d", {"num_groups": 2}),
        ("instance", "2d", {"model": "cnn"}),
    ],
)
def test_per_sample_norms_ignore_the_rest_of_the_batch(norm: str, dim: str, kw: dict) -> None:
    m, c = 2, 4
    mine = ours(norm, m, c, **kw)
    x = batch(shape_for(dim, 6, m * c), 9, scale=2.0)
    other = x.clone()
    other[1:] = batch(other[1:].shape, 10, shift=50.0, scale=20.0)
    for mode in ("train", "eval"):
        getattr(mine, mode)()
        a, b, alone = mine(x), mine(other), mine(x[:1])
        assert_close(a[:1], b[:1])
        assert_close(a[:1], alone)
        assert not torch.allclose(a[1:], b[1:])


# --- noisy batch norm -------------------------------------------------------------------------


def noisy(m: int, c: int, seeds: list[int], **kw) -> NoisyBatchNorm:
    layer = ours("noisy_batch", m, c, **kw)
    assert isinstance(layer, NoisyBatchNorm)
    layer.generators = [torch.Generator().manual_seed(s) for s in seeds]
    return layer


def plain_bn_like(layer: nn.Module, m: int, c: int) -> BatchNorm:
    bn = ours("batch", m, c)
    bn.load_state_dict(layer.state_dict())
    bn.num_batches_tracked = layer.num_batches_tracked
    return bn


@pytest.mark.parametrize("dim", ["1d", "2d"])
def test_noisy_batch_eval_is_plain_bn(dim: str) -> None:
    m, c = 2, 4
    layer = noisy(m, c, [0, 1])
    for step in range(3):
        layer(batch(shape_for(dim, 16, m * c), step, shift=step))
    layer.eval()
    bn = plain_bn_like(layer, m, c)
    bn.eval()
    x = batch(shape_for(dim, 16, m * c), 9)
    assert_close(layer(x), bn(x))
    assert_close(layer(x), layer(x))  # no noise, nothing random


@pytest.mark.parametrize("dim", ["1d", "2d"])
def test_noisy_batch_training_adds_fresh_noise_each_step(dim: str) -> None:
    m, c, b = 2, 4, 256
    layer = noisy(m, c, [0, 1], noise_mean=0.5, noise_std=1.0)
    bn = plain_bn_like(layer, m, c)
    layer.train(), bn.train()
    x = batch(shape_for(dim, b, m * c), 3, shift=1.0, scale=2.0)
    means = []
    for _ in range(3):
        y = layer(x)
        assert y.shape == x.shape
        noise = (y - bn(x)).detach()
        assert noise.abs().mean() > 1e-3
        per_unit = noise.transpose(0, 1).reshape(m * c, -1)
        means.append(per_unit.mean(1))
        # each unit's noise mean is drawn from U(-0.5, 0.5); its std from U(0, 1)
        assert torch.all(per_unit.mean(1).abs() < 0.5 + 4 / per_unit.shape[1] ** 0.5)
        assert torch.all(per_unit.std(1) < 1.2)
    # the per-unit shift changes between steps (the input did not)
    assert (means[0] - means[1]).abs().max() > 0.05
    assert (means[1] - means[2]).abs().max() > 0.05
    # running statistics are those of plain BN: the noise comes after the normalization
    assert_close(layer.running_mean, bn.running_mean)
    assert_close(layer.running_var, bn.running_var)


def test_noisy_batch_same_generator_same_noise_and_runs_are_independent() -> None:
    m, c = 2, 3
    x = batch((32, m * c), 4)
    a = noisy(m, c, [5, 6])(x)
    b = noisy(m, c, [5, 6])(x)
    other = noisy(m, c, [5, 7])(x)
    assert torch.equal(a, b)
    assert torch.equal(a[:, :c], other[:, :c])  # run 0's noise ignores run 1's stream
    assert not torch.allclose(a[:, c:], other[:, c:])
    # zero noise settings give plain BN
    quiet = noisy(m, c, [5, 6], noise_mean=0.0, noise_std=0.0)
    assert_close(quiet(x), plain_bn_like(noisy(m, c, [5, 6]), m, c)(x))
