"""The batched probe statistics against NumPy and torch's own quantile, on the same subsample."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bnviz.probes import (
    BASIS_POINTS,
    IOFFE_POINTS,
    MAX_VALUES,
    N_BINS,
    SATURATION,
    TABLE,
    extra_name,
    histogram,
    layer_edges,
    layer_stats,
    round_sig,
    sort_rows,
    sorted_quantiles,
    vector_summaries,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def reference_edges(v: np.ndarray, point: str, activation: str) -> np.ndarray:
    """The documented rule, per run, with NumPy: natural range or the spread ×1.5 around p50."""
    if point == "act_out" and activation in ("sigmoid", "tanh"):
        lo, hi = (0.0, 1.0) if activation == "sigmoid" else (-1.0, 1.0)
    else:
        q0, q1, q2 = np.quantile(v, [0.001, 0.5, 0.999])
        half = max(max(q1 - q0, q2 - q1), 1e-3) * 1.5
        lo, hi = q1 - half, q1 + half
        if point == "act_out" and activation == "relu":
            lo = 0.0
    return np.linspace(lo, hi, N_BINS + 1)


# Probes of three shapes (an MLP layer, a wider one, a conv map): three stacked groups of
# different subsample widths (NaN padding), rows computed out of probe order and put back.
SHAPES = [(40, 12), (40, 150), (8, 6, 8, 8), (40, 12), (40, 150), (8, 6, 8, 8)]
POINTS = ["linear", "act_in", "act_out", "act_out", "act_out", "linear"]


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "linear"])
def test_layer_stats_against_numpy(activation: str) -> None:
    m = 3
    g = gen(1)
    wides = []
    for shape, point in zip(SHAPES, POINTS):
        t = torch.randn(shape[0], m * shape[1], *shape[2:], generator=g) * 2 + 0.3
        if point == "act_out":
            act = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}
            # × 0.9999: no value within float32 rounding of the top edge, where the floor rule
            # (see the histogram test) and NumPy's edge comparisons legitimately differ
            t = act.get(activation, lambda x: x)(t * 3) * 0.9999
            if activation == "relu":
                t[:, 1] = 0.0  # unit 1 of run 0 is dead
        wides.append(t)
    # edges from a narrower sample, so that values fall under and over
    edges = layer_edges([t * 0.5 for t in wides], m, POINTS, activation)
    st = layer_stats(wides, m, POINTS, activation, edges)
    table, hist = st["table"], st["hist"]
    assert table.shape == (len(wides) * m, 15) and hist.shape == (len(wides) * m, N_BINS + 2)
    assert TABLE[:2] == ("mean", "std") and TABLE[11:] == ("p15", "p50", "p85", "extra")
    for k, (t, point) in enumerate(zip(wides, POINTS)):
        c = t.shape[1] // m
        for r in range(m):
            row = k * m + r
            full = t[:, r * c : (r + 1) * c].reshape(t.shape[0], -1).numpy().reshape(-1)
            stride = -(-full.size // MAX_VALUES)
            sub = full[::stride]
            assert int(st["n"][row]) == sub.size <= MAX_VALUES
            np.testing.assert_allclose(
                table[row, 2:14].numpy(),
                np.quantile(sub, BASIS_POINTS + IOFFE_POINTS),
                rtol=1e-5,
                atol=1e-6,
            )
            np.testing.assert_allclose(table[row, 0], full.mean(), rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(table[row, 1], full.std(), rtol=1e-4)
            e = edges[row].numpy()
            ref = reference_edges(full * 0.5, point, activation)
            np.testing.assert_allclose(e, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
            under, over = int((sub < e[0]).sum()), int((sub >= e[-1]).sum())
            counts, _ = np.histogram(sub[(sub >= e[0]) & (sub < e[-1])], bins=e)
            assert hist[row].tolist() == [under, *counts.tolist(), over]
            assert counts.sum() + under + over == sub.size
            name = extra_name(point, activation)
            if name == "saturated":
                lo, hi = SATURATION[activation]
                expected = ((full < lo) | (full > hi)).mean()
                assert float(table[row, -1]) == pytest.approx(expected, abs=1e-6)
            elif name == "dead":
                units = t[:, r * c : (r + 1) * c].reshape(t.shape[0], c, -1).numpy()
                expected = (units.max(axis=(0, 2)) <= 0).mean()
                assert float(table[row, -1]) == pytest.approx(expected, abs=1e-6)
                assert (expected > 0) == (r == 0)
    if activation == "relu":  # act_out edges start at 0
        assert all(edges[k * m, 0] == 0 for k, p in enumerate(POINTS) if p == "act_out")
    if activation == "sigmoid":
        assert all(edges[k * m, -1] == 1 for k, p in enumerate(POINTS) if p == "act_out")


def test_sorted_quantiles_equal_torch_quantile() -> None:
    x = torch.randn(7, 1001, generator=gen(2)) ** 3
    x[3, 10] = float("nan")  # torch.quantile: a NaN row is NaN everywhere
    qs = BASIS_POINTS + IOFFE_POINTS
    ref = torch.quantile(x, torch.tensor(qs), dim=1).T
    s = sort_rows(x)
    assert torch.equal(s[:, :-1].isnan().any(1), torch.zeros(7, dtype=torch.bool))  # NaN last
    got = sorted_quantiles(s, x.shape[1], qs)
    torch.testing.assert_close(got, ref, rtol=0, atol=0, equal_nan=True)
    assert got[3].isnan().all() and not got[2].isnan().any()
    # per-row counts with NaN padding (how probes of different sizes share one sort)
    short = x[:, :500]
    padded = torch.cat([short, torch.full((7, 501), float("nan"))], 1)
    n = torch.tensor([500] * 7)
    got = sorted_quantiles(sort_rows(padded), n, qs)
    ref = torch.quantile(short, torch.tensor(qs), dim=1).T
    torch.testing.assert_close(got, ref, rtol=0, atol=0, equal_nan=True)


def test_histogram_matches_the_floor_rule_at_edges_and_infinities() -> None:
    n_bins = 10
    lo, hi = torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 5.0])
    edges = lo[:, None] + (hi - lo)[:, None] * torch.linspace(0, 1, n_bins + 1)[None, :]
    v = torch.randn(2, 300, generator=gen(3)) * 2
    v[:, :11] = edges  # values exactly on every edge
    v[0, 20:23] = torch.tensor([float("inf"), -float("inf"), float("nan")])
    got = histogram(sort_rows(v), edges)
    idx = torch.floor((v - lo[:, None]) / (hi - lo)[:, None] * n_bins)
    for r in range(2):
        row = idx[r][~idx[r].isnan()]
        expected = [int((row < 0).sum())]
        expected += [int((row == b).sum()) for b in range(n_bins)]
        expected += [int((row >= n_bins).sum())]
        assert got[r].tolist() == expected
    assert got[0].sum() == 299  # the NaN is not counted; ±inf are under and over


def test_layer_stats_of_non_finite_values() -> None:
    t = torch.randn(20, 8, generator=gen(4))
    t[3, 2] = float("nan")
    edges = layer_edges([torch.randn(20, 8, generator=gen(5))], 2, ["linear"], "relu")
    st = layer_stats([t], 2, ["linear"], "relu", edges)
    table, hist = st["table"], st["hist"]
    assert table[0, 2:14].isnan().all() and not table[1, 2:14].isnan().any()  # quantiles
    assert table[0, 0].isnan() and not table[1, 0].isnan()  # mean
    assert hist.sum(1).tolist() == [79, 80]  # the NaN is in no bin


def test_round_sig_equals_python_formatting() -> None:
    g = gen(6)
    mags = torch.logspace(-7, 11, 20000, dtype=torch.float64)
    x = (torch.randn(20000, generator=g, dtype=torch.float64) * mags).float()
    special = [0.0, -0.0, 1.0, 1000.0, 123456.5, 1234565.0, 99999.95, 0.1, -2.5e-5, 0.999999]
    x = torch.cat([x, torch.tensor(special)])
    got = round_sig(x.double().numpy()).tolist()
    for v, r in zip(x.tolist(), got):
        assert r == float(f"{v:.6g}"), v
    odd = round_sig(np.array([float("nan"), float("inf"), -float("inf"), -0.0]))
    assert math.isnan(odd[0]) and odd[1] == math.inf and odd[2] == -math.inf
    assert odd[3] == 0 and math.copysign(1, odd[3]) == -1


def test_vector_summaries() -> None:
    m = 3
    vecs = [torch.randn(m * c, generator=gen(c)).double().numpy() for c in (5, 7, 5)]
    got = vector_summaries(vecs, m)
    assert got.shape == (3, m, 4)
    for v, s in zip(vecs, got):
        for r, row in enumerate(v.reshape(m, -1)):
            ref = [row.mean(), row.std(), row.min(), row.max()]
            np.testing.assert_allclose(s[r], ref, rtol=1e-12)


def test_saturated_share_counts_infinities_not_nan() -> None:
    t = torch.sigmoid(torch.randn(10, 6, generator=gen(7)) * 4)
    t[0, :3] = torch.tensor([float("inf"), -float("inf"), float("nan")])
    edges = layer_edges([t], 2, ["act_out"], "sigmoid")
    table = layer_stats([t], 2, ["act_out"], "sigmoid", edges)["table"]
    for r in range(2):
        v = t[:, 3 * r : 3 * r + 3].reshape(-1)
        expected = ((v < 0.02) | (v > 0.98)).float().mean()  # NaN compares false
        assert float(table[r, -1]) == pytest.approx(float(expected), abs=1e-7)


@pytest.mark.parametrize("m", [1, 3])
def test_per_run_layout_gives_the_wide_layouts_statistics(m: int) -> None:
    """The fast path hands probes over per run, (M, B, C); the statistics are the same."""
    from bnviz.models import _wide

    g = gen(11)
    runs = [torch.randn(m, 20, 6, generator=g) * (k + 1) for k in range(3)]
    if m == 1:
        runs = [t[0] for t in runs]  # one run: (B, C)
    wides = [_wide(t) for t in runs]
    points = ["linear", "act_in", "act_out"]
    edges = layer_edges(wides, m, points, "relu")
    assert torch.equal(layer_edges(runs, m, points, "relu", per_run=True), edges)
    a = layer_stats(wides, m, points, "relu", edges)
    b = layer_stats(runs, m, points, "relu", edges, per_run=True)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_norm_out_edges_use_the_initial_spread() -> None:
    """norm_out (BN after the activation) holds normalized values: its edges come from the
    initial spread as act_in's do, never the activation's range (relu's floor at 0)."""
    t = torch.randn(200, 6, generator=gen(3)) - 0.5  # two runs of 3 units, mostly negative
    edges = layer_edges([t, t], 2, ["act_in", "norm_out"], "relu")
    assert torch.equal(edges[2:], edges[:2])
    assert (edges[2:, 0] < -1).all()
    assert (layer_edges([t], 2, ["act_out"], "relu")[:, 0] == 0).all()
