"""Plotly figure dicts for the mechanics lessons (BN step by step, inference, train vs eval, the
error surface). Pure functions of arrays: they know nothing of Streamlit or of training, and
compute nothing that a test should check (the numbers come from `mechanics`, `pitfalls` and
`surface`). Built as dicts in the style of `charts` (large fonts, one colour per quantity).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .charts import FONT, PALETTE
from .palette import INK

Figure = dict[str, Any]
# One colour per quantity of Alg. 1, the same on every chart.
C_X, C_XHAT, C_Y = PALETTE[0], PALETTE[8], PALETTE[1]
GREEN, ORANGE, PURPLE = PALETTE[2], PALETTE[3], PALETTE[4]


def _layout(title: str, height: int = 360, **kw: Any) -> dict:
    base = {
        "title": {"text": title, "font": {"size": 18}},
        "font": FONT,
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 60, "b": 60},
        "legend": {"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom", "x": 0},
        "template": "plotly_white",
        "hovermode": "closest",
    }
    base.update(kw)
    # automargin: the axis titles sit past the tick labels (at 1024 px the tick labels ran
    # into the titles: "8" over "batch size")
    for k in ("xaxis", "yaxis"):
        base[k] = {"automargin": True, **base.get(k, {})}
    return base


def _panels(n: int, gap: float = 0.12) -> list[list[float]]:
    w = (1 - gap * (n - 1)) / n
    return [[i * (w + gap), i * (w + gap) + w] for i in range(n)]


def _side_by_side(layout: dict, titles: Sequence[str], gap: float = 0.12, **axis: Any) -> None:
    """n panels in a row: xaxis{i}/yaxis{i} with a title above each."""
    ann = layout.setdefault("annotations", [])
    for i, (dom, t) in enumerate(zip(_panels(len(titles), gap), titles), start=1):
        s = "" if i == 1 else str(i)
        x, y = axis.get("x", {}), axis.get("y", {})
        layout[f"xaxis{s}"] = {"domain": dom, "anchor": f"y{s}", "automargin": True, **x}
        layout[f"yaxis{s}"] = {"anchor": f"x{s}", "automargin": True, **y}
        ann.append(
            {
                "text": t,
                "x": sum(dom) / 2,
                "y": 1.0,
                "xref": "paper",
                "yref": "paper",
                "xanchor": "center",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 15},
            }
        )


def _ax(i: int) -> dict:
    s = "" if i == 1 else str(i)
    return {"xaxis": f"x{s}", "yaxis": f"y{s}"}


def _f32(a: Any) -> list:
    return np.asarray(a, dtype=np.float32).round(5).tolist()


def _hist(values: np.ndarray, edges: np.ndarray) -> list:
    counts, _ = np.histogram(values, bins=edges)
    return counts.tolist()


# --- 1. BN step by step ------------------------------------------------------------------------


def steps_histograms(
    x: np.ndarray, xhat: np.ndarray, y: np.ndarray, units: Sequence[int]
) -> Figure:
    """Per chosen unit (one panel each): histograms of its input x, x̂ and y = γx̂ + β over the
    batch, overlaid on one x-axis."""
    data = []
    for j, u in enumerate(units, start=1):
        cols = [x[:, u], xhat[:, u], y[:, u]]
        lo = min(float(c.min()) for c in cols)
        hi = max(float(c.max()) for c in cols)
        edges = np.linspace(lo - 1e-9, hi + 1e-9, 17)
        centers = (edges[:-1] + edges[1:]) / 2
        for name, col, colour in zip(("x", "x̂", "y = γx̂ + β"), cols, (C_X, C_XHAT, C_Y)):
            data.append(
                {
                    "type": "bar",
                    "x": _f32(centers),
                    "y": _hist(col, edges),
                    "width": float(edges[1] - edges[0]),
                    "name": name,
                    "legendgroup": name,
                    "showlegend": j == 1,
                    "marker": {"color": colour, "opacity": 0.5},
                    **_ax(j),
                }
            )
    layout = _layout("The batch's values of each unit: x, x̂ and y", barmode="overlay")
    _side_by_side(layout, [f"unit {u}" for u in units])
    layout["yaxis"]["title"] = {"text": "samples"}  # once: beside the other panels it overlapped
    return {"data": data, "layout": layout}


def axes_diagram(acts: np.ndarray, channel: int, max_cols: int = 16) -> Figure:
    """The activations as a grid, one row per sample, with what one statistic averages outlined:
    dense (N, C): one column (one feature over the batch); conv (N, C, H, W): one channel's
    block (that channel over the batch and every pixel)."""
    n = acts.shape[0]
    if acts.ndim == 2:
        shown = acts[:, :max_cols]
        x0, x1 = channel - 0.5, channel + 0.5
        title = f"Dense: μ_B of feature {channel} = mean of one column (N values)"
        xtitle = "feature"
    else:
        c, hw = acts.shape[1], acts.shape[2] * acts.shape[3]
        shown = acts.reshape(n, c * hw)
        x0, x1 = channel * hw - 0.5, (channel + 1) * hw - 0.5
        title = (
            f"Conv: μ_B of channel {channel} = mean of one block "
            f"(N·H·W = {n}·{acts.shape[2]}·{acts.shape[3]} values)"
        )
        xtitle = f"channel × pixel (blocks of {hw} pixels)"
    data = [
        {
            "type": "heatmap",
            "z": _f32(shown),
            "colorscale": "RdBu",
            "zmid": 0,
            "showscale": False,
            "hovertemplate": "sample %{y}, column %{x}: %{z:.3g}<extra></extra>",
        }
    ]
    shape = {
        "type": "rect",
        "x0": x0,
        "x1": x1,
        "y0": -0.5,
        "y1": n - 0.5,
        "line": {"color": INK, "width": 4},
    }
    layout = _layout(
        title,
        shapes=[shape],
        xaxis={"title": {"text": xtitle}},
        yaxis={"title": {"text": "sample in the batch"}, "autorange": "reversed"},
    )
    layout["title"]["font"]["size"] = 16
    return {"data": data, "layout": layout}


def spread_chart(
    sizes: Sequence[int],
    means: Sequence[np.ndarray],
    stds: Sequence[np.ndarray],
    population: tuple[float, float],
) -> Figure:
    """μ_B and σ_B of one unit over many batches, one box per batch size, with the full
    training set's mean and std as dotted lines."""
    data = []
    for j, (vals, ref) in enumerate(((means, population[0]), (stds, population[1])), start=1):
        for m, v in zip(sizes, vals):
            data.append(
                {
                    "type": "box",
                    "y": _f32(v),
                    "name": str(m),
                    "marker": {"color": C_X if j == 1 else C_Y, "size": 3},
                    "boxpoints": False,
                    "showlegend": False,
                    **_ax(j),
                }
            )
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": [str(sizes[0]), str(sizes[-1])],
                "y": [ref, ref],
                "line": {"dash": "dot", "color": INK},
                "name": "whole training set",
                "showlegend": j == 1,
                **_ax(j),
            }
        )
    layout = _layout("Batch statistics over 200 batches, by batch size", height=340)
    _side_by_side(
        layout,
        ["μ_B: additive noise", "σ_B: multiplicative noise"],
        # level ticks in smaller type: eight sizes fit a 200-pixel panel without turning
        x={
            "title": {"text": "batch size"},
            "type": "category",
            "tickangle": 0,
            "tickfont": {"size": 12},
        },
    )
    return {"data": data, "layout": layout}


