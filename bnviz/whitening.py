"""Whitening vs BN's per-feature standardization, in NumPy (lecture notes 002; Ioffe & Szegedy
2015, §3).

LeCun et al. (1998) found training faster on *whitened* inputs: zero mean, unit variance and
decorrelated. BN does less: it standardizes each feature on its own over the batch, which leaves
the correlations between features exactly as they were. Full whitening multiplies by Σ^(−1/2)
(here ZCA: Σ = U diag(λ) Uᵀ, Σ^(−1/2) = U diag(1/√(λ + ε)) Uᵀ), which needs the batch's whole
covariance — singular when the batch has fewer samples than features. Pure functions of
arrays (N, D), float64; no torch, no streamlit.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-5  # as mechanics.EPS and PyTorch's BatchNorm: added to every variance / eigenvalue


def correlated(n: int, rho: float, scale: float, seed: int = 0) -> np.ndarray:
    """(n, 2) samples of two features with correlation `rho`, standard deviations 1 and
    `scale`, and means (2, −1): x₂ = scale·(ρ·z₁ + √(1 − ρ²)·z₂), exact at ρ = ±1 too."""
    z = np.random.default_rng(seed).standard_normal((n, 2))
    rho = float(np.clip(rho, -1.0, 1.0))
    x1 = z[:, 0]
    x2 = scale * (rho * z[:, 0] + np.sqrt(1.0 - rho * rho) * z[:, 1])
    return np.stack([x1 + 2.0, x2 - 1.0], axis=1)


def covariance(x: np.ndarray) -> np.ndarray:
    """(D, D) covariance over the batch, biased (÷ N) as BN's σ²_B."""
    c = x - x.mean(axis=0)
    return c.T @ c / len(x)


def standardize(x: np.ndarray, eps: float = EPS) -> np.ndarray:
    """BN's normalization with γ = 1, β = 0: each feature to mean 0 and variance ≈ 1 on its own."""
    return (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps)


def whiten(x: np.ndarray, eps: float = EPS) -> np.ndarray:
    """ZCA whitening over the batch: (x − μ)·Σ^(−1/2), covariance ≈ I (where Σ has full rank;
    ε keeps a zero eigenvalue's direction finite instead of dividing by zero)."""
    lam, u = np.linalg.eigh(covariance(x))
    inv_sqrt = (u / np.sqrt(np.clip(lam, 0.0, None) + eps)) @ u.T
    return (x - x.mean(axis=0)) @ inv_sqrt


def correlation(x: np.ndarray) -> np.ndarray:
    """(D, D) correlation of the features; 0 off the diagonal where a feature is constant."""
    std = np.sqrt(np.diag(covariance(x)))
    ok = std > 1e-12
    out = np.zeros((x.shape[1], x.shape[1]))
    cov = covariance(x)
    out[np.ix_(ok, ok)] = cov[np.ix_(ok, ok)] / np.outer(std[ok], std[ok])
    return out


def max_correlation(x: np.ndarray) -> float:
    """The largest |correlation| between two different features (0 for one feature)."""
    c = np.abs(correlation(x))
    np.fill_diagonal(c, 0.0)
    return float(c.max()) if c.size else 0.0


def covariance_rank(x: np.ndarray) -> int:
    """Rank of the batch covariance: at most N − 1 (one degree of freedom goes to the mean)."""
    return int(np.linalg.matrix_rank(covariance(x)))
