"""Measurements of what happens inside a stacked network: pure functions, no training.

Activations are wide, (B, M·C[, H, W]) — run m owns channels m·C … (m+1)·C−1 — and every
statistic is per run. `layer_stats` summarizes all K probes of a step at once (rows k·M + r):
equal-shape probes are stacked with one copy, one sort of every subsample gives every quantile
and, with one searchsorted, every histogram. On the CPU each tensor op costs several µs
whatever its size, so a probe step is a few dozen ops whatever the depth and number of runs.
Nothing here syncs with the device but `host_values`; the caller fetches the results once and
rounds them for the records (`record_values`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .records import BASIS_POINTS, IOFFE_POINTS

N_BINS = 30
MAX_VALUES = 4096  # values per run used for quantiles and histograms (strided subsample)
SATURATION = {"sigmoid": (0.02, 0.98), "tanh": (-0.97, 0.97)}  # outside = saturated
EDGE_POINTS = (0.001, 0.5, 0.999)  # initial spread that sets the histogram range
SIG_DIGITS = 6  # significant digits kept in the records
QUANTILES = tuple(f"q{i}" for i in range(len(BASIS_POINTS)))  # at records.BASIS_POINTS
TABLE = ("mean", "std", *QUANTILES, "p15", "p50", "p85", "extra")  # columns of layer_stats
UNIT_TABLE = ("mean", "std", "p15", "p50", "p85")  # columns of unit_stats' table
NAN = float("nan")
_POW10 = np.array([float(10**i) for i in range(309)])  # exact up to 1e22


def per_run(t: Tensor, m: int) -> Tensor:
    """(M, N): every value of each run's slice of a wide tensor, in (sample, unit, pixel) order."""
    b = t.shape[0]
    return t.reshape(b, m, -1).transpose(0, 1).reshape(m, -1)


