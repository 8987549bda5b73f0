"""Records → Plotly figures, as plain dicts ({"data": [...], "layout": {...}}).

Pure functions: they take labels, colours and record rows and know nothing of training or of
Streamlit. Figures are built as dicts rather than with make_subplots (10× cheaper, which
matters at two refreshes a second), with large fonts for a projector and one colour per run
across every chart.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from .columns import column
from .palette import GUIDE, INK, INK_SOFT, NORM_COLORS
from .records import BASIS_POINTS

PALETTE = (
    "#1f77b4",  # blue
    "#d62728",  # red
    "#2ca02c",  # green
    "#ff7f0e",  # orange
    "#9467bd",  # purple
    "#8c564b",  # brown
    "#e377c2",  # pink
    "#17becf",  # cyan
    "#7f7f7f",  # grey
    "#bcbd22",  # olive
)
FONT = {"size": 17}
POINT_NAMES = {
    "linear": "Linear/Conv output",
    "act_in": "activation input",
    "act_out": "activation output",
    "norm_out": "norm output (placement after)",  # only layers with a norm after the activation
}

Figure = dict[str, Any]


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _colors(colors: Sequence[str] | None, n: int) -> list[str]:
    """Each run's colour: the caller's (`palette.run_colors`: its norm's, shaded by the other
    varied fields), else the n-th of PALETTE."""
    return list(colors) if colors is not None else [color(i) for i in range(n)]


def rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def base_layout(title: str | dict, **kw: Any) -> dict:
    """The common layout; `title`: its text, or a dict of title fields (e.g. a subtitle)."""
    base = {
        # Left-aligned: the modebar (on hover, top right) never covers a centred title.
        "title": {
            "font": {"size": 20},
            "x": 0,
            "xref": "paper",
            "xanchor": "left",
            **(title if isinstance(title, dict) else {"text": title}),
        },
        "font": FONT,
        # The legend sits at the figure's bottom edge (container coordinates), below the
        # x-axis title whatever the chart's height: placed in plot coordinates it covered
        # the axis title on short charts.
        # a subtitle takes a second line, above the panel titles of a multi-panel chart
        "margin": {"l": 70, "r": 20, "t": 92 if "subtitle" in str(title) else 60, "b": 100},
        "legend": {"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom", "x": 0},
        "uirevision": "keep",  # keep the user's zoom across live updates
        "template": "plotly_white",
        "hovermode": "closest",
        # an empty chart's default axes (−1…6 and −1…4) put both "−1" labels in the corner
        "xaxis": {"ticklabelstandoff": 8},
    }
    base.update(kw)
    return base


def _grid(n: int, cols: int, hgap: float = 0.06, vgap: float = 0.14) -> list[dict]:
    """Axis domains for n panels in a grid: [{"x": [a, b], "y": [c, d]}, ...]."""
    if n == 0:
        return []
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    w = (1 - hgap * (cols - 1)) / cols
    h = (1 - vgap * (rows - 1)) / rows
    out = []
    for i in range(n):
        r, c = divmod(i, cols)
        x0 = c * (w + hgap)
        y1 = 1 - r * (h + vgap)
        # rounded into [0, 1]: 3 panels with a 0.09 gap summed to 1.0000000000000002
        out.append(
            {
                "x": [round(x0, 9), min(1.0, round(x0 + w, 9))],
                "y": [max(0.0, round(y1 - h, 9)), round(y1, 9)],
            }
        )
    return out


def _panel_note(layout: dict, domain: dict, text: str) -> None:
    """A line of text in the middle of an empty panel (domain: one of _grid's)."""
    layout.setdefault("annotations", []).append(
        {
            "text": text,
            "x": sum(domain["x"]) / 2,
            "y": sum(domain["y"]) / 2,
            "xref": "paper",
            "yref": "paper",
            "showarrow": False,
        }
    )


PANEL_TICKS = {"size": 13}  # a panel of a multi-panel chart is ~150 px wide at 1024


def _axes(
    layout: dict,
    domains: list[dict],
    titles: Sequence[str],
    x_title: str | None = None,
    **yaxis: Any,
) -> None:
    """Add xaxis/yaxis pairs with panel titles as annotations; `x_title` under the bottom
    row's x axes. Level ticks in smaller type, few on x: at 1024 px plotly turned a panel's
    step ticks on their side, into the axis title and the legend below."""
    ann = layout.setdefault("annotations", [])
    bottom = min((d["y"][0] for d in domains), default=0)
    if "subtitle" in str(layout.get("title")) and domains:
        # the subtitle's line sits where the panel titles are: lift the title above them
        layout["margin"] = {**layout["margin"], "t": max(layout["margin"]["t"], 116)}
    for i, (d, t) in enumerate(zip(domains, titles), start=1):
        sfx = "" if i == 1 else str(i)
        # ticklabelstandoff: the lowest y label and the first x label meet at the corner
        layout[f"xaxis{sfx}"] = {
            "domain": d["x"],
            "anchor": f"y{sfx}",
            "ticklabelstandoff": 8,
            "tickangle": 0,
            "nticks": 4,
            "tickfont": PANEL_TICKS,
            "automargin": True,
        }
        if x_title and d["y"][0] == bottom:
            layout[f"xaxis{sfx}"]["title"] = {"text": x_title, "font": {"size": 14}, "standoff": 2}
        layout[f"yaxis{sfx}"] = {
            "domain": d["y"],
            "anchor": f"x{sfx}",
            "tickfont": PANEL_TICKS,
            **yaxis,
        }
        ann.append(
            {
                "text": t,
                "x": sum(d["x"]) / 2,
                "y": d["y"][1],
                "xref": "paper",
                "yref": "paper",
                "xanchor": "center",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 16},
            }
        )


