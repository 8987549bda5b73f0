"""A lesson's runs over seeds: its arms (the runs that differ only in seed) and their curves as
the mean over the seeds with a band from the lowest to the highest seed.

Kept apart from `charts` (one line per run): a lesson trains each arm at several seeds
(seed = data_seed), and a room reads three arms more easily than nine lines. Each seed's own
curve is there too, thin, hidden until its legend entry (or "show every seed") turns it on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .charts import _layout, _rgba, color
from .config import RunConfig
from .records import group_labels

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
                    "fillcolor": _rgba(c, 0.18),
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
                "name": f"{label} (mean of {n})" if n > 1 else label,
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
    title = (
        f"test {name}: mean and range over {n_seeds} seeds (train dotted)"
        if n_seeds > 1
        else f"test {name} (train dotted)"
    )
    layout = _layout(title, xaxis={"title": {"text": "epoch"}, "ticklabelstandoff": 8})
    layout["yaxis"] = yaxis
    layout["hovermode"] = "x unified"
    return {"data": data, "layout": layout}
