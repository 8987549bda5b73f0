"""The flat parameter buffer of a stack and its optimizer (SGD, heavy ball, Adam), per run.

Every parameter of a StackedNet (and its .grad) becomes a view into one flat buffer, so an
update is a handful of tensor ops whatever the depth, and a measure can save and restore every
weight and gradient with one copy each (see measures.contained). Per-element learning-rate
and weight-decay vectors give each run its own. Matches torch.optim's update rules; weight
decay is L2 added to the gradient.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from .config import RunConfig

ADAM_BETAS, ADAM_EPS, HEAVY_BALL = (0.9, 0.999), 1e-8, 0.9
AGC_EPS = 1e-3  # adaptive gradient clipping: weights' norm floor (Brock et al. 2021)


class StackOptimizer:
    """SGD / heavy-ball / Adam over all of a stack's parameters with a learning rate per run."""

    def __init__(
        self,
        params: list[Tensor],
        configs: Sequence[RunConfig],
        vector_runs: Mapping[int, tuple[int, int]] | None = None,
    ) -> None:
        """vector_runs: id(p) → (first run, runs) of each norm's (runs·C,) vectors (γ, β); by
        default they belong to the first runs that have a norm."""
        m, dev = len(configs), params[0].device
        total = sum(p.numel() for p in params)
        self.m = m
        self.kind = configs[0].optimizer
        self.flat = torch.empty(total, device=dev)  # every parameter's values, run-major each
        self.grad = torch.zeros(total, device=dev)  # their gradients, the same layout
        self.run_of = torch.empty(total, dtype=torch.long, device=dev)  # owning run per element
        n_norm = sum(c.norm != "none" for c in configs)  # a stack's normed runs come first
        off = 0
        for p in params:  # run-major: its elements of run r are contiguous
            n = p.numel()
            self.flat[off : off + n].copy_(p.detach().reshape(-1))
            p.data = self.flat[off : off + n].view_as(p)
            p.grad = self.grad[off : off + n].view_as(p)  # autograd accumulates in place here
            # weights (M, out, …), biases (M, out); a norm's vectors (runs·C,): its runs only
            first, runs = (0, p.shape[0]) if p.dim() > 1 else (0, n_norm)
            if p.dim() == 1 and vector_runs is not None:
                first, runs = vector_runs[id(p)]
            owners = torch.arange(first, first + runs, device=dev)
            self.run_of[off : off + n] = owners.repeat_interleave(n // runs)
            off += n
        self.lr = torch.tensor([c.lr for c in configs], device=dev)[self.run_of]
        self.wd = torch.tensor([c.weight_decay for c in configs], device=dev)[self.run_of]
        self.use_wd = any(c.weight_decay > 0 for c in configs)
        self.state: dict[str, Tensor] = {}  # buf (heavy ball) or m, v (Adam), like flat
        self.t = 0  # updates done (Adam's bias correction)
        self.agc = 0.0  # adaptive gradient clipping λ (clip_units); 0: off
        self.agc_units: list[tuple[Tensor, Tensor]] = []

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

    def restrict(self, allowed: Sequence[tuple[Tensor, Sequence[bool]]]) -> None:
        """Never update parameter p in the runs whose flag is False (their lr is 0)."""
        for p, flags in allowed:
            a = self.offset(p)
            part = slice(a, a + p.numel())
            keep = torch.tensor(flags, dtype=self.lr.dtype, device=self.lr.device)
            self.lr[part] *= keep[self.run_of[part]]

    def clip_units(self, lam: float, params: Sequence[Tensor]) -> None:
        """Adaptive gradient clipping (Brock et al. 2021) before every step: each unit's
        gradient (a weight row, (M, out, in…) → per out; a bias (M, out): its whole vector)
        is scaled down to at most lam · max(‖the unit's weights‖, AGC_EPS)."""
        self.agc = lam
        for p in params:
            a, n = self.offset(p), p.numel()
            shape = (p.shape[0], p.shape[1], -1) if p.dim() > 2 else (p.shape[0], 1, -1)
            self.agc_units.append(
                (self.flat[a : a + n].view(shape), self.grad[a : a + n].view(shape))
            )

    def _clip(self) -> None:
        for w, g in self.agc_units:
            most = torch.linalg.vector_norm(w, dim=2, keepdim=True).clamp_min_(AGC_EPS) * self.agc
            norm = torch.linalg.vector_norm(g, dim=2, keepdim=True).clamp_min_(1e-12)
            g.mul_((most / norm).clamp_max_(1.0))

    def zero_grad(self) -> None:
        self.grad.zero_()

    def freeze(self, run: int) -> None:
        """Stop updating one run (it diverged): its parameters keep their last values."""
        # masked_fill_, not lr[mask] = 0: boolean indexing counts the mask on the host (a sync)
        self.lr.masked_fill_(self.run_of == run, 0.0)

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        if self.agc:
            self._clip()
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