def subsample(v: Tensor, limit: int = MAX_VALUES) -> Tensor:
    """At most `limit` values per row, evenly strided (deterministic)."""
    stride = -(-v.shape[1] // limit)
    return v[:, ::stride] if stride > 1 else v


def sort_rows(x: Tensor) -> Tensor:
    """x (R, N) sorted along each row, ascending, NaN last.

    On the CPU this is NumPy's vectorized sort: ≈ 15× faster than torch.sort for these sizes
    (nine rows of 3,000: 0.11 vs 1.7 ms, torch 2.13).
    """
    if x.device.type == "cpu":
        return torch.from_numpy(np.sort(x.detach().numpy(), axis=1))
    return torch.sort(x, dim=1).values


def sorted_quantiles(s: Tensor, n: int | Tensor, qs: Sequence[float]) -> Tensor:
    """(R, Q) quantiles of rows sorted ascending whose first n values are data (then NaN).

    n: one count for every row, or a tensor (R,) of counts. torch.quantile's default 'linear'
    interpolation at rank q·(n−1); a row with a NaN among its data gives NaN everywhere (NaN
    sorts last, so it sits at index n−1), as torch.quantile does.
    """
    if isinstance(n, int):  # one set of ranks for every row: two indexing ops
        idx, weight = _ranks(n, tuple(qs), s.device)
        both = s.index_select(1, idx)
        q = len(qs)
        return both[:, :q].lerp(both[:, q:], weight).masked_fill(s[:, n - 1 : n].isnan(), NAN)
    n = n.long()
    last = (n - 1).to(s.dtype)[:, None]  # (R, 1)
    rank = _on_device(tuple(qs), None, s.device)[None, :] * last  # (R, Q)
    has_nan = s.gather(1, (n - 1)[:, None]).isnan()  # (R, 1)
    rank = torch.where(has_nan, last, rank)
    below = rank.long()
    lo = s.gather(1, below)
    hi = s.gather(1, rank.ceil().long())
    return lo.lerp(hi, rank - below)


@functools.lru_cache(maxsize=64)
def _on_device(values: tuple, dtype: torch.dtype | None, device: torch.device) -> Tensor:
    """torch.tensor(values, dtype) on `device`, made once (callers only read it): a copy from
    the host to a GPU waits for every kernel queued before it, so probe steps reuse these."""
    return torch.tensor(values, dtype=dtype, device=device)


@functools.lru_cache(maxsize=64)
def _ranks(n: int, qs: tuple[float, ...], device: torch.device) -> tuple[Tensor, Tensor]:
    """Indices below then above (2Q,) and interpolation weights (Q,) of quantiles qs among n
    sorted values, computed in float32 exactly as torch.quantile does."""
    rank = torch.tensor(qs) * (n - 1)
    below = rank.long()
    return torch.cat([below, rank.ceil().long()]).to(device), (rank - below).to(device)


def histogram(s: Tensor, edges: Tensor) -> Tensor:
    """(R, n_bins + 2) counts of each row of s on its edges: [under, bins…, over]; NaN is not
    counted. Rows of s must be sorted ascending (NaN last), as sort_rows gives them; edges
    (R, n_bins + 1) on s's device.

    A value falls in bin floor((v − lo) / (hi − lo) · n_bins); below 0 is under, from n_bins on
    over. Clamped to −1 … n_bins, with NaN as n_bins + 1, that index never decreases along a
    sorted row (each float op is monotonic), so one searchsorted of the boundaries −2, 0, 1, …,
    n_bins + 1 and a difference count every bin.
    """
    r, n_bins = s.shape[0], edges.shape[1] - 1
    lo, hi = edges[:, :1], edges[:, -1:]
    idx = (s - lo).div_(hi - lo).mul_(n_bins).floor_()  # one temporary, in place from there
    idx = idx.clamp_(-1, n_bins).nan_to_num_(n_bins + 1)
    return torch.searchsorted(idx, _boundaries(r, n_bins, s.device)).diff(dim=1)


@functools.lru_cache(maxsize=16)
def _boundaries(r: int, n_bins: int, device: torch.device) -> Tensor:
    """(R, n_bins + 3): −2, 0, 1, …, n_bins + 1 in every row (see histogram)."""
    return torch.tensor([[-2.0, *range(n_bins + 2)]], device=device).repeat(r, 1)


def mean_std(x: Tensor) -> tuple[Tensor, Tensor]:
    """Row means and (biased) standard deviations of x (R, N), two-pass.

    torch.std / std_mean take ≈ 25× as long as a mean on the CPU here; this is three passes.
    """
    mean = x.mean(1)
    d = x - mean[:, None]
    return mean, torch.linalg.vector_norm(d, dim=1).div_(x.shape[1] ** 0.5)


def _groups(ts: Sequence[Tensor], m: int, per_run: bool) -> list[tuple[list[int], Tensor]]:
    """Probes of equal shape stacked per run: [(their indices, (G, M, B, C, S))], contiguous
    unless a group is a single probe. Wide probes are (B, M·C[, H, W]); per_run ones (M, B, C),
    or (B, C) for one run (dense layers only)."""
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for k, t in enumerate(ts):
        by_shape.setdefault(tuple(t.shape), []).append(k)
    out = []
    for ks in by_shape.values():
        if per_run:
            b, c = ts[ks[0]].shape[-2:]
            runs = [ts[k].reshape(m, b, c, 1) for k in ks]  # already run-major: a view
        else:
            b, mc = ts[ks[0]].shape[:2]
            runs = [ts[k].reshape(b, m, mc // m, -1).transpose(0, 1) for k in ks]  # (M,B,C,S)
        # stacking copies once, into run-major order; a lone probe stays a view
        out.append((ks, torch.stack(runs) if len(ks) > 1 else runs[0][None]))
    return out


def edges_from(lo: Tensor, hi: Tensor, n_bins: int = N_BINS) -> Tensor:
    """(R, n_bins + 1) evenly spaced edges from per-row ranges (R,)."""
    steps = torch.linspace(0, 1, n_bins + 1, device=lo.device)
    return lo[:, None] + (hi - lo)[:, None] * steps[None, :]


def layer_edges(
    ts: Sequence[Tensor],
    m: int,
    points: Sequence[str],
    activation: str,
    n_bins: int = N_BINS,
    per_run: bool = False,
) -> Tensor:
    """(K·M, n_bins + 1) bin edges of K probes (wide, or per_run: see _groups), chosen once per
    run and layer at the start of training; on the tensors' device.

    Activation outputs use the activation's natural range; other points (norm_out, the
    normalized values, like act_in) the initial spread (0.1/50/99.9th percentiles of every
    value) with room to drift: values that leave the range are counted as under/over.
    """
    dev = ts[0].device
    lo = torch.empty(len(ts), m, device=dev)
    hi = torch.empty(len(ts), m, device=dev)
    for ks, g in _groups(ts, m, per_run):
        full = g.reshape(len(ks) * m, -1).float()
        q = sorted_quantiles(sort_rows(full), full.shape[1], EDGE_POINTS)  # (G·M, 3)
        half = torch.maximum(q[:, 1] - q[:, 0], q[:, 2] - q[:, 1]).clamp_min(1e-3) * 1.5
        lo[ks] = (q[:, 1] - half).view(len(ks), m)
        hi[ks] = (q[:, 1] + half).view(len(ks), m)
    for k, point in enumerate(points):
        if point == "act_out" and activation in ("sigmoid", "tanh"):
            lo[k], hi[k] = (0.0, 1.0) if activation == "sigmoid" else (-1.0, 1.0)
        elif point == "act_out" and activation == "relu":
            lo[k] = 0.0
    return edges_from(lo.view(-1), hi.view(-1), n_bins)


def fixed_edges(v: Tensor, point: str, activation: str, n_bins: int = N_BINS) -> Tensor:
    """(M, n_bins + 1) edges of one probe from its per-run values v (M, N); see layer_edges."""
    return layer_edges([v.reshape(1, -1)], v.shape[0], [point], activation, n_bins)


def layer_stats(
    ts: Sequence[Tensor],
    m: int,
    points: Sequence[str],
    activation: str,
    edges: Tensor,
    limit: int = MAX_VALUES,
    per_run: bool = False,
) -> dict[str, Tensor]:
    """Summaries of K probes of M runs (wide, or per_run: see _groups) at once; rows R = K·M,
    row k·M + r.

    edges: (R, n_bins + 1) on the tensors' device. Quantiles and histograms use each probe's
    strided subsample of at most `limit` values per run (`subsample` of `per_run`'s order);
    mean, std, saturated and dead use every value. Returns
    "table" (R, 15) floats, columns TABLE: mean, std, 9 quantiles, p15, p50, p85, and extra:
      the share of saturated (sigmoid/tanh) or dead (relu) units, meaningful at the rows
      that have one (extra_name);
    "hist" (R, n_bins + 2) ints: under, the bins, over;  "n" (R,) values in the subsample.
    """
    dev = ts[0].device
    order: list[int] = []  # probe indices in the order their rows are computed
    parts, subs = [], []
    for ks, g in _groups(ts, m, per_run):  # one shape: one stacked copy, no per-probe ops
        full = g.reshape(len(ks) * m, -1).float()  # (G·M, N)
        mean, std = mean_std(full)
        order += ks
        extra = _extra(full, g.shape[2:], [points[k] for k in ks], activation)[:, None]
        parts.append((torch.stack([mean, std], 1), extra))
        subs.append(subsample(full, limit))
    widths = [x.shape[1] for x in subs]
    n: int | Tensor = widths[0]
    if len(set(widths)) > 1:  # shorter subsamples padded with NaN (sorted last, never counted)
        n = _on_device(tuple(x.shape[1] for x in subs for _ in range(x.shape[0])), None, dev)
        subs = [F.pad(x, (0, max(widths) - x.shape[1]), value=NAN) for x in subs]
    srt = sort_rows(torch.cat(subs) if len(subs) > 1 else subs[0])
    quant = sorted_quantiles(srt, n, BASIS_POINTS + IOFFE_POINTS)  # (R, 12)
    ms, extra = (torch.cat(p) for p in zip(*parts)) if len(parts) > 1 else parts[0]
    table = torch.cat([ms, quant, extra], 1)
    if order != sorted(order):  # back to probe order: probe k's rows sit at pos[k]·M + r
        pos = {k: i for i, k in enumerate(order)}
        idx = _on_device(
            tuple(pos[k] * m + r for k in range(len(order)) for r in range(m)), None, dev
        )
        table, srt = table[idx], srt[idx]
        n = n[idx] if isinstance(n, Tensor) else n
    if isinstance(n, int):
        n = torch.full((table.shape[0],), n, dtype=torch.long, device=dev)
    return {"table": table, "hist": histogram(srt, edges), "n": n}


def extra_name(point: str, activation: str) -> str | None:
    """The name of the extra statistic of a probe point, if it has one."""
    if point != "act_out":
        return None
    if activation in SATURATION:
        return "saturated"
    return "dead" if activation == "relu" else None


def _extra(full: Tensor, bcs: tuple[int, ...], points: Sequence[str], activation: str) -> Tensor:
    """(G·M,): `extra_name`'s statistic of every row of full (G·M, B·C·S), computed for all
    probes of the group — one contiguous op chain; the caller keeps only act_out rows."""
    if not any(extra_name(p, activation) for p in points):
        return torch.zeros(full.shape[0], device=full.device)
    if activation in SATURATION:  # outside [lo, hi]: clamping moves the value (NaN: not)
        # float ops only: comparisons and bool → float conversions are ~5× slower on the CPU
        lo, hi = SATURATION[activation]
        return full.clamp(lo, hi).sub_(full).abs_().sign_().nan_to_num_(0.0).mean(1)
    # relu: a unit (or channel) is dead on this batch when it outputs 0 for every sample
    units = full.view(full.shape[0], *bcs).amax(dim=(1, 3))  # (G·M, C)
    return (units <= 0).float().mean(1)


def activation_stats(t: Tensor, m: int, point: str, activation: str, edges: Tensor) -> dict:
    """Per-run summary of one probe point (wide tensor t); every value has leading dim M."""
    st = layer_stats([t], m, [point], activation, edges.to(t.device))
    table, hist = st["table"], st["hist"]
    out = {name: table[:, i] for i, name in enumerate(TABLE) if name[0] != "q"}
    out.update(quantiles=table[:, 2:11], counts=hist[:, 1:-1], under=hist[:, 0], over=hist[:, -1])
    out["n"] = st["n"]
    extra = out.pop("extra")
    name = extra_name(point, activation)
    if name:
        out[name] = extra
    return out


def round_sig(x: np.ndarray, digits: int = SIG_DIGITS) -> np.ndarray:
    """x rounded to `digits` significant digits, in float64; zeros and non-finite unchanged.

    Equals float(f"{v:.{digits}g}") for float32 inputs of magnitude 1e-7 … 1e12: there
    v·10^k is exact in float64 (24 + 28 bits), so round-half-even sees the exact value as
    Python's formatting does, and the division by the exact power of ten is correctly rounded.
    NumPy, on values already fetched from the device: a few µs per op where torch's are ~10.
    """
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        k = (digits - 1) - np.floor(np.log10(np.abs(x)))  # decimal places kept
        ok = np.isfinite(k)  # not for 0 (k = inf), NaN or ±inf
        k = np.where(ok, k, 0).astype(np.int64)
        p = _POW10[np.minimum(np.abs(k), 308)]
        y = np.where(k >= 0, np.round(x * p) / p, np.round(x / p) * p)
    return np.where(ok, y, x)


def record_values(x: np.ndarray) -> list:
    """x rounded (round_sig) as (nested) lists; Python only sees the rare non-finite values,
    which become None."""
    r = round_sig(x)
    out = r.tolist()
    if np.isfinite(r).all():
        return out
    return _nulls(out)


def host_values(x: Tensor) -> list:
    """A tensor's values for the records (record_values): one device sync."""
    return record_values(x.detach().double().cpu().numpy())


def _nulls(x: Any) -> Any:
    if isinstance(x, list):
        return [_nulls(v) for v in x]
    return x if math.isfinite(x) else None


def vector_summaries(vectors: Sequence[np.ndarray], m: int) -> np.ndarray:
    """(V, M, 4) mean/std/min/max per run of run-major (M·C,) vectors (γ, β, running
    statistics), fetched to the host: for a few hundred values NumPy's µs beat torch's ops."""
    out = np.empty((len(vectors), m, 4))
    by_size: dict[int, list[int]] = {}
    for k, v in enumerate(vectors):
        by_size.setdefault(v.size, []).append(k)
    for ks in by_size.values():  # equal sizes: one stacked array
        g = np.stack([vectors[k] for k in ks]).reshape(len(ks), m, -1)
        with np.errstate(invalid="ignore", over="ignore"):  # a diverged run's ±inf give NaN
            out[ks] = np.stack([g.mean(2), g.std(2), g.min(2), g.max(2)], -1)
    return out


UNITS = 3  # units per hidden layer whose own distributions are recorded (records "units")


def unit_values(t: Tensor, m: int, units: int, per_run: bool) -> Tensor:
    """(M·U, N): the values of the first `units` units (channels) of every run in a probe
    tensor, row r·U + u; per_run (M, B, C) or (B, C) for one run, else wide (see _groups)."""
    if per_run:
        v = t.reshape(m, t.shape[-2], t.shape[-1])[:, :, :units].transpose(1, 2)  # (M, U, B)
    else:
        b = t.shape[0]
        v = t.reshape(b, m, t.shape[1] // m, -1)[:, :, :units]  # (B, M, U, S)
        v = v.permute(1, 2, 0, 3)
    return v.reshape(m * units, -1).float().contiguous()


def unit_edges(v: Tensor, n_bins: int = N_BINS) -> Tensor:
    """(R, n_bins + 1) edges from rows' initial spread, as layer_edges does for other points."""
    q = sorted_quantiles(sort_rows(v), v.shape[1], EDGE_POINTS)
    half = torch.maximum(q[:, 1] - q[:, 0], q[:, 2] - q[:, 1]).clamp_min(1e-3) * 1.5
    return edges_from(q[:, 1] - half, q[:, 1] + half, n_bins)


def unit_stats(v: Tensor, edges: Tensor) -> tuple[Tensor, Tensor]:
    """(R, 5) mean, std, p15, p50, p85 and (R, n_bins + 2) histogram [under, bins…, over] of
    each row of v (R, N)."""
    mean, std = mean_std(v)
    srt = sort_rows(v)
    quant = sorted_quantiles(srt, v.shape[1], IOFFE_POINTS)
    return torch.cat([torch.stack([mean, std], 1), quant], 1), histogram(srt, edges)
