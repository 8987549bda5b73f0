"""Measures taken at a stack's current weights without changing its training.

`contained(stack)` saves everything a training-mode evaluation or a trial step can change —
parameters and gradients (two flat copies), the optimizer's state and step counter, the
norms' running statistics and `num_batches_tracked`, every run's dropout/noise stream, the
net's mode — and restores it exactly on exit; `fresh()` inside it goes back to that state
between trials. A measure is then free to try a step, recompute a gradient or walk along a
direction: the run's records are bit-identical with it on or off (tests/test_measures.py).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor

from .probes import host_values
from .stack import Stack


@contextmanager
def contained(stack: Stack) -> Iterator[Callable[[], None]]:
    """Measure freely inside; on exit (and at each call of the yielded `fresh`) the stack is
    as it was on entry, to the bit."""
    opt, net = stack.opt, stack.net
    flat, grad, t = opt.flat.clone(), opt.grad.clone(), opt.t
    state = {k: v.clone() for k, v in opt.state.items()}
    buffers = [(b, b.clone()) for b in net.buffers()]  # running_mean, running_var, drop_p
    counters = [(n, n.num_batches_tracked) for n in net.norms if hasattr(n, "num_batches_tracked")]
    streams = [(g, g.get_state()) for g in net.generators]  # the norms' streams are these too
    training = net.training

    @torch.no_grad()
    def fresh() -> None:
        opt.flat.copy_(flat)
        opt.grad.copy_(grad)
        opt.t = t
        # in place where the state existed on entry: a captured CUDA graph (bnviz.graphs)
        # holds these tensors' addresses
        for k in [k for k in opt.state if k not in state]:
            del opt.state[k]
        for k, v in state.items():
            if k in opt.state:
                opt.state[k].copy_(v)
            else:
                opt.state[k] = v.clone()
        for b, v in buffers:
            b.copy_(v)
        for n, c in counters:
            n.num_batches_tracked = c
        for g, s in streams:
            g.set_state(s)
        net.train(training)

    try:
        yield fresh
    finally:
        fresh()


# --- the measures (records.RECORDERS with every="measure" or "end") ---------------------------

FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)  # steps along the gradient, × each run's lr: 16× apart
MAX_MEASURES = 10  # measure steps per run at most
MIN_EVERY = 50  # steps between measure steps at least: a measure costs several steps
SLICE_POINTS = 7  # the 2-D slice: a 7 × 7 grid of weights
SLICE_SPAN = 1.0  # ± this many filter-normalized directions from the final weights
SLICE_SAMPLES = 128  # training samples its loss is computed on (training mode)
SLICE_SEED = 7727  # the directions' generator: seed + this, per run

Measure = Callable[[Stack, int, Tensor, Tensor], list[list[dict]]]
_LAYER_OF: weakref.WeakKeyDictionary[Stack, Tensor] = weakref.WeakKeyDictionary()  # layer_of's


def measure_every(total: int, record_steps: int) -> int:
    """Steps between measure steps: a multiple of the steps between records (RunConfig.
    record_steps), ≥ MIN_EVERY, ≤ MAX_MEASURES per run (the last step is measured too)."""
    want = max(MIN_EVERY, math.ceil(total / MAX_MEASURES))
    return record_steps * math.ceil(want / record_steps)


def layer_of(stack: Stack) -> Tensor:
    """The 1-based hidden layer of each element of the flat buffer (depth + 1: classifier);
    a norm's γ/β belong to its layer."""
    net, opt = stack.net, stack.opt
    if stack not in _LAYER_OF:
        out = torch.zeros_like(opt.run_of)
        for j, (w, b) in enumerate(zip(net.weights, net.biases), start=1):
            for p in (w, b):
                out[opt.offset(p) : opt.offset(p) + p.numel()] = j
        for j in range(1, net.depth + 1):
            for norm in net.norms_of(j):
                for p in (norm.weight, norm.bias) if norm.affine else ():
                    out[opt.offset(p) : opt.offset(p) + p.numel()] = j
        _LAYER_OF[stack] = out
    return _LAYER_OF[stack]


def _grads(stack: Stack, x: Tensor, yt: Tensor) -> Tensor:
    """The gradients of the batch at the current weights (a copy of the flat grad buffer)."""
    stack.gradient(x, yt)
    return stack.opt.grad.clone()


def ics(stack: Stack, step: int, x: Tensor, yt: Tensor) -> list[list[dict]]:
    """Internal covariate shift (Santurkar et al. 2018, §2.2) of every layer i ≥ 2 on this
    step's batch: G = the gradient of layer i's weights; G′ = the same after every earlier
    layer (its weights, bias, γ and β) took this step's optimizer update, the later ones not.
    Rows: l2 = ‖G − G′‖₂, cos = cos(G, G′), grad_norm = ‖G‖."""
    net, opt, m = stack.net, stack.opt, stack.m
    where = layer_of(stack)
    spans = [slice(opt.offset(w), opt.offset(w) + w.numel()) for w in net.weights]
    vals = []
    with contained(stack) as fresh:
        g = _grads(stack, x, yt)
        w0 = opt.flat.clone()
        opt.step()
        w1 = opt.flat.clone()
        for i in range(2, len(spans) + 1):
            fresh()
            torch.where(where < i, w1, w0, out=opt.flat)
            stack.gradient(x, yt)
            a = g[spans[i - 1]].view(m, -1)
            b = opt.grad[spans[i - 1]].view(m, -1)
            cos = F.cosine_similarity(a, b, dim=1, eps=1e-30)
            vals.append(torch.stack([(a - b).norm(dim=1), cos, a.norm(dim=1)]))
    host = host_values(torch.stack(vals))  # (L − 1, 3, M)
    return [
        [
            {"step": step, "layer": i + 2, "l2": v[0][r], "cos": v[1][r], "grad_norm": v[2][r]}
            for i, v in enumerate(host)
        ]
        for r in range(m)
    ]


