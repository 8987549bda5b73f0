"""Normalization layers for a *stack* of M runs trained as one batched network.

Activations are "wide": (B, M·C) for dense layers or (B, M·C, H, W) for conv layers, so run m
owns channels m·C … (m+1)·C−1. Seen as (B, M·C, S) with S spatial positions, BatchNorm is then
exactly PyTorch's BatchNorm1d/2d over M·C features: per feature (dense) or per channel (conv),
one statistic over the batch (and the pixels). Parameters and buffers are stored flat (M·C,),
run-major, so `.view(M, C)` addresses one run and torch's kernels take them directly.

Names follow torch.nn.BatchNorm: weight (γ), bias (β), running_mean, running_var,
num_batches_tracked, momentum, eps, affine, track_running_stats.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import RunConfig


class StackNorm(nn.Module):
    """Base: γ/β of shape (M·C,) and, for batch statistics, running buffers of shape (M·C,)."""

    has_running_stats = False
    first = 0  # which run of its stack is this norm's first (models.StackedNet sets it)

    def __init__(self, m: int, c: int, cfg: RunConfig) -> None:
        super().__init__()
        self.m, self.c = m, c
        self.eps = cfg.eps
        self.momentum = cfg.momentum
        self.affine = cfg.affine
        self.track_running_stats = cfg.track_running_stats and self.has_running_stats
        if self.affine:
            self.weight = nn.Parameter(torch.ones(m * c))
            self.bias = nn.Parameter(torch.zeros(m * c))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", torch.zeros(m * c))
            self.register_buffer("running_var", torch.ones(m * c))
            self.num_batches_tracked = 0
        else:
            self.running_mean = None
            self.running_var = None

    def _affine(self, xhat: Tensor) -> Tensor:
        """γ·x̂ + β on a (B, M·C, S) tensor."""
        if not self.affine:
            return xhat
        return xhat * self.weight.view(1, -1, 1) + self.bias.view(1, -1, 1)

    def _factor(self) -> float:
        """Weight of the new batch statistic in the running average (PyTorch's rule)."""
        self.num_batches_tracked += 1
        if self.momentum is None:  # cumulative moving average
            return 1.0 / self.num_batches_tracked
        return self.momentum

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 3:
            return self.norm3(x)
        shape = x.shape
        return self.norm3(x.reshape(shape[0], shape[1], -1)).reshape(shape)  # via (B, M·C, S)

    def norm3(self, x: Tensor) -> Tensor:
        raise NotImplementedError


class BatchNorm(StackNorm):
    """torch.nn.functional.batch_norm over all M·C features at once (BatchNorm1d/2d)."""

    has_running_stats = True

    def forward(self, x: Tensor) -> Tensor:  # any (B, M·C, *) shape, as torch's kernel takes it
        return self.norm3(x)

    def norm3(self, x: Tensor) -> Tensor:
        use_batch = self.training or not self.track_running_stats
        factor = self._factor() if (self.training and self.track_running_stats) else 0.0
        return F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            use_batch,
            factor,
            self.eps,
        )


class ScratchBatchNorm(StackNorm):
    """BatchNorm in plain tensor operations: the teaching reference (Ioffe & Szegedy Alg. 1–2)."""

    has_running_stats = True

    def norm3(self, x: Tensor) -> Tensor:
        if self.training or not self.track_running_stats:
            n = x.shape[0] * x.shape[2]  # values per feature: batch × pixels
            mean = x.mean(dim=(0, 2))  # μ_B, (M·C,)
            var = x.var(dim=(0, 2), unbiased=False)  # σ²_B, biased: used to normalize
            if self.training and self.track_running_stats:
                m = self._factor()
                with torch.no_grad():
                    unbiased = var * (n / max(n - 1, 1))  # stored var is unbiased (× m/(m−1))
                    rm, rv = self.running_mean, self.running_var
                    rm.mul_(1 - m).add_(mean.detach(), alpha=m)
                    rv.mul_(1 - m).add_(unbiased.detach(), alpha=m)
        else:
            mean, var = self.running_mean, self.running_var
        xhat = (x - mean.view(1, -1, 1)) / torch.sqrt(var.view(1, -1, 1) + self.eps)
        return self._affine(xhat)


class GhostBatchNorm(StackNorm):
    """BN whose statistics come from virtual sub-batches of `ghost_batch_size` (Hoffer et al.).

    Equivalent to applying BatchNorm to each chunk in turn, running statistics included.
    """

    has_running_stats = True

    def __init__(self, m: int, c: int, cfg: RunConfig) -> None:
        super().__init__(m, c, cfg)
        self.ghost = cfg.ghost_batch_size
        self._weights_key: tuple | None = None  # see _update_running
        self._weights = torch.empty(0)

    def norm3(self, x: Tensor) -> Tensor:
        if not self.training and self.track_running_stats:
            mean, var = self.running_mean, self.running_var
            xhat = (x - mean.view(1, -1, 1)) / torch.sqrt(var.view(1, -1, 1) + self.eps)
            return self._affine(xhat)
        b, mc, s = x.shape
        g = min(self.ghost, b) if self.training else b
        k = b // g
        xg = x.reshape(k, g, mc, s)
        mean = xg.mean(dim=(1, 3), keepdim=True)  # (k, 1, M·C, 1): one μ per ghost batch
        var = xg.var(dim=(1, 3), keepdim=True, unbiased=False)
        if self.training and self.track_running_stats:
            self._update_running(mean.view(k, mc).detach(), var.view(k, mc).detach(), g * s)
        xhat = (xg - mean) / torch.sqrt(var + self.eps)
        return self._affine(xhat.reshape(b, mc, s))

    @torch.no_grad()
    def _update_running(self, means: Tensor, vars_: Tensor, n: int) -> None:
        """The running statistics after k ghost batches' (k, M·C) means and biased variances
        of n values each (stored variances are unbiased, × n/(n−1))."""
        k = means.shape[0]
        rm, rv = self.running_mean, self.running_var
        if self.momentum is None:  # cumulative average over every ghost batch seen
            n0 = self.num_batches_tracked
            self.num_batches_tracked += k
            rm.mul_(n0).add_(means.sum(0)).div_(n0 + k)
            rv.mul_(n0).add_(vars_.sum(0) * (n / max(n - 1, 1))).div_(n0 + k)
            return
        self.num_batches_tracked += k
        # k sequential updates r ← (1−m)r + m·s_i, in closed form: weights m(1−m)^(k−1−i)
        key = (k, n, means.dtype, means.device)
        if self._weights_key != key:  # made once per shape: a step then costs 4 ops
            m = self.momentum
            w = m * (1 - m) ** torch.arange(k - 1, -1, -1, dtype=means.dtype)
            self._weights = torch.stack([w, w * (n / max(n - 1, 1))]).to(means.device)
            self._weights_key = key
        rm.mul_((1 - self.momentum) ** k).add_(self._weights[0] @ means)
        rv.mul_((1 - self.momentum) ** k).add_(self._weights[1] @ vars_)


