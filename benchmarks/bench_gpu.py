"""The engine on a GPU (and, smaller, on the CPU) against plain PyTorch loops, in one process.

Per workload: the engine (`train_group`, every default probe on), the engine without records
(bench_gpu.no_records: no history row, no test pass, no probe at all), on CUDA the
engine with CUDA graphs off (BNVIZ_CUDA_GRAPHS=0), the textbook loop (bench_lessons.textbook:
nn.Sequential, DataLoader on the CPU, one run after another) and a careful loop (the same
model, the data on the device, randperm slices, one test pass an epoch). Printed: seconds,
the textbook and careful times over the engine's, the recording fraction (1 − no-records /
engine), graphs vs eager, and the Ioffe pair's time per step.

Workloads: the ioffe_fig1 pair, lr_ladder (12 runs), the batch-size sweep (4 norms × batch
2…128, 16 runs), a BN CNN 16-32 and its plain twin on 28×28 digits, and a CIFAR-sized BN CNN
(conv 64-128-256, batch 500, 50,000 random 3×32×32 samples, 10,000 test; 1 run and 4). On
the CPU the rows are smaller (fewer epochs; the CIFAR-shaped set and its test subset at a
tenth, channels at a quarter, so the share of test passes in an epoch is the CIFAR one), and
CUDA-only columns print "-". Usage:

    python benchmarks/bench_gpu.py [--device auto|cpu|cuda] [--only ioffe,cifar] [--full]
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_lessons import mnist_like, sweep_configs, textbook, textbook_model

from bnviz import recorders, train
from bnviz.config import PRESETS, RunConfig
from bnviz.data import Dataset
from bnviz.recorders import Recording

CIFAR_SHAPE = (3, 32, 32)


@functools.cache
def random_images(n_train: int, n_test: int) -> Dataset:
    """n_train + n_test random 3×32×32 images (standard normal) with random labels, seeded."""
    g = torch.Generator().manual_seed(0)
    f = math.prod(CIFAR_SHAPE)
    x_train, x_test = torch.randn(n_train, f, generator=g), torch.randn(n_test, f, generator=g)
    y_train = torch.randint(0, 10, (n_train,), generator=g)
    y_test = torch.randint(0, 10, (n_test,), generator=g)
    return Dataset("cifar10", x_train, y_train, x_test, y_test, 10, CIFAR_SHAPE)


def cifar_like(n_train: int, n_test: int) -> Callable[..., Dataset]:
    """A loader whose "cifar10" is random_images (CIFAR-10's shape, offline); every other
    name as bench_lessons.mnist_like loads it."""

    def load(name: str, **kw: Any) -> Dataset:
        if name != "cifar10":
            return mnist_like(name, **kw)
        d, dev = random_images(n_train, n_test), kw.get("device", "cpu")
        return Dataset(
            d.name,
            d.x_train.to(dev),
            d.y_train.to(dev),
            d.x_test.to(dev),
            d.y_test.to(dev),
            d.n_classes,
            d.image_shape,
        )

    return load


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


@contextmanager
def no_records() -> Iterator[None]:
    """The engine with its recording cut out: no history row (no test pass, no fetch), no
    probe step; the steps' losses still land in the device buffer (part of a graph step)."""

    def reset(self: Recording, step: int, initial: bool = False) -> list:
        self.n_steps = 0
        return []

    real = Recording.history, Recording.probe_due
    Recording.history = reset  # type: ignore[method-assign]
    Recording.probe_due = lambda self, t: False  # type: ignore[method-assign]
    try:
        yield
    finally:
        Recording.history, Recording.probe_due = real  # type: ignore[method-assign]


def engine(
    configs: list[RunConfig],
    loader: Callable[..., Dataset],
    device: str,
    records: bool = True,
    graphs: bool = True,
) -> float:
    """Seconds for train_group on the configs (every default probe on at their interval);
    records=False: no_records()."""
    os.environ["BNVIZ_CUDA_GRAPHS"] = "1" if graphs else "0"
    sync(device)
    with no_records() if not records else nullcontext():
        start = time.perf_counter()
        recs = train.train_group(configs, device=device, loader=loader)
        sync(device)
        took = time.perf_counter() - start
    os.environ.pop("BNVIZ_CUDA_GRAPHS")
    assert all(r.status in ("finished", "diverged") for r in recs), [r.message for r in recs]
    return took


def steady_step_ms(
    configs: list[RunConfig], loader: Callable[..., Dataset], device: str, graphs: bool
) -> float:
    """Milliseconds per step of one stack in its steady state: recording cut out, the graph
    captured (after the first step), then up to 200 steps timed."""
    os.environ["BNVIZ_CUDA_GRAPHS"] = "1" if graphs else "0"
    try:
        with no_records():
            (stack,) = train.make_stacks(configs, torch.device(device), loader)
            for _ in range(5):
                stack.step()
            n = min(200, stack.total - stack.t)
            sync(device)
            start = time.perf_counter()
            for _ in range(n):
                stack.step()
            sync(device)
            return (time.perf_counter() - start) / n * 1e3
    finally:
        os.environ.pop("BNVIZ_CUDA_GRAPHS")


def careful(configs: list[RunConfig], loader: Callable[..., Dataset], device: str) -> float:
    """Seconds to train the configs one after another the careful way: bench_lessons'
    textbook model, the data on the device, each epoch a randperm sliced into batches,
    SGD's foreach update, one test pass an epoch (chunks of 2,048)."""
    sync(device)
    start = time.perf_counter()
    for cfg in configs:
        ds = train.load_data(cfg, device, loader)
        torch.manual_seed(cfg.seed)
        model = textbook_model(cfg, ds).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, foreach=True)
        n, b = ds.n_train, cfg.batch_size
        for _ in range(cfg.epochs):
            model.train()
            perm = torch.randperm(n, device=device)
            for j in range(n // b):
                idx = perm[j * b : (j + 1) * b]
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(ds.x_train[idx]), ds.y_train[idx]).backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                hits = sum(
                    (model(ds.x_test[s : s + 2048]).argmax(1) == ds.y_test[s : s + 2048]).sum()
                    for s in range(0, ds.n_test, 2048)
                )
                float(hits) / ds.n_test
    sync(device)
    return time.perf_counter() - start


