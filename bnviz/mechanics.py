"""BatchNorm's arithmetic up close, in NumPy: Alg. 1 and 2 of Ioffe & Szegedy on one real batch.

What the mechanics lessons show, as pure functions of arrays (float64): the batch statistics and
the four steps of Alg. 1, the γ/β that give the input back, the gradient through μ_B and σ²_B
(and with them held constant), how one sample moves the others, the noise of the statistics as
the batch shrinks, running averages with PyTorch's `momentum`, Alg. 2's population statistics
and the folded affine map of eval mode. Tested against `torch.nn.functional.batch_norm`,
`nn.BatchNorm1d/2d` and autograd. NumPy only — no torch, no streamlit — so the web server can
compute a page in milliseconds without importing torch.

Shapes: dense activations (N, C), one statistic per feature over N; conv activations
(N, C, H, W), one statistic per channel over N, H and W. `momentum` has PyTorch's meaning:
running = (1 − momentum) · running + momentum · batch_stat; None is a cumulative average.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EPS = 1e-5  # PyTorch's default eps


def reduce_axes(ndim: int) -> tuple[int, ...]:
    """The axes a batch statistic averages over: (0,) for (N, C), (0, 2, 3) for (N, C, H, W)."""
    return (0,) if ndim == 2 else (0, *range(2, ndim))


def _per_channel(v: np.ndarray, ndim: int) -> np.ndarray:
    """A (C,) vector shaped to broadcast against (N, C) or (N, C, H, W)."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


