"""Measures taken at a stack's current weights without changing its training.

`contained(stack)` saves everything a training-mode evaluation or a trial step can change —
parameters and gradients (two flat copies), the optimizer's state and step counter, the
norms' running statistics and `num_batches_tracked`, every run's dropout/noise stream, the
net's mode — and restores it exactly on exit; `fresh()` inside it goes back to that state
between trials. A measure is then free to try a step, recompute a gradient or walk along a
direction: the run's records are bit-identical with it on or off (tests/test_measures.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .train import Stack


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
        opt.state.clear()
        opt.state.update({k: v.clone() for k, v in state.items()})
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