def landscape(stack: Stack, step: int, x: Tensor, yt: Tensor) -> list[list[dict]]:
    """The loss landscape along this step's gradient g (Santurkar et al. 2018, §3.1): at
    w − η·g for η = FACTORS × the run's lr, on this step's batch, the loss L (its band:
    loss_min … loss_max), the gradient predictiveness ‖∇L(w − ηg) − g‖ (grad_diff_min …
    grad_diff_max) and the effective β-smoothness max_η ‖∇L(w − ηg) − g‖ / ‖ηg‖. `loss`: L(w)."""
    opt, m = stack.opt, stack.m
    lr_run = torch.tensor([c.lr for c in stack.configs], device=opt.flat.device)
    lr = lr_run[opt.run_of]
    losses, diffs = [], []
    with contained(stack) as fresh:
        loss0 = stack.gradient(x, yt)[1].detach().clone()
        g = opt.grad.clone()
        w0 = opt.flat.clone()
        for f in FACTORS:
            fresh()
            torch.addcmul(w0, lr, g, value=-f, out=opt.flat)
            losses.append(stack.gradient(x, yt)[1].detach().clone())
            diffs.append(opt.per_run_norm(opt.grad - g))
        gn = opt.per_run_norm(g)
    loss, diff = torch.stack(losses), torch.stack(diffs)  # (F, M)
    eta = torch.tensor(FACTORS, device=lr.device)[:, None] * lr_run  # (F, M)
    beta = (diff / (eta * gn)).amax(0)
    summary = torch.stack([loss0, loss.amin(0), loss.amax(0), diff.amin(0), diff.amax(0), beta])
    s, ls, ds, es = (host_values(t) for t in (summary, loss.T, diff.T, eta.T))
    names = ("loss", "loss_min", "loss_max", "grad_diff_min", "grad_diff_max", "beta")
    return [
        [
            {
                "step": step,
                **{k: s[j][r] for j, k in enumerate(names)},
                "etas": es[r],
                "losses": ls[r],
                "grad_diffs": ds[r],
            }
        ]
        for r in range(m)
    ]


def directions(stack: Stack) -> tuple[Tensor, Tensor]:
    """Two random directions in the flat layout, filter-normalized (Li et al. 2018): each
    weight row (a unit's or filter's incoming weights) scaled to that row's norm; biases, γ
    and β not moved. Each run's from its own generator (seed + SLICE_SEED)."""
    opt, net = stack.opt, stack.net
    out = [torch.zeros_like(opt.flat), torch.zeros_like(opt.flat)]
    gens = [torch.Generator().manual_seed(c.seed + SLICE_SEED) for c in stack.configs]
    for w in net.weights:
        wv = w.detach()
        a = opt.offset(w)
        for d in out:
            r = torch.stack([torch.randn(wv.shape[1:], generator=g) for g in gens]).to(wv)
            scale = wv.flatten(2).norm(dim=2) / r.flatten(2).norm(dim=2).clamp_min(1e-12)
            r *= scale.view(*scale.shape, *([1] * (r.dim() - 2)))
            d[a : a + w.numel()] = r.reshape(-1)
    return out[0], out[1]


def loss_slice(
    stack: Stack, step: int, points: int = SLICE_POINTS, span: float = SLICE_SPAN
) -> list[list[dict]]:
    """The training-mode loss on SLICE_SAMPLES training samples at w + a·d₁ + b·d₂ for a, b on
    a grid of ±span (`directions`): rows {"alphas", "betas", "loss": [[L for each a] for each
    b], "loss_center": L(w)}."""
    opt, m, data = stack.opt, stack.m, stack.data
    n = min(SLICE_SAMPLES, data.n_train)
    x = data.x_train[:n].expand(m, -1, -1)
    yt = data.y_train[:n, None].expand(-1, m)
    d1, d2 = directions(stack)
    grid = torch.linspace(-span, span, points).tolist()
    loss = torch.empty(points, points, m, device=opt.flat.device)
    with contained(stack) as fresh:
        w0 = opt.flat.clone()
        for i, b in enumerate(grid):
            for j, a in enumerate(grid):
                fresh()
                torch.add(w0, d1, alpha=a, out=opt.flat).add_(d2, alpha=b)
                loss[i, j] = stack.gradient(x, yt)[1].detach()
        center = (
            stack.gradient(x, yt)[1].detach() if points % 2 == 0 else loss[points // 2, points // 2]
        )
    host = host_values(loss.permute(2, 0, 1))  # (M, points, points)
    c = host_values(center)
    axis = [round(v, 6) for v in grid]
    return [
        [{"step": step, "loss_center": c[r], "alphas": axis, "betas": axis, "loss": host[r]}]
        for r in range(m)
    ]


MEASURES: dict[str, Callable[..., list[list[dict]]]] = {
    "ics": ics,
    "landscape": landscape,
    "slice": lambda stack, step, x, yt: loss_slice(stack, step),
}