@dataclass(frozen=True, eq=False)
class Steps:
    """Alg. 1 on one mini-batch, every intermediate kept (shapes as x; statistics (C,))."""

    x: np.ndarray  # the input, (N, C) or (N, C, H, W)
    mean: np.ndarray  # μ_B (C,)
    var: np.ndarray  # σ²_B (C,), biased: divides by m
    xhat: np.ndarray  # (x − μ_B) / √(σ²_B + ε)
    y: np.ndarray  # γ x̂ + β
    gamma: np.ndarray  # (C,)
    beta: np.ndarray  # (C,)
    eps: float

    @property
    def m(self) -> int:
        """Values per statistic: N for dense, N·H·W for conv."""
        return int(self.x.size // self.x.shape[1])

    @property
    def inv_std(self) -> np.ndarray:
        return 1.0 / np.sqrt(self.var + self.eps)


def normalize(
    x: np.ndarray,
    gamma: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    eps: float = EPS,
) -> Steps:
    """Alg. 1 (training mode): batch mean, biased batch variance, normalize, scale and shift."""
    x = np.asarray(x, dtype=np.float64)
    c = x.shape[1]
    gamma = np.ones(c) if gamma is None else np.asarray(gamma, dtype=np.float64)
    beta = np.zeros(c) if beta is None else np.asarray(beta, dtype=np.float64)
    axes = reduce_axes(x.ndim)
    mean = x.mean(axis=axes)
    var = ((x - _per_channel(mean, x.ndim)) ** 2).mean(axis=axes)
    xhat = (x - _per_channel(mean, x.ndim)) / _per_channel(np.sqrt(var + eps), x.ndim)
    y = _per_channel(gamma, x.ndim) * xhat + _per_channel(beta, x.ndim)
    return Steps(x, mean, var, xhat, y, gamma, beta, eps)


def identity_affine(steps: Steps) -> tuple[np.ndarray, np.ndarray]:
    """γ = √(σ²_B + ε), β = μ_B: the scale and shift that give this batch's input back exactly."""
    return np.sqrt(steps.var + steps.eps), steps.mean.copy()


def backward(steps: Steps, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dL/dx, dL/dγ, dL/dβ from dL/dy, through μ_B and σ²_B (what autograd computes).

    dx = γ/√(σ²+ε) · (dy − mean(dy) − x̂ · mean(dy · x̂)), means over the reduced axes: every
    sample's gradient depends on the whole batch, and it sums to 0 along 1 and along x̂.
    """
    nd = steps.x.ndim
    axes = reduce_axes(nd)
    dy = np.asarray(dy, dtype=np.float64)
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * steps.xhat).sum(axis=axes)
    dxhat = dy * _per_channel(steps.gamma, nd)
    mean_d = dxhat.mean(axis=axes)
    mean_dx = (dxhat * steps.xhat).mean(axis=axes)
    dx = _per_channel(steps.inv_std, nd) * (
        dxhat - _per_channel(mean_d, nd) - steps.xhat * _per_channel(mean_dx, nd)
    )
    return dx, dgamma, dbeta


def backward_constant_stats(steps: Steps, dy: np.ndarray) -> np.ndarray:
    """dL/dx if μ_B and σ²_B were constants (as in eval mode): γ/√(σ²+ε) · dy, sample by sample."""
    nd = steps.x.ndim
    return np.asarray(dy, dtype=np.float64) * _per_channel(steps.gamma * steps.inv_std, nd)


def change_one(steps: Steps, i: int, delta: float, unit: int) -> Steps:
    """Alg. 1 again after adding `delta` to sample i's value of `unit` (same γ, β): coupling."""
    x = steps.x.copy()
    x[(i, unit)] += delta
    return normalize(x, steps.gamma, steps.beta, steps.eps)


# --- statistics over many batches ---------------------------------------------------------


def batches(n: int, m: int, rng: np.random.Generator, n_batches: int | None = None) -> np.ndarray:
    """Index rows (B, m): disjoint batches of a shuffled pass (drop_last), repeated passes
    while more are asked for."""
    want = n_batches if n_batches is not None else n // m
    rows: list[np.ndarray] = []
    while len(rows) < want:
        order = rng.permutation(n)
        rows += list(order[: n // m * m].reshape(-1, m))
    return np.stack(rows[:want])


def batch_stats(x: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """μ_B and biased σ²_B (B, C) of dense activations x (N, C) for batches index (B, m)."""
    xb = x[index]  # (B, m, C)
    return xb.mean(1), xb.var(1)


@dataclass(frozen=True)
class Spread:
    """μ_B and σ_B of one unit over many batches of one size."""

    m: int
    means: np.ndarray  # (B,)
    stds: np.ndarray  # (B,) biased batch std √σ²_B
    mean_sd: float  # std of μ_B over batches ("additive noise")
    std_sd: float  # std of σ_B over batches ("multiplicative noise")


def spread(
    x: np.ndarray, unit: int, sizes: Sequence[int], n_batches: int = 200, seed: int = 0
) -> list[Spread]:
    """For each batch size: μ_B and σ_B of `unit` over `n_batches` random batches (x: (N, C))."""
    rng = np.random.default_rng(seed)
    col = np.asarray(x, dtype=np.float64)[:, unit : unit + 1]
    out = []
    for m in sizes:
        mu, var = batch_stats(col, batches(len(col), m, rng, n_batches))
        sd = np.sqrt(var[:, 0])
        out.append(Spread(m, mu[:, 0], sd, float(mu[:, 0].std()), float(sd.std())))
    return out


# --- Alg. 2: running and population statistics ---------------------------------------------


def running_trace(
    means: np.ndarray, variances: np.ndarray, m: int, momentum: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """running_mean and running_var after each step, as BatchNorm updates them from batch
    statistics (T, C) of batches of m values: starts at 0 and 1, stores the unbiased variance
    (× m/(m−1)); momentum None is the cumulative average 1/num_batches_tracked."""
    c = means.shape[1]
    rm, rv = np.zeros(c), np.ones(c)
    out_m, out_v = np.empty_like(means), np.empty_like(variances)
    unbiased = variances * m / (m - 1)
    for t in range(len(means)):
        f = 1.0 / (t + 1) if momentum is None else momentum
        rm = (1 - f) * rm + f * means[t]
        rv = (1 - f) * rv + f * unbiased[t]
        out_m[t], out_v[t] = rm, rv
    return out_m, out_v


def population_stats(
    means: np.ndarray, variances: np.ndarray, m: int
) -> tuple[np.ndarray, np.ndarray]:
    """Alg. 2: E[x] = E_B[μ_B], Var[x] = m/(m−1) · E_B[σ²_B] over batches (T, C) of size m."""
    return means.mean(0), m / (m - 1) * variances.mean(0)


def fold(
    gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float = EPS
) -> tuple[np.ndarray, np.ndarray]:
    """Eval-mode BN as one affine map y = a·x + c: a = γ/√(Var+ε), c = β − γ E[x]/√(Var+ε)."""
    a = gamma / np.sqrt(var + eps)
    return a, beta - a * mean


def eval_norm(
    x: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    eps: float = EPS,
) -> np.ndarray:
    """Eval mode (Alg. 2's output): normalize with fixed statistics, step by step."""
    nd = x.ndim
    xhat = (x - _per_channel(mean, nd)) / _per_channel(np.sqrt(var + eps), nd)
    return _per_channel(gamma, nd) * xhat + _per_channel(beta, nd)


def fold_into_linear(
    weight: np.ndarray, bias: np.ndarray, a: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Linear (W (C, F), b (C,)) followed by eval BN (a, c) as one Linear: (a·W, a·b + c)."""
    return a[:, None] * weight, a * bias + c


# --- a freshly initialized layer -----------------------------------------------------------


def linear_init(fan_in: int, fan_out: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's default nn.Linear init: W (out, in), b (out,) ~ U(−1/√fan_in, 1/√fan_in)."""
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(fan_in)
    return (
        rng.uniform(-bound, bound, (fan_out, fan_in)),
        rng.uniform(-bound, bound, fan_out),
    )


def conv3x3(images: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """3×3 convolution, stride 1, zero padding 1 (as nn.Conv2d(padding=1)): (N, Cin, H, W) and
    W (Cout, Cin, 3, 3) → (N, Cout, H, W)."""
    padded = np.pad(images, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))  # N,Ci,H,W,3,3
    return np.einsum("nchwij,ocij->nohw", win, weight) + bias[None, :, None, None]


def dense_layer(x: np.ndarray, units: int, seed: int = 0) -> np.ndarray:
    """Pre-activations (N, units) of a freshly initialized nn.Linear(F, units) on x (N, F)."""
    w, b = linear_init(x.shape[1], units, seed)
    return np.asarray(x, dtype=np.float64) @ w.T + b


def conv_layer(images: np.ndarray, channels: int, seed: int = 0) -> np.ndarray:
    """Pre-activations (N, channels, H, W) of a freshly initialized nn.Conv2d(C, channels, 3,
    padding=1) on images (N, C, H, W): PyTorch's default bound 1/√(C·9)."""
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(images.shape[1] * 9)
    w = rng.uniform(-bound, bound, (channels, images.shape[1], 3, 3))
    b = rng.uniform(-bound, bound, channels)
    return conv3x3(np.asarray(images, dtype=np.float64), w, b)