def _log_ticks(layout: dict, data: Sequence[dict]) -> None:
    """On each log y axis, ticks at 1, 2, 5 × 10^k within its data, only the decades where
    those are more than four: plotly's own put a label at every 2 and 5 of a short panel,
    where they run into each other. An axis with no data yet shows no tick labels."""
    for axis in [k for k, v in layout.items() if k.startswith("yaxis") and v.get("type") == "log"]:
        ref = "y" + axis[5:]
        vals = [
            y for t in data if t.get("yaxis", "y") == ref for y in t.get("y", []) if y and y > 0
        ]
        if not vals:  # no data yet: plotly's default decades crowd a short panel
            layout[axis] |= {"showticklabels": False}
            continue
        lo, hi = min(vals), max(vals)
        k0, k1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        ticks = [m * 10.0**k for k in range(k0, k1 + 1) for m in (1, 2, 5)]
        ticks = [t for t in ticks if lo / 1.05 <= t <= hi * 1.05]
        if len(ticks) > 4:
            ticks = [t for t in ticks if f"{t:.0e}".startswith("1")]
        if len(ticks) >= 2:
            layout[axis] |= {"tickvals": ticks, "ticktext": [f"{t:g}" for t in ticks]}


def _ax(i: int) -> dict:
    sfx = "" if i == 1 else str(i)
    return {"xaxis": f"x{sfx}", "yaxis": f"y{sfx}"}


def curves(
    labels: Sequence[str],
    histories: Sequence[Sequence[dict]],
    metric: str = "acc",
    statuses: Sequence[str] | None = None,
    colors: Sequence[str] | None = None,
) -> Figure:
    """Train (dashed) and test (solid) loss or accuracy of every run against epochs."""
    cs = _colors(colors, len(labels))
    data = []
    for i, (label, rows) in enumerate(zip(labels, histories)):
        x = column(rows, "epoch")
        for split, dash in (("test", "solid"), ("train", "dot")):
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": label if split == "test" else f"{label} · train",
                    "legendgroup": label,  # one legend entry per run toggles both lines
                    "showlegend": split == "test",
                    "x": x,
                    "y": column(rows, f"{split}_{metric}"),
                    "line": {"color": cs[i], "dash": dash, "width": 3 if split == "test" else 2},
                }
            )
        if statuses and statuses[i] == "diverged" and rows:
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers+text",
                    "x": [rows[-1]["epoch"]],
                    "y": [rows[-1].get(f"test_{metric}") or 0],
                    "marker": {"symbol": "x", "size": 16, "color": cs[i]},
                    "text": ["diverged"],
                    "textposition": "middle right",
                    "showlegend": False,
                    "hoverinfo": "skip",
                }
            )
    name = "accuracy" if metric == "acc" else "loss (cross-entropy)"
    yaxis: dict[str, Any] = {"title": {"text": name}}
    if metric == "acc":
        yaxis["range"] = [0, 1.02]
    else:  # a log axis only when some run's loss explodes; else it hides the interesting range
        # the y columns just built: max over C-speed filters (None and 0 dropped; a loss is ≥ 0)
        lines = [t["y"] for t in data if t["mode"] == "lines"]
        if max((max(filter(None, y), default=0) for y in lines), default=0) > 20:
            yaxis["type"] = "log"
        else:
            yaxis["rangemode"] = "nonnegative"  # a loss is ≥ 0 (an empty chart drew −1…4)
    return {
        "data": data,
        "layout": base_layout(
            # short enough for a 300-pixel chart; the line styles in a smaller second line
            {
                "text": name.split(" ")[0].capitalize(),
                "subtitle": {"text": "test solid · train dotted", "font": {"size": 14}},
            },
            # ticklabelstandoff: the x axis's "0" and the y axis's "0" meet at the corner
            xaxis={
                "title": {"text": "epoch", "standoff": 4},
                "automargin": True,
                "ticklabelstandoff": 8,
            },
            yaxis=yaxis,
        ),
    }