def coupling_chart(before: np.ndarray, after: np.ndarray, changed: int) -> Figure:
    """Each sample's output y for one unit, before and after one sample's input changed."""
    idx = list(range(len(before)))
    others = [i for i in idx if i != changed]
    data = [
        {
            "type": "scatter",
            "mode": "markers",
            "x": idx,
            "y": _f32(before),
            "name": "before",
            "marker": {"color": C_XHAT, "size": 11, "symbol": "circle-open", "line": {"width": 2}},
        },
        {
            "type": "scatter",
            "mode": "markers",
            "x": others,
            "y": _f32(after[others]),
            "name": "after (the others)",
            "marker": {"color": C_Y, "size": 8},
        },
        {
            "type": "scatter",
            "mode": "markers",
            "x": [changed],
            "y": _f32(after[[changed]]),
            "name": f"after (sample {changed}, changed)",
            "marker": {"color": ORANGE, "size": 14, "symbol": "star"},
        },
    ]
    layout = _layout(
        "Every sample's y moves when one sample changes",
        xaxis={"title": {"text": "sample in the batch"}},
        yaxis={"title": {"text": "y = γx̂ + β"}},
    )
    return {"data": data, "layout": layout}


def gradient_chart(through: np.ndarray, constant: np.ndarray) -> Figure:
    """dL/dx per sample of one unit: through μ_B and σ²_B (autograd's) vs the statistics held
    constant."""
    idx = list(range(len(through)))
    data = [
        {
            "type": "bar",
            "x": idx,
            "y": _f32(constant),
            "name": "μ_B, σ²_B as constants",
            "marker": {"color": C_XHAT},
        },
        {
            "type": "bar",
            "x": idx,
            "y": _f32(through),
            "name": "through μ_B and σ²_B",
            "marker": {"color": C_Y},
        },
    ]
    layout = _layout(
        "dL/dx for each sample (L = Σ w·y, w fixed at random)",
        barmode="group",
        xaxis={"title": {"text": "sample in the batch"}},
    )
    return {"data": data, "layout": layout}


