"""A live group's tick on the server: its curves rebuilt from the whole history and pushed
into their chart streams, and the per-layer charts' reads of the probes (the newest of each
layer, one layer's series): what one viewer's refresh pays once a tick for every viewer.

    python benchmarks/bench_tick.py [--rows 1000 5000 10000] [--runs 2] [--ticks 20]

Baseline, in the same process and alternated with it: every column read from every row
(`bnviz.columns.MIN_ROWS` set past the history's length). Prints per history length the
median milliseconds a tick and baseline ÷ columns. Issue #25: "a long run's cost per refresh
does not grow with its length".
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bnviz import charts, columns
from bnviz.records import latest_layers, layer_series
from dashboard.chart_stream import ChartStream
from dashboard.live_chart import _payload

KEYS = ("train_loss", "train_acc", "test_loss", "test_acc")


def history(n: int, start: int = 0) -> list[dict]:
    return [
        {"step": 10 * i, "epoch": i, **{k: random.random() for k in KEYS}}
        for i in range(start, start + n)
    ]


def probes(steps: int, start: int = 0) -> list[dict]:
    """Probe rows as the layers recorder writes them: each step, 3 layers × 2 points."""
    return [
        {"step": s, "point": p, "layer": layer, "p50": random.random()}
        for s in range(start, start + steps)
        for p in ("act_in", "act_out")
        for layer in (1, 2, 3)
    ]


def ticks(rows: int, runs: int, count: int, per_tick: int, plain: bool) -> list[float]:
    """ms of each of `count` ticks, each adding `per_tick` rows a run to `rows` rows a run."""
    columns.MIN_ROWS = 10**12 if plain else 256
    hist = [history(rows) for _ in range(runs)]
    layers = [probes(rows) for _ in range(runs)]
    streams = {m: ChartStream() for m in ("acc", "loss")}
    labels, statuses, colors = [f"run {i}" for i in range(runs)], ["running"] * runs, None
    out = []
    for _ in range(count + 1):
        for h, pr in zip(hist, layers):
            h.extend(history(per_tick, start=len(h)))
            pr.extend(probes(per_tick, start=len(h)))
        snapshot = [list(h) for h in hist]  # as GroupJob.snapshot: lists copied, rows shared
        probed = [list(pr) for pr in layers]
        t = time.perf_counter()
        for metric, stream in streams.items():
            fig = charts.curves(labels, snapshot, metric, statuses, colors)
            stream.push(_payload(fig, "k", plain=True))
        for pr in probed:
            latest_layers(pr, "act_in")
            layer_series(pr, "act_in", 3)
        out.append((time.perf_counter() - t) * 1e3)
    return out[1:]  # the first builds its columns whole


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, nargs="+", default=[1000, 5000, 10000, 50000])
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--ticks", type=int, default=20)
    p.add_argument("--per-tick", type=int, default=20, help="rows a run adds a tick")
    a = p.parse_args()
    print(f"{'rows a run':>10} {'baseline ms':>12} {'columns ms':>11} {'ratio':>6}")
    for n in a.rows:
        base, new = [], []
        for _ in range(3):  # alternated, so both see the same machine
            base += ticks(n, a.runs, a.ticks, a.per_tick, plain=True)
            new += ticks(n, a.runs, a.ticks, a.per_tick, plain=False)
        b, c = statistics.median(base), statistics.median(new)
        print(f"{n:>10} {b:>12.2f} {c:>11.2f} {b / c:>5.1f}×")


if __name__ == "__main__":
    main()
