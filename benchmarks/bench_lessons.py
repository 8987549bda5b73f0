"""The lessons' workloads, engine vs a textbook PyTorch loop in one process: prints time ratios.

Workloads: the batch-size sweep (norm batch, layer, group, ghost_batch × batch size 2, 8, 32,
128: one group of 16 runs, also shown per batch size), the `lr_ladder` and `init_scale`
presets, and a small BN CNN (and its plain twin) on MNIST-shaped data (digits upsampled to
28×28, so it runs offline).

The textbook side is what a course notebook does: per run, an nn.Sequential of torch's modules
(nn.BatchNorm1d/2d, nn.LayerNorm, nn.GroupNorm, and Ghost BN as BatchNorm on each chunk of the
batch), DataLoader(TensorDataset, shuffle=True, drop_last=True), torch.optim.SGD, one test
evaluation per epoch, the runs one after another. The engine trains the same configs as one
group (`train_group`) with every probe on at the configs' recording interval. Both sides use
the same torch threads; each figure is the median of `--repeat` interleaved repeats. Usage:

    python benchmarks/bench_lessons.py [--repeat 3] [--only sweep,lr_ladder,...] [--bound]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from bnviz.config import PRESETS, RunConfig
from bnviz.data import Dataset, load_dataset
from bnviz.train import CPU_THREADS, load_data, train_group

ACT_MODULES = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "linear": nn.Identity,
}
SWEEP_BATCHES = (2, 8, 32, 128)
SWEEP_NORMS = ("batch", "layer", "group", "ghost_batch")
MNIST_SIDE = 28


class GhostBatchNorm(nn.BatchNorm1d):
    """The notebook's Ghost BN: BatchNorm on each chunk of `ghost` samples in turn."""

    def __init__(self, num_features: int, ghost: int, **kw: float) -> None:
        super().__init__(num_features, **kw)
        self.ghost = ghost

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return super().forward(x)
        return torch.cat([super(GhostBatchNorm, self).forward(c) for c in x.split(self.ghost)])


def norm_module(cfg: RunConfig, width: int, conv: bool) -> nn.Module:
    kw = dict(eps=cfg.eps)
    if cfg.norm == "batch":
        bn = nn.BatchNorm2d if conv else nn.BatchNorm1d
        return bn(width, momentum=cfg.momentum, **kw)
    if cfg.norm == "ghost_batch":
        return GhostBatchNorm(width, cfg.ghost_batch_size, momentum=cfg.momentum, **kw)
    if cfg.norm == "layer":
        assert not conv, "the textbook CNN has BatchNorm2d only"
        return nn.LayerNorm(width, **kw)
    if cfg.norm == "group":
        return nn.GroupNorm(cfg.num_groups, width, **kw)
    raise ValueError(f"no textbook module for norm={cfg.norm}")


def textbook_model(cfg: RunConfig, ds: Dataset) -> nn.Module:
    """models.StackedNet's layout for one run: Linear/Conv3×3 → [norm] → act (or act → norm);
    a conv net halves maps of 8×8 and more by max pooling and ends in a global average pool."""
    conv = cfg.model == "cnn"
    layers: list[nn.Module] = []
    if conv:
        c, h = ds.image_shape[0], ds.image_shape[1]
        layers.append(nn.Unflatten(1, ds.image_shape))
    else:
        c, h = ds.n_features, 1
    for i, w in enumerate(cfg.hidden, start=1):
        layers.append(nn.Conv2d(c, w, 3, padding=1) if conv else nn.Linear(c, w))
        norm = [norm_module(cfg, w, conv)] if cfg.norm_on(i) else []
        act = ACT_MODULES[cfg.activation]()
        layers += [*norm, act] if cfg.placement == "before" else [act, *norm]
        if conv and h >= 8:
            layers.append(nn.MaxPool2d(2))
            h //= 2
        c = w
    if conv:
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    layers.append(nn.Linear(c, ds.n_classes))
    return nn.Sequential(*layers)


def textbook(
    configs: list[RunConfig], loader: Callable[..., Dataset], device: str = "cpu"
) -> float:
    """Seconds to train every config, one after the other, the textbook way. On a GPU
    (device): the model there, each batch copied to it from the CPU DataLoader."""
    start = time.perf_counter()
    for cfg in configs:
        ds = load_data(cfg, "cpu", loader)
        torch.manual_seed(cfg.seed)
        model = textbook_model(cfg, ds).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        batches = DataLoader(
            TensorDataset(ds.x_train, ds.y_train),
            batch_size=cfg.batch_size,
            shuffle=True,
            drop_last=True,
        )
        x_test, y_test = ds.x_test.to(device), ds.y_test.to(device)
        for _ in range(cfg.epochs):
            model.train()
            for xb, yb in batches:
                xb, yb = xb.to(device), yb.to(device)
                opt.zero_grad()
                F.cross_entropy(model(xb), yb).backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                (model(x_test).argmax(1) == y_test).float().mean().item()
    return time.perf_counter() - start