def histograms(
    labels: Sequence[str],
    latest: Sequence[dict[int, dict]],
    point: str,
    cols: int = 4,
    colors: Sequence[str] | None = None,
) -> Figure:
    """The current distribution of every layer at one probe point, runs overlaid."""
    cs = _colors(colors, len(labels))
    layers = sorted({k for d in latest for k in d})
    domains = _grid(len(layers), cols)
    data = []
    for i, (label, per_layer) in enumerate(zip(labels, latest)):
        for j, layer in enumerate(layers, start=1):
            row = per_layer.get(layer)
            if row is None:
                continue
            edges, counts = row["hist"]["edges"], row["hist"]["counts"]
            total = max(1, row.get("n") or sum(counts))
            width = [b - a for a, b in itertools.pairwise(edges)]
            centers = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
            data.append(
                {
                    "type": "bar",
                    "name": label,
                    "legendgroup": label,
                    "showlegend": j == 1,
                    "x": centers,
                    "y": [c / total / w if w else 0 for c, w in zip(counts, width)],
                    "width": width,
                    "marker": {"color": rgba(cs[i], 0.45), "line": {"color": cs[i]}},
                    "hovertemplate": f"{label}<br>%{{x:.3g}}: %{{y:.3g}}<extra>step "
                    f"{row['step']}</extra>",
                    **_ax(j),
                }
            )
    layout = base_layout(f"Distribution of the {POINT_NAMES[point]} per layer", barmode="overlay")
    _axes(layout, domains, [f"layer {k}" for k in layers])
    return {"data": data, "layout": layout}


def percentile_bands(
    labels: Sequence[str],
    series: Sequence[Sequence[dict]],
    title: str,
    x_key: str = "step",
    cols: int | None = None,
    colors: Sequence[str] | None = None,
) -> Figure:
    """TensorBoard-style bands (9 basis points: ±0.5/1/1.5σ and min/max) and the 15/50/85th
    percentiles (Ioffe & Szegedy Fig. 1b–c) of one layer over training, one panel per run.
    The panels share one y range (the ±1.5σ bands of every run): comparing the spreads of
    runs with and without BN is the point. `cols`: panels per row (default: one row up to four
    runs, else 3)."""
    n = len(series)
    cols = cols or (n if n <= 4 else 3)  # one row up to four runs
    # rows apart by enough for the x ticks above and the next row's run names
    domains = _grid(n, cols, vgap=0.3 if n > cols else 0.2)
    data: list[dict] = []
    n_q = len(BASIS_POINTS)
    cs = _colors(colors, n)
    for i, (_label, rows) in enumerate(zip(labels, series), start=1):
        x = [r[x_key] for r in rows]
        c = cs[i - 1]
        for k in range(n_q // 2):  # outermost band first so inner ones draw on top
            lo = [r["quantiles"][k] for r in rows]
            hi = [r["quantiles"][n_q - 1 - k] for r in rows]
            alpha = 0.10 + 0.12 * k
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",  # plotly's default adds markers in its own colours
                    "x": x + x[::-1],
                    "y": hi + lo[::-1],
                    "fill": "toself",
                    "fillcolor": rgba(c, alpha),
                    "line": {"width": 0},
                    "hoverinfo": "skip",
                    "showlegend": False,
                    **_ax(i),
                }
            )
        for key, dash in (("p15", "dash"), ("p50", "solid"), ("p85", "dash")):
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": f"{key[1:]}th percentile",
                    "legendgroup": key,
                    "showlegend": i == 1,
                    "x": x,
                    "y": [r[key] for r in rows],
                    "line": {"color": INK, "dash": dash, "width": 2},
                    **_ax(i),
                }
            )
    ranges = [_band_range(rows) for rows in series]
    own = _outliers(ranges)
    shared = [r for r, o in zip(ranges, own) if r and not o]
    yaxis: dict[str, Any] = {"nticks": 4}  # small panels: a few ticks that never touch
    if shared:
        yaxis["range"] = _padded(min(r[0] for r in shared), max(r[1] for r in shared))
    layout = base_layout(title)
    # A run whose band is far wider (one that diverged: ±50k) gets its own y scale, marked in
    # its panel's title; on the shared one it flattened every other run's band to a line.
    titles = [f"{lab} · own y scale" if o else lab for lab, o in zip(labels, own)]
    _axes(layout, domains, titles, x_title=x_key, **yaxis)
    for i, (r, o) in enumerate(zip(ranges, own), start=1):
        if o and r:
            layout[f"yaxis{'' if i == 1 else i}"]["range"] = _padded(*r)
    for a in layout["annotations"]:
        a["font"] = {"size": 14}  # run names above small panels: keep them from colliding
    return {"data": data, "layout": layout}


