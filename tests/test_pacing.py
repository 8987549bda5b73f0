"""Records paced by the data: on a training set larger than config.PACE_SAMPLES a run records
as often per epoch as on PACE_SAMPLES samples, at every epoch's end too, and its test passes
other than at an epoch's end use a fixed subset that the row names (test_samples); digits is
not paced."""

from __future__ import annotations

import pytest

from bnviz import recorders
from bnviz.config import PACE_SAMPLES, RunConfig
from bnviz.data import load_dataset
from bnviz.train import train_group

DIGITS_TRAIN = load_dataset("digits").n_train
MOONS = dict(dataset="moons", n_samples=4000, hidden=(16, 16), batch_size=100, epochs=2)
MOONS_TRAIN, MOONS_TEST = 3200, 800  # test_fraction 0.2


def test_the_schedule_scales_with_the_training_set() -> None:
    assert DIGITS_TRAIN <= PACE_SAMPLES  # the default data set keeps today's schedule
    for batch in (2, 6, 32, 60, 128):
        c = RunConfig(batch_size=batch)
        assert c.record_steps(DIGITS_TRAIN) == c.record_steps()
        assert not c.paced(DIGITS_TRAIN)
    # 50,000 samples at batch 60: every 20,000 samples (333 steps), not every 600 (10 steps)
    assert RunConfig().record_steps(50_000) == 333
    assert RunConfig(batch_size=500).record_steps(50_000) == 40
    # as many records an epoch as a set of PACE_SAMPLES samples
    for n in (3000, 50_000, 60_000):
        c = RunConfig(batch_size=100)
        per_epoch = (n // 100) / c.record_steps(n)
        assert per_epoch == pytest.approx(PACE_SAMPLES / 600, rel=0.1)


def test_a_paced_run_records_at_epoch_ends_and_names_its_test_subset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recorders, "TEST_SUBSET", 200)
    pair = [RunConfig(**MOONS), RunConfig(**MOONS, norm="none", seed=1)]
    paced = train_group(pair, device="cpu")
    monkeypatch.setattr(recorders, "TEST_SUBSET", 10**9)  # the whole test set every time
    whole = train_group(pair, device="cpu")
    every = RunConfig(**MOONS).record_steps(MOONS_TRAIN)
    assert every == 13  # 600 · 3200/1500 samples at batch 100
    for a, b in zip(paced, whole):
        assert a.status == b.status == "finished"
        steps = [r["step"] for r in a.history]
        assert steps == [0, 13, 26, 32, 39, 52, 64]  # …, and each epoch's end (32 steps)
        assert [r["step"] for r in b.history] == steps
        for r, w in zip(a.history, b.history):
            at_end = r["step"] > 0 and r["step"] % 32 == 0  # step 0: a subset too
            assert ("test_samples" in r) == (not at_end), r
            assert "test_samples" not in w
            # training is the same; only the test columns between epochs differ
            assert (r["train_loss"], r["train_acc"]) == (w["train_loss"], w["train_acc"])
            if at_end:
                assert (r["test_loss"], r["test_acc"]) == (w["test_loss"], w["test_acc"])
            else:
                assert r["test_samples"] == 200
        assert any(r["test_loss"] != w["test_loss"] for r, w in zip(a.history, b.history))


def test_an_unpaced_run_records_every_interval_on_the_whole_test_set() -> None:
    """The control: digits (under PACE_SAMPLES) keeps record_steps() and no test subset."""
    (rec,) = train_group([RunConfig(hidden=(16,), batch_size=60, epochs=2)], device="cpu")
    total = 2 * (DIGITS_TRAIN // 60)
    assert [r["step"] for r in rec.history] == [*range(0, total, 10), total]
    assert not any("test_samples" in r for r in rec.history)
