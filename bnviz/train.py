"""The training engine: one group of runs, trained in lockstep, recording what happens inside.

No UI and no threads here. `train_group` partitions the configs into stacks (runs that can be
one batched network, see models.stack_key), keeps every data set as one tensor on the device,
and advances the stack that is furthest behind (in epochs) one step at a time, so that every
run of a comparison grows together. Records are plain dicts of numbers (see docs/records.md).
"""

from __future__ import annotations

import itertools
import math
import os
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .config import RunConfig
from .data import Dataset, load_dataset
from .measures import MEASURES, measure_every
from .models import NORM_OUT, STREAM_SEED_OFFSET, Shape, StackedNet, has_fast_path, stack_order
from .optim import StackOptimizer
from .probes import (
    UNITS,
    extra_name,
    layer_edges,
    layer_stats,
    round_sig,
    unit_edges,
    unit_stats,
    unit_values,
    vector_summaries,
)
from .records import RECORDERS, RunRecord

__all__ = ["STATUSES", "Stack", "StackOptimizer", "make_stacks", "records_to_json", "train_group"]

MAX_LAYER_SNAPSHOTS = 100  # per run: layer probes are thinned so long runs stay small
CPU_THREADS = int(os.environ.get("BNVIZ_THREADS", "1"))  # torch threads while training
EVAL_CHUNK = 2048  # test samples per forward pass in eval mode
# A conv net's: 2,048 samples' 28×28 maps are ~100 MB a layer, and such a pass ran ~1.5× slower
# per sample than passes of 128 whose maps stay in the CPU's caches
CONV_EVAL_CHUNK = 128
STATUSES = ("queued", "running", "finished", "diverged", "cancelled", "failed")
NORM_VECTORS = ("weight", "bias", "running_mean", "running_var")  # summarized in param rows
SUMMARY_KEYS = ("mean", "std", "min", "max")  # columns of probes.vector_summaries

Event = dict[str, Any]
Rows = list[tuple[int, str, list[dict]]]  # (run in the stack, kind, rows) to record


