"""What a stack records and when: the row builders of records.RECORDERS and their schedule.

A `Recording` watches one stack.Stack. The loop (train.Stack.step) asks it before a step for the
rows due there (the measures; `history` at step 0) and whether the step is probed (its
activations kept), and after the step for the rest (layer, param and unit rows of a probe step,
history at a record step, the measures taken at the end). Between records the steps' losses
and hits stay on the device (`count`); a record reduces and fetches them once. Rows read the
tables of probes and optim by column name (probes.TABLE, UNIT_TABLE; PARAM_COLUMNS here).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .measures import MEASURES, measure_every
from .models import NORM_OUT
from .probes import (
    QUANTILES,
    TABLE,
    UNIT_TABLE,
    UNITS,
    extra_name,
    host_values,
    layer_edges,
    layer_stats,
    record_values,
    unit_edges,
    unit_stats,
    unit_values,
    vector_summaries,
)
from .records import RECORDER, RECORDERS
from .stack import Stack

MAX_LAYER_SNAPSHOTS = 100  # per run: layer probes are thinned so long runs stay small
INITIAL_TRAIN = 2048  # training samples the step-0 record's train metrics are computed on
# A paced run's test passes other than at an epoch's end (config.RunConfig.paced), step 0's
# too: the first this many test samples, a fixed subset (accuracy's standard error ≤ 1.6 %)
TEST_SUBSET = 1000
NORM_VECTORS = ("weight", "bias", "running_mean", "running_var")  # summarized in param rows
SUMMARY_KEYS = ("mean", "std", "min", "max")  # columns of probes.vector_summaries
PARAM_COLUMNS = RECORDER["params"].numbers  # grad_norm, weight_norm, update_ratio: _param_values
HISTORY_NUMBERS = RECORDER["history"].numbers  # train_loss, train_acc, test_loss, test_acc

Rows = list[tuple[int, str, list[dict]]]  # (run in the stack, kind, rows) to record


class Recording:
    """The records of one stack: schedule, device-side buffers and row builders."""

    def __init__(self, stack: Stack) -> None:
        cfg = stack.configs[0]
        self.stack = stack
        m, device = stack.m, stack.device
        # steps between records (samples seen / batch, paced by the training set's size)
        self.record_every = cfg.record_steps(stack.data.n_train)
        self.paced = cfg.paced(stack.data.n_train)  # records at epoch ends too, test subsets
        snapshots = math.ceil(stack.total / self.record_every) + 1
        self.layer_every = self.record_every * math.ceil(snapshots / MAX_LAYER_SNAPSHOTS)
        self.edges: dict[tuple, tuple[Tensor, list]] = {}  # probes → fixed bin edges
        # Train metrics stay on the device until the next record: each step's loss and number
        # of correct predictions per run; a record reduces them (and finds divergence there).
        self.step_loss = torch.empty(self.record_every, m, device=device)
        self.step_hits = torch.empty(self.record_every, m, dtype=torch.long, device=device)
        self.n_steps = 0  # steps in those buffers
        self.diverged_at = torch.full((m,), -1, dtype=torch.long, device=device)
        # What else is recorded (records.RECORDERS switched on by config.measures)
        on = [r for r in RECORDERS if r.measure and r.on(cfg.measures)]
        self.measured = [r.kind for r in on if r.every == "measure"]  # measures.MEASURES
        self.at_end = [r.kind for r in on if r.every == "end"]
        self.units = any(r.kind == "units" for r in on)
        self.unit_edges: dict[int, tuple[Tensor, list]] = {}  # layer → fixed bin edges
        self.measure_every = measure_every(stack.total, self.record_every)
        self._param_sources()

    # --- the schedule ---------------------------------------------------------------------

    def measure_due(self, t: int) -> bool:
        return bool(self.measured) and (t % self.measure_every == 0 or t == self.stack.total - 1)

    def probe_due(self, t: int) -> bool:
        return t % self.layer_every == 0 or t == self.stack.total - 1

    def record_due(self, t: int) -> bool:
        """Whether a history row is recorded after t updates."""
        s = self.stack
        return (
            t % self.record_every == 0
            or t == s.total
            or (self.paced and t % s.steps_per_epoch == 0)
        )

    def quiet(self, t: int) -> bool:
        """Whether step t needs nothing of its training but the loss and hits (`count`)."""
        return t > 0 and not self.probe_due(t) and not self.measure_due(t)

    # --- around a step ----------------------------------------------------------------------

    def before(self, t: int, x: Tensor, yt: Tensor) -> tuple[Rows, dict | None]:
        """The rows due before step t (at its weights; the first record aside: `history`)
        and the probes to fill (or None)."""
        out: Rows = []
        if self.measure_due(t):
            out += self.measure(t, x, yt, self.measured)  # contained: training is unchanged
        probes: dict | None = None
        if self.probe_due(t):
            probes = {}
            self.w_before.copy_(self.w_flat)
        return out, probes

    def after(self, t: int, x: Tensor | None, yt: Tensor | None, probes: dict | None) -> Rows:
        """The rows due after step t's update (the stack has done t + 1 updates). x and yt:
        its batch, which the measures taken at the end need (None: a quiet step's)."""
        out: Rows = []
        if probes is not None:
            out += self.layers(t, probes)
            if self.units:
                out += self.unit_rows(t, probes)
        if self.record_due(t + 1):
            out += self.history(t + 1)
        if self.at_end and t + 1 == self.stack.total:
            assert x is not None and yt is not None  # the last step is a probe step
            out += self.measure(t + 1, x, yt, self.at_end)
        return out

    @torch.no_grad()
    def count(self, logits: Tensor, losses: Tensor, yt: Tensor) -> None:
        """Keep the step's loss and correct predictions per run on the device until a record."""
        self.step_loss[self.n_steps] = losses
        torch.sum(logits.argmax(-1) == yt, 0, out=self.step_hits[self.n_steps])
        self.n_steps += 1

    def _rows(self, kind: str, rows: list[list[dict]]) -> Rows:
        """(run, kind, rows) for the runs still training."""
        return [(i, kind, rows[i]) for i in range(self.stack.m) if self.stack.active[i]]

    def measure(self, step: int, x: Tensor, yt: Tensor, kinds: list[str]) -> Rows:
        """The rows of measures.MEASURES[kind] for each kind, for the runs still training."""
        out: Rows = []
        for kind in kinds:
            out += self._rows(kind, MEASURES[kind](self.stack, step, x, yt))
        return out

    # --- history ------------------------------------------------------------------------------

    def history(self, step: int, initial: bool = False) -> Rows:
        s = self.stack
        if initial:  # before any update: train metrics on (up to) 2048 training samples
            n0 = INITIAL_TRAIN
            tr_loss, tr_acc = s.evaluate(s.data.x_train[:n0], s.data.y_train[:n0])
        else:  # the steps since the last record
            n = self.n_steps
            losses, hits = self.step_loss[:n], self.step_hits[:n]
            tr_loss, tr_acc = losses.mean(0), hits.sum(0) / (n * s.batch_size)
            bad = ~torch.isfinite(losses)  # (n, M); row j is step `step − n + j`
            first = torch.where(bad.any(0), bad.int().argmax(0) + (step - n), -1)
            self.diverged_at = torch.where(self.diverged_at < 0, first, self.diverged_at)
            self.n_steps = 0
        n_test = s.data.n_test
        if self.paced and (step == 0 or step % s.steps_per_epoch):  # not an epoch's end
            n_test = min(n_test, TEST_SUBSET)
        te_loss, te_acc = s.evaluate(s.data.x_test[:n_test], s.data.y_test[:n_test])
        # One fetch: the four columns per run, then the step each run diverged at (−1: none)
        vals = torch.stack([tr_loss, tr_acc, te_loss, te_acc]).T  # (M, 4), HISTORY_NUMBERS
        raw = torch.cat([vals.reshape(-1).double(), self.diverged_at.double()]).cpu().numpy()
        cols = record_values(raw[: vals.numel()].reshape(vals.shape))
        for i, at in enumerate(raw[vals.numel() :].astype(np.int64).tolist()):
            if at >= 0 and s.active[i]:  # diverged: stop the run
                s.freeze(i)
        epoch = round(step / s.steps_per_epoch, 4)
        rows = [[{"step": step, "epoch": epoch, **dict(zip(HISTORY_NUMBERS, c))}] for c in cols]
        if n_test < s.data.n_test:  # said only where the test columns are of a subset
            for (row,) in rows:
                row["test_samples"] = n_test
        return self._rows("history", rows)

    # --- layer, param and unit rows of a probe step -------------------------------------------

    def _param_sources(self) -> None:
        """What param rows read, as plain views made once (a step re-uses them): each layer's
        weights, their grads and a copy taken before the update, as (M, ·) views; the norms'
        vectors (γ, β, running statistics) with their (layer, name)."""
        m, net = self.stack.m, self.stack.net
        self.w_flat, w_grad = self.stack.opt.span(list(net.weights))  # every weight matrix
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
    def layers(self, step: int, probes: dict[tuple[int, str], Tensor]) -> Rows:
        """Layer and param rows of a probe step, after the update (w_before holds the weights
        from before it). probes: {(layer, point): activation}, per run on the fast path (see
        models.forward_backward), else wide."""
        s = self.stack
        m, act = s.m, s.configs[0].activation
        keys = list(probes)
        # One computation per distinct tensor: without a norm before it, act_in *is* linear.
        first: dict[tuple, int] = {}
        src = [first.setdefault((_ident(probes[k]), k[1] == "act_out"), len(first)) for k in keys]
        uniq = [keys[src.index(u)] for u in range(len(first))]
        ts = [probes[k] for k in uniq]
        points = [p for _, p in uniq]
        if tuple(uniq) not in self.edges:  # fixed once, at the first probe step
            e = layer_edges(ts, m, points, act, per_run=s.fast)
            self.edges[tuple(uniq)] = (e, host_values(e))
        edges, edge_lists = self.edges[tuple(uniq)]
        st = layer_stats(ts, m, points, act, edges, per_run=s.fast)
        table = st["table"]  # (U·M, len(TABLE))
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
        host = record_values(np.concatenate([raw[: cut[0]], summaries.ravel()]))
        w = table.shape[1]
        fl = [dict(zip(TABLE, host[r * w : (r + 1) * w])) for r in range(table.shape[0])]
        host = host[table.numel() :]
        rows: list[list[dict]] = [[] for _ in range(m)]
        for (layer, point), u in zip(keys, src):
            extra = extra_name(point, act)
            # norm_out also spans the stack's norm=none runs (act_out passed through): skip them
            for i in range(s.net.n_norm if point == NORM_OUT else m):
                r = u * m + i
                f, c = fl[r], hist[r]
                row = {
                    "step": step,
                    "layer": layer,
                    "point": point,
                    "mean": f["mean"],
                    "std": f["std"],
                    "p15": f["p15"],
                    "p50": f["p50"],
                    "p85": f["p85"],
                    "quantiles": [f[q] for q in QUANTILES],
                    "hist": {"edges": list(edge_lists[r]), "counts": c[1:-1]},
                    "under": c[0],
                    "over": c[-1],
                    "n": n[r],
                }
                if extra:
                    row[extra] = f["extra"]
                rows[i].append(row)
        prows = self._param_rows(step, host[: params.numel()], host[params.numel() :])
        out: Rows = []
        for i in range(m):
            if s.active[i]:
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
        """Per layer and run the PARAM_COLUMNS [‖grad‖, ‖w‖, ‖Δw‖/‖w‖] (L, M, 3)."""
        self.w_before.sub_(self.w_flat)  # −Δw
        norms = [torch.linalg.vector_norm(v, dim=1) for v in self.norm_views]  # (M,) each
        gn, wn, dn = torch.stack(norms).view(3, -1, self.stack.m)
        return torch.stack([gn, wn, dn / wn.clamp_min(1e-12)], 2)

    def _param_rows(self, step: int, params: list, summaries: list) -> list[list[dict]]:
        """Param rows from the host values of _param_values (flat lists, same order)."""
        m, depth, width = self.stack.m, self.stack.net.depth, len(SUMMARY_KEYS)
        where: dict[int, list[tuple[str, int, int, int]]] = {}  # layer → (name, at, first, runs)
        for (layer, name, first, k), at in zip(self.vector_owners, self.summary_offsets):
            where.setdefault(layer, []).append((name, int(at), first, k))
        ncol = len(PARAM_COLUMNS)
        rows: list[list[dict]] = [[] for _ in range(m)]
        for layer in range(1, depth + 2):
            for i in range(m):
                k = ((layer - 1) * m + i) * ncol
                row: dict[str, Any] = {
                    "step": step,
                    "layer": layer,
                    **dict(zip(PARAM_COLUMNS, params[k : k + ncol])),
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

    @torch.no_grad()
    def unit_rows(self, step: int, probes: dict[tuple[int, str], Tensor]) -> Rows:
        """Units rows: the first probes.UNITS units of every hidden layer at act_in (what the
        activation receives: BN's output, noise included), each unit's own distribution."""
        s = self.stack
        m, depth = s.m, s.net.depth
        tables, hists, sizes = [], [], []
        n_values: dict[int, int] = {}
        for layer in range(1, depth + 1):
            t = probes[(layer, "act_in")]
            u = min(UNITS, t.shape[-1] if s.fast else t.shape[1] // m)
            v = unit_values(t, m, u, s.fast)  # (M·U, N)
            n_values[layer] = v.shape[1]
            if layer not in self.unit_edges:  # fixed once, at the first probe step
                e = unit_edges(v)
                self.unit_edges[layer] = (e, host_values(e))
            table, hist = unit_stats(v, self.unit_edges[layer][0])
            tables.append(table)
            hists.append(hist)
            sizes.append(u)
        # One fetch: the tables, then the histograms' counts (integers: exact in float64)
        table_t, hist_t = torch.cat(tables), torch.cat(hists)
        raw = torch.cat([table_t.view(-1).double(), hist_t.view(-1).double()]).cpu().numpy()
        table = record_values(raw[: table_t.numel()].reshape(table_t.shape))
        hist = raw[table_t.numel() :].astype(np.int64).reshape(hist_t.shape).tolist()
        rows: list[list[dict]] = [[] for _ in range(m)]
        k = 0
        for layer, u in zip(range(1, depth + 1), sizes):
            edges = self.unit_edges[layer][1]
            for i in range(m):
                for j in range(u):
                    r = k + i * u + j
                    f, c = dict(zip(UNIT_TABLE, table[r])), hist[r]
                    rows[i].append(
                        {
                            "step": step,
                            "layer": layer,
                            "unit": j,
                            "point": "act_in",
                            **f,
                            "hist": {"edges": edges[i * u + j], "counts": c[1:-1]},
                            "under": c[0],
                            "over": c[-1],
                            "n": n_values[layer],
                        }
                    )
            k += m * u
        return self._rows("units", rows)


def _ident(t: Tensor) -> tuple:
    """Same memory, shape and strides: the same values."""
    return (t.data_ptr(), tuple(t.shape), t.stride())
