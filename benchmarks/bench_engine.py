"""Engine vs a plain PyTorch loop on the same configs, in one process: prints time ratios.

The baseline is what a course notebook does: per run, an nn.Sequential with torch's BatchNorm1d,
a DataLoader(TensorDataset, shuffle=True, drop_last=True) and torch.optim, trained one run
after the other, evaluated once per epoch. The engine trains the same runs as one group with
every probe on (records at the configs' interval). Both sides use the same number of torch
threads (--threads, default the engine's own default), printed with the results. Usage:

    python benchmarks/bench_engine.py [--preset ioffe_fig1] [--vary lr=0.05,0.1,...] [--epochs 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from bench_lessons import textbook  # the same textbook loop (this folder is on sys.path)

from bnviz.config import PRESETS, RunConfig, grid, parse_assignment, parse_values
from bnviz.data import load_dataset
from bnviz.train import CPU_THREADS, MAX_LAYER_SNAPSHOTS, train_group


def plain_loop(configs: list[RunConfig]) -> float:
    """Seconds to train every config, one after the other, the textbook way (bench_lessons')."""
    return textbook(configs, load_dataset)


def engine(configs: list[RunConfig], probes: bool, threads: int, records: bool = True) -> float:
    """Seconds to train the configs as one group. probes=False: layer probes at the first and
    last step only; records=False as well: no records between those either (no test-set
    evaluations), which bounds what a faster probe or record could ever give."""
    import bnviz.recorders as rec  # where the probe schedule reads it

    if not records:
        configs = [c.replace(record_every=100_000) for c in configs]
    rec.MAX_LAYER_SNAPSHOTS = MAX_LAYER_SNAPSHOTS if probes else 1
    start = time.perf_counter()
    recs = train_group(configs, threads=threads)
    rec.MAX_LAYER_SNAPSHOTS = MAX_LAYER_SNAPSHOTS
    assert all(r.status in ("finished", "diverged") for r in recs), [r.message for r in recs]
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="ioffe_fig1")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--vary", action="append", default=[])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=CPU_THREADS, help="torch threads, both sides")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)  # the plain loop's; train_group is given the same
    base = PRESETS[args.preset].configs() if not args.vary else None
    changes = dict(parse_assignment(s) for s in args.set)
    changes["epochs"] = str(args.epochs)
    if base is None:
        vary = {}
        for v in args.vary:
            k, vals = parse_assignment(v)
            vary[k] = parse_values(k, vals)
        configs = grid(RunConfig().replace(**changes), vary)
    else:
        configs = [c.replace(**changes) for c in base]
    assert all(c.model == "mlp" for c in configs), "the baseline loop builds MLPs only"
    engine(configs, True, args.threads)  # warm-up: data cache, allocator, first-call overheads
    plain_loop(configs[:1])
    rows = []
    for _ in range(args.repeat):  # interleaved so drift hits both sides alike
        rows.append(
            (
                plain_loop(configs),
                engine(configs, True, args.threads),
                engine(configs, False, args.threads),
                engine(configs, False, args.threads, records=False),
            )
        )
    p, e, n, b = (min(r[i] for r in rows) for i in range(4))
    epochs = args.epochs * len(configs)
    print(f"runs: {len(configs)}  epochs each: {args.epochs}  threads: {torch.get_num_threads()}")
    print(f"plain loop      {p / epochs * 1e3:8.2f} ms per run-epoch")
    print(f"engine, probes  {e / epochs * 1e3:8.2f} ms per run-epoch   speed-up {p / e:5.2f}x")
    print(f"engine, none    {n / epochs * 1e3:8.2f} ms per run-epoch   speed-up {p / n:5.2f}x")
    print(f"engine, bound   {b / epochs * 1e3:8.2f} ms per run-epoch   speed-up {p / b:5.2f}x")
    print(f"probe share     {(e - n) / e * 100:5.1f} % of engine time (probes on)")
    print("(bound: no probes and no records between the first and last step)")


if __name__ == "__main__":
    main()