def _band_range(rows: Sequence[dict]) -> tuple[float, float] | None:
    """The ±1.5σ band's extent over a run's rows (finite values only)."""
    vals = [v for r in rows for v in (r["quantiles"][1], r["quantiles"][7])]
    vals = [v for v in vals if v is not None and math.isfinite(v)]
    return (min(vals), max(vals)) if vals else None


def _outliers(ranges: Sequence[tuple[float, float] | None], factor: float = 20.0) -> list[bool]:
    """Which runs' extents are more than `factor`× the median run's (at least two runs)."""
    spans = sorted(r[1] - r[0] for r in ranges if r)
    if len(spans) < 2:
        return [False] * len(ranges)
    median = spans[(len(spans) - 1) // 2] or 1e-12
    return [bool(r) and (r[1] - r[0]) > factor * median for r in ranges]


def _padded(lo: float, hi: float) -> list[float]:
    pad = 0.1 * (hi - lo or 1.0)
    return [lo - pad, hi + pad]


def heatmaps(
    labels: Sequence[str],
    series: Sequence[Sequence[dict]],
    title: str,
    cols: int | None = None,
    shared_steps: bool = False,
) -> Figure:
    """Histograms over training as heatmaps (TensorBoard's 'offset' view), a panel per run:
    steps on x, the value on y (each run its own bins), one colour scale for all. Two panels
    per row at most, one past two runs (`cols` overrides), so each is wide enough to read; the
    figure's pixel height is `layout.height`, so titles, ticks and panels never overlap.
    `shared_steps`: one step axis for all (runs of one batch size), so a run that diverged
    early shows where it stopped."""
    n = len(series)
    cols = max(1, min(cols or (2 if n <= 2 else 1), n or 1))
    rows = math.ceil(n / cols) if n else 1
    panel, gap, top, bottom = (260 if cols > 1 else 150), 62, 84, 70  # pixels
    height = top + bottom + rows * panel + (rows - 1) * gap
    inner = height - top - bottom
    data: list[dict] = []
    zmax = 0.0
    for i, (label, rows_) in enumerate(zip(labels, series), start=1):
        if not rows_:
            continue
        edges = rows_[0]["hist"]["edges"]
        cols_ = [[c / max(1, r.get("n") or 1) for c in r["hist"]["counts"]] for r in rows_]
        z = [[round(col[b], 5) for col in cols_] for b in range(len(edges) - 1)]  # (bins, steps)
        zmax = max([zmax, *(v for row in z for v in row)])
        data.append(
            {
                "type": "heatmap",
                "x": [r["step"] for r in rows_],
                "y": [(a + b) / 2 for a, b in itertools.pairwise(edges)],
                "z": z,
                "coloraxis": "coloraxis",
                "hovertemplate": "step %{x}<br>value %{y:.3g}<br>share %{z:.3f}"
                f"<extra>{label}</extra>",
                **_ax(i),
            }
        )
    layout = base_layout(title, margin={"l": 80, "r": 20, "t": top, "b": bottom}, height=height)
    layout["coloraxis"] = {
        "colorscale": "Viridis",
        "cmin": 0,
        "cmax": zmax or 1,
        "colorbar": {
            "title": {"text": "share", "side": "top"},
            "lenmode": "pixels",
            "len": min(panel, 220),
            "y": 1,
            "yanchor": "top",
            "thickness": 14,
            "nticks": 4,
        },
    }
    domains = []
    for j in range(n):
        r, c = divmod(j, cols)
        y1 = 1 - r * (panel + gap) / inner
        x0 = c * 0.54  # the right column's value ticks sit in the gap
        y0 = max(0.0, round(y1 - panel / inner, 6))
        domains.append({"x": [x0, x0 + (0.46 if cols > 1 else 1)], "y": [y0, round(y1, 6)]})
    _axes(layout, domains, list(labels), nticks=6, tickformat=".2~g", zeroline=False)
    for j in range(1, n + 1):
        sfx = "" if j == 1 else str(j)
        layout[f"xaxis{sfx}"]["nticks"] = 6
        if shared_steps and j > 1:
            layout[f"xaxis{sfx}"]["matches"] = "x"
        if (j - 1) // cols == rows - 1:  # the bottom row's: the gaps above hold panel titles
            layout[f"xaxis{sfx}"]["title"] = {"text": "step", "standoff": 12}
        if (j - 1) % cols == 0:  # the left column's only: the gap holds ticks, not a title
            layout[f"yaxis{sfx}"]["title"] = {"text": "value", "standoff": 4}
        if not series[j - 1]:
            _panel_note(layout, domains[j - 1], "no probe here")
    for a in layout["annotations"][:n]:
        a["font"] = {"size": 15}
    return {"data": data, "layout": layout}


def per_layer_lines(
    labels: Sequence[str],
    rows_per_run: Sequence[Sequence[dict]],
    layers: Sequence[int],
    value: Any,
    title: str | dict,
    y_title: str,
    log: bool = False,
    guide: float | None = None,
    cols: int = 4,
    colors: Sequence[str] | None = None,
) -> Figure:
    """One panel per layer, a line per run: value(row) over steps (rows filtered by layer)."""
    cs = _colors(colors, len(labels))
    domains = _grid(len(layers), cols, hgap=0.09)  # the gap holds the next panel's y ticks
    data = []
    for i, (label, rows) in enumerate(zip(labels, rows_per_run)):
        for j, layer in enumerate(layers, start=1):
            pts = [(r["step"], value(r)) for r in rows if r["layer"] == layer]
            pts = [(s, v) for s, v in pts if v is not None]
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": label,
                    "legendgroup": label,
                    "showlegend": j == 1,
                    "x": [p[0] for p in pts],
                    "y": [p[1] for p in pts],
                    "line": {"color": cs[i], "width": 2.5},
                    **_ax(j),
                }
            )
    layout = base_layout(title)
    yaxis: dict[str, Any] = {"type": "log"} if log else {}
    _axes(layout, domains, [f"layer {k}" for k in layers], x_title="step", **yaxis)
    _log_ticks(layout, data)
    layout["yaxis"]["title"] = {"text": y_title}
    if guide is not None:
        layout["shapes"] = [
            {
                "type": "line",
                "xref": f"x{'' if j == 1 else j} domain",
                "yref": f"y{'' if j == 1 else j}",
                "x0": 0,
                "x1": 1,
                "y0": guide,
                "y1": guide,
                "line": {"color": GUIDE, "dash": "dash"},
            }
            for j in range(1, len(layers) + 1)
        ]
    return {"data": data, "layout": layout}