def engine(
    configs: list[RunConfig], threads: int, loader: Callable[..., Dataset], records: bool = True
) -> float:
    """Seconds to train the configs as one group, every probe on. records=False: one record
    interval per run (no test evaluations or probes between the first and last step), the
    bound a faster record could approach."""
    if not records:
        configs = [c.replace(record_every=100_000) for c in configs]
    start = time.perf_counter()
    recs = train_group(configs, threads=threads, device="cpu", loader=loader)
    assert all(r.status in ("finished", "diverged") for r in recs), [r.message for r in recs]
    return time.perf_counter() - start


def mnist_like(name: str, **kw: object) -> Dataset:
    """An offline stand-in for MNIST: the digits upsampled to 28×28 (bilinear), 10 classes;
    every other data set as data.load_dataset loads it."""
    if name != "mnist":
        return load_dataset(name, **kw)
    kw.pop("test_fraction", None)  # MNIST has an official split; the digits take the default
    d = load_dataset("digits", **kw)

    def up(x: Tensor) -> Tensor:
        x = F.interpolate(x.view(-1, 1, 8, 8), size=(MNIST_SIDE, MNIST_SIDE), mode="bilinear")
        return x.flatten(1).contiguous()

    return Dataset(
        "mnist", up(d.x_train), d.y_train, up(d.x_test), d.y_test, 10, (1, MNIST_SIDE, MNIST_SIDE)
    )


def sweep_configs(epochs: int) -> list[RunConfig]:
    """The batch-size lesson's workload: 4 norms × 4 batch sizes, one group. Ghost BN's
    virtual batches are a quarter of the batch (2 at least, so batch 2 is plain BN)."""
    base = RunConfig(dataset="digits", activation="relu", lr=0.1, epochs=epochs)
    return [
        base.replace(batch_size=b, norm=n, ghost_batch_size=max(2, b // 4))
        for b in SWEEP_BATCHES
        for n in SWEEP_NORMS
    ]


def workloads(sweep_epochs: int, cnn_epochs: int) -> dict[str, list[RunConfig]]:
    sweep = sweep_configs(sweep_epochs)
    out = {"sweep (16 runs)": sweep}
    for b in SWEEP_BATCHES:
        out[f"  sweep, batch {b}"] = [c for c in sweep if c.batch_size == b]
    out["lr_ladder"] = PRESETS["lr_ladder"].configs()
    out["init_scale"] = PRESETS["init_scale"].configs()
    cnn = RunConfig(
        dataset="mnist", model="cnn", hidden=(16, 32), lr=0.1, epochs=cnn_epochs, norm="batch"
    )
    out["cnn, BN and none"] = [cnn, cnn.replace(norm="none")]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=CPU_THREADS, help="torch threads, both sides")
    ap.add_argument("--sweep-epochs", type=int, default=2, help="the batch_size preset's 2")
    ap.add_argument("--cnn-epochs", type=int, default=1)
    ap.add_argument("--only", default="", help="comma-separated prefixes of the rows to run")
    ap.add_argument("--bound", action="store_true", help="also time the engine without records")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)  # the textbook loop's; train_group is given the same
    rows = workloads(args.sweep_epochs, args.cnn_epochs)
    if args.only:
        wanted = tuple(args.only.split(","))
        rows = {k: v for k, v in rows.items() if k.strip().startswith(wanted)}
    loader = mnist_like
    for configs in rows.values():  # warm-up: data cache, allocator, first-call overheads
        engine(configs[:1], args.threads, loader)
        textbook(configs[:1], loader)
    times: dict[str, list[tuple[float, ...]]] = {k: [] for k in rows}
    for _ in range(args.repeat):  # interleaved so that drift hits both sides alike
        for name, configs in rows.items():
            t = (textbook(configs, loader), engine(configs, args.threads, loader))
            if args.bound:
                t += (engine(configs, args.threads, loader, records=False),)
            times[name].append(t)
    print(f"threads: {torch.get_num_threads()}  repeats: {args.repeat} (medians)")
    head = f"{'workload':<20} {'runs':>4} {'textbook s':>10} {'engine s':>9} {'ratio':>6}"
    print(head + ("  bound s  ratio" if args.bound else ""))
    for name, configs in rows.items():
        med = [statistics.median(t[i] for t in times[name]) for i in range(len(times[name][0]))]
        line = (
            f"{name:<20} {len(configs):>4} {med[0]:>10.2f} {med[1]:>9.2f} {med[0] / med[1]:>5.2f}x"
        )
        if args.bound:
            line += f" {med[2]:>8.2f} {med[0] / med[2]:>5.2f}x"
        print(line)
    print("(ratio: textbook seconds / engine seconds; engine with every probe on, records at")
    print(" the configs' interval; bound: no records between the first and last step)")


if __name__ == "__main__":
    main()
