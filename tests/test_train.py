"""The training engine: lockstep groups, divergence, cancellation, failures, records, optimizer."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bnviz import stack, train
from bnviz.config import PRESETS, RunConfig
from bnviz.data import load_dataset
from bnviz.models import NORM_OUT, POINTS
from bnviz.optim import StackOptimizer
from bnviz.probes import BASIS_POINTS, N_BINS, activation_stats, fixed_edges, per_run
from bnviz.train import (
    STATUSES,
    Stack,
    make_stacks,
    records_to_json,
    train_group,
)

ROOT = Path(__file__).resolve().parents[1]
N_TRAIN = load_dataset("digits").n_train


def cfg(**kw) -> RunConfig:
    base = dict(hidden=(16, 16), epochs=1, batch_size=32, dataset="digits")
    base.update(kw)
    return RunConfig(**base)


def collect(configs, **kw):
    events: list[dict] = []
    records = train_group(configs, on_event=events.append, device="cpu", **kw)
    return records, events


def without_timing(d: dict) -> dict:
    for run in d["runs"]:
        run.pop("seconds")
    return d


# --- learning ---------------------------------------------------------------------------------


def test_loss_falls_and_accuracy_beats_chance() -> None:
    (rec,), events = collect([cfg(activation="relu", epochs=3, lr=0.1)])
    assert rec.status == "finished" and rec.message == "" and rec.device == "cpu"
    h = rec.history
    steps_per_epoch = N_TRAIN // 32
    assert h[0]["step"] == 0 and h[0]["epoch"] == 0
    assert h[-1]["step"] == 3 * steps_per_epoch and h[-1]["epoch"] == 3.0
    assert [r["step"] for r in h] == sorted({r["step"] for r in h})
    assert h[-1]["train_loss"] < 0.5 * h[0]["train_loss"]
    assert h[-1]["test_loss"] < 0.5 * h[0]["test_loss"]
    assert h[-1]["test_acc"] > 0.8  # chance is 0.1
    statuses = [e["status"] for e in events if e["type"] == "status"]
    assert statuses == ["running", "finished"]
    assert all(s in STATUSES for s in statuses)
    rows = [r for e in events if e["type"] == "rows" and e["kind"] == "history" for r in e["rows"]]
    assert rows == h  # every record was emitted as it was made


# --- lockstep ---------------------------------------------------------------------------------


def test_runs_with_different_batch_sizes_advance_in_lockstep() -> None:
    configs = [cfg(batch_size=16, epochs=2), cfg(batch_size=64, epochs=2)]
    records, events = collect(configs)
    assert [r.status for r in records] == ["finished", "finished"]
    # one record interval (record_steps steps) of the coarser run, plus one of its steps
    interval = max(c.record_steps() / (N_TRAIN // c.batch_size) for c in configs)
    latest = [0.0, 0.0]
    order = []
    for e in events:
        if e["type"] == "rows" and e["kind"] == "history":
            latest[e["run"]] = e["rows"][-1]["epoch"]
            order.append(e["run"])
            assert abs(latest[0] - latest[1]) <= interval + 1 / (N_TRAIN // 64) + 1e-9, latest
    assert latest == [2.0, 2.0]
    # interleaved, not one run after the other
    switches = sum(a != b for a, b in itertools.pairwise(order))
    assert switches > 4
    # records follow samples seen: as many rows at batch 16 as at 64 (one apart by rounding)
    assert abs(len(records[0].history) - len(records[1].history)) <= 1


# --- divergence -------------------------------------------------------------------------------


def test_divergence_is_detected_and_isolated() -> None:
    boom = cfg(norm="none", activation="linear", lr=50.0)
    calm_same_stack = cfg(norm="none", activation="linear", lr=0.01, seed=1)
    bn = cfg(activation="relu", lr=0.1)
    records, events = collect([boom, calm_same_stack, bn])
    bad, calm, good = records
    assert bad.status == "diverged"
    assert bad.diverged_step is not None and 0 <= bad.diverged_step < 10
    assert str(bad.diverged_step) in bad.message and "non-finite" in bad.message
    assert all(r["step"] <= bad.diverged_step for r in bad.history)
    assert all(r["step"] <= bad.diverged_step for r in bad.layers + bad.params)
    status = [e for e in events if e["type"] == "status" and e["run"] == 0]
    assert [e["status"] for e in status] == ["running", "diverged"]
    assert status[-1]["step"] == bad.diverged_step
    assert not any(
        e["type"] == "rows" and e["run"] == 0 for e in events[events.index(status[-1]) :]
    )
    for rec in (calm, good):
        assert rec.status == "finished" and rec.diverged_step is None
        assert rec.history[-1]["epoch"] == 1.0
        assert all(v is not None for r in rec.history for v in r.values())
    assert good.history[-1]["test_acc"] > 0.5
    # the diverged run shared a stack with `calm`, whose records are those it has alone
    (alone,) = train_group([calm_same_stack], device="cpu")
    assert_histories_close(calm.history, alone.history)
    json.dumps(records_to_json(records), allow_nan=False)  # non-finite values became null


# --- cancellation and failure ----------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 8, 30])
def test_cancellation_within_one_step(n: int) -> None:
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) >= n

    configs = [cfg(batch_size=16), cfg(batch_size=32), cfg(batch_size=32, lr=0.5)]
    records, events = collect(configs, should_stop=should_stop)
    assert len(calls) == n  # polled before every step, and nothing runs after it said stop
    assert [r.status for r in records] == ["cancelled"] * 3
    assert all(r.message == "stopped by the user" for r in records)
    cancelled = [e for e in events if e["type"] == "status" and e["status"] == "cancelled"]
    assert sorted(e["run"] for e in cancelled) == [0, 1, 2]
    # steps done per stack, reported with the cancellation: n - 1 steps in all
    per_stack = {0: cancelled[0]["step"]}
    per_stack.update({1: next(e["step"] for e in cancelled if e["run"] in (1, 2))})
    assert sum(per_stack.values()) == n - 1
    for r in records:
        assert all(row["step"] <= n for row in r.history)


def test_failure_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    real = Stack._batch
    count = []

    def flaky(self):
        count.append(1)
        if len(count) > 15:
            raise RuntimeError("the data loader broke")
        return real(self)

    monkeypatch.setattr(Stack, "_batch", flaky)
    records, events = collect([cfg(), cfg(lr=0.3)])
    for r in records:
        assert r.status == "failed"
        assert r.message.startswith("RuntimeError: the data loader broke")
        assert "flaky" in r.message  # where it happened
        assert r.history and r.history[-1]["step"] <= 15  # what was recorded is kept
    failed = [e for e in events if e["type"] == "status" and e["status"] == "failed"]
    assert sorted(e["run"] for e in failed) == [0, 1]


def test_failure_while_building_stacks() -> None:
    records = train_group([cfg(batch_size=4000), cfg()], device="cpu")
    assert [r.status for r in records] == ["failed", "failed"]
    assert "batch_size=4000" in records[0].message
    assert str(N_TRAIN) in records[0].message


def test_failure_message_names_exception_without_message(monkeypatch) -> None:
    def broken(*a, **k):
        raise KeyError

    monkeypatch.setattr(train, "make_stacks", broken)
    (rec,) = train_group([cfg()], device="cpu")
    assert rec.status == "failed" and rec.message.startswith("KeyError")


# --- determinism and independence --------------------------------------------------------------


def test_same_configs_give_identical_records() -> None:
    configs = [
        cfg(norm="noisy_batch", dropout=0.2, seed=3),
        cfg(norm="ghost_batch", ghost_batch_size=8),
        cfg(norm="batch", optimizer="adam", lr=0.01, seed=1),
    ]
    a = without_timing(records_to_json(train_group(configs, device="cpu")))
    b = without_timing(records_to_json(train_group(configs, device="cpu")))
    assert a == b
    assert [r["status"] for r in a["runs"]] == ["finished"] * 3
    c = without_timing(records_to_json(train_group([configs[0].replace(seed=4)], device="cpu")))
    assert c["runs"][0]["history"] != a["runs"][0]["history"]


def assert_histories_close(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert ra.keys() == rb.keys()
        for k in ra:
            assert ra[k] == pytest.approx(rb[k], rel=1e-5, abs=1e-5), (k, ra, rb)


def test_records_follow_samples_seen_and_agree_with_the_step_schedule() -> None:
    """record_every counts steps of 60 samples. At batch 60 the schedule is the old one (every
    record_every steps); at batch 6 a run records every 100 steps, where the engine before
    this schedule recorded every 10. That old schedule is record_every=1 here (10 steps):
    training is the same, so at the new record steps test metrics and probes are equal, and
    train metrics are the mean of the old rows since the previous record (the one difference:
    fewer, coarser rows)."""
    assert RunConfig(batch_size=60).record_steps() == 10
    assert RunConfig(batch_size=2).record_steps() == 300
    assert RunConfig(batch_size=128, record_every=1).record_steps() == 1
    (at60,) = train_group([cfg(batch_size=60, epochs=2)], device="cpu")
    total60 = 2 * (N_TRAIN // 60)
    assert [r["step"] for r in at60.history] == [*range(0, total60, 10), total60]
    pair = [cfg(batch_size=6), cfg(batch_size=6, norm="none", seed=1)]
    new = train_group(pair, device="cpu")
    old = train_group([c.replace(record_every=1) for c in pair], device="cpu")
    total = N_TRAIN // 6
    for a, b in zip(new, old):
        assert [r["step"] for r in a.history] == [*range(0, total, 100), total]
        assert [r["step"] for r in b.history] == [*range(0, total, 10), total]
        by_step = {r["step"]: r for r in b.history}
        prev = 0
        for r in a.history:
            o = by_step[r["step"]]
            for k in ("epoch", "test_loss", "test_acc"):
                assert r[k] == o[k], k
            if r["step"]:
                since = [x for x in b.history if prev < x["step"] <= r["step"]]
                steps = [x["step"] - p for x, p in zip(since, [prev] + [x["step"] for x in since])]
                for k in ("train_loss", "train_acc"):
                    mean = sum(x[k] * n for x, n in zip(since, steps)) / (r["step"] - prev)
                    assert r[k] == pytest.approx(mean, rel=1e-4), k
            prev = r["step"]
        probe_steps = sorted({r["step"] for r in a.layers})
        assert probe_steps == [0, 100, 200, total - 1]
        old_layers = {(r["step"], r["layer"], r["point"]): r for r in b.layers}
        for r in a.layers:
            assert r == old_layers[(r["step"], r["layer"], r["point"])]


def test_records_do_not_depend_on_stack_mates() -> None:
    ladder = [cfg(lr=lr, seed=s, activation="tanh") for lr, s in ((0.02, 2), (0.1, 5), (0.5, 9))]
    stacked = train_group(ladder, device="cpu")
    assert len(make_stacks(ladder, torch.device("cpu"))) == 1
    for i, c in enumerate(ladder):
        (alone,) = train_group([c], device="cpu")
        assert_histories_close(stacked[i].history, alone.history)
        la = [(r["step"], r["layer"], r["point"], r["p50"]) for r in alone.layers]
        ls = [(r["step"], r["layer"], r["point"], r["p50"]) for r in stacked[i].layers]
        assert [x[:3] for x in la] == [x[:3] for x in ls]
        for x, y in zip(la, ls):
            assert x[3] == pytest.approx(y[3], rel=1e-4, abs=1e-5)
    finals = [r.history[-1]["train_loss"] for r in stacked]
    assert len(set(finals)) == 3  # the ladder really differs


def test_norms_of_the_fast_path_train_as_one_stack_with_the_records_of_runs_alone() -> None:
    """BN, LayerNorm, GroupNorm, Ghost BN and no norm: one stack (each kind a block of runs,
    none last); every run's records are those it has alone, its norm's vectors included.
    Noisy BN (autograd) gets a stack of its own."""
    kw = dict(seed=2, num_groups=4, ghost_batch_size=8)
    group = [
        cfg(norm="none", **kw),
        cfg(norm="batch", **kw),
        cfg(norm="layer", **kw),
        cfg(norm="group", **kw),
        cfg(norm="ghost_batch", **kw),
        cfg(norm="batch", **{**kw, "seed": 3}),
        cfg(norm="noisy_batch", **kw),
    ]
    stacks = make_stacks(group, torch.device("cpu"))
    assert [s.runs for s in stacks] == [[1, 5, 2, 3, 4, 0], [6]]
    assert stacks[0].fast and not stacks[1].fast
    together = train_group(group, device="cpu")
    for c, rec in zip(group, together):
        (alone,) = train_group([c], device="cpu")
        assert rec.status == alone.status == "finished"
        assert_histories_close(rec.history, alone.history)
        assert len(rec.params) == len(alone.params)
        for r, a in zip(rec.params, alone.params):
            assert r.keys() == a.keys()
            for name, summary in a.get("norm", {}).items():
                assert r["norm"][name] == pytest.approx(summary, rel=1e-4, abs=1e-5), name
        assert [(r["step"], r["layer"], r["point"]) for r in rec.layers] == [
            (r["step"], r["layer"], r["point"]) for r in alone.layers
        ]
    assert not any("norm" in r for r in together[0].params)
    assert all("norm" in r for r in together[1].params if r["layer"] <= 2)
    assert "running_mean" in together[1].params[0]["norm"]
    assert "running_mean" not in together[2].params[0]["norm"]  # LayerNorm: γ and β only


# --- record contents ---------------------------------------------------------------------------


def test_record_contents() -> None:
    configs = [cfg(activation="sigmoid"), cfg(activation="relu", hidden=(16, 16), lr=0.2)]
    records = train_group(configs, device="cpu")
    steps_per_epoch = N_TRAIN // 32
    for rec, c in zip(records, configs):
        assert rec.status == "finished"
        probe_steps = sorted({r["step"] for r in rec.layers})
        assert probe_steps[0] == 0 and probe_steps[-1] == steps_per_epoch - 1
        assert probe_steps == sorted({r["step"] for r in rec.params})
        for step in probe_steps:
            rows = [r for r in rec.layers if r["step"] == step]
            assert {(r["layer"], r["point"]) for r in rows} == {
                (layer, p) for layer in (1, 2) for p in POINTS
            }
            for r in rows:
                assert r["p15"] <= r["p50"] <= r["p85"]
                q = r["quantiles"]
                assert len(q) == len(BASIS_POINTS) == 9
                assert q == sorted(q) and q[0] <= r["p15"] and r["p85"] <= q[-1]
                edges, counts = r["hist"]["edges"], r["hist"]["counts"]
                assert len(edges) == N_BINS + 1 and len(counts) == N_BINS
                assert edges == sorted(edges)
                assert sum(counts) + r["under"] + r["over"] == r["n"] > 0
                assert r["std"] >= 0
                is_out = r["point"] == "act_out"
                assert ("saturated" in r) == (is_out and c.activation == "sigmoid")
                assert ("dead" in r) == (is_out and c.activation == "relu")
                for extra in ("saturated", "dead"):
                    if extra in r:
                        assert 0 <= r[extra] <= 1
                if is_out and c.activation == "sigmoid":
                    assert edges[0] == 0 and edges[-1] == 1
                    assert q[0] >= 0 and q[-1] <= 1
                if is_out and c.activation == "relu":
                    assert edges[0] == 0 and q[0] >= 0
            prow = [r for r in rec.params if r["step"] == step]
            assert [r["layer"] for r in prow] == [1, 2, 3]
            for r in prow:
                assert r["grad_norm"] > 0 and r["weight_norm"] > 0 and r["update_ratio"] > 0
                # plain SGD: ‖Δw‖ = lr·‖g‖
                assert r["update_ratio"] == pytest.approx(
                    c.lr * r["grad_norm"] / r["weight_norm"], rel=1e-3
                )
                if r["layer"] == 3:
                    assert r.get("classifier") is True and "norm" not in r
                else:
                    assert "classifier" not in r
                    assert set(r["norm"]) == {"weight", "bias", "running_mean", "running_var"}
                    for s in r["norm"].values():
                        assert set(s) == {"mean", "std", "min", "max"}
                        assert s["min"] <= s["mean"] <= s["max"]
            first = [r for r in rec.params if r["step"] == 0]
            # at step 0 the running stats have had exactly one update from (0, 1)
            rv = first[0]["norm"]["running_var"]
            assert rv["min"] > 0.9 * 1.0
            assert first[0]["norm"]["weight"]["mean"] == pytest.approx(1.0, abs=0.05)


def test_record_layers_of_norm_none_have_no_norm_summaries() -> None:
    (rec,) = train_group([cfg(norm="none")], device="cpu")
    assert rec.params and all("norm" not in r for r in rec.params)
    # no norm: act_in is the linear output
    for step in {r["step"] for r in rec.layers}:
        rows = {(r["layer"], r["point"]): r for r in rec.layers if r["step"] == step}
        for layer in (1, 2):
            a, b = rows[(layer, "linear")], rows[(layer, "act_in")]
            assert a["quantiles"] == b["quantiles"] and a["hist"] == b["hist"]


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_norm_out_rows_only_for_normed_layers_with_placement_after(model: str) -> None:
    kw = dict(model=model, activation="tanh", hidden=(8, 8, 8) if model == "mlp" else (4, 4, 4))
    configs = [
        cfg(placement="after", **kw),
        cfg(placement="after", norm="none", seed=1, **kw),  # stacks with the first
        cfg(placement="after", norm_layers=(1, 3), seed=2, lr=0.2, **kw),
        cfg(placement="before", **kw),
    ]
    records = train_group(configs, device="cpu")
    assert [r.status for r in records] == ["finished"] * 4
    normed = [(1, 2, 3), (), (1, 3), ()]
    for rec, layers in zip(records, normed):
        rows = [r for r in rec.layers if r["point"] == NORM_OUT]
        steps = sorted({r["step"] for r in rec.layers})
        assert sorted((r["step"], r["layer"]) for r in rows) == [
            (s, layer) for s in steps for layer in layers
        ]
        act_in = {(r["step"], r["layer"]): r for r in rec.layers if r["point"] == "act_in"}
        for r in rows:
            other = act_in[(r["step"], r["layer"])]
            assert r.keys() == other.keys()  # the same row format (no saturated/dead)
            assert len(r["hist"]["edges"]) == N_BINS + 1
            assert sum(r["hist"]["counts"]) + r["under"] + r["over"] == r["n"] > 0
            assert r["p15"] <= r["p50"] <= r["p85"]
            if r["step"] == 0:  # a fresh BN (γ = 1, β = 0): mean 0, std 1 per unit, pooled too
                assert r["mean"] == pytest.approx(0.0, abs=1e-3)
                assert r["std"] == pytest.approx(1.0, abs=0.02)
                assert r["under"] == r["over"] == 0  # the edges are set on this step
    # the normalized run of the mixed stack records what it records alone
    (alone,) = train_group(configs[:1], device="cpu")
    a = [(r["step"], r["layer"], r["p50"]) for r in alone.layers if r["point"] == NORM_OUT]
    b = [(r["step"], r["layer"], r["p50"]) for r in records[0].layers if r["point"] == NORM_OUT]
    assert [x[:2] for x in a] == [x[:2] for x in b]
    for x, y in zip(a, b):
        assert x[2] == pytest.approx(y[2], rel=1e-4, abs=1e-5)


def test_activation_stats_against_numpy() -> None:
    g = torch.Generator().manual_seed(0)
    m, c = 2, 5
    t = torch.randn(40, m * c, generator=g) * torch.tensor([1.0] * c + [3.0] * c)
    t[:, 0] = -1.0  # unit 0 of run 0 is dead after relu
    act = torch.relu(t)
    edges = fixed_edges(per_run(act, m), "act_out", "relu")
    st = activation_stats(act, m, "act_out", "relu", edges)
    for r in range(m):
        v = act[:, r * c : (r + 1) * c].reshape(-1).numpy()
        e = edges[r].numpy()
        np.testing.assert_allclose(st["quantiles"][r].numpy(), np.quantile(v, BASIS_POINTS), 1e-5)
        np.testing.assert_allclose(
            [st["p15"][r], st["p50"][r], st["p85"][r]], np.quantile(v, [0.15, 0.5, 0.85]), 1e-5
        )
        np.testing.assert_allclose(st["mean"][r], v.mean(), rtol=1e-5)
        np.testing.assert_allclose(st["std"][r], v.std(), rtol=1e-5)
        inside = v[(v >= e[0]) & (v < e[-1])]
        expected, _ = np.histogram(inside, bins=e)
        assert st["counts"][r].tolist() == expected.tolist()
        assert int(st["under"][r]) == int((v < e[0]).sum())
        assert int(st["over"][r]) == int((v >= e[-1]).sum())
        assert int(st["n"][r]) == v.size
        assert e[0] == 0  # relu outputs start at 0
    assert st["dead"].tolist() == pytest.approx([1 / c, 0.0])
    # edges from a narrower sample: values fall under and over the range, and are counted there
    edges = fixed_edges(per_run(t * 0.2, m), "linear", "relu")
    st = activation_stats(t, m, "linear", "relu", edges)
    for r in range(m):
        v = t[:, r * c : (r + 1) * c].reshape(-1).numpy()
        e = edges[r].numpy()
        under, over = int((v < e[0]).sum()), int((v >= e[-1]).sum())
        assert under > 0 and over > 0
        assert int(st["under"][r]) == under and int(st["over"][r]) == over
        expected, _ = np.histogram(v[(v >= e[0]) & (v < e[-1])], bins=e)
        assert st["counts"][r].tolist() == expected.tolist()
        assert sum(expected) + under + over == v.size
    sig = torch.sigmoid(t * 3)
    st = activation_stats(
        sig, m, "act_out", "sigmoid", fixed_edges(per_run(sig, m), "act_out", "sigmoid")
    )
    for r in range(m):
        v = sig[:, r * c : (r + 1) * c].reshape(-1)
        assert st["saturated"][r].item() == pytest.approx(
            ((v < 0.02) | (v > 0.98)).float().mean().item()
        )


# --- the optimizer ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "make"),
    [
        ("sgd", lambda p, lr, wd: torch.optim.SGD([p], lr=lr, weight_decay=wd)),
        ("momentum", lambda p, lr, wd: torch.optim.SGD([p], lr=lr, momentum=0.9, weight_decay=wd)),
        ("adam", lambda p, lr, wd: torch.optim.Adam([p], lr=lr, weight_decay=wd)),
    ],
)
def test_stack_optimizer_matches_torch_optim(kind: str, make) -> None:
    lrs, wds = [0.1, 0.03, 0.5], [0.0, 0.01, 0.2]
    configs = [cfg(optimizer=kind, lr=lr, weight_decay=wd) for lr, wd in zip(lrs, wds)]
    m = len(configs)
    g = torch.Generator().manual_seed(0)
    shapes = [(m, 4, 3), (m, 4), (m * 6,)]  # stacked weights, biases, a run-major norm vector
    params = [torch.nn.Parameter(torch.randn(s, generator=g)) for s in shapes]
    targets = [torch.randn(s, generator=g) for s in shapes]
    # the reference: every run's slice of every tensor as its own parameter and optimizer
    ref = [
        [torch.nn.Parameter(p.detach().reshape(m, -1)[r].clone()) for p in params] for r in range(m)
    ]
    ref_opts = [[make(p, lrs[r], wds[r]) for p in ref[r]] for r in range(m)]
    opt = StackOptimizer(params, configs)

    def loss(ps, ts):
        return sum(((p - t) ** 2 * (1 + t.abs())).sum() for p, t in zip(ps, ts))

    for _ in range(4):
        opt.zero_grad()
        loss(params, targets).backward()  # autograd accumulates into the flat buffer
        opt.step()
        for r in range(m):
            for o in ref_opts[r]:
                o.zero_grad()
            loss(ref[r], [t.reshape(m, -1)[r] for t in targets]).backward()
            for o in ref_opts[r]:
                o.step()
        for i, p in enumerate(params):
            got = p.detach().reshape(m, -1)
            for r in range(m):
                torch.testing.assert_close(got[r], ref[r][i].detach(), rtol=1e-5, atol=1e-6)
    # the parameters really are views of one flat buffer
    assert all(
        p.data.untyped_storage().data_ptr() == opt.flat.untyped_storage().data_ptr() for p in params
    )


def test_stack_optimizer_freeze_stops_one_run() -> None:
    configs = [cfg(optimizer="adam", lr=0.1), cfg(optimizer="adam", lr=0.1, seed=1)]
    p = torch.nn.Parameter(torch.ones(2, 3))
    opt = StackOptimizer([p], configs)
    opt.freeze(0)
    (p**2).sum().backward()
    opt.step()
    assert torch.equal(p.detach()[0], torch.ones(3))
    assert torch.all(p.detach()[1] < 1)


# --- the Done-when check -----------------------------------------------------------------------


def test_ioffe_preset_records() -> None:
    configs = PRESETS["ioffe_fig1"].configs()
    records = train_group(configs, device="cpu")
    text = json.dumps(records_to_json(records), allow_nan=False)
    assert len(text.encode()) < 5_000_000
    for rec in records:
        assert rec.status == "finished"
        assert rec.history[-1]["epoch"] == 20.0
        for layer in (1, 2, 3):
            rows = [r for r in rec.layers if r["layer"] == layer and r["point"] == "act_in"]
            assert len(rows) >= 10
            assert all(r[k] is not None for r in rows for k in ("p15", "p50", "p85"))
    plain, bn = records
    assert plain.config.norm == "none" and bn.config.norm == "batch"
    assert plain.history[-1]["test_acc"] < 0.3
    assert bn.history[-1]["test_acc"] > 0.95


def test_library_does_not_import_streamlit() -> None:
    code = (
        "import sys, bnviz.config, bnviz.data, bnviz.models, bnviz.norms, bnviz.probes, "
        "bnviz.train; "
        "assert 'streamlit' not in sys.modules, 'streamlit was imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


# --- the fast path (hand-written backward) -----------------------------------------------------


def assert_records_close(a, b, path: str = "") -> None:
    """Equal structure; floats to float32 rounding after a run (the records keep 6 digits);
    histogram counts within one (a value on a bin edge may fall either side)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_records_close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_records_close(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-5), path
    elif isinstance(a, int) and ".counts" in path:
        assert abs(a - b) <= 1, path
    else:
        assert a == b, path


