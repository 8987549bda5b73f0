"""Inference: Alg. 2 — running statistics, population statistics, m/(m−1), the folded map."""

import numpy as np
import streamlit as st

from bnviz import mechanics as mx
from bnviz import mechanics_charts as mc
from bnviz.data import load_arrays
from dashboard import lesson_page

UNITS = 32
MOMENTA = {"momentum 0.1": 0.1, "momentum 0.01": 0.01, "momentum None (cumulative)": None}
SIZES = [2, 4, 8, 16, 32, 64]


@st.cache_data(show_spinner=False)
def layer() -> tuple[np.ndarray, np.ndarray]:
    """Training and test sets through the fresh Linear(64, 32) of the step-by-step lesson."""
    xtr, _, xte, _ = load_arrays("digits")
    return mx.dense_layer(xtr, UNITS, seed=0), mx.dense_layer(xte, UNITS, seed=0)


lesson = lesson_page.header("bn_inference")
z, z_test = layer()
left, right = st.columns([2, 3], gap="large")
with left:
    lesson_page.text(lesson)
with right:
    c1, c2, c3 = st.columns(3)
    m = c1.select_slider("batch size m", [*SIZES[1:], 128], value=32, key="inf-m")
    epochs = c2.select_slider("epochs", [1, 2, 3, 5, 10], value=2, key="inf-epochs")
    unit = c3.selectbox("unit", range(UNITS), index=0, key="inf-unit")
    running, unbiased, folded = lesson_page.tabs(
        ["Running statistics", "m/(m−1)", "Folded map"], "inf-tab"
    )

index = mx.batches(len(z), m, np.random.default_rng(0), n_batches=epochs * (len(z) // m))
means, variances = mx.batch_stats(z, index)
pop_mean, pop_var = mx.population_stats(means, variances, m)

if running.open:
    with running:
        traces = {k: mx.running_trace(means, variances, m, v) for k, v in MOMENTA.items()}
        unbiased_batches = variances[:, unit] * m / (m - 1)
        lesson_page.plot(
            mc.running_chart(
                means[:, unit],
                unbiased_batches,
                {k: (rm[:, unit], rv[:, unit]) for k, (rm, rv) in traces.items()},
                (float(pop_mean[unit]), float(pop_var[unit])),
            ),
            "inf-running",
        )
        rows = {k: (rm[-1, unit], rv[-1, unit]) for k, (rm, rv) in traces.items()}
        lesson_page.table(
            {
                f"after {len(means)} steps": [*rows, "Alg. 2: E[μ_B], m/(m−1)·E[σ²_B]"],
                "running_mean": [float(v[0]) for v in rows.values()] + [float(pop_mean[unit])],
                "running_var": [float(v[1]) for v in rows.values()] + [float(pop_var[unit])],
            }
        )
        st.caption(
            "PyTorch's `momentum` weights the new batch: running = (1 − momentum)·running + "
            "momentum·μ_B. Lecture 003 writes μ̄ ← p·μ̄ + (1 − p)·μ_t, where p weights the old "
            "average, and recalls p = 0.1 for PyTorch: in its notation PyTorch's default is "
            "p = 0.9."
        )

if unbiased.open:
    with unbiased:
        rng = np.random.default_rng(1)
        stats = [
            mx.batch_stats(z[:, unit : unit + 1], mx.batches(len(z), k, rng, 300)) for k in SIZES
        ]
        biased = [float(v.mean()) for _, v in stats]
        lesson_page.plot(
            mc.unbiased_chart(
                SIZES,
                biased,
                [b * k / (k - 1) for b, k in zip(biased, SIZES)],
                float(z[:, unit].var(ddof=1)),
            ),
            "inf-unbiased",
        )
        st.caption(
            "σ²_B divides by m, so over many batches it averages (m−1)/m of the variance: "
            "at m = 2, "
            f"half ({biased[0]:.3f} vs {z[:, unit].var(ddof=1):.3f}). Alg. 2 and PyTorch's "
            "running_var multiply by m/(m−1); training itself normalizes with the biased σ²_B."
        )


@st.fragment
def fold() -> None:
    c1, c2 = st.columns(2)
    gamma = c1.slider("γ (weight)", 0.0, 3.0, 1.5, 0.05, key="inf-gamma")
    beta = c2.slider("β (bias)", -3.0, 3.0, 0.5, 0.05, key="inf-beta")
    g, b = np.full(UNITS, gamma), np.full(UNITS, beta)
    a, c = mx.fold(g, b, pop_mean, pop_var)
    eval_out = mx.eval_norm(z_test, pop_mean, pop_var, g, b)
    diff = float(np.abs(a * z_test + c - eval_out).max())
    st.markdown(
        f"Unit {unit}: y = γ/√(Var+ε)·x + (β − γ·E[x]/√(Var+ε)) = **{a[unit]:.4f}·x + "
        f"{c[unit]:.4f}**. On the {len(z_test)} test digits, all {UNITS} units: max |folded − "
        f"eval mode| = **{diff:.1e}** (tested against torch's eval mode to 1e-6)."
    )
    batch = z[index[0], unit]
    t = mx.normalize(z[index[0]], g, b)
    lesson_page.plot(mc.fold_chart(batch, t.y[:, unit], float(a[unit]), float(c[unit])), "inf-fold")
    st.caption(
        "Dots: the first training batch in train mode (its own μ_B and σ²_B); the line: eval "
        "mode with the population statistics. The map also folds into the Linear before it: "
        "W′ = a·W, b′ = a·b + c — inference BN costs nothing."
    )


if folded.open:
    with folded:
        fold()
