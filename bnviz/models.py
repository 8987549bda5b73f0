"""Networks built from RunConfigs: M runs of the same architecture as one batched network.

Runs that share a "stack key" (every field but the per-run ones in `PER_RUN_FIELDS` and `norm`)
train as one network whose weights have a leading run dimension: dense layers use batched matmuls
and conv layers grouped convolutions, so M small nets cost little more than one. Each run keeps
its own seeded initial weights, learning rate, weight decay and dropout, and never mixes with the
others: every operation is per run (per feature, per channel, per sample). The runs with a norm
come first, each kind of norm a contiguous block of runs with a norm module of its own, and the
runs with `norm=none` after them skip it — so "with vs without BN" is one network, not two, and
so are BN, LayerNorm, GroupNorm and Ghost BN at one batch size (kinds the fast path trains; see
`stack_order`).

Hidden layer i (1-based) is `Linear/Conv → [norm] → activation → [norm] → [dropout]`, the
norm sitting before or after the activation as configured. Probe points per layer:
`linear` (the Linear/Conv output), `act_in` (what the activation receives), `act_out`, and
`norm_out` (the norm's output, after γ/β) only where a norm sits after the activation — before
it, that output is act_in. In a stack with norm=none runs, norm_out covers every run (theirs
is act_out, passed through); the trainer records it for the normalized runs only.

Training uses autograd (`forward`, then backward) except for the common case `has_fast_path`
(dense layers; no norm, BatchNorm, Ghost BN, LayerNorm or GroupNorm), where `forward_backward`
computes the same gradients with hand-written backward formulas and no autograd graph: on the
CPU a small net's step is mostly per-op overhead, and autograd roughly doubles the op count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import FIELDS, RunConfig
from .norms import GhostBatchNorm, GroupNorm, LayerNorm, StackNorm, make_norm

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
_GN_BACKWARD = _aten.native_group_norm_backward.default
# batch_scratch is left out on purpose: it exists to run norms.ScratchBatchNorm's own code;
# noisy_batch and noise_only draw noise in norms.NoisyBatchNorm.
FAST_NORMS = ("none", "batch", "ghost_batch", "layer", "group")


def has_fast_path(cfg: RunConfig) -> bool:
    """Whether StackedNet.forward_backward trains this config; everything else uses autograd."""
    return cfg.model == "mlp" and cfg.norm in FAST_NORMS and cfg.activation in ACTIVATION_GRADS


def stack_key(cfg: RunConfig) -> tuple:
    """Configs with equal keys can be one stacked network (see stack_order for the norms)."""
    return tuple(getattr(cfg, k) for k in FIELDS if k not in (*PER_RUN_FIELDS, "device", "norm"))


def stack_order(configs: Sequence[RunConfig]) -> list[list[int]]:
    """Indices of `configs` partitioned into stacks, each in StackedNet's order (the runs with a
    norm first, grouped by kind). Per stack key, the norms the fast path trains share one stack
    (a step of M runs costs little more than one); every other norm has a stack of its own (it
    would take its stack-mates off the fast path). Runs without a norm join the first stack of
    their key that has one."""
    by_key: dict[tuple, dict[str, list[int]]] = {}
    for i, c in enumerate(configs):
        by_key.setdefault(stack_key(c), {}).setdefault(c.norm, []).append(i)
    stacks = []
    for by_norm in by_key.values():
        plain = by_norm.pop("none", [])
        fast = [i for n, idx in by_norm.items() if has_fast_path(configs[idx[0]]) for i in idx]
        normed = [idx for idx in by_norm.values() if not has_fast_path(configs[idx[0]])]
        normed = [fast, *normed] if fast else normed
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
        cfg = configs[0]  # the norms' settings come from the first run
        if any(stack_key(c) != stack_key(cfg) for c in configs):
            raise ValueError("configs of one StackedNet must share their stack key")
        self.n_norm = n_norm = sum(c.norm != "none" for c in configs)  # the first n_norm runs
        kinds = [c.norm for c in configs[:n_norm]]
        # (norm, first run, runs) of each contiguous block of one kind of norm
        self.parts = [(n, kinds.index(n), kinds.count(n)) for n in dict.fromkeys(kinds)]
        if any(c.norm != "none" for c in configs[n_norm:]) or any(
            kinds[a : a + k] != [n] * k for n, a, k in self.parts
        ):
            raise ValueError("a StackedNet holds its runs with a norm first, each kind together")
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
        self.norms = nn.ModuleList()  # every layer's norm modules, one per kind (self.parts)
        self.norm_index: list[list[int]] = []  # hidden layer → indices into self.norms
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
            self.norm_index.append([])
            for _, first, k in self.parts if cfg.norm_on(i) else ():
                self.norm_index[-1].append(len(self.norms))
                norm = make_norm(k, width, configs[first])
                norm.first = first  # the stack's runs first … first + k − 1
                self.norms.append(norm)
            self.pool.append(self.conv and h >= 8)  # halve 8×8 and larger maps
            h = h // 2 if self.pool[-1] else h
            c_in = width
        self._add_layer(list(zip(gens, configs)), (shape.n_classes, c_in), c_in, shape.n_classes)
        self.register_buffer("drop_p", torch.tensor([c.dropout for c in configs]))
        self.use_dropout = any(c.dropout > 0 for c in configs)
        self._init_dropout()
        self.generators: list[torch.Generator] = []  # per-run device streams (dropout, noise)
        self._fast_key: tuple[int, int] | None = None  # see _fast_layers
        self._fast_cache: tuple[list[_Dense], list[list[_FastNorm]]] | None = None
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
                n.generators = gens[n.first : n.first + n.m]

    @property
    def depth(self) -> int:
        return len(self.norm_index)

    def vector_runs(self) -> dict[int, tuple[int, int]]:
        """id(p) → (first run, runs) of every norm parameter (γ, β: (runs·C,))."""
        return {id(p): (n.first, n.m) for n in self.norms for p in n.parameters()}

    def norms_of(self, layer: int) -> list[StackNorm]:
        """The norm modules of 1-based hidden layer `layer`: one per kind, in run order."""
        return [self.norms[i] for i in self.norm_index[layer - 1]]

    def norm_of(self, layer: int) -> StackNorm | None:
        """The norm module of 1-based hidden layer `layer` (None without) in a stack of one
        kind of norm; see norms_of for several."""
        norms = self.norms_of(layer)
        if len(norms) > 1:
            raise ValueError("this stack has several kinds of norm: use norms_of")
        return norms[0] if norms else None

    def _norm(self, norms: list[StackNorm], x: Tensor) -> Tensor:
        """Each norm on the channels of its runs (wide x); the norm=none runs' pass through."""
        if len(norms) == 1 and self.n_norm == self.m:
            return norms[0](x)
        c = x.shape[1] // self.m
        parts = [n(x[:, n.first * c : (n.first + n.m) * c]) for n in norms]
        return torch.cat([*parts, x[:, self.n_norm * c :]], 1)

    def _linear(self, i: int, x: Tensor) -> Tensor:
        """Layer i's Linear/Conv: wide (B, M·C[, H, W]) or per-run (M, B, F) in, wide out."""
        w, b = self.weights[i], self.biases[i]  # (M, out, in[, 3, 3]), (M, out)
        if w.dim() == 5:  # a conv layer (the classifier after global pooling is dense)
            if self.m == 1 or x.is_cuda:
                return F.conv2d(x, w.flatten(0, 1), b.flatten(), padding=1, groups=self.m)
            # One convolution per run: on the CPU, groups=M ran ~2× slower than M plain ones
            # (forward and backward, 1 thread, the CNN of benchmarks/bench_lessons.py).
            xs = x.chunk(self.m, 1)
            return torch.cat([F.conv2d(xs[r], w[r], b[r], padding=1) for r in range(self.m)], 1)
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
            norms = self.norms_of(i + 1)
            a_in = self._norm(norms, z) if (norms and self.placement == "before") else z
            a_out = self.act(a_in)
            after = bool(norms) and self.placement == "after"
            h = self._norm(norms, a_out) if after else a_out
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
        kernels autograd uses (running statistics updated the same way), LayerNorm and
        GroupNorm through aten.native_layer_norm and its backward, Ghost BN through BatchNorm's
        backward on the virtual batches (see _FastNorm); `probes` as forward,
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
            fns = bns[i]
            a_in, bn_in = _norms_forward(fns, z) if fns and before else (z, None)
            a_out = act(a_in)
            y, bn_out = _norms_forward(fns, a_out) if fns and not before else (a_out, None)
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
                g = _norms_backward(bns[i], bn_out, g)
            g = act_grad(g, a_in, a_out)
            if bn_in is not None:
                g = _norms_backward(bns[i], bn_in, g)
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
            fns = bns[i]
            h = self.act(_norms_eval(fns, h) if fns and before else h)
            h = _norms_eval(fns, h) if fns and not before else h
        z = self._dense_forward(dense[-1], h)
        return z.view(x.shape[0], 1, self.n_classes) if self.m == 1 else z.transpose(0, 1)

    def _fast_layers(self) -> tuple[list[_Dense], list[list[_FastNorm]]]:
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
            bns = [list(map(_FastNorm.of, self.norms_of(i))) for i in range(1, len(dense))]
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
class _FastNorm:
    """A norm for the fast path: the module (its counters, settings, its runs `first` …
    `first + m − 1` of the stack), what it computes ("batch" statistics per feature, "ghost"
    batches, or per-sample "group"s of units: LayerNorm is one group) and plain aliases of γ,
    β (None without affine), their grads and the running statistics.

    forward/backward/eval take and return its k runs side by side as features, (B, k·C): the
    layout of BatchNorm's and GroupNorm's kernels, whose (k·C,) γ and β are the module's."""

    norm: StackNorm
    kind: str  # "batch" | "ghost" | "group"
    groups: int  # groups of units per run (k·groups in all) for kind "group" (1: LayerNorm)
    runs: slice  # its runs in the stack
    weight: Tensor | None  # (k·C,)
    bias: Tensor | None
    gw: Tensor | None
    gb: Tensor | None
    running_mean: Tensor | None
    running_var: Tensor | None

    @staticmethod
    def of(n: StackNorm) -> _FastNorm:
        aff = n.affine
        kind = "ghost" if isinstance(n, GhostBatchNorm) else "batch"
        if isinstance(n, (LayerNorm, GroupNorm)):
            kind = "group"
        return _FastNorm(
            n,
            kind,
            n.num_groups if isinstance(n, GroupNorm) else 1,
            slice(n.first, n.first + n.m),
            n.weight.detach() if aff else None,
            n.bias.detach() if aff else None,
            n.weight.grad.detach() if aff else None,
            n.bias.grad.detach() if aff else None,
            n.running_mean,
            n.running_var,
        )

    def forward(self, x: Tensor) -> tuple[Tensor, tuple]:
        """Training mode, as the module computes it (running statistics updated in place);
        returns the output and what backward needs."""
        if self.kind == "group":
            return _group_forward(self, x)
        if self.kind == "ghost" and min(self.norm.ghost, x.shape[0]) < x.shape[0]:
            return _ghost_forward(self, x)
        return _bn_forward(self, x)  # one ghost batch is the whole batch: BatchNorm

    def backward(self, saved: tuple, g: Tensor) -> Tensor:
        """dL/dx of forward from g = dL/dy; writes γ's and β's grads."""
        if self.kind == "group":
            return _group_backward(self, saved, g)
        if saved[0].dim() == 3:  # _ghost_forward's (V, k·C, g) layout
            return _ghost_backward(self, saved, g)
        return _bn_backward(self, saved, g)

    def eval(self, x: Tensor) -> Tensor:
        """The module in eval mode: per-sample norms as in training; BN and Ghost BN with the
        running statistics (or, without them, the whole batch's: one ghost batch in eval)."""
        if self.kind == "group":
            return _group_forward(self, x)[0]
        return _bn_eval(self, x)


