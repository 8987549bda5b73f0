"""Measurements of what happens inside a stacked network: pure tensor functions, no training.

Every function takes wide activations (B, M·C[, H, W]) or stacked parameters (M, ...) and
returns one value (or row) per run. Nothing here syncs with the device except the final
`.tolist()` the caller does once per record.
"""

from __future__ import annotations

import torch
from torch import Tensor

# TensorBoard's distribution basis points (±0.5/1/1.5 σ of a normal) and Ioffe & Szegedy's
# 15/50/85th percentiles, as fractions.
BASIS_POINTS = (0.0, 0.0668, 0.1587, 0.3085, 0.5, 0.6915, 0.8413, 0.9332, 1.0)
IOFFE_POINTS = (0.15, 0.5, 0.85)
N_BINS = 30
MAX_VALUES = 4096  # values per run used for quantiles and histograms (strided subsample)
SATURATION = {"sigmoid": (0.02, 0.98), "tanh": (-0.97, 0.97)}  # outside = saturated


def per_run(t: Tensor, m: int) -> Tensor:
    """(M, N): every value of each run's slice of a wide tensor."""
    b = t.shape[0]
    return t.reshape(b, m, -1).transpose(0, 1).reshape(m, -1)


def subsample(v: Tensor, limit: int = MAX_VALUES) -> Tensor:
    """At most `limit` values per row, evenly strided (deterministic)."""
    stride = -(-v.shape[1] // limit)
    return v[:, ::stride] if stride > 1 else v


def fixed_edges(v: Tensor, point: str, activation: str, n_bins: int = N_BINS) -> Tensor:
    """(M, n_bins + 1) bin edges chosen once per run and layer at the start of training.

    Activation outputs use the activation's natural range; other points the initial spread
    with room to drift (values that leave it are counted as under/over).
    """
    m = v.shape[0]
    if point == "act_out" and activation in ("sigmoid", "tanh"):
        lo, hi = (0.0, 1.0) if activation == "sigmoid" else (-1.0, 1.0)
        lo_t, hi_t = torch.full((m,), lo), torch.full((m,), hi)
    else:
        q = torch.quantile(v.float(), torch.tensor([0.001, 0.5, 0.999], device=v.device), dim=1)
        half = torch.maximum(q[1] - q[0], q[2] - q[1]).clamp_min(1e-3) * 1.5
        lo_t, hi_t = (q[1] - half).cpu(), (q[1] + half).cpu()
        if point == "act_out" and activation == "relu":
            lo_t = torch.zeros(m)
    steps = torch.linspace(0, 1, n_bins + 1)
    return lo_t[:, None] + (hi_t - lo_t)[:, None] * steps[None, :]


def histogram(v: Tensor, edges: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Counts (M, n_bins) on each run's edges, plus values under/over the range (M,)."""
    m, n_bins = v.shape[0], edges.shape[1] - 1
    lo, hi = edges[:, :1].to(v.device), edges[:, -1:].to(v.device)
    idx = torch.floor((v - lo) / (hi - lo) * n_bins)
    under = (idx < 0).sum(1)
    over = (idx >= n_bins).sum(1)
    inside = (idx >= 0) & (idx < n_bins)
    flat = idx.clamp(0, n_bins - 1).long() + torch.arange(m, device=v.device)[:, None] * n_bins
    counts = torch.bincount(flat[inside], minlength=m * n_bins).view(m, n_bins)
    return counts, under, over


def activation_stats(t: Tensor, m: int, point: str, activation: str, edges: Tensor) -> dict:
    """Per-run summary of one probe point; every value a tensor with leading dim M."""
    v = per_run(t, m).float()
    sub = subsample(v)
    qs = torch.tensor(BASIS_POINTS + IOFFE_POINTS, device=v.device)
    quant = torch.quantile(sub, qs, dim=1).T  # (M, 12)
    counts, under, over = histogram(sub, edges)
    out = {
        "mean": v.mean(1),
        "std": v.std(1, unbiased=False),
        "quantiles": quant[:, :9],
        "p15": quant[:, 9],
        "p50": quant[:, 10],
        "p85": quant[:, 11],
        "counts": counts,
        "under": under,
        "over": over,
        "n": torch.full((m,), sub.shape[1]),
    }
    if point == "act_out" and activation in SATURATION:
        lo, hi = SATURATION[activation]
        out["saturated"] = ((v < lo) | (v > hi)).float().mean(1)
    if point == "act_out" and activation == "relu":
        # A unit (or channel) is dead on this batch when it outputs 0 for every sample.
        b = t.shape[0]
        units = t.reshape(b, m, t.shape[1] // m, -1)
        out["dead"] = (units.amax(dim=(0, 3)) <= 0).float().mean(1)
    return out


def vector_summary(p: Tensor, m: int) -> dict:
    """mean/std/min/max per run of a run-major (M·C,) parameter or buffer."""
    p = p.detach().float().reshape(m, -1)
    return {"mean": p.mean(1), "std": p.std(1, unbiased=False), "min": p.amin(1), "max": p.amax(1)}


def norms_per_run(t: Tensor) -> Tensor:
    """L2 norm of each run's slice of a stacked (M, ...) tensor."""
    return t.detach().reshape(t.shape[0], -1).norm(dim=1)