def gap(
    labels: Sequence[str],
    histories: Sequence[Sequence[dict]],
    colors: Sequence[str] | None = None,
) -> Figure:
    """Train and test accuracy of every run at its last record, side by side: the gap between
    the two bars is what a regularizer should shrink."""
    cs = _colors(colors, len(labels))
    last = [rows[-1] if rows else {} for rows in histories]
    data = []
    for split, alpha in (("train", 0.45), ("test", 1.0)):
        ys = [r.get(f"{split}_acc") for r in last]
        data.append(
            {
                "type": "bar",
                "name": split,
                "x": list(labels),
                "y": ys,
                "marker": {"color": [rgba(c, alpha) for c in cs]},
                "text": [f"{y:.0%}" if y is not None else "" for y in ys],
                "textposition": "inside",
                "insidetextanchor": "end",
                "textangle": 0,
                "textfont": {"size": 13},
                "hovertemplate": f"%{{x}}<br>{split} acc %{{y:.1%}}<extra></extra>",
            }
        )
    gaps = [
        (r["train_acc"] - r["test_acc"]) if r.get("train_acc") is not None else None for r in last
    ]
    # One field per line and the gap below: readable without rotating at four runs per chart.
    names = [lab.replace(", ", "<br>") for lab in labels]
    ticks = [f"{n}<br><b>gap {g:+.1%}</b>" if g is not None else n for n, g in zip(names, gaps)]
    return {
        "data": data,
        "layout": base_layout(
            "Train (light) vs test (dark) accuracy",
            barmode="group",
            showlegend=False,
            yaxis={"title": {"text": "accuracy"}, "range": [0, 1.12], "tickformat": ".0%"},
            xaxis={
                "tickvals": list(labels),
                "ticktext": ticks,
                "tickangle": 0,
                "tickfont": {"size": 13},
                "automargin": True,
            },
            margin={"l": 70, "r": 20, "t": 60, "b": 40},
        ),
    }