# --- 2. Inference --------------------------------------------------------------------------


def running_chart(
    batch_means: np.ndarray,
    batch_vars: np.ndarray,
    traces: dict[str, tuple[np.ndarray, np.ndarray]],
    population: tuple[float, float],
) -> Figure:
    """Batch statistics step by step (dots) and running_mean / running_var for each momentum,
    with the population statistics (dotted)."""
    steps = list(range(1, len(batch_means) + 1))
    data: list[dict] = []
    for j, (batch, ref) in enumerate(
        ((batch_means, population[0]), (batch_vars, population[1])), start=1
    ):
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": steps,
                "y": _f32(batch),
                "name": "this batch (μ_B; σ²_B × m/(m−1))",
                "showlegend": j == 1,
                "marker": {"color": "#bbbbbb", "size": 5},
                **_ax(j),
            }
        )
        for k, (label, (rm, rv)) in enumerate(traces.items()):
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": steps,
                    "y": _f32(rm if j == 1 else rv),
                    "name": label,
                    "legendgroup": label,
                    "showlegend": j == 1,
                    "line": {"color": PALETTE[[0, 1, 2, 4][k % 4]], "width": 3},
                    **_ax(j),
                }
            )
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": [1, steps[-1]],
                "y": [ref, ref],
                "name": "population (whole pass)",
                "showlegend": j == 1,
                "line": {"dash": "dot", "color": INK},
                **_ax(j),
            }
        )
    # Five legend entries wrap into up to four rows on a 1024-pixel projector: room below.
    layout = _layout("Running statistics follow the batches", height=500)
    layout["margin"]["b"] = 170
    _side_by_side(layout, ["running_mean", "running_var"], x={"title": {"text": "training step"}})
    return {"data": data, "layout": layout}


def unbiased_chart(
    sizes: Sequence[int], biased: Sequence[float], unbiased: Sequence[float], full_var: float
) -> Figure:
    """Average σ²_B over batches against the batch size m: the biased mean falls short by
    (m−1)/m; × m/(m−1) meets the training set's variance."""
    xs = [str(m) for m in sizes]
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "x": xs,
            "y": _f32(biased),
            "name": "mean of σ²_B (biased, ÷m)",
            "line": {"color": C_XHAT, "width": 3},
        },
        {
            "type": "scatter",
            "mode": "lines+markers",
            "x": xs,
            "y": _f32(unbiased),
            "name": "× m/(m−1)",
            "line": {"color": C_Y, "width": 3},
        },
        {
            "type": "scatter",
            "mode": "lines",
            "x": [xs[0], xs[-1]],
            "y": [full_var, full_var],
            "name": "variance over the training set",
            "line": {"dash": "dot", "color": INK},
        },
    ]
    layout = _layout(
        "Why Alg. 2 multiplies by m/(m−1)",
        height=360,
        xaxis={"title": {"text": "batch size m"}, "type": "category"},
    )
    layout["margin"]["b"] = 90
    return {"data": data, "layout": layout}


def fold_chart(x: np.ndarray, y_train: np.ndarray, a: float, c: float) -> Figure:
    """One unit: training-mode outputs of a batch (dots) and the eval-mode map y = a·x + c."""
    lo, hi = float(x.min()), float(x.max())
    pad = 0.1 * (hi - lo + 1e-9)
    xs = [lo - pad, hi + pad]
    data = [
        {
            "type": "scatter",
            "mode": "markers",
            "x": _f32(x),
            "y": _f32(y_train),
            "name": "train mode (this batch's μ_B, σ²_B)",
            "marker": {"color": C_Y, "size": 7},
        },
        {
            "type": "scatter",
            "mode": "lines",
            "x": xs,
            "y": [a * v + c for v in xs],
            "name": f"eval mode: y = {a:.3g}·x + {c:.3g}",
            "line": {"color": INK, "width": 3},
        },
    ]
    layout = _layout(
        "Eval mode is one straight line per unit",
        height=360,
        xaxis={"title": {"text": "x (the unit's input)"}},
        yaxis={"title": {"text": "y"}},
    )
    layout["margin"]["b"] = 90
    return {"data": data, "layout": layout}


