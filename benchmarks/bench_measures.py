"""The probe cost of config.measures: a preset trained with every measure on vs off, in one
process, interleaved; prints the time ratio (the issue's bound: ≤ 1.5× with all on). Usage:

    python benchmarks/bench_measures.py [--preset ioffe_fig1] [--epochs 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from bnviz.config import MEASURES, PRESETS
from bnviz.train import train_group


def seconds(configs: list, measures: str) -> float:
    start = time.perf_counter()
    recs = train_group([c.replace(measures=measures) for c in configs])
    assert all(r.status in ("finished", "diverged") for r in recs), [r.message for r in recs]
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="ioffe_fig1")
    ap.add_argument("--epochs", type=int, default=0, help="0: the preset's own")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    configs = PRESETS[args.preset].configs()
    if args.epochs:
        configs = [c.replace(epochs=args.epochs) for c in configs]
    kinds = [m for m in MEASURES if m != "none"]
    seconds(configs[:1], "all")  # warm-up: data cache, first-call overheads
    times: dict[str, list[float]] = {m: [] for m in ("none", *kinds)}
    for _ in range(args.repeat):  # interleaved so drift hits every variant alike
        for m in times:
            times[m].append(seconds(configs, m))
    base = min(times["none"])
    print(f"preset {args.preset}: {len(configs)} runs × {configs[0].epochs} epochs")
    print(f"measures=none       {base:7.2f} s")
    for m in kinds:
        t = min(times[m])
        print(f"measures={m:<10} {t:7.2f} s   {t / base:5.2f}× the run without")


if __name__ == "__main__":
    main()