LOG_FIELDS = ("lr", "init_scale", "batch_size")  # swept over orders of magnitude


def _sweep_x_axis(xs: Sequence[Any], field: str) -> dict:
    """Categorical for text values; log for LOG_FIELDS and positive numbers spanning ≥ 10×,
    with a tick at every swept value (2, 8, 32, 128 read better than 10, 100)."""
    # ticklabelstandoff: on an empty chart the x axis's "−1" met the y axis's "0%"
    axis: dict[str, Any] = {
        "title": {"text": field, "standoff": 8},
        "automargin": True,
        "ticklabelstandoff": 8,
    }
    if any(isinstance(x, str) for x in xs):
        axis["type"] = "category"
        return axis
    vals = sorted(set(xs))
    log = bool(vals) and vals[0] > 0 and (field in LOG_FIELDS or vals[-1] >= 10 * vals[0])
    axis["type"] = "log" if log else "linear"
    if vals and len(vals) <= 12:
        axis["tickvals"] = vals
        axis["ticktext"] = [f"{x:g}" for x in vals]
    return axis


def _sweep_note(p: dict) -> str:
    if p["status"] == "diverged":
        return "diverged"
    return "stalled (near chance)" if p["stalled"] else p["status"]


def sweep(points: Sequence[dict], field: str, by: str | None) -> Figure:
    """Final (solid, markers) and best (dotted) test accuracy against a swept field, one
    colour per value of `by`. Diverged runs: ✕ at their last finite accuracy; stalled runs
    (near chance): hollow markers. Points as from `records.sweep_points`."""
    series: dict[Any, list[dict]] = {}
    for p in points:
        series.setdefault(p["series"], []).append(p)
    data: list[dict] = []
    for i, (name, pts) in enumerate(series.items()):
        if not any(isinstance(p["x"], str) for p in pts):
            pts = sorted(pts, key=lambda p: p["x"])  # text values keep the grid's order
        label = f"{by}={name}" if by is not None else "test accuracy"
        c = NORM_COLORS.get(str(name), color(i)) if by == "norm" else color(i)
        notes = [_sweep_note(p) for p in pts]
        symbols = [
            "x" if p["status"] == "diverged" else "circle-open" if p["stalled"] else "circle"
            for p in pts
        ]
        x = [p["x"] for p in pts]
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": label,
                "legendgroup": label,
                "x": x,
                "y": [p["final"] for p in pts],
                "line": {"color": c, "width": 3},
                "marker": {
                    "color": c,
                    "symbol": symbols,
                    "size": [16 if s == "x" else 12 for s in symbols],
                    "line": {"width": 2, "color": c},
                },
                "customdata": notes,
                "hovertemplate": f"{label}<br>{field}=%{{x}}<br>final test acc %{{y:.1%}}"
                "<br>%{customdata}<extra></extra>",
            }
        )
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{label} · best",
                "legendgroup": label,  # one legend entry (the final line's) toggles both
                "showlegend": False,
                "x": x,
                "y": [p["best"] for p in pts],
                "line": {"color": c, "width": 2, "dash": "dot"},
                "customdata": notes,
                "hovertemplate": f"{label}<br>{field}=%{{x}}<br>best test acc %{{y:.1%}}"
                "<br>%{customdata}<extra></extra>",
            }
        )
    for symbol, text, show in (
        ("x", "diverged", any(p["status"] == "diverged" for p in points)),
        ("circle-open", "stalled (near chance)", any(p["stalled"] for p in points)),
    ):
        if show:  # a legend entry that explains the marker
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": text,
                    "x": [None],
                    "y": [None],
                    "marker": {"symbol": symbol, "size": 12, "color": INK_SOFT},
                    "hoverinfo": "skip",
                }
            )
    for dash, text in (("solid", "final"), ("dot", "best")):  # the line styles' key
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": text,
                "x": [None],
                "y": [None],
                "line": {"color": INK_SOFT, "dash": dash, "width": 2},
                "hoverinfo": "skip",
            }
        )
    layout = base_layout(
        f"Test accuracy vs {field}",
        xaxis=_sweep_x_axis([p["x"] for p in points], field),
        yaxis={"title": {"text": "test accuracy"}, "range": [0, 1.02], "tickformat": ".0%"},
    )
    return {"data": data, "layout": layout}