def workloads(gpu: bool, full: bool) -> dict[str, tuple[list[RunConfig], dict]]:
    """name → (configs, sizes of the CIFAR-shaped data) at GPU or CPU size."""
    ep = (lambda g, c: g) if gpu else (lambda g, c: c)
    ioffe = [c.replace(epochs=ep(20, 2)) for c in PRESETS["ioffe_fig1"].configs()]
    ladder = [c.replace(epochs=ep(5, 1)) for c in PRESETS["lr_ladder"].configs()]
    sweep = sweep_configs(ep(2, 1))
    cnn = RunConfig(dataset="mnist", model="cnn", hidden=(16, 32), lr=0.1, epochs=1, norm="batch")
    big = dict(n_train=50_000, n_test=10_000) if gpu else dict(n_train=5_000, n_test=1_000)
    cifar = RunConfig(
        dataset="cifar10",
        model="cnn",
        hidden=(64, 128, 256) if gpu else (16, 32, 64),
        batch_size=500 if gpu else 100,
        lr=0.05,
        epochs=2 if gpu else 1,
        norm="batch",
    )
    out = {  # the slowest last: a time limit cuts the fewest rows
        "ioffe_fig1 pair": (ioffe, {}),
        "lr_ladder": (ladder, {}),
        "BN CNN 16-32 + twin, 28x28": ([cnn, cnn.replace(norm="none")], {}),
        "CIFAR-sized BN CNN, 1 run": ([cifar], big),
    }
    if gpu or full:
        out["CIFAR-sized BN CNN, 4 runs"] = ([cifar.replace(seed=s) for s in range(4)], big)
    out["batch sweep 4 norms x 2..128"] = (sweep, {})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--only", default="", help="comma-separated prefixes of the rows to run")
    ap.add_argument("--full", action="store_true", help="on the CPU, also the 4-run CIFAR row")
    ap.add_argument("--repeat", type=int, default=0, help="timings per cell (default GPU 1, CPU 3)")
    args = ap.parse_args()
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    gpu = device == "cuda"
    args.repeat = args.repeat or (1 if gpu else 3)  # ≤ 5 min on one H200
    torch.set_num_threads(train.CPU_THREADS)  # the loops' threads; train_group sets its own
    name = torch.cuda.get_device_name() if gpu else f"CPU, {torch.get_num_threads()} thread(s)"
    print(f"device: {device} ({name}); torch {torch.__version__}")
    if not gpu:
        print("no CUDA device: CPU rows at small sizes; graph columns '-'")
    rows = workloads(gpu, args.full)
    if args.only:
        wanted = tuple(w.strip() for w in args.only.split(","))
        rows = {k: v for k, v in rows.items() if k.lower().startswith(wanted)}
    head = (
        f"{'workload':<30} {'runs':>4} {'engine':>7} {'no rec':>7} {'eager':>7} "
        f"{'textbk':>7} {'careful':>7} {'vs textbk':>9} {'vs careful':>10} "
        f"{'rec frac':>8} {'graph/eager':>11}"
    )
    print(head)
    print("-" * len(head))
    subset = recorders.TEST_SUBSET
    for label, (configs, big) in rows.items():
        loader = cifar_like(**big) if big else cifar_like(1, 1)
        if big:  # the test subset at the data's scale: a tenth of it on the CPU rows
            recorders.TEST_SUBSET = subset * big["n_train"] // 50_000
        try:
            engine(configs[:1], loader, device)  # warm-up: data, allocator, kernels
            careful(configs[:1], loader, device)  # (the textbook's model and kernels too)
            t = [[] for _ in range(5)]
            for _ in range(args.repeat):  # interleaved; the fastest of each (least disturbed)
                t[0].append(engine(configs, loader, device))
                t[1].append(engine(configs, loader, device, records=False))
                t[2].append(engine(configs, loader, device, graphs=False) if gpu else math.nan)
                t[3].append(textbook(configs, loader, device))
                t[4].append(careful(configs, loader, device))
            t_eng, t_none, t_eager, t_text, t_care = (min(v) for v in t)
        except Exception as e:  # one workload's failure must not hide the others
            print(f"{label:<30} failed: {type(e).__name__}: {str(e)[:200]}")
            continue
        finally:
            recorders.TEST_SUBSET = subset
        frac = 1 - t_none / t_eng
        eager = f"{t_eager / t_eng:>10.2f}x" if gpu else f"{'-':>11}"
        print(
            f"{label:<30} {len(configs):>4} {t_eng:>6.2f}s {t_none:>6.2f}s "
            + (f"{t_eager:>6.2f}s " if gpu else f"{'-':>7} ")
            + f"{t_text:>6.2f}s {t_care:>6.2f}s {t_text / t_eng:>8.2f}x {t_care / t_eng:>9.2f}x "
            f"{frac:>8.1%} {eager}"
        )
        if label.startswith("ioffe"):
            ms = steady_step_ms(configs, loader, device, graphs=True)
            line = f"{'':<30} per step (both nets, steady, no records): {ms:.3f} ms"
            if gpu:
                eager_ms = steady_step_ms(configs, loader, device, graphs=False)
                line += f" with CUDA graphs, {eager_ms:.3f} ms eager ({eager_ms / ms:.2f}x)"
            print(line)
        if big:
            n_img = big["n_train"] * configs[0].epochs * len(configs)
            print(
                f"{'':<30} images/s: engine {n_img / t_eng:,.0f}, no records "
                f"{n_img / t_none:,.0f}, careful {n_img / t_care:,.0f}"
            )
        sys.stdout.flush()
    print(
        f"fastest of {args.repeat}; engine: every default probe on; no rec: recording cut out;"
        " eager: CUDA graphs off;"
        " vs textbk / vs careful: their seconds over the engine's; rec frac: 1 - no rec / engine;"
        " graph/eager: eager seconds over the engine's"
    )


if __name__ == "__main__":
    main()