def resolve_device(name: str = "auto") -> torch.device:
    """CUDA if available, else Apple MPS, else the CPU (for name 'auto')."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda was asked for, but no CUDA GPU is available")
    if name == "mps" and not _mps_available():
        raise RuntimeError(
            "device=mps was asked for, but Apple's MPS is not available here (it exists only "
            "on macOS with Apple silicon); use device=auto or cpu"
        )
    return torch.device(name)


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def device_label(dev: torch.device) -> str:
    """The device as the dashboard names it, e.g. "cuda (NVIDIA H200)" or "cpu"."""
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    return dev.type


def _host(x: Tensor) -> list:
    """Values for the records as (nested) lists: 6 significant digits, non-finite → None.
    One device sync."""
    return _record_values(x.detach().double().cpu().numpy())


def _record_values(x: np.ndarray) -> list:
    """x rounded (probes.round_sig, vectorized) as (nested) lists; Python only sees the rare
    non-finite values, which become None."""
    r = round_sig(x)
    out = r.tolist()
    if np.isfinite(r).all():
        return out
    return _nulls(out)


def _nulls(x: Any) -> Any:
    if isinstance(x, list):
        return [_nulls(v) for v in x]
    return x if math.isfinite(x) else None


class Stack:
    """Runs trained as one StackedNet: data, model, optimizer, schedule, and what they record.

    `train_step` is the training alone (a batch's gradient, then the optimizer's update);
    `step` wraps it with the records due at that step (records.RECORDERS' cadences).
    """

    def __init__(
        self, runs: list[int], configs: list[RunConfig], data: Dataset, device: torch.device
    ) -> None:
        cfg = configs[0]
        self.runs, self.configs, self.data, self.device = runs, configs, data, device
        self.m = len(runs)
        shape = Shape(data.n_features, data.n_classes, data.image_shape)
        self.shape = shape
        self.net = StackedNet(configs, shape).to(device)
        gens = [_device_generator(c.seed, device) for c in configs]
        self.net.set_generators(gens)
        self.order_gens = [torch.Generator().manual_seed(c.seed + 7919) for c in configs]
        self.opt = StackOptimizer(list(self.net.parameters()), configs, self.net.vector_runs())
        self._restrict_training()
        self._param_sources()
        self.batch_size = cfg.batch_size
        self.steps_per_epoch = data.n_train // cfg.batch_size
        self.total = cfg.epochs * self.steps_per_epoch
        self.record_every = cfg.record_steps()  # steps between records (samples seen / batch)
        snapshots = math.ceil(self.total / self.record_every) + 1
        self.layer_every = self.record_every * math.ceil(snapshots / MAX_LAYER_SNAPSHOTS)
        self.activation = cfg.activation
        self.t = 0  # updates done
        self.perm: Tensor | None = None
        self.edges: dict[tuple, tuple[Tensor, list]] = {}  # probes → fixed bin edges
        self.active = [True] * self.m
        # hand-written backward (models.forward_backward) when every run's norm has one
        self.fast = all(has_fast_path(c) for c in configs)
        # Train metrics stay on the device until the next record: each step's loss and number
        # of correct predictions per run; a record reduces them (and finds divergence there).
        self.step_loss = torch.empty(self.record_every, self.m, device=device)
        self.step_hits = torch.empty(self.record_every, self.m, dtype=torch.long, device=device)
        self.n_steps = 0  # steps in those buffers
        self.diverged_at = torch.full((self.m,), -1, dtype=torch.long, device=device)
        # What else is recorded (records.RECORDERS switched on by config.measures)
        on = [r for r in RECORDERS if r.measure and r.on(cfg.measures)]
        self.measured = [r.kind for r in on if r.every == "measure"]  # measures.MEASURES
        self.at_end = [r.kind for r in on if r.every == "end"]
        self.units = any(r.kind == "units" for r in on)
        self.unit_edges: dict[int, tuple[Tensor, list]] = {}  # layer → fixed bin edges
        self.measure_every = measure_every(self.total, self.record_every)

    @property
    def done(self) -> bool:
        return self.t >= self.total or not any(self.active)

    @property
    def progress(self) -> float:
        return 1.0 if self.done else self.t / self.total

    def _batch(self) -> tuple[Tensor, Tensor]:
        j = self.t % self.steps_per_epoch
        if j == 0:  # a new epoch: each run shuffles with its own generator
            n = self.data.n_train
            self.perm = torch.stack([torch.randperm(n, generator=g) for g in self.order_gens])
            # non_blocking: a plain copy to a GPU waits for the queued kernels (a host sync
            # each epoch); from pageable memory the async copy stages it before it returns
            self.perm = self.perm.to(self.device, non_blocking=True)
        idx = self.perm[:, j * self.batch_size : (j + 1) * self.batch_size]  # (M, B)
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
        losses = _losses(logits, yt)
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

    def step(self) -> Rows:
        """One update of every run in the stack and the records due at it."""
        out: Rows = []
        t = self.t
        if t == 0:
            out += self._history(0, initial=True)
        x, y = self._batch()
        yt = y.t()  # (B, M)
        if self.measured and (t % self.measure_every == 0 or t == self.total - 1):
            out += self._measure(t, x, yt, self.measured)  # contained: training is unchanged
        probe = t % self.layer_every == 0 or t == self.total - 1
        probes: dict | None = {} if probe else None
        if probe:
            self.w_before.copy_(self.w_flat)
        logits, losses = self.train_step(x, yt, probes)
        self._count(logits, losses, yt)
        if probe:
            out += self._layers(t, probes)
            if self.units:
                out += self._units(t, probes)
        self.t += 1
        if self.t % self.record_every == 0 or self.t == self.total:
            out += self._history(self.t)
        if self.at_end and self.t == self.total:
            out += self._measure(self.t, x, yt, self.at_end)
        return out

    def _measure(self, step: int, x: Tensor, yt: Tensor, kinds: list[str]) -> Rows:
        """The rows of measures.MEASURES[kind] for each kind, for the runs still training."""
        out: Rows = []
        for kind in kinds:
            rows = MEASURES[kind](self, step, x, yt)
            out += [(i, kind, rows[i]) for i in range(self.m) if self.active[i]]
        return out

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

    @torch.no_grad()
    def _units(self, step: int, probes: dict[tuple[int, str], Tensor]) -> Rows:
        """Units rows: the first probes.UNITS units of every hidden layer at act_in (what the
        activation receives: BN's output, noise included), each unit's own distribution."""
        m, depth = self.m, self.net.depth
        tables, hists, sizes = [], [], []
        n_values: dict[int, int] = {}
        for layer in range(1, depth + 1):
            t = probes[(layer, "act_in")]
            u = min(UNITS, t.shape[-1] if self.fast else t.shape[1] // m)
            v = unit_values(t, m, u, self.fast)  # (M·U, N)
            n_values[layer] = v.shape[1]
            if layer not in self.unit_edges:  # fixed once, at the first probe step
                e = unit_edges(v)
                self.unit_edges[layer] = (e, _host(e))
            table, hist = unit_stats(v, self.unit_edges[layer][0])
            tables.append(table)
            hists.append(hist)
            sizes.append(u)
        # One fetch: the tables, then the histograms' counts (integers: exact in float64)
        table_t, hist_t = torch.cat(tables), torch.cat(hists)
        raw = torch.cat([table_t.view(-1).double(), hist_t.view(-1).double()]).cpu().numpy()
        table = _record_values(raw[: table_t.numel()].reshape(table_t.shape))
        hist = raw[table_t.numel() :].astype(np.int64).reshape(hist_t.shape).tolist()
        rows: list[list[dict]] = [[] for _ in range(m)]
        k = 0
        for layer, u in zip(range(1, depth + 1), sizes):
            edges = self.unit_edges[layer][1]
            for i in range(m):
                for j in range(u):
                    r = k + i * u + j
                    f, c = table[r], hist[r]
                    rows[i].append(
                        {
                            "step": step,
                            "layer": layer,
                            "unit": j,
                            "point": "act_in",
                            "mean": f[0],
                            "std": f[1],
                            "p15": f[2],
                            "p50": f[3],
                            "p85": f[4],
                            "hist": {"edges": edges[i * u + j], "counts": c[1:-1]},
                            "under": c[0],
                            "over": c[-1],
                            "n": n_values[layer],
                        }
                    )
            k += m * u
        return [(i, "units", rows[i]) for i in range(m) if self.active[i]]

    @torch.no_grad()
    def _count(self, logits: Tensor, losses: Tensor, yt: Tensor) -> None:
        """Keep the step's loss and correct predictions per run on the device until a record."""
        self.step_loss[self.n_steps] = losses
        torch.sum(logits.argmax(-1) == yt, 0, out=self.step_hits[self.n_steps])
        self.n_steps += 1

    @torch.no_grad()
    def evaluate(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Mean loss and accuracy per run in eval mode (running statistics)."""
        if not self.fast:
            self.net.eval()
        loss = torch.zeros(self.m, device=self.device)
        acc = torch.zeros(self.m, device=self.device)
        chunk = CONV_EVAL_CHUNK if self.net.conv else EVAL_CHUNK
        for s in range(0, x.shape[0], chunk):
            xb, yb = x[s : s + chunk], y[s : s + chunk]
            logits = self.net.eval_logits(xb) if self.fast else self.net(xb)  # (B, M, K)
            target = yb[:, None].expand(-1, self.m)
            loss += _losses(logits, target) * xb.shape[0]
            acc += (logits.argmax(-1) == target).float().sum(0)
        if not self.fast:
            self.net.train()
        return loss / x.shape[0], acc / x.shape[0]

    def _history(self, step: int, initial: bool = False) -> Rows:
        if initial:  # before any update: train metrics on (up to) 2048 training samples
            tr_loss, tr_acc = self.evaluate(self.data.x_train[:2048], self.data.y_train[:2048])
        else:  # the steps since the last record
            n = self.n_steps
            losses, hits = self.step_loss[:n], self.step_hits[:n]
            tr_loss, tr_acc = losses.mean(0), hits.sum(0) / (n * self.batch_size)
            bad = ~torch.isfinite(losses)  # (n, M); row j is step `step − n + j`
            first = torch.where(bad.any(0), bad.int().argmax(0) + (step - n), -1)
            self.diverged_at = torch.where(self.diverged_at < 0, first, self.diverged_at)
            self.n_steps = 0
        te_loss, te_acc = self.evaluate(self.data.x_test, self.data.y_test)
        # One fetch: the four columns per run, then the step each run diverged at (−1: none)
        vals = torch.stack([tr_loss, tr_acc, te_loss, te_acc]).T  # (M, 4)
        raw = torch.cat([vals.reshape(-1).double(), self.diverged_at.double()]).cpu().numpy()
        cols = _record_values(raw[: vals.numel()].reshape(vals.shape))
        self._check_divergence(raw[vals.numel() :].astype(np.int64).tolist())
        epoch = step / self.steps_per_epoch
        out = []
        for i, (a, b, c, d) in enumerate(cols):
            if self.active[i]:
                row = {
                    "step": step,
                    "epoch": round(epoch, 4),
                    "train_loss": a,
                    "train_acc": b,
                    "test_loss": c,
                    "test_acc": d,
                }
                out.append((i, "history", [row]))
        return out

    def _check_divergence(self, diverged_at: list[int]) -> None:
        """Stop the runs that diverged: diverged_at[i] ≥ 0 (the host's copy of diverged_at)."""
        for i, s in enumerate(diverged_at):
            if s >= 0 and self.active[i]:
                self.active[i] = False
                self.opt.freeze(i)

    def _param_sources(self) -> None:
        """What param rows read, as plain views made once (a step re-uses them): each layer's
        weights, their grads and a copy taken before the update, as (M, ·) views; the norms'
        vectors (γ, β, running statistics) with their (layer, name)."""
        m, net = self.m, self.net
        self.w_flat, w_grad = self.opt.span(list(net.weights))  # every weight matrix
        self.w_before = torch.empty_like(self.w_flat)
        sizes = [w.numel() for w in net.weights]

        def per_layer(flat: Tensor) -> list[Tensor]:  # (M, numel / M) views
            return [part.view(m, -1) for part in flat.split(sizes)]

        self.norm_views = per_layer(w_grad) + per_layer(self.w_flat) + per_layer(self.w_before)
        self.norm_vectors: list[Tensor] = []
        self.vector_owners: list[tuple[int, str, int, int]] = []  # (layer, name, first, runs)
        for layer in range(1, net.depth + 1):
            for norm in net.norms_of(layer):  # one per kind of norm in the stack
                for name in NORM_VECTORS:
                    if getattr(norm, name, None) is not None:
                        self.norm_vectors.append(getattr(norm, name).detach())
                        self.vector_owners.append((layer, name, norm.first, norm.m))
        self.vector_sizes = [v.numel() for v in self.norm_vectors]
        # where each vector's (runs, 4) summaries start in the flat list of them all
        runs = [k for *_, k in self.vector_owners]
        self.summary_offsets = np.cumsum([0, *runs[:-1]]).astype(int) * len(SUMMARY_KEYS)

    @torch.no_grad()
    def _layers(self, step: int, probes: dict[tuple[int, str], Tensor]) -> Rows:
        """Layer and param rows of a probe step, after the update (w_before holds the weights
        from before it). probes: {(layer, point): activation}, per run on the fast path (see
        models.forward_backward), else wide."""
        m, act = self.m, self.activation
        keys = list(probes)
        # One computation per distinct tensor: without a norm before it, act_in *is* linear.
        first: dict[tuple, int] = {}
        src = [first.setdefault((_ident(probes[k]), k[1] == "act_out"), len(first)) for k in keys]
        uniq = [keys[src.index(u)] for u in range(len(first))]
        ts = [probes[k] for k in uniq]
        points = [p for _, p in uniq]
        if tuple(uniq) not in self.edges:  # fixed once, at the first probe step
            e = layer_edges(ts, m, points, act, per_run=self.fast)
            self.edges[tuple(uniq)] = (e, _host(e))
        edges, edge_lists = self.edges[tuple(uniq)]
        st = layer_stats(ts, m, points, act, edges, per_run=self.fast)
        table = st["table"]  # (U·M, 15), columns probes.TABLE
        params = self._param_values()  # (L, M, 3)
        # One fetch for every number of this step: the table, the param norms and the norms'
        # vectors, which are summarized on the host (tiny arrays: NumPy ops are ~1 µs here),
        # then the histograms' counts and the subsample sizes (integers: exact in float64).
        ints = [st["hist"].view(-1).double(), st["n"].double()]  # the cat is float64 then
        raw = torch.cat([table.view(-1), params.view(-1), *self.norm_vectors, *ints])
        raw = raw.cpu().numpy()
        cut = np.cumsum([table.numel() + params.numel(), *self.vector_sizes]).tolist()
        vecs = [raw[a:b] for a, b in itertools.pairwise(cut)]
        counts = raw[cut[-1] :].astype(np.int64)
        hist = counts[: st["hist"].numel()].reshape(st["hist"].shape).tolist()  # [under, …, over]
        n = counts[st["hist"].numel() :].tolist()
        summaries = self._vector_summaries(vecs)
        host = _record_values(np.concatenate([raw[: cut[0]], summaries.ravel()]))
        w = table.shape[1]
        fl = [host[r * w : (r + 1) * w] for r in range(table.shape[0])]
        host = host[table.numel() :]
        rows: list[list[dict]] = [[] for _ in range(m)]
        for (layer, point), u in zip(keys, src):
            extra = extra_name(point, act)
            # norm_out also spans the stack's norm=none runs (act_out passed through): skip them
            for i in range(self.net.n_norm if point == NORM_OUT else m):
                r = u * m + i
                f, c = fl[r], hist[r]
                row = {
                    "step": step,
                    "layer": layer,
                    "point": point,
                    "mean": f[0],
                    "std": f[1],
                    "p15": f[11],
                    "p50": f[12],
                    "p85": f[13],
                    "quantiles": f[2:11],
                    "hist": {"edges": list(edge_lists[r]), "counts": c[1:-1]},
                    "under": c[0],
                    "over": c[-1],
                    "n": n[r],
                }
                if extra:
                    row[extra] = f[14]
                rows[i].append(row)
        prows = self._param_rows(step, host[: params.numel()], host[params.numel() :])
        out: Rows = []
        for i in range(m):
            if self.active[i]:
                out.append((i, "layers", rows[i]))
                out.append((i, "params", prows[i]))
        return out

    def _vector_summaries(self, vecs: list[np.ndarray]) -> np.ndarray:
        """probes.vector_summaries of the norms' vectors, flat in their order: (runs, 4) each,
        computed together for the vectors of norms with as many runs."""
        out: list[np.ndarray] = [np.empty(0)] * len(vecs)
        by_runs: dict[int, list[int]] = {}
        for j, (*_, k) in enumerate(self.vector_owners):
            by_runs.setdefault(k, []).append(j)
        for k, js in by_runs.items():
            for j, s in zip(js, vector_summaries([vecs[j] for j in js], k)):
                out[j] = s.ravel()
        return np.concatenate(out) if out else np.empty(0)

    def _param_values(self) -> Tensor:
        """Per layer and run [‖grad‖, ‖w‖, ‖Δw‖/‖w‖] (L, M, 3)."""
        self.w_before.sub_(self.w_flat)  # −Δw
        norms = [torch.linalg.vector_norm(v, dim=1) for v in self.norm_views]  # (M,) each
        gn, wn, dn = torch.stack(norms).view(3, -1, self.m)
        return torch.stack([gn, wn, dn / wn.clamp_min(1e-12)], 2)

    def _param_rows(self, step: int, params: list, summaries: list) -> list[list[dict]]:
        """Param rows from the host values of _param_values (flat lists, same order)."""
        m, depth, width = self.m, self.net.depth, len(SUMMARY_KEYS)
        where: dict[int, list[tuple[str, int, int, int]]] = {}  # layer → (name, at, first, runs)
        for (layer, name, first, k), at in zip(self.vector_owners, self.summary_offsets):
            where.setdefault(layer, []).append((name, int(at), first, k))
        rows: list[list[dict]] = [[] for _ in range(m)]
        for layer in range(1, depth + 2):
            for i in range(m):
                k = ((layer - 1) * m + i) * 3
                row: dict[str, Any] = {
                    "step": step,
                    "layer": layer,
                    "grad_norm": params[k],
                    "weight_norm": params[k + 1],
                    "update_ratio": params[k + 2],
                }
                if layer > depth:
                    row["classifier"] = True
                mine = [
                    (name, at + (i - first) * width)
                    for name, at, first, k in where.get(layer, ())
                    if first <= i < first + k
                ]
                if mine:  # the vectors of this run's norm in this layer
                    row["norm"] = {
                        name: dict(zip(SUMMARY_KEYS, summaries[a : a + width])) for name, a in mine
                    }
                rows[i].append(row)
        return rows


def _ident(t: Tensor) -> tuple:
    """Same memory, shape and strides: the same values."""
    return (t.data_ptr(), tuple(t.shape), t.stride())


def _losses(logits: Tensor, target: Tensor) -> Tensor:
    """Mean cross-entropy per run (M,) from logits (B, M, K) and targets (B, M)."""
    b, m, k = logits.shape
    ce = F.cross_entropy(logits.reshape(b * m, k), target.reshape(b * m), reduction="none")
    return ce.view(b, m).mean(0)


def _device_generator(seed: int, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device) if device.type in ("cuda", "mps") else torch.Generator()
    return g.manual_seed(seed + STREAM_SEED_OFFSET)


def data_key(cfg: RunConfig) -> tuple:
    """The fields that choose a config's data: configs with equal keys share one Dataset."""
    return (
        cfg.dataset,
        cfg.n_samples,
        cfg.noise,
        cfg.test_fraction,
        cfg.data_seed,
        cfg.input_norm,
        cfg.input_scale,
    )


def load_data(
    cfg: RunConfig,
    device: str | torch.device = "cpu",
    loader: Callable[..., Dataset] = load_dataset,
) -> Dataset:
    """The config's data set on `device` (data.load_dataset caches the arrays per key)."""
    return loader(
        cfg.dataset,
        n_samples=cfg.n_samples,
        noise=cfg.noise,
        test_fraction=cfg.test_fraction,
        seed=cfg.data_seed,
        device=device,
        input_norm=cfg.input_norm,
        input_scale=cfg.input_scale,
    )


def make_stacks(
    configs: Sequence[RunConfig],
    device: torch.device,
    loader: Callable[..., Dataset] = load_dataset,
) -> list[Stack]:
    """Group configs into stacks (models.stack_order: one batched network each)."""
    data: dict[tuple, Dataset] = {}
    stacks = []
    for idx in stack_order(configs):
        cfg = configs[idx[0]]
        key = data_key(cfg)
        if key not in data:
            data[key] = load_data(cfg, device, loader)
        ds = data[key]
        if ds.n_train < cfg.batch_size:
            raise ValueError(
                f"batch_size={cfg.batch_size} is larger than the {ds.n_train} "
                f"training samples of {cfg.dataset}"
            )
        stacks.append(Stack(idx, [configs[i] for i in idx], ds, device))
    return stacks


def train_group(
    configs: Sequence[RunConfig],
    *,
    should_stop: Callable[[], bool] | None = None,
    on_event: Callable[[Event], None] | None = None,
    device: str | torch.device | None = None,
    threads: int | None = None,
    on_end: Callable[[list[Stack]], None] | None = None,
    loader: Callable[..., Dataset] = load_dataset,
) -> list[RunRecord]:
    """Train every config together; returns one RunRecord per config, in order.

    `threads`: torch CPU threads while training (default BNVIZ_THREADS, else 1, unless
    OMP_NUM_THREADS is set); the previous setting is restored afterwards.
    `should_stop` is polled before each step (stop within one step → 'cancelled');
    `on_event` receives {"type": "rows", "run", "kind", "rows"} as records are made and
    {"type": "status", "run", "status", "message", "step"} when a run's status changes.
    `on_end` receives the stacks at their final weights once training ends (finished or
    stopped, not failed): the worker saves them for measures taken later (bnviz.saved).
    `loader`: data.load_dataset's signature (a benchmark passes data of its own).
    """
    emit = on_event or (lambda e: None)
    records = [RunRecord(c) for c in configs]
    start = time.perf_counter()
    before = torch.get_num_threads()
    if threads is None and "OMP_NUM_THREADS" not in os.environ:
        # These nets are tiny: one thread is as fast, and two spin-wait badly when anything
        # else (the web server, another run) wants the CPU — 10× slower seen on 2 cores.
        threads = CPU_THREADS
    if threads:
        torch.set_num_threads(threads)
    try:
        return _train(configs, records, start, should_stop, emit, device, on_end, loader)
    finally:
        torch.set_num_threads(before)


def _train(
    configs: Sequence[RunConfig],
    records: list[RunRecord],
    start: float,
    should_stop: Callable[[], bool] | None,
    emit: Callable[[Event], None],
    device: str | torch.device | None,
    on_end: Callable[[list[Stack]], None] | None = None,
    loader: Callable[..., Dataset] = load_dataset,
) -> list[RunRecord]:
    """The body of train_group."""

    def set_status(i: int, status: str, message: str = "", step: int | None = None) -> None:
        r = records[i]
        r.status, r.message, r.seconds = status, message, time.perf_counter() - start
        emit({"type": "status", "run": i, "status": status, "message": message, "step": step})

    try:
        dev = torch.device(device) if device is not None else resolve_device(configs[0].device)
        for r in records:
            r.device = str(dev)
        stacks = make_stacks(configs, dev, loader)
        for i in range(len(configs)):
            set_status(i, "running")
        while True:
            live = [s for s in stacks if not s.done]
            if not live:
                break
            if should_stop is not None and should_stop():
                for s in live:
                    for j, run in enumerate(s.runs):
                        if s.active[j]:
                            set_status(run, "cancelled", "stopped by the user", s.t)
                if on_end is not None:
                    on_end(stacks)
                return records
            s = min(live, key=lambda s: s.progress)
            was_active = list(s.active)
            for j, kind, rows in s.step():
                run = s.runs[j]
                records[run].rows[kind].extend(rows)
                emit({"type": "rows", "run": run, "kind": kind, "rows": rows})
            for j, (a, b) in enumerate(zip(was_active, s.active)):
                if a and not b:
                    step = int(s.diverged_at[j])
                    records[s.runs[j]].diverged_step = step
                    set_status(s.runs[j], "diverged", f"non-finite loss at step {step}", step)
            if s.done:
                for j, run in enumerate(s.runs):
                    if s.active[j]:
                        set_status(run, "finished", step=s.t)
        if on_end is not None:
            on_end(stacks)
    except Exception as e:
        msg = _failure_message(e)
        for i, r in enumerate(records):
            if r.status in ("queued", "running"):
                set_status(i, "failed", msg)
    return records


def _failure_message(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if isinstance(e, torch.OutOfMemoryError):
        return f"out of memory on the device: {text}. Try a smaller batch_size or network."
    where = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    loc = f" (in {where.name})" if where else ""
    return f"{type(e).__name__}: {text}{loc}"


def records_to_json(records: Sequence[RunRecord]) -> dict:
    """The records file: {"runs": [...]} (schema in docs/records.md)."""
    return {"runs": [r.to_dict() for r in records]}