def _each_norm(fns: list[_FastNorm], x: Tensor, f: Callable[[_FastNorm, Tensor], Tensor]) -> Tensor:
    """f(norm, its runs of x as (B, k·C)) for each norm of a layer, and x's norm=none runs
    unchanged, in x's per-run layout: (M, B, C), or (B, C) for one run. Runs are handled as
    their (B, C) blocks (one unbind, one stack): ~1 µs per tensor op counts at these sizes."""
    if x.dim() == 2:
        return f(fns[0], x)
    b = x.shape[1]
    rows = x.unbind(0)  # views, one per run
    ys: list[Tensor] = []
    for fn in fns:
        k = fn.norm.m
        if k == 1:
            ys.append(f(fn, rows[fn.runs.start]))
        else:
            xs = x[fn.runs].transpose(0, 1).reshape(b, -1)
            ys += f(fn, xs).view(b, k, -1).unbind(1)
    return torch.stack([*ys, *rows[len(ys) :]])


def _norms_forward(fns: list[_FastNorm], x: Tensor) -> tuple[Tensor, list[tuple]]:
    saved: list[tuple] = []

    def f(fn: _FastNorm, xs: Tensor) -> Tensor:
        y, s = fn.forward(xs)
        saved.append(s)
        return y

    return _each_norm(fns, x, f), saved


