"""Networks built from RunConfigs: M runs of the same architecture as one batched network.

Runs that share a "stack key" (every field but the per-run ones in `PER_RUN_FIELDS`) train as
one network whose weights have a leading run dimension: dense layers use batched matmuls and
conv layers grouped convolutions, so M small nets cost little more than one. Each run keeps its
own seeded initial weights, learning rate, weight decay and dropout, and never mixes with the
others: every operation is per run (per feature, per channel, per sample).

Hidden layer i (1-based) is `Linear/Conv → [norm] → activation → [norm] → [dropout]`, the
norm sitting before or after the activation as configured. Probe points per layer:
`linear` (the Linear/Conv output), `act_in` (what the activation receives), `act_out`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import FIELDS, RunConfig
from .norms import StackNorm, make_norm

PER_RUN_FIELDS = ("seed", "lr", "weight_decay", "init", "init_scale", "dropout")
POINTS = ("linear", "act_in", "act_out")
STREAM_SEED_OFFSET = 104729  # a run's dropout/noise stream is seeded with seed + this

ACTIVATIONS = {
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "gelu": F.gelu,
    "linear": lambda x: x,
}


def stack_key(cfg: RunConfig) -> tuple:
    """Configs with equal keys can be trained as one stacked network."""
    return tuple(getattr(cfg, k) for k in FIELDS if k not in PER_RUN_FIELDS and k != "device")


@dataclass(frozen=True)
class Shape:
    """What the data looks like to the network."""

    n_features: int
    n_classes: int
    image_shape: tuple[int, ...] | None  # (C, H, W) for image data


def _init_std(cfg: RunConfig, fan_in: int, fan_out: int) -> float:
    if cfg.init == "kaiming":
        return math.sqrt(2.0 / fan_in) * cfg.init_scale
    if cfg.init == "xavier":
        return math.sqrt(2.0 / (fan_in + fan_out)) * cfg.init_scale
    return cfg.init_scale  # "normal": the scale is the std (cs231n's weight_scale)


def init_weights(
    cfg: RunConfig, gen: torch.Generator, shape: tuple[int, ...], fan_in: int, fan_out: int
) -> tuple[Tensor, Tensor]:
    """One run's weight and bias, drawn on the CPU from the run's own generator."""
    if cfg.init == "default":  # PyTorch's Linear/Conv default: U(±1/√fan_in) for both
        bound = 1.0 / math.sqrt(fan_in)
        w = (torch.rand(shape, generator=gen) * 2 - 1) * bound * cfg.init_scale
        b = (torch.rand(shape[0], generator=gen) * 2 - 1) * bound
        return w, b
    w = torch.randn(shape, generator=gen) * _init_std(cfg, fan_in, fan_out)
    return w, torch.zeros(shape[0])


class StackedNet(nn.Module):
    """M runs (configs with one stack key) as a single network with a leading run dimension."""

    def __init__(self, configs: Sequence[RunConfig], shape: Shape) -> None:
        super().__init__()
        cfg = configs[0]
        if any(stack_key(c) != stack_key(cfg) for c in configs):
            raise ValueError("configs of one StackedNet must share their stack key")
        self.configs = list(configs)
        self.m = m = len(configs)
        self.conv = cfg.model == "cnn"
        self.act = ACTIVATIONS[cfg.activation]
        self.placement = cfg.placement
        self.n_classes = shape.n_classes
        self.image_shape = shape.image_shape
        gens = [torch.Generator().manual_seed(c.seed) for c in configs]

        self.weights = nn.ParameterList()  # (M, out, in) or (M, out, in, 3, 3)
        self.biases = nn.ParameterList()  # (M, out)
        self.norms = nn.ModuleList()
        self.norm_index: list[int | None] = []  # hidden layer → index into self.norms
        self.pool: list[bool] = []
        if self.conv:
            c_in, h = shape.image_shape[0], shape.image_shape[1]
        else:
            c_in, h = shape.n_features, 1
        for i, width in enumerate(cfg.hidden, start=1):
            k = (3, 3) if self.conv else ()
            fan_in = c_in * (9 if self.conv else 1)
            self._add_layer(
                [(g, c) for g, c in zip(gens, configs)],
                (width, c_in, *k),
                fan_in,
                width * (9 if self.conv else 1),
            )
            if cfg.norm_on(i):
                self.norm_index.append(len(self.norms))
                self.norms.append(make_norm(m, width, cfg))
            else:
                self.norm_index.append(None)
            self.pool.append(self.conv and h >= 8)  # halve 8×8 and larger maps
            h = h // 2 if self.pool[-1] else h
            c_in = width
        self._add_layer(list(zip(gens, configs)), (shape.n_classes, c_in), c_in, shape.n_classes)
        self.register_buffer("drop_p", torch.tensor([c.dropout for c in configs]))
        self.use_dropout = any(c.dropout > 0 for c in configs)
        self.generators: list[torch.Generator] = []  # per-run device streams (dropout, noise)
        self.set_generators(  # CPU streams until the trainer gives device ones
            [torch.Generator().manual_seed(c.seed + STREAM_SEED_OFFSET) for c in configs]
        )

    def _add_layer(
        self,
        gens: list[tuple[torch.Generator, RunConfig]],
        shape: tuple[int, ...],
        fan_in: int,
        fan_out: int,
    ) -> None:
        ws, bs = zip(*(init_weights(c, g, shape, fan_in, fan_out) for g, c in gens))
        self.weights.append(nn.Parameter(torch.stack(ws)))
        self.biases.append(nn.Parameter(torch.stack(bs)))

    def set_generators(self, gens: list[torch.Generator]) -> None:
        self.generators = gens
        for n in self.norms:
            if hasattr(n, "generators"):
                n.generators = gens

    @property
    def depth(self) -> int:
        return len(self.norm_index)

    def norm_of(self, layer: int) -> StackNorm | None:
        """The norm module of 1-based hidden layer `layer`, if it has one."""
        idx = self.norm_index[layer - 1]
        return None if idx is None else self.norms[idx]

    def _linear(self, i: int, x: Tensor) -> Tensor:
        """Layer i's Linear/Conv: wide (B, M·C[, H, W]) or per-run (M, B, F) in, wide out."""
        w, b = self.weights[i], self.biases[i]  # (M, out, in[, 3, 3]), (M, out)
        if w.dim() == 5:  # a conv layer (the classifier after global pooling is dense)
            return F.conv2d(x, w.flatten(0, 1), b.flatten(), padding=1, groups=self.m)
        if self.m == 1:  # the common single-run case: a plain Linear, no stacking overhead
            return F.linear(
                x.view(x.shape[-2:]) if x.dim() == 3 else x, w.view(w.shape[1:]), b.view(-1)
            )
        if x.dim() == 2:
            x = x.view(x.shape[0], self.m, -1).transpose(0, 1)  # (M, B, in)
        y = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))  # (M, B, out)
        return y.transpose(0, 1).reshape(y.shape[1], -1)

    def _dropout(self, x: Tensor) -> Tensor:
        mask = self._dropout_mask(x)
        return x if mask is None else x * mask

    def _dropout_mask(self, x: Tensor) -> Tensor | None:
        """keep/(1−p) per value of a wide x, each run from its own stream; None: no dropout."""
        if not (self.training and self.use_dropout):
            return None
        b, c = x.shape[0], x.shape[1] // self.m
        rest = x.shape[2:]
        keep = []
        for g, p in zip(self.generators, self.drop_p.tolist()):
            if p == 0:  # draw nothing: the run's stream (also its noise) must not depend on others
                keep.append(torch.ones((b, c, *rest), dtype=x.dtype, device=x.device))
                continue
            r = torch.rand((b, c, *rest), generator=g, device=x.device)
            keep.append((r >= p).to(x.dtype) / (1 - p))
        return torch.cat(keep, dim=1)

    def forward(self, x: Tensor, probes: dict | None = None) -> Tensor:
        """Logits (B, M, n_classes). x: (M, B, F) flat features, one mini-batch per run.

        When `probes` is a dict it is filled with {(layer, point): detached wide tensor}.
        """
        if x.dim() == 2:  # the same batch for every run (evaluation)
            x = x.unsqueeze(0).expand(self.m, -1, -1)
        if self.conv:
            m, b = x.shape[0], x.shape[1]
            x = (
                x.view(m, b, *self.image_shape)
                .transpose(0, 1)
                .reshape(b, -1, *self.image_shape[1:])
            )
        h = x
        for i in range(self.depth):
            z = self._linear(i, h)
            norm = self.norm_of(i + 1)
            a_in = norm(z) if (norm is not None and self.placement == "before") else z
            a_out = self.act(a_in)
            h = norm(a_out) if (norm is not None and self.placement == "after") else a_out
            if probes is not None:
                for point, t in zip(POINTS, (z, a_in, a_out)):
                    probes[(i + 1, point)] = t.detach()
            h = self._dropout(h)
            if self.conv and self.pool[i]:
                h = F.max_pool2d(h, 2)
        if self.conv:
            h = h.mean(dim=(2, 3))  # global average pool → (B, M·C)
        logits = self._linear(self.depth, h)
        return logits.view(logits.shape[0], self.m, self.n_classes)