# --- 3. Train vs eval ----------------------------------------------------------------------


def accuracy_bars(rows: Sequence[tuple[str, float]], title: str) -> Figure:
    """Horizontal bars of test accuracy (fractions → percent), top to bottom in the given order."""
    labels = [r[0] for r in rows][::-1]
    vals = [100 * r[1] for r in rows][::-1]
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "y": labels,
            "x": vals,
            "text": [f"{v:.1f} %" for v in vals],
            "textposition": "auto",
            "marker": {"color": [GREEN if v >= 90 else ORANGE if v >= 50 else C_Y for v in vals]},
            "hovertemplate": "%{y}: %{x:.1f} %<extra></extra>",
        }
    ]
    layout = _layout(
        title,
        height=60 + 42 * len(rows),
        xaxis={"title": {"text": "test accuracy (%)"}, "range": [0, 100]},
        yaxis={"automargin": True},
    )
    layout["margin"]["l"] = 20
    return {"data": data, "layout": layout}


def mates_heatmap(probs: np.ndarray, row_labels: Sequence[str], true_class: int) -> Figure:
    """One example's class probabilities (rows: batches it was put in; columns: classes)."""
    data = [
        {
            "type": "heatmap",
            "z": _f32(probs),
            "x": [str(k) for k in range(probs.shape[1])],
            "y": list(row_labels),
            "colorscale": "Blues",
            "zmin": 0,
            "zmax": 1,
            "text": [[f"{p:.2f}" for p in row] for row in probs],
            "texttemplate": "%{text}",
            "showscale": False,
            "hovertemplate": "%{y}, class %{x}: %{z:.2f}<extra></extra>",
        }
    ]
    layout = _layout(
        f"One test example (a {true_class}) in different batches: class probabilities",
        height=70 + 40 * len(row_labels),
        xaxis={"title": {"text": "class"}, "side": "bottom"},
        yaxis={"autorange": "reversed", "automargin": True},
    )
    layout["margin"]["l"] = 20
    layout["title"]["font"]["size"] = 16
    return {"data": data, "layout": layout}


# --- 4. The error surface ------------------------------------------------------------------


def surface_chart(panels: Sequence[dict]) -> Figure:
    """Side by side: loss contours (log-spaced levels) and the gradient-descent path per
    problem. Each panel: title, w1, w2 (grid axes), z (len(w2), len(w1)), path (k, 2),
    w_star (2,), note."""
    data: list[dict] = []
    layout = _layout("Loss contours and gradient descent, the same learning rate", height=470)
    layout["margin"]["b"] = 80
    titles = []
    for j, p in enumerate(panels, start=1):
        z = np.log10(np.asarray(p["z"]) + 1e-12)
        data.append(
            {
                "type": "contour",
                "x": _f32(p["w1"]),
                "y": _f32(p["w2"]),
                "z": _f32(z),
                "colorscale": "Viridis",
                "showscale": False,
                "ncontours": 18,
                "contours": {"coloring": "lines"},
                "line": {"width": 1.5},
                "hovertemplate": "w1 %{x:.3g}, w2 %{y:.3g}: log10 L %{z:.2f}<extra></extra>",
                **_ax(j),
            }
        )
        path = np.asarray(p["path"])
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": _f32(path[:, 0]),
                "y": _f32(path[:, 1]),
                "name": "gradient descent",
                "showlegend": j == 1,
                "legendgroup": "path",
                "line": {"color": C_Y, "width": 2},
                "marker": {"size": 5, "color": C_Y},
                **_ax(j),
            }
        )
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": [float(p["w_star"][0])],
                "y": [float(p["w_star"][1])],
                "name": "minimum",
                "showlegend": j == 1,
                "marker": {"symbol": "x", "size": 14, "color": INK},
                **_ax(j),
            }
        )
        titles.append(p["title"])
    _side_by_side(layout, titles, gap=0.17)  # room for the right panel's w2 title
    for dom, p in zip(_panels(len(panels), 0.17), panels):
        if p.get("diverged") is not None:  # the path leaves the plot: say so where it does
            layout["annotations"].append(
                {
                    "text": f"diverged at step {p['diverged']}<br>(off the plot)",
                    "x": sum(dom) / 2,
                    "y": 0.97,
                    "xref": "paper",
                    "yref": "paper",
                    "yanchor": "top",
                    "showarrow": False,
                    "font": {"size": 14, "color": C_Y},
                    "bgcolor": "rgba(255,255,255,0.8)",
                }
            )
    layout["uirevision"] = repr([p["box"] for p in panels])  # new ranges: drop the user's zoom
    for j, p in enumerate(panels, start=1):
        s = "" if j == 1 else str(j)
        layout[f"xaxis{s}"].update({"title": {"text": "w1"}, "range": list(p["box"][0])})
        layout[f"yaxis{s}"].update({"title": {"text": "w2"}, "range": list(p["box"][1])})
    return {"data": data, "layout": layout}


