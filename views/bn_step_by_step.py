"""BN step by step: Alg. 1 on a real batch of digits through one freshly initialized layer."""

import numpy as np
import streamlit as st

from bnviz import mechanics as mx
from bnviz import mechanics_charts as mc
from bnviz.data import load_arrays
from dashboard import lesson_page

UNITS = 32  # width of the fresh layer: Linear(64, 32) on standardized digits
SIZES = [2, 4, 8, 16, 32, 64, 128, 256]


@st.cache_data(show_spinner=False)
def layer() -> tuple[np.ndarray, np.ndarray]:
    """The whole training set through the fresh layer (N, 32), and the first images (N, 1, 8, 8)."""
    x = load_arrays("digits")[0].astype(np.float64)
    return mx.dense_layer(x, UNITS, seed=0), x[:256].reshape(-1, 1, 8, 8)


lesson = lesson_page.header("bn_step_by_step")
z, images = layer()
left, right = st.columns([2, 3], gap="large")
with left:
    lesson_page.text(lesson)
with right:
    c1, c2, c3 = st.columns(3)
    m = c1.select_slider("batch size m", SIZES[1:], value=32, key="sbs-m")
    first = c2.number_input("batch", 0, len(z) // m - 1, 0, key="sbs-batch") * m
    unit = c3.selectbox("unit", range(UNITS), index=0, key="sbs-unit")
    batch = z[first : first + m]
    alg1, affine, noise, coupling, axes = lesson_page.tabs(
        ["Alg. 1", "γ and β", "Batch noise", "Coupling and gradient", "Dense vs conv"], "sbs-tab"
    )

if alg1.open:
    with alg1:
        s = mx.normalize(batch)
        units = sorted({unit, (unit + 1) % UNITS, (unit + 2) % UNITS})
        lesson_page.plot(mc.steps_histograms(s.x, s.xhat, s.y, units), "sbs-hist")
        lesson_page.table(
            {
                "unit": units,
                "μ_B": [float(s.mean[u]) for u in units],
                "σ²_B": [float(s.var[u]) for u in units],
                "√(σ²_B+ε)": [float(np.sqrt(s.var[u] + s.eps)) for u in units],
                **{
                    f"sample {i}: x → x̂": [f"{s.x[i, u]:.3f} → {s.xhat[i, u]:.3f}" for u in units]
                    for i in range(2)
                },
            }
        )


@st.fragment
def gamma_beta() -> None:
    s = mx.normalize(batch)
    g0, b0 = mx.identity_affine(s)
    undo = st.toggle("γ = √(σ²_B+ε), β = μ_B (undo the normalization)", key="sbs-undo")
    c1, c2 = st.columns(2)
    top = float(max(3.0, np.ceil(g0[unit] * 1.5)))
    gamma = c1.slider("γ (weight)", 0.0, top, 1.0, 0.05, key="sbs-gamma", disabled=undo)
    beta = c2.slider("β (bias)", -3.0, 3.0, 0.0, 0.05, key="sbs-beta", disabled=undo)
    g, b = (g0, b0) if undo else (np.full(UNITS, gamma), np.full(UNITS, beta))
    t = mx.normalize(batch, g, b)
    err = float(np.abs(t.y[:, unit] - t.x[:, unit]).max())
    st.markdown(
        f"Unit {unit}: μ_B = {s.mean[unit]:.4f}, √(σ²_B+ε) = {g0[unit]:.4f} · γ = {g[unit]:.4f}, "
        f"β = {b[unit]:.4f} · max |y − x| over the batch = **{err:.2e}**"
    )
    lesson_page.plot(mc.steps_histograms(t.x, t.xhat, t.y, [unit]), "sbs-affine")


if affine.open:
    with affine:
        gamma_beta()

if noise.open:
    with noise:
        spreads = mx.spread(z, unit, SIZES, n_batches=200)
        lesson_page.plot(
            mc.spread_chart(
                SIZES,
                [p.means for p in spreads],
                [p.stds for p in spreads],
                (z[:, unit].mean(), z[:, unit].std()),
            ),
            "sbs-spread",
        )
        st.caption(
            "Spread (std over 200 batches) of μ_B: "
            + ", ".join(f"m={p.m}: {p.mean_sd:.3f}" for p in spreads)
            + f" — about σ/√m (σ = {z[:, unit].std():.3f}); of σ_B: "
            + ", ".join(f"{p.std_sd:.3f}" for p in spreads)
        )


@st.fragment
def couple() -> None:
    s = mx.normalize(batch)
    c1, c2 = st.columns(2)
    i = c1.slider("change sample", 0, m - 1, 0, key="sbs-i")
    delta = c2.slider("by (× σ_B)", -5.0, 5.0, 3.0, 0.5, key="sbs-delta")
    t = mx.change_one(s, i, delta * float(np.sqrt(s.var[unit])), unit)
    others = np.delete(np.abs(t.y[:, unit] - s.y[:, unit]), i)
    st.markdown(
        f"The other {m - 1} samples' y moved by up to **{others.max():.3f}** "
        f"(mean {others.mean():.3f})."
    )
    lesson_page.plot(mc.coupling_chart(s.y[:, unit], t.y[:, unit], i), "sbs-couple")
    dy = np.random.default_rng(1).normal(size=s.x.shape)  # L = Σ w·y with fixed random w
    dx, _, _ = mx.backward(s, dy)
    const = mx.backward_constant_stats(s, dy)
    lesson_page.plot(mc.gradient_chart(dx[:, unit], const[:, unit]), "sbs-grad")
    st.caption(
        f"Through μ_B and σ²_B (what autograd computes; tested equal): Σ dL/dx = "
        f"{dx[:, unit].sum():.1e}, Σ dL/dx·x̂ = {(dx[:, unit] * s.xhat[:, unit]).sum():.1e}. "
        f"With the statistics as constants: {const[:, unit].sum():.3f} and "
        f"{(const[:, unit] * s.xhat[:, unit]).sum():.3f} — a gradient step could shift or "
        "scale the whole batch, which the next normalization would undo."
    )


if coupling.open:
    with coupling:
        couple()

if axes.open:
    with axes:
        conv = mx.conv_layer(images[:8], 4, seed=0)
        channel = min(unit, 3)
        lesson_page.plot(mc.axes_diagram(batch[:8], unit), "sbs-dense")
        st.caption(f"μ_B of feature {unit} over these 8 samples: {batch[:8, unit].mean():.4f}")
        lesson_page.plot(mc.axes_diagram(conv, channel), "sbs-conv")
        st.caption(
            f"A fresh Conv2d(1, 4, 3) on 8 digits: μ_B of channel {channel} over 8 × 8 × 8 = "
            f"{8 * 64} values: {mx.normalize(conv).mean[channel]:.4f}"
        )