def _norms_backward(fns: list[_FastNorm], saved: list[tuple], g: Tensor) -> Tensor:
    each = iter(saved)
    return _each_norm(fns, g, lambda fn, gs: fn.backward(next(each), gs))


def _norms_eval(fns: list[_FastNorm], x: Tensor) -> Tensor:
    return _each_norm(fns, x, _FastNorm.eval)


def _wide(t: Tensor) -> Tensor:
    """A per-run (M, B, C) tensor as the wide (B, M·C) layout of probes; (B, C) stays."""
    return t if t.dim() == 2 else t.transpose(0, 1).reshape(t.shape[1], -1)


def _bn_forward(fn: _FastNorm, x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
    """Training-mode BatchNorm of x (B, k·C) as BatchNorm.norm3 computes it (running
    statistics updated in place); returns the output and what _bn_backward needs."""
    n = fn.norm
    factor = n._factor() if n.track_running_stats else 0.0
    y, mean, invstd = torch.native_batch_norm(
        x, fn.weight, fn.bias, fn.running_mean, fn.running_var, True, factor, n.eps
    )
    return y, (x, mean, invstd)


def _bn_eval(fn: _FastNorm, x: Tensor) -> Tensor:
    """BatchNorm.norm3 in eval mode: the running statistics, or the batch's without them."""
    n = fn.norm
    use_batch = not n.track_running_stats
    w, b, rm, rv = fn.weight, fn.bias, fn.running_mean, fn.running_var
    return torch.native_batch_norm(x, w, b, rm, rv, use_batch, 0.0, n.eps)[0]


def _bn_backward(fn: _FastNorm, saved: tuple[Tensor, Tensor, Tensor], g: Tensor) -> Tensor:
    """dL/dx of _bn_forward from g = dL/dy; writes γ's and β's grads."""
    x, mean, invstd = saved
    aff = fn.weight is not None
    gx, gw, gb = _BN_BACKWARD(
        g, x, fn.weight, None, None, mean, invstd, True, fn.norm.eps, [True, aff, aff]
    )
    if aff:
        fn.gw.copy_(gw)
        fn.gb.copy_(gb)
    return gx


def _group_forward(fn: _FastNorm, x: Tensor) -> tuple[Tensor, tuple]:
    """LayerNorm / GroupNorm of x (B, k·C): each sample's units of a run in `groups` groups of
    C/groups consecutive units, normalized over the group, then γ·x̂ + β — GroupNorm's kernel
    with k·groups groups (a group never spans two runs)."""
    n = fn.norm
    b, kc = x.shape
    y, mean, rstd = torch.native_group_norm(x, fn.weight, fn.bias, b, kc, 1, n.m * fn.groups, n.eps)
    return y, (x, mean, rstd)


def _group_backward(fn: _FastNorm, saved: tuple, g: Tensor) -> Tensor:
    x, mean, rstd = saved
    b, kc = x.shape
    aff = fn.weight is not None
    gx, gw, gb = _GN_BACKWARD(
        g, x, mean, rstd, fn.weight, b, kc, 1, fn.norm.m * fn.groups, [True, aff, aff]
    )
    if aff:
        fn.gw.copy_(gw)
        fn.gb.copy_(gb)
    return gx


def _ghost_forward(fn: _FastNorm, x: Tensor) -> tuple[Tensor, tuple]:
    """Ghost BN of x (B, k·C) as norms.GhostBatchNorm computes it: BatchNorm's statistics per
    virtual batch of `ghost` consecutive samples. Laid out as (V, k·C, g) — V virtual batches
    as GroupNorm's samples, each feature a group of one channel over g positions — GroupNorm's
    kernel normalizes each virtual batch's feature on its own (biased variance, γ and β per
    feature, their grads summed over the virtual batches)."""
    n = fn.norm
    b, kc = x.shape
    g = min(n.ghost, b)
    v = b // g
    xv = x.view(v, g, kc).transpose(1, 2).contiguous()  # (V, k·C, g)
    y, mean, rstd = torch.native_group_norm(xv, fn.weight, fn.bias, v, kc, g, kc, n.eps)
    if n.track_running_stats:  # (V, k·C); the biased variances back from 1/√(var + eps)
        var = rstd.reciprocal().square_().sub_(n.eps).clamp_min_(0.0)
        n._update_running(mean, var, g)
    return y.transpose(1, 2).reshape(b, kc), (xv, mean, rstd)


def _ghost_backward(fn: _FastNorm, saved: tuple, g: Tensor) -> Tensor:
    xv, mean, rstd = saved
    v, kc, size = xv.shape
    aff = fn.weight is not None
    gv = g.view(v, size, kc).transpose(1, 2).contiguous()
    gx, gw, gb = _GN_BACKWARD(gv, xv, mean, rstd, fn.weight, v, kc, size, kc, [True, aff, aff])
    if aff:
        fn.gw.copy_(gw)
        fn.gb.copy_(gb)
    return gx.transpose(1, 2).reshape(v * size, kc)