def test_fast_path_records_equal_autograd_records(monkeypatch: pytest.MonkeyPatch) -> None:
    configs = [
        cfg(activation="sigmoid", dropout=0.2),
        cfg(activation="sigmoid", seed=1, lr=0.3),
        cfg(norm="none", activation="relu"),
        cfg(norm="batch_scratch", activation="tanh", placement="after", optimizer="momentum"),
        cfg(activation="gelu", optimizer="adam", lr=0.01, momentum=None, weight_decay=0.01),
        cfg(norm="none", activation="tanh", placement="after", optimizer="momentum", seed=5),
    ]
    stacks = make_stacks(configs, torch.device("cpu"))
    assert [s.fast for s in stacks] == [True, True, False, True]  # batch_scratch: its own code
    fast = without_timing(records_to_json(train_group(configs, device="cpu")))
    monkeypatch.setattr(stack, "has_fast_path", lambda c: False)
    assert not any(s.fast for s in make_stacks(configs, torch.device("cpu")))
    slow = without_timing(records_to_json(train_group(configs, device="cpu")))
    assert [r["status"] for r in fast["runs"]] == ["finished"] * 6
    has_norm_out = [any(r["point"] == NORM_OUT for r in run["layers"]) for run in fast["runs"]]
    assert has_norm_out == [False, False, False, True, False, False]  # placement=after with BN
    assert_records_close(fast, slow)


def test_fast_path_used_for_supported_stacks_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from bnviz.models import StackedNet

    calls: list[int] = []
    real = StackedNet.forward_backward

    def counting(self, *a, **k):
        calls.append(self.m)
        return real(self, *a, **k)

    monkeypatch.setattr(StackedNet, "forward_backward", counting)
    unsupported = [
        cfg(model="cnn", hidden=(4, 4)),
        cfg(norm="noisy_batch"),
        cfg(norm="batch_scratch"),
    ]
    records = train_group(unsupported, device="cpu")
    assert [r.status for r in records] == ["finished"] * 3
    assert calls == []
    (rec,) = train_group([cfg()], device="cpu")
    assert rec.status == "finished" and len(calls) == N_TRAIN // 32  # every step
    calls.clear()  # the per-sample norms and Ghost BN: one stack of four, every step
    kinds = ("layer", "ghost_batch", "group", "batch")
    records = train_group([cfg(norm=n, num_groups=4, ghost_batch_size=16) for n in kinds])
    assert [r.status for r in records] == ["finished"] * 4
    assert calls == [4] * (N_TRAIN // 32)
