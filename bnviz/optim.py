"""The flat parameter buffer of a stack and its optimizer (SGD, heavy ball, Adam), per run.

Every parameter of a StackedNet (and its .grad) becomes a view into one flat buffer, so an
update is a handful of tensor ops whatever the depth, and a measure can save and restore every
weight and gradient with one copy each (see measures.contained). Per-element learning-rate
and weight-decay vectors give each run its own. Matches torch.optim's update rules; weight
decay is L2 added to the gradient.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .config import RunConfig

ADAM_BETAS, ADAM_EPS, HEAVY_BALL = (0.9, 0.999), 1e-8, 0.9


class StackOptimizer:
    """SGD / heavy-ball / Adam over all of a stack's parameters with a learning rate per run."""

    def __init__(self, params: list[Tensor], configs: Sequence[RunConfig]) -> None:
        m, dev = len(configs), params[0].device
        total = sum(p.numel() for p in params)
        self.m = m
        self.kind = configs[0].optimizer
        self.flat = torch.empty(total, device=dev)  # every parameter's values, run-major each
        self.grad = torch.zeros(total, device=dev)  # their gradients, the same layout
        self.run_of = torch.empty(total, dtype=torch.long, device=dev)  # owning run per element
        off = 0
        for p in params:  # p is run-major (M, ...): its elements of run r are contiguous
            n = p.numel()
            self.flat[off : off + n].copy_(p.detach().reshape(-1))
            p.data = self.flat[off : off + n].view_as(p)
            p.grad = self.grad[off : off + n].view_as(p)  # autograd accumulates in place here
            self.run_of[off : off + n] = torch.arange(m, device=dev).repeat_interleave(n // m)
            off += n
        self.lr = torch.tensor([c.lr for c in configs], device=dev)[self.run_of]
        self.wd = torch.tensor([c.weight_decay for c in configs], device=dev)[self.run_of]
        self.use_wd = any(c.weight_decay > 0 for c in configs)
        self.state: dict[str, Tensor] = {}  # buf (heavy ball) or m, v (Adam), like flat
        self.t = 0  # updates done (Adam's bias correction)

    def offset(self, p: Tensor) -> int:
        """Where parameter p (a view of flat) starts in the flat buffer."""
        return (p.data_ptr() - self.flat.data_ptr()) // self.flat.element_size()

    def span(self, params: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """The flat (values, grads) slices holding `params`, which must be adjacent there."""
        start = end = self.offset(params[0])
        for p in params:
            if self.offset(p) != end:
                raise ValueError("parameters are not adjacent in the flat buffer")
            end += p.numel()
        return self.flat[start:end], self.grad[start:end]

    def per_run_norm(self, v: Tensor) -> Tensor:
        """(M,) Euclidean norm of each run's elements of a flat-layout vector v."""
        sq = torch.zeros(self.m, dtype=v.dtype, device=v.device)
        return sq.index_add_(0, self.run_of, v * v).sqrt_()

    def zero_grad(self) -> None:
        self.grad.zero_()

    def freeze(self, run: int) -> None:
        """Stop updating one run (it diverged): its parameters keep their last values."""
        self.lr[self.run_of == run] = 0.0

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        p, g, st = self.flat, self.grad, self.state
        if self.use_wd:
            g = g.addcmul(self.wd, p)
        if self.kind == "sgd":
            p.addcmul_(self.lr, g, value=-1)
        elif self.kind == "momentum":
            if "buf" not in st:
                st["buf"] = g.clone()
            else:
                st["buf"].mul_(HEAVY_BALL).add_(g)
            p.addcmul_(self.lr, st["buf"], value=-1)
        else:
            b1, b2 = ADAM_BETAS
            if not st:
                st["m"], st["v"] = torch.zeros_like(p), torch.zeros_like(p)
            st["m"].mul_(b1).add_(g, alpha=1 - b1)
            st["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
            c1, c2 = 1 - b1**self.t, 1 - b2**self.t
            denom = (st["v"] / c2).sqrt_().add_(ADAM_EPS)
            p.addcdiv_(self.lr * st["m"], denom, value=-1 / c1)
