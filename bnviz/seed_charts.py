"""A lesson's runs over seeds: its arms (the runs that differ only in seed), their curves as the
mean over the seeds with a band from the lowest to the highest seed, and a sweep's points as
the mean with a bar over the seeds.

Kept apart from `charts` (one line per run): a lesson trains each arm at several seeds
(seed = data_seed), and a room reads three arms more easily than nine lines. Each seed's own
curve is there too, thin, hidden until its legend entry (or "show every seed") turns it on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .charts import base_layout, color, rgba, sweep
from .config import RunConfig
from .records import STALLED_ACC, group_labels, sweep_axes, sweep_points

Figure = dict[str, Any]
SEED_FIELDS = {"seed": 0, "data_seed": 0}


def arms(configs: Sequence[RunConfig]) -> list[tuple[str, list[int]]]:
    """The arms of a group in first-seen order: (label, indices of its runs, one per seed).
    Labels name what differs between the arms, never the seed."""
    keys: dict[RunConfig, list[int]] = {}
    for i, c in enumerate(configs):
        keys.setdefault(c.replace(**SEED_FIELDS), []).append(i)
    labels = group_labels(list(keys))
    return list(zip(labels, keys.values(), strict=True))


def seeds_of(configs: Sequence[RunConfig]) -> list[int]:
    """The distinct seeds of a group, in increasing order."""
    return sorted({c.seed for c in configs})


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _by_epoch(histories: Sequence[Sequence[dict]], key: str) -> list[tuple[float, list[float]]]:
    """(epoch, finite values of every seed recorded there), by epoch."""
    at: dict[float, list[float]] = {}
    for rows in histories:
        for r in rows:
            if _finite(r.get(key)):
                at.setdefault(r["epoch"], []).append(float(r[key]))
    return sorted(at.items())


def seed_curves(
    labels: Sequence[str],
    histories: Sequence[Sequence[Sequence[dict]]],
    metric: str = "acc",
    seeds: Sequence[Sequence[int]] = (),
    show_seeds: bool = False,
) -> Figure:
    """Per arm: the test curve's mean over the seeds (solid), the band from the lowest to the
    highest seed, the train mean (dotted) and each seed's test curve (thin; hidden unless
    `show_seeds`). `histories[i]`: the history rows of arm i's runs, one list per seed;
    `seeds[i]`: their seeds (for the hover text)."""
    data: list[dict] = []
    for i, (label, runs) in enumerate(zip(labels, histories)):
        c = color(i)
        test = _by_epoch(runs, f"test_{metric}")
        x = [e for e, _ in test]
        lo = [min(v) for _, v in test]
        hi = [max(v) for _, v in test]
        n = len(runs)
        if n > 1 and x:  # the band: low edge, then the high edge filled down to it
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": x,
                    "y": lo,
                    "line": {"width": 0, "color": c},
                    "legendgroup": label,
                    "showlegend": False,
                    "hoverinfo": "skip",
                }
            )
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": x,
                    "y": hi,
                    "fill": "tonexty",
                    "fillcolor": rgba(c, 0.18),
                    "line": {"width": 0, "color": c},
                    "legendgroup": label,
                    "showlegend": False,
                    "hoverinfo": "skip",
                }
            )
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                # the subtitle says "mean and range of n seeds": a suffix here made a dozen
                # arms' legend entries wider than their slots at 1024 px
                "name": label,
                "legendgroup": label,
                "x": x,
                "y": [sum(v) / len(v) for _, v in test],
                "line": {"color": c, "width": 3},
            }
        )
        train = _by_epoch(runs, f"train_{metric}")
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{label} · train",
                "legendgroup": label,
                "showlegend": False,
                "x": [e for e, _ in train],
                "y": [sum(v) / len(v) for _, v in train],
                "line": {"color": c, "width": 2, "dash": "dot"},
            }
        )
        for j, rows in enumerate(runs if n > 1 else ()):
            seed = seeds[i][j] if i < len(seeds) and j < len(seeds[i]) else j
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": f"{label} · seed {seed}",
                    "legendgroup": f"{label} seeds",
                    "showlegend": False,
                    "visible": True if show_seeds else "legendonly",
                    "x": [r["epoch"] for r in rows],
                    "y": [r.get(f"test_{metric}") for r in rows],
                    "line": {"color": c, "width": 1},
                }
            )
    name = "accuracy" if metric == "acc" else "loss (cross-entropy)"
    yaxis: dict[str, Any] = {"title": {"text": name}}
    if metric == "acc":
        yaxis["range"] = [0, 1.02]
    else:
        values = [y for d in data for y in d["y"] if _finite(y)]
        if max(values, default=0) > 20:
            yaxis["type"] = "log"
    n_seeds = max((len(h) for h in histories), default=0)
    over = f"mean and range of {n_seeds} seeds · " if n_seeds > 1 else ""
    layout = base_layout(
        # short enough for a 300-pixel chart (as charts.curves); the key in a smaller line
        {
            "text": name.split(" ")[0].capitalize(),
            "subtitle": {"text": f"{over}test solid · train dotted", "font": {"size": 14}},
        },
        xaxis={
            "title": {"text": "epoch", "standoff": 4},
            "automargin": True,
            "ticklabelstandoff": 8,
        },
    )
    layout["yaxis"] = yaxis
    layout["hovermode"] = "x unified"
    return {"data": data, "layout": layout}


def seed_sweep(
    configs: Sequence[RunConfig],
    histories: Sequence[Sequence[dict]],
    statuses: Sequence[str],
) -> Figure | None:
    """`charts.sweep` over seeds: each point the mean final (and best) test accuracy of the
    arm's seeds, with a bar from the lowest to the highest seed; a point is marked diverged
    when most of its seeds diverged. None when no field is swept."""
    stripped = [c.replace(**SEED_FIELDS) for c in configs]
    axes = sweep_axes(stripped)
    if axes is None:
        return None
    field, by = axes
    groups: dict[tuple, list[dict]] = {}
    for p in sweep_points(stripped, histories, statuses, field, by):
        groups.setdefault((p["series"], p["x"]), []).append(p)
    merged = []
    for (series, x), ps in groups.items():
        finals = [p["final"] for p in ps]
        mean = sum(finals) / len(finals)
        diverged = sum(p["status"] == "diverged" for p in ps)
        merged.append(
            {
                "x": x,
                "series": series,
                "final": mean,
                "best": sum(p["best"] for p in ps) / len(ps),
                "status": "diverged" if 2 * diverged > len(ps) else ps[0]["status"],
                "stalled": mean < STALLED_ACC,
                "epoch": max(p["epoch"] for p in ps),
                "range": (min(finals), max(finals), len(ps)),
            }
        )
    fig = sweep(merged, field, by)
    ranges = {(p["series"], p["x"]): p["range"] for p in merged}
    for d in fig["data"]:  # the final lines: a bar over the seeds at every point
        if d.get("mode") != "lines+markers":
            continue
        series = next((s for s, _ in ranges if d["name"] in (f"{by}={s}", "test accuracy")), None)
        spans = [ranges.get((series, x), (y, y, 1)) for x, y in zip(d["x"], d["y"])]
        d["error_y"] = {
            "type": "data",
            "symmetric": False,
            "array": [hi - y for (_, hi, _), y in zip(spans, d["y"])],
            "arrayminus": [y - lo for (lo, _, _), y in zip(spans, d["y"])],
            "color": d["line"]["color"],
            "thickness": 1.5,
            "width": 4,
        }
    n = max((r[2] for r in ranges.values()), default=0)
    # The seeds in the title's tail, short (a long tail was cut at a projector's half width;
    # a subtitle squeezed the plot of a key chart at 1024×768); the legend says the bars.
    fig["layout"]["title"]["text"] += f" · {n} seeds"
    for d in fig["data"]:
        if d.get("name") == "final":
            d["name"] = "final (mean; bars: range)"
    return fig
