"""bnviz.saved: final weights kept when training ends, and the 2-D loss slice taken from them
later equals the one the engine records at the end of a run."""

from __future__ import annotations

import pytest
import torch

from bnviz import saved
from bnviz.config import RunConfig
from bnviz.train import make_stacks, train_group

BASE = RunConfig(dataset="digits", hidden=(24, 16), epochs=1, batch_size=64, record_every=5)


def _flat_close(a: list, b: list) -> None:
    for ra, rb in zip(a, b, strict=True):
        assert ra == pytest.approx(rb, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("norm", ["batch", "noisy_batch", "layer"])
def test_slice_from_saved_weights_equals_the_engines(tmp_path, norm):
    """A mixed stack (norm first, then a plain run): every run's slice, rebuilt alone from the
    saved file, is the slice the engine took at the end in the stack."""
    group = [BASE.replace(norm=norm, measures="landscape"), BASE.replace(measures="landscape")]
    path = tmp_path / "w.pt"
    recs = train_group(group, device="cpu", on_end=lambda stacks: saved.save(stacks, path))
    assert all(r.status == "finished" for r in recs)
    got = saved.slice_rows(path, [0, 1])
    for i, rec in enumerate(recs):
        (want,) = rec.slice
        (row,) = got[i]
        assert row["step"] == want["step"]
        assert row["alphas"] == want["alphas"] and row["betas"] == want["betas"]
        _flat_close(row["loss"], want["loss"])
        assert row["loss_center"] == pytest.approx(want["loss_center"], rel=1e-4)


def test_a_stopped_group_keeps_the_weights_it_stopped_at(tmp_path):
    path = tmp_path / "w.pt"
    steps = iter(range(10_000))
    recs = train_group(
        [BASE.replace(epochs=50)],
        device="cpu",
        should_stop=lambda: next(steps) >= 7,
        on_end=lambda stacks: saved.save(stacks, path),
    )
    assert recs[0].status == "cancelled"
    entry = saved.saved_runs(path)[0]
    assert entry["step"] == 7
    stack = saved.restore(entry)
    torch.testing.assert_close(stack.opt.flat, entry["flat"])
    # The restored network is the trained one, not the seed's initial weights.
    (untrained,) = make_stacks([BASE], torch.device("cpu"))
    assert not torch.equal(stack.opt.flat, untrained.opt.flat)


def test_diverged_runs_are_not_saved(tmp_path):
    path = tmp_path / "w.pt"
    group = [
        BASE.replace(lr=50.0, activation="linear", norm="none"),
        BASE.replace(norm="none", activation="linear"),
    ]
    recs = train_group(group, device="cpu", on_end=lambda stacks: saved.save(stacks, path))
    assert [r.status for r in recs] == ["diverged", "finished"]
    assert set(saved.saved_runs(path)) == {1}
    assert set(saved.slice_rows(path, [0, 1])) == {1}


def test_missing_damaged_and_mismatched_files_say_why(tmp_path):
    with pytest.raises(saved.SavedWeightsError, match="not kept"):
        saved.saved_runs(tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00not a torch file")
    with pytest.raises(saved.SavedWeightsError, match="could not be read"):
        saved.saved_runs(bad)
    other = tmp_path / "other.pt"
    torch.save({"format": 99, "runs": {}}, other)
    with pytest.raises(saved.SavedWeightsError, match="unknown format"):
        saved.saved_runs(other)
    path = tmp_path / "w.pt"
    train_group([BASE], device="cpu", on_end=lambda stacks: saved.save(stacks, path))
    entry = saved.saved_runs(path)[0]
    with pytest.raises(saved.SavedWeightsError, match="do not fit"):
        saved.restore({**entry, "config": {**entry["config"], "hidden": [8]}})


def test_slice_of_each_run_of_a_stack_of_several_norms(tmp_path):
    """BN, LN, GN and no norm in one stack (one step of four runs): each run, rebuilt alone
    from its part of the flat buffer, has the slice the engine took in the stack."""
    group = [
        BASE.replace(norm=n, measures="landscape") for n in ("batch", "layer", "group", "none")
    ]
    path = tmp_path / "w.pt"
    recs = train_group(group, device="cpu", on_end=lambda stacks: saved.save(stacks, path))
    got = saved.slice_rows(path, range(4))
    for i, rec in enumerate(recs):
        _flat_close(got[i][0]["loss"], rec.slice[0]["loss"])
