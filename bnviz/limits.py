"""Checks a group must pass before it trains, shared by the CLI and the dashboard.

`RunConfig` validates one config's fields; this module catches what only shows at training
time — a batch larger than the training set, a network too large for the machine — without
loading data or importing torch (the web server never does), so a page can say so before
anyone presses Train. Sizes follow `bnviz.data` (the split arithmetic) and `bnviz.models`
(the layer shapes); tests compare them with the real thing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from .config import RunConfig

# Whole data sets: samples before the split (generated ones: their default n_samples), and the
# official training split of the downloaded ones.
DIGITS_N = 1797
TOY_DEFAULT_N = 1000
MNIST1D_DEFAULT_N = 5000
OFFICIAL_TRAIN = {"mnist": 60_000, "fashion_mnist": 60_000, "cifar10": 50_000}
FEATURES = {
    "digits": (1, 8, 8),
    "mnist": (1, 28, 28),
    "fashion_mnist": (1, 28, 28),
    "cifar10": (3, 32, 32),
    "mnist1d": (40,),
}
CLASSES = {"spirals": 2, "circles": 2, "xor": 2, "moons": 2}  # the others have 10

MAX_RUNS = 64  # runs of one group: what the run store keeps (the dashboard trains at most 16)
MAX_PARAMS = 50_000_000  # weights of every run of a group together
MAX_MEMORY_MB = 4096  # estimated training memory of a group (BNVIZ_MAX_MEMORY_MB overrides)


def n_train(cfg: RunConfig) -> int:
    """Training samples `bnviz.data.load_dataset` gives for the config's data fields."""
    if cfg.dataset in OFFICIAL_TRAIN:
        return cfg.n_samples or OFFICIAL_TRAIN[cfg.dataset]
    if cfg.dataset == "digits":
        n = DIGITS_N
    elif cfg.dataset == "mnist1d":
        n = (cfg.n_samples or MNIST1D_DEFAULT_N) // 10 * 10
    else:
        n = cfg.n_samples or TOY_DEFAULT_N
    n_test = math.ceil(cfg.test_fraction * n - 1e-9)
    train = n - n_test
    if cfg.dataset == "digits" and cfg.n_samples:
        return min(cfg.n_samples, train)
    return train


def _layer_sizes(cfg: RunConfig) -> tuple[int, int]:
    """(weights, activations per sample) of one run's network, as models.py builds it."""
    shape = FEATURES.get(cfg.dataset, (2,))
    classes = CLASSES.get(cfg.dataset, 10)
    params = acts = 0
    if cfg.model == "cnn":
        c, h, w = shape  # 3×3 convolutions, padding 1; 8×8 and larger maps are halved after
        for ch in cfg.hidden:
            params += 9 * c * ch + 3 * ch
            acts += ch * h * w
            c = ch
            if h >= 8:
                h, w = h // 2, w // 2
        params += c * classes + classes  # global average pool, then a dense classifier
    else:
        width = math.prod(shape)
        for units in cfg.hidden:
            params += width * units + 3 * units
            acts += units
            width = units
        params += width * classes + classes
    return params, acts


def estimate(configs: Sequence[RunConfig]) -> tuple[int, float]:
    """(weights of all runs, estimated training memory in MB) of a group.

    Memory: per weight 4 float32 copies (the weight, its gradient, up to two optimizer
    states); per hidden unit and sample of a batch 6 (Wx+b, the norm's output, the
    activation's, their gradients) and the probes' copies of the recorded batch."""
    weights = 0
    mem = 0.0
    for c in configs:
        p, a = _layer_sizes(c)
        weights += p
        mem += 4 * (4 * p + 6 * a * c.batch_size)
    return weights, mem / 2**20


def max_memory_mb() -> float:
    text = os.environ.get("BNVIZ_MAX_MEMORY_MB", "")
    try:
        value = float(text)
    except ValueError:
        return MAX_MEMORY_MB
    return value if value > 0 else MAX_MEMORY_MB


def check_group(configs: Sequence[RunConfig], devices: Sequence[str] = ()) -> list[str]:
    """What stops this group from training, as messages (empty: it can train). `devices`: the
    device names the training machine has (from its worker), checked when given."""
    problems: list[str] = []
    if len(configs) > MAX_RUNS:  # the run store's own bound: a group it would not read back
        return [f"{len(configs)} runs in one group: at most {MAX_RUNS}; vary fewer values"]
    for c in configs:
        n = n_train(c)
        if n < 1:
            problems.append(f"{c.dataset}: the split leaves no training samples")
        elif c.batch_size > n:
            problems.append(
                f"batch_size={c.batch_size} is larger than the {n} training samples of "
                f"{c.dataset}; use batch_size ≤ {n}"
            )
        if problems:
            break
    if devices and configs and configs[0].device not in ("auto", *devices):
        problems.append(
            f"device={configs[0].device} is not available on the training machine (it has: "
            f"{', '.join(devices)}; mps exists only on macOS with Apple silicon)"
        )
    weights, mb = estimate(configs)
    if weights > MAX_PARAMS:
        problems.append(
            f"this group has {weights / 1e6:.0f} million weights: at most {MAX_PARAMS / 1e6:.0f}"
            " million are allowed; use fewer or narrower hidden layers, or fewer runs"
        )
    elif mb > max_memory_mb():
        problems.append(
            f"this group needs about {mb / 1024:.1f} GB to train: at most "
            f"{max_memory_mb() / 1024:.1f} GB are allowed; use a smaller batch_size, fewer or "
            "narrower hidden layers, or fewer runs"
        )
    return problems
