"""Feature scaling and the error surface: two weights, raw vs standardized inputs, one lr."""

import numpy as np
import streamlit as st

from bnviz import mechanics_charts as mc
from bnviz import surface as sf
from dashboard import lesson_page

SCALES = [1, 3, 10, 30, 100, 1000]
RATES = [1e-6, 1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 1.5]
STEPS = 100

lesson = lesson_page.header("error_surface")
left, right = st.columns([2, 3], gap="large")
with left:
    lesson_page.text(lesson)


@st.fragment
def surface() -> None:
    c1, c2 = st.columns(2)
    scale = c1.select_slider("x2 ranges over [0, s]: s =", SCALES, value=10, key="es-scale")
    lr = c2.select_slider("learning rate (both)", RATES, value=0.05, key="es-lr")
    problems = sf.make_problems(float(scale))
    panels, losses, best, rows, diverged = [], {}, {}, [], {}
    for name, p in problems.items():
        path = sf.descend(p, lr, STEPS)
        box = sf.view_box(p, path)
        w1, w2 = np.linspace(*box[0], 50), np.linspace(*box[1], 50)
        title = f"{name}: λmax/λmin = {p.condition:.3g}"
        panels.append(
            dict(
                title=title,
                w1=w1,
                w2=w2,
                z=sf.loss_grid(p, w1, w2),
                path=path.w,
                w_star=p.w_star,
                box=box,
                diverged=path.diverged_step,
            )
        )
        losses[name], best[name] = path.losses, float(sf.loss(p, p.w_star))
        diverged[name] = path.diverged_step
        reached = sf.steps_to(path, p)
        if path.diverged_step is not None:
            result = f"diverged at step {path.diverged_step}"
        elif reached is None:
            result = f"not within 1 % of the minimum after {STEPS} steps"
        else:
            result = f"within 1 % of the minimum after {reached} steps"
        rows.append((name, p.condition, p.max_lr, result))
    lesson_page.plot(mc.surface_chart(panels), "es-surface")
    lesson_page.table(
        {
            "inputs": [r[0] for r in rows],
            "λmax/λmin": [f"{r[1]:.3g}" for r in rows],
            "largest stable lr (2/λmax)": [f"{r[2]:.3g}" for r in rows],
            f"lr {lr:g}, {STEPS} steps": [r[3] for r in rows],
        }
    )
    lesson_page.plot(mc.surface_losses(losses, best, diverged), "es-losses")


with right:
    surface()
