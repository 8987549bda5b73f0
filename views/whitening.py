"""Whitening vs BN's per-feature standardization: one batch of two correlated features three
ways, and what full whitening would cost on the digits."""

import numpy as np
import streamlit as st

from bnviz import mechanics as mx
from bnviz import mechanics_charts as mc
from bnviz import whitening as wh
from bnviz.data import load_arrays
from dashboard import lesson_page

SIZES = [2, 4, 8, 32, 256]  # samples in the batch
SCALES = [0.1, 0.3, 1.0, 3.0, 10.0]  # standard deviation of feature 2 (feature 1's is 1)
UNITS, BATCH = 100, 60  # a hidden layer of the lessons' nets and their batch size


@st.cache_data(show_spinner=False)
def digits_facts() -> dict[str, float]:
    """Correlations of the digits' 64 pixels raw, standardized and whitened; the rank of one
    training batch's covariance after a fresh Linear(64, 100)."""
    xtr, _, _, _ = load_arrays("digits")
    x = xtr.astype(np.float64)
    z = mx.dense_layer(x, UNITS, seed=0)[:BATCH]
    return {
        "raw": wh.max_correlation(x),
        "standardized": wh.max_correlation(wh.standardize(x)),
        "whitened": wh.max_correlation(wh.whiten(x)),
        "rank": wh.covariance_rank(z),
        "layer_whitened": wh.max_correlation(wh.whiten(z)),
    }


lesson = lesson_page.header("whitening")
left, right = st.columns([2, 3], gap="large")
with left:
    lesson_page.text(lesson)
with right:
    c1, c2, c3 = st.columns(3)
    rho = c1.slider("correlation ρ", -0.99, 0.99, 0.8, 0.01, key="wh-rho")
    scale = c2.select_slider("std of feature 2", SCALES, value=3.0, key="wh-scale")
    m = c3.select_slider("batch size m", SIZES, value=256, key="wh-m")
    x = wh.correlated(m, rho, scale, seed=0)
    ways = {"raw": x, "BN: each feature": wh.standardize(x), "whitened": wh.whiten(x)}
    lesson_page.plot(mc.whitening_chart(list(ways.items())), "wh-scatter")
    covs = {k: wh.covariance(v) for k, v in ways.items()}
    lesson_page.table(
        {
            "batch": list(ways),
            "var₁": [float(c[0, 0]) for c in covs.values()],
            "var₂": [float(c[1, 1]) for c in covs.values()],
            "cov₁₂": [float(c[0, 1]) for c in covs.values()],
            "corr₁₂": [float(wh.correlation(v)[0, 1]) for v in ways.values()],
        }
    )
    st.caption(
        "Standardizing rescales each axis on its own, so the correlation is untouched; "
        "whitening rotates and rescales until the covariance is the identity. ε = 1e-5 is "
        "added to every variance and eigenvalue, as in BN: a nearly flat direction (ρ near ±1 "
        "with a small std) stays below variance 1, and a batch of 2 has only one direction."
    )
    facts = digits_facts()
    st.markdown(
        f"**On the digits.** The largest correlation between two of the 64 pixels is "
        f"{facts['raw']:.3f}; standardized per pixel it is still {facts['standardized']:.3f}, "
        f"whitened {facts['whitened']:.1e}. After a fresh Linear(64, {UNITS}), one batch of "
        f"{BATCH} has a covariance of rank {facts['rank']} for {UNITS} units: whitening it "
        f"cannot reach the identity (largest correlation left {facts['layer_whitened']:.2f}), "
        f"and would cost a {UNITS}×{UNITS} eigendecomposition, and its gradient, every step."
    )