class NoisyBatchNorm(BatchNorm):
    """BN followed by Santurkar et al.'s noise: the layer's distribution shifts every step.

    Each training step draws, per run and unit, a mean μ ~ U(−noise_mean, noise_mean) and a std
    σ ~ U(0, noise_std); every sample then gets its own additive noise ~ N(μ, σ²). Eval: no noise.
    """

    def __init__(self, m: int, c: int, cfg: RunConfig) -> None:
        super().__init__(m, c, cfg)
        self.noise_mean, self.noise_std = cfg.noise_mean, cfg.noise_std
        self.generators: list[torch.Generator] = []

    def forward(self, x: Tensor) -> Tensor:  # via (B, M·C, S): the noise is drawn on that view
        return StackNorm.forward(self, x)

    def norm3(self, x: Tensor) -> Tensor:
        return self._noise(super().norm3(x))

    def _noise(self, y: Tensor) -> Tensor:
        """y plus this step's noise. Each run draws μ, σ (C each) and its samples' noise
        (B, C, S) from its own stream, in that order (a run's noise never depends on the
        others'); the arithmetic is then one op per step for all runs, not per run."""
        if not self.training or not self.generators:
            return y
        b, _, s = y.shape
        m, c, dev = len(self.generators), self.c, y.device
        u = torch.empty(m, 2, 1, c, 1, device=dev)  # per run: U(0, 1) for μ, then for σ
        z = torch.empty(m, b, c, s, device=dev)  # per run: N(0, 1) per sample, unit and pixel
        for i, g in enumerate(self.generators):
            torch.rand(1, c, 1, generator=g, device=dev, out=u[i, 0])
            torch.rand(1, c, 1, generator=g, device=dev, out=u[i, 1])
            torch.randn(b, c, s, generator=g, device=dev, out=z[i])
        mu = (u[:, 0] * 2 - 1) * self.noise_mean  # (M, 1, C, 1)
        sd = u[:, 1] * self.noise_std
        noise = (mu + sd * z).transpose(0, 1).reshape(b, m * c, s)  # run-major channels
        return y + noise.to(y.dtype)


class NoiseOnly(NoisyBatchNorm):
    """Noisy BN's noise without the BN (Santurkar et al.'s control): no statistics, no γ/β."""

    has_running_stats = False

    def __init__(self, m: int, c: int, cfg: RunConfig) -> None:
        super().__init__(m, c, cfg.replace(affine=False))

    def norm3(self, x: Tensor) -> Tensor:
        return self._noise(x)


class LayerNorm(StackNorm):
    """Per sample over all of a layer's units (and pixels); γ/β per unit/channel."""

    def norm3(self, x: Tensor) -> Tensor:
        b, mc, s = x.shape
        xr = x.reshape(b, self.m, self.c * s)
        xhat = F.layer_norm(xr, (self.c * s,), eps=self.eps)
        return self._affine(xhat.reshape(b, mc, s))


class GroupNorm(StackNorm):
    """Per sample over groups of units/channels (Wu & He 2018); independent of batch size."""

    def __init__(self, m: int, c: int, cfg: RunConfig) -> None:
        super().__init__(m, c, cfg)
        self.num_groups = cfg.num_groups

    def norm3(self, x: Tensor) -> Tensor:
        b, mc, s = x.shape
        xr = x.reshape(b, self.m * self.num_groups, (self.c // self.num_groups) * s)
        xhat = F.layer_norm(xr, (xr.shape[-1],), eps=self.eps)
        return self._affine(xhat.reshape(b, mc, s))


class InstanceNorm(StackNorm):
    """Per sample and channel over the pixels (InstanceNorm2d); conv layers only."""

    def norm3(self, x: Tensor) -> Tensor:
        xhat = F.layer_norm(x, (x.shape[-1],), eps=self.eps)
        return self._affine(xhat)


NORM_CLASSES: dict[str, type[StackNorm]] = {
    "batch": BatchNorm,
    "batch_scratch": ScratchBatchNorm,
    "ghost_batch": GhostBatchNorm,
    "noisy_batch": NoisyBatchNorm,
    "noise_only": NoiseOnly,
    "layer": LayerNorm,
    "group": GroupNorm,
    "instance": InstanceNorm,
}


def make_norm(m: int, c: int, cfg: RunConfig) -> StackNorm:
    return NORM_CLASSES[cfg.norm](m, c, cfg)
