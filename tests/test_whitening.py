"""bnviz.whitening: BN's per-feature standardization keeps correlations, whitening removes
them, and neither fails at the ends of the page's ranges."""

from __future__ import annotations

import numpy as np
import pytest

from bnviz import mechanics as mx
from bnviz import whitening as wh


def test_standardize_is_bn_with_unit_gamma_and_zero_beta():
    x = wh.correlated(64, 0.7, 3.0)
    steps = mx.normalize(x, np.ones(2), np.zeros(2))
    np.testing.assert_allclose(wh.standardize(x), steps.y, atol=1e-12)


@pytest.mark.parametrize("rho", [-0.99, -0.5, 0.0, 0.8, 0.99])
@pytest.mark.parametrize("scale", [0.1, 1.0, 10.0])
def test_bn_keeps_the_correlation_whitening_removes_it(rho, scale):
    x = wh.correlated(2000, rho, scale)
    assert wh.correlation(x)[0, 1] == pytest.approx(rho, abs=0.05)
    std = wh.standardize(x)
    np.testing.assert_allclose(np.diag(wh.covariance(std)), 1.0, atol=2e-3)  # var/(var + ε)
    assert wh.correlation(std)[0, 1] == pytest.approx(wh.correlation(x)[0, 1], abs=1e-9)
    white = wh.covariance(wh.whiten(x))
    # U·diag(λ/(λ + ε))·Uᵀ: ε = 1e-5 shortens only a direction whose variance is near it
    # (ρ ±0.99 with std 0.1), and only then leaves a trace off the diagonal
    assert abs(white[0, 1]) < 0.01
    np.testing.assert_allclose(np.diag(white), 1.0, atol=0.06)
    if scale >= 1.0 and abs(rho) < 0.9:
        np.testing.assert_allclose(white, np.eye(2), atol=1e-4)


def test_degenerate_batches_stay_finite():
    for rho in (-1.0, 1.0):
        x = wh.correlated(50, rho, 2.0)
        assert wh.covariance_rank(x) == 1
        assert np.isfinite(wh.whiten(x)).all()
    two = wh.correlated(2, 0.3, 1.0)
    assert wh.covariance_rank(two) == 1  # N − 1 directions
    assert np.isfinite(wh.whiten(two)).all() and np.isfinite(wh.standardize(two)).all()
    constant = np.hstack([wh.correlated(10, 0.5, 1.0), np.ones((10, 1))])
    assert wh.max_correlation(constant) == pytest.approx(abs(wh.correlation(constant)[0, 1]))
