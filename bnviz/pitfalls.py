"""Train mode vs eval mode: a small BN net in NumPy, and what goes wrong when eval() is forgotten.

`train_net` trains a 2×64 MLP with BatchNorm before each ReLU (plain SGD, cross-entropy) in well
under a second, keeping running statistics for several `momentum` values at once (they never
affect training, so one training serves them all). Then the net is scored in eval mode (running
statistics), in train mode on test batches of a given size (batch statistics: what a forgotten
`model.eval()` does, and what `track_running_stats=False` does in eval), on class-sorted batches,
and one example is classified with different batch-mates. Tested against torch (`nn.Linear`,
`nn.BatchNorm1d`, `torch.optim.SGD`). NumPy only, no torch, no streamlit.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from . import mechanics as mx

MOMENTA: tuple[float | None, ...] = (0.1, 0.01, 0.001, None)  # running stats kept for each


@dataclass
class Net:
    """Linear → BN → ReLU → Linear → BN → ReLU → Linear, parameters as arrays (float64)."""

    weights: list[np.ndarray]  # (out, in) per Linear
    biases: list[np.ndarray]
    gammas: list[np.ndarray]  # per BN layer
    betas: list[np.ndarray]
    # momentum → per BN layer (running_mean, running_var), PyTorch's update rule
    running: dict[float | None, list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    steps: int = 0  # num_batches_tracked
    eps: float = mx.EPS

    @property
    def depth(self) -> int:
        return len(self.gammas)


def init_net(n_in: int, hidden: Sequence[int], n_out: int, seed: int = 0) -> Net:
    """PyTorch's default Linear init, γ = 1, β = 0, running mean 0 and var 1 for every momentum."""
    sizes = [n_in, *hidden, n_out]
    layers = [mx.linear_init(a, b, seed + i) for i, (a, b) in enumerate(itertools.pairwise(sizes))]
    net = Net([w for w, _ in layers], [b for _, b in layers], [], [])
    net.gammas = [np.ones(h) for h in hidden]
    net.betas = [np.zeros(h) for h in hidden]
    net.running = {m: [(np.zeros(h), np.ones(h)) for h in hidden] for m in MOMENTA}
    return net


def forward(
    net: Net, x: np.ndarray, mode: str = "eval", momentum: float | None = 0.1
) -> tuple[np.ndarray, list]:
    """Logits (N, K) and the per-layer cache for `backward`. mode "train": batch statistics
    (nothing updated here); "eval": the running statistics kept for `momentum`."""
    h, cache = np.asarray(x, dtype=np.float64), []
    for i in range(net.depth):
        z = h @ net.weights[i].T + net.biases[i]
        if mode == "train":
            steps = mx.normalize(z, net.gammas[i], net.betas[i], net.eps)
            y = steps.y
        else:
            rm, rv = net.running[momentum][i]
            steps = None
            y = mx.eval_norm(z, rm, rv, net.gammas[i], net.betas[i], net.eps)
        cache.append((h, steps, y))
        h = np.maximum(y, 0.0)
    return h @ net.weights[-1].T + net.biases[-1], [*cache, (h, None, None)]


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def loss_and_grads(net: Net, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, list], list]:
    """Mean cross-entropy of a training-mode forward pass, every parameter's gradient (keys w,
    b, g, beta: lists by layer) and the forward cache."""
    logits, cache = forward(net, x, "train")
    p = _softmax(logits)
    n = len(y)
    loss = float(-np.log(p[np.arange(n), y] + 1e-300).mean())
    d = p.copy()
    d[np.arange(n), y] -= 1.0
    d /= n  # dL/dlogits
    grads: dict[str, list] = {"w": [None] * (net.depth + 1), "b": [None] * (net.depth + 1)}
    grads["g"], grads["beta"] = [None] * net.depth, [None] * net.depth
    h_last = cache[-1][0]
    grads["w"][-1], grads["b"][-1] = d.T @ h_last, d.sum(0)
    dh = d @ net.weights[-1]
    for i in reversed(range(net.depth)):
        h_in, steps, y_bn = cache[i]
        dy = dh * (y_bn > 0)
        dz, grads["g"][i], grads["beta"][i] = mx.backward(steps, dy)
        grads["w"][i], grads["b"][i] = dz.T @ h_in, dz.sum(0)
        dh = dz @ net.weights[i]
    return loss, grads, cache