def without_legend(fig: Figure) -> Figure:
    """The figure with its legend off and the room it kept at the bottom given back (for
    pages whose status line already names every run in its colour)."""
    fig["layout"]["showlegend"] = False
    fig["layout"]["margin"] = {**fig["layout"]["margin"], "b": 50}
    return fig


# A marker per group when runs of several groups share a chart (the colour stays per run);
# GLYPHS are the same shapes as text, for the page's key.
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "cross", "star", "hexagon")
GLYPHS = ("●", "■", "◆", "▲", "✕", "✚", "★", "⬢")


def compare_curves(
    names: Sequence[str],
    hovers: Sequence[str],
    groups: Sequence[int],
    histories: Sequence[Sequence[dict]],
    metric: str = "acc",
    statuses: Sequence[str] | None = None,
    colors: Sequence[str] | None = None,
) -> Figure:
    """`curves` of runs from several groups: short `names` in the legend, the long `hovers`
    (group name, time, run) on hover, and the test line of a run of group g marked with
    SYMBOLS[g] (a dozen markers along it), so two groups' runs of one colour differ."""
    fig = curves(names, histories, metric, statuses, colors)
    run = {name: i for i, name in enumerate(names)}
    several = len(set(groups)) > 1
    for t in fig["data"]:
        i = run.get(t.get("legendgroup"))
        if i is None:
            continue  # the ✕ of a diverged run
        split = "test" if t.get("showlegend") else "train"
        t["hovertemplate"] = f"{hovers[i]}<br>epoch %{{x:.3g}}: %{{y:.3g}}<extra>{split}</extra>"
        if several and split == "test":
            t["mode"] = "lines+markers"
            t["marker"] = {
                "symbol": SYMBOLS[groups[i] % len(SYMBOLS)],
                "size": 9,
                "color": t["line"]["color"],
                "maxdisplayed": 12,
            }
    return fig


def legend_below(fig: Figure, entries: int, height: int, per_row: int = 3, row_px: int = 32) -> int:
    """A long legend (a dozen runs) below the x axis instead of at the figure's bottom edge,
    where it grew up over the axis ticks: `per_row` entries a row in smaller type, hung from
    under the tick labels, the bottom margin sized to its rows and the plot kept as high as
    at `height`. Returns the chart's new height in pixels."""
    layout = fig["layout"]
    margin = layout["margin"]
    plot = height - margin["t"] - margin["b"]
    under = 40 + (30 if layout.get("xaxis", {}).get("title") else 0)  # ticks (and title)
    layout["legend"] = {
        "orientation": "h",
        "x": 0,
        "y": -under / plot,
        "yanchor": "top",
        "entrywidth": 0.95 / per_row,  # of the plot's width: exactly per_row a row
        "entrywidthmode": "fraction",
        "font": {"size": 14},
    }
    bottom = under + math.ceil(entries / per_row) * row_px + 8
    layout["margin"] = {**margin, "b": bottom}
    return margin["t"] + plot + bottom