LOSS_CAP = 1e30  # L − L_min drawn at most this high: a diverged loss overflows float32


def surface_losses(
    paths: dict[str, np.ndarray],
    best: dict[str, float],
    diverged: dict[str, int | None] | None = None,
) -> Figure:
    """Loss above the minimum (log) against the step, one line per problem. A problem that
    diverged (`diverged`: its first step past 1e6 × the start) ends in a ✖ with its step: at
    s = 1000 the raw inputs diverge at step 1, and the line of two points, the second
    overflowing float32, drew nothing at all."""
    data = []
    for k, (label, losses) in enumerate(paths.items()):
        gap = np.asarray(losses, dtype=np.float64) - best[label]
        gap = np.clip(np.nan_to_num(gap, nan=LOSS_CAP, posinf=LOSS_CAP), 1e-12, LOSS_CAP)
        colour = (C_X, C_Y, GREEN)[k % 3]
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers" if len(gap) < 12 else "lines",
                "x": list(range(len(gap))),
                "y": [float(f"{v:.5g}") for v in gap],
                "name": label,
                "line": {"color": colour, "width": 3},
                "marker": {"color": colour, "size": 7},
            }
        )
        step = (diverged or {}).get(label)
        if step is not None:
            # The path stops before the step that diverged: its loss is past 1e6 × the start
            # (surface.descend's test); the ✖ sits there, dotted from the last kept step.
            over = float(f"{min(LOSS_CAP, 1e6 * float(losses[0]) - best[label]):.5g}")
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers+text",
                    "x": [len(gap) - 1, step],
                    "y": [float(f"{gap[-1]:.5g}"), over],
                    "line": {"color": colour, "dash": "dot", "width": 2},
                    "marker": {"symbol": ["circle", "x"], "size": [1, 16], "color": colour},
                    "text": ["", f"{label}: diverged at step {step} (L > 10⁶ × its start)"],
                    "textposition": "bottom right",
                    "textfont": {"color": colour},
                    "showlegend": False,
                    "hoverinfo": "skip",
                }
            )
    layout = _layout(
        "L − L_min over the steps",
        height=330,
        xaxis={"title": {"text": "step"}},
        yaxis={"title": {"text": "L − L_min"}, "type": "log", "exponentformat": "power"},
    )
    layout["margin"]["b"] = 90
    return {"data": data, "layout": layout}


# --- whitening vs per-feature standardization --------------------------------------------------


def whitening_chart(panels: Sequence[tuple[str, np.ndarray]]) -> Figure:
    """One scatter panel per (title, (N, 2) samples): the same batch raw, standardized per
    feature (BN) and whitened, each panel square (x and y on one scale) so a tilted cloud
    looks tilted."""
    colors = (C_X, C_Y, GREEN)
    data = [
        {
            "type": "scatter",
            "mode": "markers",
            "x": _f32(xy[:, 0]),
            "y": _f32(xy[:, 1]),
            "name": title,
            "showlegend": False,
            "marker": {"color": colors[i % len(colors)], "size": 6, "opacity": 0.7},
            "hovertemplate": "(%{x:.2f}, %{y:.2f})<extra></extra>",
            **_ax(i + 1),
        }
        for i, (title, xy) in enumerate(panels)
    ]
    layout = _layout("One batch of two features, three ways", height=380)
    _side_by_side(layout, [t for t, _ in panels], gap=0.08)
    for i in range(1, len(panels) + 1):
        s = "" if i == 1 else str(i)
        layout[f"xaxis{s}"] |= {"title": {"text": "feature 1"}, "zeroline": True}
        layout[f"yaxis{s}"] |= {"scaleanchor": f"x{s}", "scaleratio": 1, "zeroline": True}
    layout["yaxis"]["title"] = {"text": "feature 2"}
    return {"data": data, "layout": layout}