def _track(net: Net, cache: list) -> None:
    """Update every momentum's running statistics from one training batch (PyTorch's rule)."""
    net.steps += 1
    for momentum, layers in net.running.items():
        f = 1.0 / net.steps if momentum is None else momentum
        for i, (rm, rv) in enumerate(layers):
            steps = cache[i][1]
            unbiased = steps.var * steps.m / (steps.m - 1)
            layers[i] = ((1 - f) * rm + f * steps.mean, (1 - f) * rv + f * unbiased)


def sgd_step(net: Net, x: np.ndarray, y: np.ndarray, lr: float) -> float:
    """One training step: running statistics from this batch, then plain SGD on every parameter."""
    loss, g, cache = loss_and_grads(net, x, y)
    _track(net, cache)
    for i in range(net.depth + 1):
        net.weights[i] -= lr * g["w"][i]
        net.biases[i] -= lr * g["b"][i]
    for i in range(net.depth):
        net.gammas[i] -= lr * g["g"][i]
        net.betas[i] -= lr * g["beta"][i]
    return loss


def train_net(
    x: np.ndarray,
    y: np.ndarray,
    hidden: Sequence[int] = (64, 64),
    epochs: int = 5,
    lr: float = 0.1,
    batch_size: int = 32,
    seed: int = 0,
) -> Net:
    """Train a BN MLP with SGD on (x, y): shuffled batches each epoch, last partial one dropped."""
    net = init_net(x.shape[1], hidden, int(y.max()) + 1, seed)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        for idx in mx.batches(len(y), batch_size, rng):
            sgd_step(net, x[idx], y[idx], lr)
    return net


# --- scoring ---------------------------------------------------------------------------------


def predict(net: Net, x: np.ndarray, momentum: float | None = 0.1) -> np.ndarray:
    """Eval mode: each example on its own, with the running statistics of `momentum`."""
    return forward(net, x, "eval", momentum)[0].argmax(1)


def predict_train_mode(net: Net, x: np.ndarray, batch_size: int) -> np.ndarray:
    """What a forgotten eval() predicts: consecutive chunks of `batch_size` normalized with
    their own statistics. A chunk of one has x − μ_B = 0: every output is β, one prediction
    for every example (PyTorch's BatchNorm1d refuses it: 'Expected more than 1 value per
    channel when training')."""
    out = [
        forward(net, x[i : i + batch_size], "train")[0].argmax(1)
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(out)


def class_sorted(y: np.ndarray) -> list[np.ndarray]:
    """Index batches holding one class each (the test set sorted by label, cut at each class)."""
    return [np.flatnonzero(y == k) for k in np.unique(y)]


def accuracy_on_batches(net: Net, x: np.ndarray, y: np.ndarray, index: list[np.ndarray]) -> float:
    """Train-mode accuracy over the given batches (each normalized with its own statistics)."""
    hits = sum(int((forward(net, x[i], "train")[0].argmax(1) == y[i]).sum()) for i in index)
    return hits / sum(len(i) for i in index)


def pollute(net: Net, x: np.ndarray, index: list[np.ndarray], momentum: float = 0.1) -> Net:
    """A copy of the net after train-mode passes over these test batches updated its running
    statistics (a forgotten eval() during evaluation); training parameters unchanged."""
    running = {momentum: list(net.running[momentum])}
    copy = Net(net.weights, net.biases, net.gammas, net.betas, running, net.steps, net.eps)
    for i in index:
        _, cache = forward(copy, x[i], "train")
        _track(copy, cache)
    return copy


def with_batch_mates(
    net: Net, x: np.ndarray, target: int, mates: Sequence[np.ndarray]
) -> np.ndarray:
    """Class probabilities (len(mates), K) of example `target` in train mode, batched with each
    set of batch-mates in turn (the example first); eval mode would give one row for all."""
    rows = []
    for idx in mates:
        batch = np.concatenate([[target], np.asarray(idx)])
        rows.append(_softmax(forward(net, x[batch], "train")[0])[0])
    return np.stack(rows)
