"""A stack's training and nothing else: the runs of a group that can be one models.StackedNet
(models.stack_key), their data set (one tensor on the device), the net, the optimizer over its
flat buffer (optim), each run's data order, and a step — a batch's gradient, then the update.
What a run records is built elsewhere (recorders.Recording); the loop (train) calls both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import RunConfig
from .data import Dataset
from .models import STREAM_SEED_OFFSET, Shape, StackedNet, has_fast_path
from .optim import StackOptimizer

EVAL_CHUNK = 2048  # test samples per forward pass in eval mode
CONV_EVAL_CHUNK = 128  # a conv net's on the CPU: 2,048 28×28 maps ran ~1.5× slower a sample
GPU_CONV_EVAL_CHUNK = 1024  # on a GPU, passes of 128 are launch-bound: 79 for 10,000 samples
ORDER_SEED = 7919  # each run's data order: a CPU generator seeded seed + this


class Stack:
    """Runs trained as one StackedNet: data, model, optimizer and data order."""

    def __init__(
        self, runs: list[int], configs: list[RunConfig], data: Dataset, device: torch.device
    ) -> None:
        cfg = configs[0]
        self.runs, self.configs, self.data, self.device = runs, configs, data, device
        self.m = len(runs)
        self.shape = Shape(data.n_features, data.n_classes, data.image_shape)
        self.net = StackedNet(configs, self.shape).to(device)
        self.net.set_generators([device_generator(c.seed, device) for c in configs])
        self.order_gens = [torch.Generator().manual_seed(c.seed + ORDER_SEED) for c in configs]
        self.opt = StackOptimizer(list(self.net.parameters()), configs, self.net.vector_runs())
        self._restrict_training()
        self.batch_size = cfg.batch_size
        self.steps_per_epoch = data.n_train // cfg.batch_size
        self.total = cfg.epochs * self.steps_per_epoch
        self.t = 0  # updates done
        self.perm = torch.empty(0)  # (M, n_train): each run's order this epoch
        self.active = [True] * self.m  # False once a run diverged (see freeze)
        # hand-written backward (models.forward_backward) when every run's norm has one
        self.fast = all(has_fast_path(c) for c in configs)

    @property
    def done(self) -> bool:
        return self.t >= self.total or not any(self.active)

    @property
    def progress(self) -> float:
        return 1.0 if self.done else self.t / self.total

    def indices(self) -> Tensor:
        """The training samples of step t per run (M, B), on the device."""
        j = self.t % self.steps_per_epoch
        if j == 0:  # a new epoch: each run shuffles with its own generator
            n = self.data.n_train
            self.perm = torch.stack([torch.randperm(n, generator=g) for g in self.order_gens])
            # non_blocking: a plain copy to a GPU waits for the queued kernels (a host sync
            # each epoch); from pageable memory the async copy stages it before it returns
            self.perm = self.perm.to(self.device, non_blocking=True)
        return self.perm[:, j * self.batch_size : (j + 1) * self.batch_size]

    def _batch(self) -> tuple[Tensor, Tensor]:
        """Step t's batch per run: inputs (M, B, …) and labels (M, B)."""
        idx = self.indices()
        return self.data.x_train[idx], self.data.y_train[idx]

    def gradient(self, x: Tensor, yt: Tensor, probes: dict | None = None) -> tuple[Tensor, Tensor]:
        """Forward and backward of one batch per run in training mode: the logits (B, M, K) and
        each run's loss (M,); every parameter's gradient lands in the optimizer's flat buffer.
        x: (M, B, F); yt: (B, M). Like any training-mode forward it updates the running
        statistics and draws dropout/noise (measures.contained undoes that for a measure)."""
        if not self.net.training:
            self.net.train()
        if self.fast:  # the same gradients, written straight into the flat grad buffer
            return self.net.forward_backward(x, yt, probes)
        logits = self.net(x, probes)  # (B, M, K)
        losses = cross_entropy(logits, yt)
        self.opt.zero_grad()
        losses.sum().backward()  # runs share no parameters: each gets its own gradient
        return logits, losses

    def train_step(
        self, x: Tensor, yt: Tensor, probes: dict | None = None
    ) -> tuple[Tensor, Tensor]:
        """The training itself: the batch's gradient, then the optimizer's update."""
        logits, losses = self.gradient(x, yt, probes)
        self.opt.step()
        return logits, losses

    @torch.no_grad()
    def evaluate(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Mean loss and accuracy per run in eval mode (running statistics)."""
        if not self.fast:
            self.net.eval()
        loss = torch.zeros(self.m, device=self.device)
        acc = torch.zeros(self.m, device=self.device)
        chunk = EVAL_CHUNK
        if self.net.conv:
            chunk = CONV_EVAL_CHUNK if self.device.type == "cpu" else GPU_CONV_EVAL_CHUNK
        for s in range(0, x.shape[0], chunk):
            xb, yb = x[s : s + chunk], y[s : s + chunk]
            logits = self.net.eval_logits(xb) if self.fast else self.net(xb)  # (B, M, K)
            target = yb[:, None].expand(-1, self.m)
            loss += cross_entropy(logits, target) * xb.shape[0]
            acc += (logits.argmax(-1) == target).float().sum(0)
        if not self.fast:
            self.net.train()
        return loss / x.shape[0], acc / x.shape[0]

    def freeze(self, i: int) -> None:
        """Stop training run i (it diverged): its weights keep their last values."""
        self.active[i] = False
        self.opt.freeze(i)

    def _restrict_training(self) -> None:
        """config.train_only (a learning rate of 0 for what a run does not train) and agc
        (the optimizer clips each hidden unit's gradient)."""
        net, configs = self.net, self.configs
        classifier = {id(net.weights[-1]), id(net.biases[-1])}
        norm_params = {id(p) for p in net.norms.parameters()}
        if any(c.train_only != "all" for c in configs):
            allowed = []
            for p in net.parameters():
                role = (
                    "norm" if id(p) in norm_params else "classifier" if id(p) in classifier else ""
                )
                allowed.append((p, [c.train_only in ("all", role) for c in configs]))
            self.opt.restrict(allowed)
        if configs[0].agc > 0:  # not the classifier (Brock et al. 2021)
            hidden = [*net.weights[:-1], *net.biases[:-1]]
            self.opt.clip_units(configs[0].agc, hidden)


def cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Mean cross-entropy per run (M,) from logits (B, M, K) and targets (B, M)."""
    b, m, k = logits.shape
    ce = F.cross_entropy(logits.reshape(b * m, k), target.reshape(b * m), reduction="none")
    return ce.view(b, m).mean(0)


def device_generator(seed: int, device: torch.device) -> torch.Generator:
    """A run's dropout/noise stream on the device (seed + models.STREAM_SEED_OFFSET)."""
    g = torch.Generator(device=device) if device.type in ("cuda", "mps") else torch.Generator()
    return g.manual_seed(seed + STREAM_SEED_OFFSET)
