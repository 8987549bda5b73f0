"""Networks built from RunConfigs: M runs of the same architecture as one batched network.

Runs that share a "stack key" (every field but the per-run ones in `PER_RUN_FIELDS` and `norm`)
train as one network whose weights have a leading run dimension: dense layers use batched matmuls
and conv layers grouped convolutions, so M small nets cost little more than one. Each run keeps
its own seeded initial weights, learning rate, weight decay and dropout, and never mixes with the
others: every operation is per run (per feature, per channel, per sample). A stack holds at most
one kind of norm: its runs with that norm come first and their channels are normalized, the runs
with `norm=none` after them skip it — so "with vs without BN" is one network, not two.

Hidden layer i (1-based) is `Linear/Conv → [norm] → activation → [norm] → [dropout]`, the
norm sitting before or after the activation as configured. Probe points per layer:
`linear` (the Linear/Conv output), `act_in` (what the activation receives), `act_out`, and
`norm_out` (the norm's output, after γ/β) only where a norm sits after the activation — before
it, that output is act_in. In a stack with norm=none runs, norm_out covers every run (theirs
is act_out, passed through); the trainer records it for the normalized runs only.

Training uses autograd (`forward`, then backward) except for the common case `has_fast_path`
(dense layers; no norm or BatchNorm), where `forward_backward` computes
the same gradients with hand-written backward formulas and no autograd graph: on the CPU a
small net's step is mostly per-op overhead, and autograd roughly doubles the op count.
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

PER_RUN_FIELDS = ("seed", "lr", "weight_decay", "init", "init_scale", "dropout", "train_only")
POINTS = ("linear", "act_in", "act_out")  # probed in every hidden layer
NORM_OUT = "norm_out"  # probed in layers with a norm after the activation (placement=after)
STREAM_SEED_OFFSET = 104729  # a run's dropout/noise stream is seeded with seed + this

ACTIVATIONS = {
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "gelu": F.gelu,
    "linear": lambda x: x,
}

# dL/d(input) of each activation from dL/d(output) g, its input x and its output y: the aten
# kernels autograd itself uses for these functions.
_aten = torch.ops.aten
ACTIVATION_GRADS = {
    "relu": lambda g, x, y: _aten.threshold_backward.default(g, y, 0),
    "sigmoid": lambda g, x, y: _aten.sigmoid_backward.default(g, y),
    "tanh": lambda g, x, y: _aten.tanh_backward.default(g, y),
    "gelu": lambda g, x, y: _aten.gelu_backward.default(g, x),
    "linear": lambda g, x, y: g,
}
_BN_BACKWARD = _aten.native_batch_norm_backward.default
# batch_scratch is left out on purpose: it exists to run norms.ScratchBatchNorm's own code.
FAST_NORMS = ("none", "batch")


def has_fast_path(cfg: RunConfig) -> bool:
    """Whether StackedNet.forward_backward trains this config; everything else uses autograd."""
    return cfg.model == "mlp" and cfg.norm in FAST_NORMS and cfg.activation in ACTIVATION_GRADS


def stack_key(cfg: RunConfig) -> tuple:
    """Configs with equal keys and at most one norm besides "none" can be one stacked network."""
    return tuple(getattr(cfg, k) for k in FIELDS if k not in (*PER_RUN_FIELDS, "device", "norm"))


def stack_order(configs: Sequence[RunConfig]) -> list[list[int]]:
    """Indices of `configs` partitioned into stacks, each in StackedNet's order (the runs with a
    norm first). Runs without a norm join the first stack of their key that has one."""
    by_key: dict[tuple, dict[str, list[int]]] = {}
    for i, c in enumerate(configs):
        by_key.setdefault(stack_key(c), {}).setdefault(c.norm, []).append(i)
    stacks = []
    for by_norm in by_key.values():
        plain = by_norm.pop("none", [])
        normed = list(by_norm.values())
        if normed:
            normed[0] = normed[0] + plain
            stacks += normed
        else:
            stacks.append(plain)
    return stacks


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
        cfg = configs[0]  # the norm's settings come from the first run
        if any(stack_key(c) != stack_key(cfg) for c in configs):
            raise ValueError("configs of one StackedNet must share their stack key")
        self.n_norm = n_norm = sum(c.norm != "none" for c in configs)  # the first n_norm runs
        if any(c.norm != cfg.norm for c in configs[:n_norm]) or any(
            c.norm != "none" for c in configs[n_norm:]
        ):
            raise ValueError("a StackedNet holds one kind of norm, its runs first, then norm=none")
        self.configs = list(configs)
        self.m = len(configs)
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
                self.norms.append(make_norm(n_norm, width, cfg))
            else:
                self.norm_index.append(None)
            self.pool.append(self.conv and h >= 8)  # halve 8×8 and larger maps
            h = h // 2 if self.pool[-1] else h
            c_in = width
        self._add_layer(list(zip(gens, configs)), (shape.n_classes, c_in), c_in, shape.n_classes)
        self.register_buffer("drop_p", torch.tensor([c.dropout for c in configs]))
        self.use_dropout = any(c.dropout > 0 for c in configs)
        self._init_dropout()
        self.generators: list[torch.Generator] = []  # per-run device streams (dropout, noise)
        self._fast_key: tuple[int, int] | None = None  # see _fast_layers
        self._fast_cache: tuple[list[_Dense], list[_BN | None]] | None = None
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
                n.generators = gens[: self.n_norm]

    @property
    def depth(self) -> int:
        return len(self.norm_index)

    def norm_of(self, layer: int) -> StackNorm | None:
        """The norm module of 1-based hidden layer `layer`, if it has one."""
        idx = self.norm_index[layer - 1]
        return None if idx is None else self.norms[idx]

    def _norm(self, norm: StackNorm, x: Tensor) -> Tensor:
        """The norm on the channels of the runs that have it (the first n_norm runs)."""
        if self.n_norm == self.m:
            return norm(x)
        c = x.shape[1] // self.m * self.n_norm
        return torch.cat([norm(x[:, :c]), x[:, c:]], 1)

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

    def _init_dropout(self) -> None:
        """What _dropout_mask needs, made once: a step then reads no tensor value (on a GPU,
        reading one waits for the device). drop_p holds the float32 probabilities; `drop_ps`
        are the same values as Python floats (which runs draw), and the buffer drop_scale is
        1/(1 − p) rounded as float32 division rounds it, so masks equal the per-run
        (r ≥ p) / (1 − p) to the bit."""
        self.drop_ps: list[float] = self.drop_p.tolist()
        one_minus = torch.tensor([1 - p for p in self.drop_ps])  # (M,) float32
        self.register_buffer("drop_scale", torch.ones_like(one_minus) / one_minus, persistent=False)

    def _dropout_mask(self, x: Tensor, wide: bool = True) -> Tensor | None:
        """keep/(1−p) per value of x, each run from its own stream; None: no dropout. x is wide
        or, with wide=False, per run ((M, B, C), or (B, C) for one run): the same values.

        Each run with p > 0 draws U(0, 1) for its (B, C[, H, W]) block from its own
        generator (a run with p = 0 draws nothing: its stream, which its noise shares, must
        not depend on the other runs); the threshold and scale are then one op each for all
        runs, with no host sync."""
        if not (self.training and self.use_dropout):
            return None
        if not wide and self.m > 1:
            b, c = x.shape[1], x.shape[2]
        else:
            b, c = x.shape[0], x.shape[1] // self.m
        rest = x.shape[2:] if wide else ()
        r = torch.empty((self.m, b, c, *rest), device=x.device)  # (M, B, C[, H, W])
        for i, (g, p) in enumerate(zip(self.generators, self.drop_ps)):
            if p == 0:
                r[i].fill_(1.0)  # kept (1 ≥ 0), scale 1
            else:
                torch.rand((b, c, *rest), generator=g, device=x.device, out=r[i])
        view = (self.m, *[1] * (r.dim() - 1))
        mask = (r >= self.drop_p.view(view)) * self.drop_scale.view(view)
        mask = mask.to(x.dtype)
        if not wide:
            return mask if self.m > 1 else mask[0]
        return mask.transpose(0, 1).reshape(b, self.m * c, *rest)  # (B, M·C[, H, W])

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
            a_in = self._norm(norm, z) if (norm is not None and self.placement == "before") else z
            a_out = self.act(a_in)
            after = norm is not None and self.placement == "after"
            h = self._norm(norm, a_out) if after else a_out
            if probes is not None:
                for point, t in zip(POINTS, (z, a_in, a_out)):
                    probes[(i + 1, point)] = t.detach()
                if after:
                    probes[(i + 1, NORM_OUT)] = h.detach()
            h = self._dropout(h)
            if self.conv and self.pool[i]:
                h = F.max_pool2d(h, 2)
        if self.conv:
            h = h.mean(dim=(2, 3))  # global average pool → (B, M·C)
        logits = self._linear(self.depth, h)
        return logits.view(logits.shape[0], self.m, self.n_classes)

    @torch.no_grad()
    def forward_backward(
        self, x: Tensor, target: Tensor, probes: dict | None = None
    ) -> tuple[Tensor, Tensor]:
        """One training step without autograd, for configs with `has_fast_path`.

        x: (M, B, F) one mini-batch per run; target: (B, M) labels. Returns the logits
        (B, M, K) and each run's mean cross-entropy (M,), and *overwrites* every parameter's
        .grad with d(sum of the runs' losses)/d(parameter) — what forward, the loss and
        backward give. BatchNorm goes through aten.native_batch_norm and its backward, the
        kernels autograd uses (running statistics updated the same way); `probes` as forward,
        but per run, (M, B, C) or (B, C) for one run (`_wide` gives forward's layout).

        Activations here are per run, (M, B, C) — (B, C) for one run — not wide: every
        batched matmul then reads and writes contiguous blocks, and the normalized runs'
        columns are one contiguous block too (the wide layout's strided views cost ~2× here).
        """
        b, m, k = x.shape[1], self.m, self.n_classes
        dense, bns = self._fast_layers()
        act, act_grad = self.act, ACTIVATION_GRADS[self.configs[0].activation]
        before = self.placement == "before"
        saved = []  # per hidden layer: what its backward needs
        h = x.view(b, -1) if m == 1 else x
        for i in range(self.depth):
            z = self._dense_forward(dense[i], h)
            bn = bns[i]
            a_in, bn_in = _bn_forward(bn, z) if bn is not None and before else (z, None)
            a_out = act(a_in)
            y, bn_out = _bn_forward(bn, a_out) if bn is not None and not before else (a_out, None)
            mask = self._dropout_mask(y, wide=False)
            if probes is not None:
                for point, t in zip(POINTS, (z, a_in, a_out)):
                    probes[(i + 1, point)] = t  # per run: what probes' per_run layout reads
                if bn_out is not None:
                    probes[(i + 1, NORM_OUT)] = y
            saved.append((h, a_in, a_out, bn_in, bn_out, mask))
            h = y if mask is None else y * mask
        z = self._dense_forward(dense[-1], h)  # (M, B, K), or (B, K)
        # Cross-entropy per run; d(its mean over the batch)/d(logits) = (softmax − onehot) / B.
        logp = torch.log_softmax(z, -1)
        tgt = (target if m == 1 else target.t()).unsqueeze(-1)  # like z: (M, B, 1) or (B, 1, 1)
        if m == 1:
            logp = logp.unsqueeze(1)  # (B, 1, K)
        losses = logp.gather(-1, tgt).squeeze(-1).mean(-2 if m == 1 else -1).neg_()
        g = logp.exp_().div_(b).scatter_add_(-1, tgt, torch.full_like(tgt, -1 / b, dtype=z.dtype))
        logits = z.view(b, 1, k) if m == 1 else z.transpose(0, 1)
        g = self._dense_backward(dense[-1], h, g.view(b, k) if m == 1 else g, True)
        for i in reversed(range(self.depth)):
            h, a_in, a_out, bn_in, bn_out, mask = saved[i]
            if mask is not None:
                g = g * mask
            if bn_out is not None:
                g = _bn_backward(bns[i], bn_out, g)
            g = act_grad(g, a_in, a_out)
            if bn_in is not None:
                g = _bn_backward(bns[i], bn_in, g)
            g = self._dense_backward(dense[i], h, g, i > 0)  # the data needs no gradient
        return logits, losses

    @torch.no_grad()
    def eval_logits(self, x: Tensor) -> Tensor:
        """forward(x) in eval mode (running statistics, no dropout) for configs with
        `has_fast_path`, without module calls and whatever mode the net is in.

        x: (B, F), the same batch for every run; returns logits (B, M, K).
        """
        dense, bns = self._fast_layers()
        before = self.placement == "before"
        m, b = self.m, x.shape[0]
        h = x
        for i in range(self.depth):
            if i > 0 or m == 1:
                h = self._dense_forward(dense[i], h)
            else:  # every run reads the same x: one matmul with the runs' weights side by side
                d = dense[0]
                h = torch.addmm(d.b.view(1, -1), x, d.w.reshape(-1, d.w.shape[2]).t())
                h = h.view(b, m, -1).transpose(0, 1).contiguous()
            bn = bns[i]
            h = self.act(_bn_eval(bn, h) if bn is not None and before else h)
            h = _bn_eval(bn, h) if bn is not None and not before else h
        z = self._dense_forward(dense[-1], h)
        return z.view(x.shape[0], 1, self.n_classes) if self.m == 1 else z.transpose(0, 1)

    def _fast_layers(self) -> tuple[list[_Dense], list[_BN | None]]:
        """Plain-tensor aliases of every parameter, grad and running statistic, built once.

        Indexing a ParameterList and operating on Parameters cost several µs each, and a step
        makes ~100 such accesses. Rebuilt when the first weight's data or grad moved (the
        trainer re-points all of them at once: to(), the optimizer's flat buffers); gives
        parameters without a .grad a zero one to write into.
        """
        w0 = self.weights[0]
        if w0.grad is None:
            for p in self.parameters():
                p.grad = torch.zeros_like(p) if p.grad is None else p.grad
        key = (w0.data_ptr(), w0.grad.data_ptr())
        if self._fast_key != key:
            dense = [_Dense.of(w, b) for w, b in zip(self.weights, self.biases)]
            bns = [
                None if n is None else _BN.of(n) for n in map(self.norm_of, range(1, len(dense)))
            ]
            self._fast_cache, self._fast_key = (dense, bns), key
        return self._fast_cache

    def _dense_forward(self, d: _Dense, h: Tensor) -> Tensor:
        """A dense layer on per-run h, (M, B, in) or (B, in) for one run: (M, B, out)."""
        if self.m == 1:
            return torch.addmm(d.b, h, d.wt)
        return torch.baddbmm(d.b, h, d.wt)

    def _dense_backward(self, d: _Dense, h: Tensor, g: Tensor, grad_in: bool) -> Tensor | None:
        """Writes the layer's weight and bias grads from g = dL/d(output) and its input h (both
        per run); returns dL/dh if grad_in."""
        if self.m == 1:
            torch.sum(g, 0, out=d.gb)
            torch.mm(g.t(), h, out=d.gw)
            return torch.mm(g, d.w) if grad_in else None
        torch.sum(g, 1, out=d.gb.view(self.m, -1))
        torch.bmm(g.transpose(1, 2), h, out=d.gw)
        return torch.bmm(g, d.w) if grad_in else None


@dataclass
class _Dense:
    """One dense layer for the fast path: weight (out, in) if M = 1, else (M, out, in); its
    transpose; bias (out,) or (M, 1, out); the weight's grad and the bias's grad, flat."""

    w: Tensor
    wt: Tensor
    b: Tensor
    gw: Tensor
    gb: Tensor

    @staticmethod
    def of(w: Tensor, b: Tensor) -> _Dense:
        gw, gb = w.grad.detach(), b.grad.detach().view(-1)
        w, b = w.detach(), b.detach()
        if w.shape[0] == 1:
            w, gw, b = w[0], gw[0], b[0]
            return _Dense(w, w.t(), b, gw, gb)
        return _Dense(w, w.transpose(1, 2), b.unsqueeze(1), gw, gb)


@dataclass
class _BN:
    """A BatchNorm for the fast path: the module (its counters, settings and number of runs)
    and plain aliases of γ, β (None without affine), their grads and the running statistics."""

    norm: StackNorm
    weight: Tensor | None
    bias: Tensor | None
    gw: Tensor | None
    gb: Tensor | None
    running_mean: Tensor | None
    running_var: Tensor | None

    @staticmethod
    def of(n: StackNorm) -> _BN:
        aff = n.affine
        return _BN(
            n,
            n.weight.detach() if aff else None,
            n.bias.detach() if aff else None,
            n.weight.grad.detach() if aff else None,
            n.bias.grad.detach() if aff else None,
            n.running_mean,
            n.running_var,
        )


def _wide(t: Tensor) -> Tensor:
    """A per-run (M, B, C) tensor as the wide (B, M·C) layout of probes; (B, C) stays."""
    return t if t.dim() == 2 else t.transpose(0, 1).reshape(t.shape[1], -1)


def _normed(x: Tensor, k: int) -> Tensor:
    """The first k runs of per-run x ((M, B, C), or (B, C) for one run) as one (B, k·C)
    tensor: what BatchNorm's kernels take (a view for one run, else a copy)."""
    if x.dim() == 2:
        return x
    return x[0] if k == 1 else x[:k].transpose(0, 1).reshape(x.shape[1], -1)


def _rejoin(y: Tensor, x: Tensor, k: int) -> Tensor:
    """x with its first k runs replaced by y, (B, k·C) as _normed gives it."""
    if x.dim() == 2:
        return y
    y3 = y.unsqueeze(0) if k == 1 else y.view(y.shape[0], k, -1).transpose(0, 1)
    return y3.contiguous() if k == x.shape[0] else torch.cat([y3, x[k:]])


def _bn_forward(bn: _BN, x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
    """Training-mode BatchNorm of per-run x as BatchNorm.norm3 computes it (running
    statistics updated in place) on the normalized runs; returns the output and what
    _bn_backward needs."""
    n = bn.norm
    factor = n._factor() if n.track_running_stats else 0.0
    xs = _normed(x, n.m)
    y, mean, invstd = torch.native_batch_norm(
        xs, bn.weight, bn.bias, bn.running_mean, bn.running_var, True, factor, n.eps
    )
    return _rejoin(y, x, n.m), (xs, mean, invstd)


def _bn_eval(bn: _BN, x: Tensor) -> Tensor:
    """BatchNorm.norm3 in eval mode: the running statistics, or the batch's without them."""
    n = bn.norm
    use_batch = not n.track_running_stats
    w, b, rm, rv = bn.weight, bn.bias, bn.running_mean, bn.running_var
    y = torch.native_batch_norm(_normed(x, n.m), w, b, rm, rv, use_batch, 0.0, n.eps)[0]
    return _rejoin(y, x, n.m)


def _bn_backward(bn: _BN, saved: tuple[Tensor, Tensor, Tensor], g: Tensor) -> Tensor:
    """dL/dx of _bn_forward from g = dL/dy; writes γ's and β's grads."""
    x, mean, invstd = saved
    aff = bn.weight is not None
    gx, gw, gb = _BN_BACKWARD(
        _normed(g, bn.norm.m),
        x,
        bn.weight,
        None,
        None,
        mean,
        invstd,
        True,
        bn.norm.eps,
        [True, aff, aff],
    )
    if aff:
        bn.gw.copy_(gw)
        bn.gb.copy_(gb)
    return _rejoin(gx, g, bn.norm.m)
