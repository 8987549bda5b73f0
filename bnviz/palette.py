"""The charts' one visual language: a fixed colour per normalization on every page and chart,
a shade of it per value of the other varied fields, and the inks for keys and guides.

One registry: `NORM_COLORS` (every norm of `config.NORMS`). `run_colors(configs)` gives each run
of a group its colour: its norm's, darker or lighter for each value of the other fields the
group varies (e.g. batch_size 2 → 64), so "the batch-2 curves" are the darkest of each norm.
No streamlit, no plotly: plain strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .config import NORMS
from .records import varied_fields

NORM_COLORS: dict[str, str] = {
    "none": "#d62728",  # red: the plain net
    "batch": "#1f77b4",  # blue: BatchNorm (the app's primary colour)
    "batch_scratch": "#17becf",  # cyan: BN written out, a variant of blue
    "ghost_batch": "#9467bd",  # purple
    "noisy_batch": "#8c564b",  # brown
    "noise_only": "#e377c2",  # pink
    "layer": "#2ca02c",  # green
    "group": "#ff7f0e",  # orange
    "instance": "#bcbd22",  # olive
}
assert set(NORM_COLORS) == set(NORMS), "every norm needs its colour"

# Greys for what is not a run (keys, reference lines, markers of a minimum). In a dark theme the
# live chart swaps exactly these for the theme's text colour (dashboard/live_chart.py INK), so
# never use "black" on a chart: it vanishes on the dark theme's black background.
INK = "#222"
INK_SOFT = "#444"
GUIDE = "#888"

# Runs whose norm is unknown (stored groups of old records) and quantities that are not runs.
CYCLE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _mix(hex_color: str, t: float) -> str:
    """The colour mixed toward white (t > 0) or black (t < 0) by |t|."""
    rgb = [int(hex_color[i : i + 2], 16) for i in (1, 3, 5)]
    target = 255 if t > 0 else 0
    out = [round(c + (target - c) * abs(t)) for c in rgb]
    return "#" + "".join(f"{c:02x}" for c in out)


def shade(hex_color: str, k: int, n: int) -> str:
    """The k-th of n shades of a colour: darker first, lighter last (n = 1: itself)."""
    if n <= 1:
        return hex_color
    t = -0.35 + 0.85 * k / (n - 1)  # −0.35 (darker) … +0.5 (lighter)
    return _mix(hex_color, t)


def run_colors(configs: Sequence[Any]) -> list[str]:
    """Each run's colour: its norm's, shaded by its place among the values of the other
    fields the group varies (in the group's order). Runs of one norm that differ in nothing
    else (repeats) share it."""
    if not configs:
        return []
    others = [f for f in varied_fields(configs) if f not in ("norm", "device")]
    keys = [tuple(repr(getattr(c, f)) for f in others) for c in configs]
    order = list(dict.fromkeys(keys))  # the other fields' combinations, in the group's order
    return [
        shade(NORM_COLORS.get(c.norm, CYCLE[0]), order.index(k), len(order))
        for c, k in zip(configs, keys)
    ]
