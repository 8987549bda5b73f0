"""A group's final weights on disk, and the measures taken from them later (on demand).

When a group stops training (finished or stopped by the user) the worker saves every run's
parameters — the run's part of its stack's flat buffer, see optim.StackOptimizer — with its
config, step and dropout/noise stream to one file (`save`). A measure asked for afterwards,
such as the 2-D loss slice of a finished or stopped run (measures.loss_slice), rebuilds that
run alone as a one-run stack, puts the saved values back and measures there (`slice_rows`).
Diverged runs are not saved: their weights are not finite.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from .config import from_dict, to_dict
from .measures import loss_slice
from .train import Stack, make_stacks

FORMAT = 1  # the file's layout version


class SavedWeightsError(ValueError):
    """The saved weights are missing, damaged or do not fit the run's config."""


def save(stacks: Sequence[Stack], path: str | Path) -> None:
    """Every still-active run's final parameters, config and step, to `path` (atomically:
    a reader never sees half a file)."""
    runs = {}
    for s in stacks:
        for j, run in enumerate(s.runs):
            if s.active[j]:
                flat = s.opt.flat[s.opt.run_of == j].detach().cpu().clone()
                runs[run] = {
                    "config": to_dict(s.configs[j]),
                    "step": s.t,
                    "flat": flat,
                    # its dropout/noise stream: a training-mode measure draws from it
                    "stream": s.net.generators[j].get_state(),
                    "device": s.device.type,
                }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"format": FORMAT, "runs": runs}, tmp)
    os.replace(tmp, path)


def saved_runs(path: str | Path) -> dict[int, dict]:
    """{run: {"config", "step", "flat"}} from a file `save` wrote."""
    try:
        d = torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SavedWeightsError("the final weights of this group were not kept") from None
    except Exception as e:  # a damaged file: pickle, zip and torch errors alike
        raise SavedWeightsError(f"the saved weights could not be read ({type(e).__name__})") from e
    if not isinstance(d, dict) or d.get("format") != FORMAT or not isinstance(d.get("runs"), dict):
        raise SavedWeightsError("the saved weights are in an unknown format")
    return d["runs"]


def restore(entry: dict, device: torch.device | str = "cpu") -> Stack:
    """A one-run stack at the saved weights of `entry` (one value of saved_runs)."""
    cfg = from_dict(entry["config"])
    (stack,) = make_stacks([cfg], torch.device(device))
    flat = entry["flat"]
    if not isinstance(flat, torch.Tensor) or flat.shape != stack.opt.flat.shape:
        raise SavedWeightsError("the saved weights do not fit the run's network")
    with torch.no_grad():
        stack.opt.flat.copy_(flat)
    if entry.get("device") == stack.device.type:  # a CUDA stream's state fits CUDA's only
        stack.net.generators[0].set_state(entry["stream"])
    stack.t = int(entry["step"])
    return stack


def slice_rows(
    path: str | Path, runs: Sequence[int], device: torch.device | str = "cpu"
) -> dict[int, list[dict]]:
    """The 2-D loss slice (measures.loss_slice) of each of `runs` at its saved final weights;
    runs that were not saved (diverged) are left out."""
    saved = saved_runs(path)
    out = {}
    for run in runs:
        if run in saved:
            stack = restore(saved[run], device)
            (rows,) = loss_slice(stack, stack.t)
            out[run] = rows
    return out