def landscape_bands(
    labels: Sequence[str],
    rows_per_run: Sequence[Sequence[dict]],
    colors: Sequence[str] | None = None,
) -> Figure:
    """Santurkar et al.'s Fig. 4 style: three panels over training, a band (min–max over the
    step sizes along the gradient) per run — the loss, the gradient predictiveness
    ‖∇L(w − ηg) − g‖ — and the effective β-smoothness as a line (log y)."""
    panels = (
        ("loss_min", "loss_max", "loss along the gradient"),
        ("grad_diff_min", "grad_diff_max", "‖∇L(w − ηg) − g‖"),
        ("beta", "beta", "β-smoothness"),
    )
    domains = _grid(3, 3, hgap=0.09)
    cs = _colors(colors, len(labels))
    data: list[dict] = []
    for i, (label, rows) in enumerate(zip(labels, rows_per_run)):
        for j, (lo, hi, _t) in enumerate(panels, start=1):
            pts = [(r["step"], r.get(lo), r.get(hi)) for r in rows]
            pts = [p for p in pts if p[1] is not None and p[2] is not None]
            x = [p[0] for p in pts]
            common = {"name": label, "legendgroup": label, **_ax(j)}
            if lo != hi:
                data.append(
                    {
                        "type": "scatter",
                        "mode": "lines",
                        "x": x + x[::-1],
                        "y": [p[2] for p in pts] + [p[1] for p in pts][::-1],
                        "fill": "toself",
                        "fillcolor": rgba(cs[i], 0.3),
                        "line": {"width": 0},
                        "showlegend": False,
                        "hoverinfo": "skip",
                        **common,
                    }
                )
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": x,
                    "y": [p[2] for p in pts],
                    "line": {"color": cs[i], "width": 2},
                    "showlegend": j == 1,
                    **common,
                }
            )
    layout = base_layout(
        {
            "text": "Loss landscape along the gradient",
            "subtitle": {"text": "bands: min–max over the step sizes η", "font": {"size": 14}},
        }
    )
    _axes(layout, domains, [t for _, _, t in panels], x_title="step", type="log")
    _log_ticks(layout, data)
    return {"data": data, "layout": layout}


def loss_slice(
    labels: Sequence[str], slices: Sequence[dict | None], empty: Sequence[str] | None = None
) -> Figure:
    """The loss around the final weights on two filter-normalized directions (Li et al. 2018),
    a contour panel per run, one colour scale (log10 of the loss). `empty`: per run, what a
    panel without a slice says (default "no slice yet")."""
    n = max(1, len(slices))
    domains = _grid(n, min(n, 4), hgap=0.1)
    data: list[dict] = []
    for i, s in enumerate(slices, start=1):
        if not s:
            continue
        z = [[math.log10(v) if v is not None and v > 0 else None for v in row] for row in s["loss"]]
        data.append(
            {
                "type": "contour",
                "x": s["alphas"],
                "y": s["betas"],
                "z": z,
                "coloraxis": "coloraxis",
                "contours": {"coloring": "heatmap"},
                **_ax(i),
            }
        )
    layout = base_layout(
        {
            "text": "Loss around the final weights",
            "subtitle": {"text": "two random filter-normalized directions", "font": {"size": 14}},
        }
    )
    _axes(layout, domains, list(labels) or [""])
    for i in range(2, n + 1):  # the same ±1 grid: y ticks once, not over the left neighbour
        layout[f"yaxis{i}"]["showticklabels"] = False
    for i, s in enumerate(slices, start=1):
        if not s:  # no axes to read where nothing is drawn: say why the panel is empty
            sfx = "" if i == 1 else str(i)
            layout[f"xaxis{sfx}"]["visible"] = layout[f"yaxis{sfx}"]["visible"] = False
            _panel_note(layout, domains[i - 1], empty[i - 1] if empty else "no slice yet")
    layout["coloraxis"] = {"colorscale": "Viridis", "colorbar": {"title": {"text": "log₁₀ loss"}}}
    return {"data": data, "layout": layout}


def first_step_by_layer(
    labels: Sequence[str],
    rows_per_run: Sequence[Sequence[dict]],
    key: str,
    title: str | dict,
    y_title: str,
) -> Figure:
    """One line per run: rows' `key` (e.g. the param rows' grad_norm) at the run's first
    recorded step, against the layer (1 = nearest the input; the last point of a run is its
    classifier), on a log axis: how a quantity grows or fades with depth at initialization."""
    data = []
    for i, (label, rows) in enumerate(zip(labels, rows_per_run)):
        ok = [r for r in rows if isinstance(r.get(key), (int, float)) and r[key] > 0]
        if not ok:
            continue
        first = min(r["step"] for r in ok)
        pts = sorted((r["layer"], r[key]) for r in ok if r["step"] == first)
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": label,
                "x": [p[0] for p in pts],
                "y": [p[1] for p in pts],
                "line": {"color": color(i), "width": 2.5},
                "hovertemplate": "layer %{x}: %{y:.3g}<extra>" + label + "</extra>",
            }
        )
    layout = base_layout(title)
    layout["xaxis"] |= {"title": {"text": "layer (the last point: the classifier)"}, "dtick": 1}
    layout["yaxis"] = {"type": "log", "title": {"text": y_title}}
    _log_ticks(layout, data)
    return {"data": data, "layout": layout}
