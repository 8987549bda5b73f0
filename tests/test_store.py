"""The run store: validation of everything read back, the old JSON import, failing writes,
interrupted groups, ownership. (Killing real servers: test_faults.py.)"""

from __future__ import annotations

import json
import sqlite3

import pytest

from bnviz.config import RunConfig, to_dict
from bnviz.jobs import JobManager, NotOwner
from bnviz.records import RunRecord
from bnviz.store import INTERRUPTED, RunStore, StoreError, check_row, parse_group
from tests.test_jobs import LONG, TINY, wait_for

HIST = {"step": 0, "epoch": 0.0, "train_loss": 2.3, "train_acc": 0.1, "test_loss": 2.3}
HIST["test_acc"] = None
LAYER = {"step": 0, "layer": 1, "point": "act_in", "mean": 0.0, "std": 1.0, "p50": 0.1}
LAYER |= {"p15": -1.0, "p85": 1.0}
LAYER |= {"quantiles": [0.0] * 9, "hist": {"edges": [0.0, 1.0], "counts": [4]}}
PARAM = {"step": 0, "layer": 1, "grad_norm": 0.1, "norm": {"weight": {"mean": 1.0}}}


def group(**changes) -> dict:
    run = {
        "config": to_dict(TINY),
        "status": "finished",
        "history": [HIST],
        "layers": [LAYER],
        "params": [PARAM],
    }
    d = {"id": "20250101-000000-abcdef", "name": "g", "created": 1.7e9, "runs": [run]}
    for k, v in changes.items():
        if k.startswith("run_"):
            run[k[4:]] = v
        else:
            d[k] = v
    return d


def deep(n: int) -> str:
    return "[" * n + "]" * n


BAD_GROUPS = {  # the shapes that crashed pages (issue #14), and a few more
    "config is text": group(run_config="abc"),
    "created is text": group(created="yesterday"),
    "created is 1e20": group(created=1e20),
    "no runs": group(runs=[]),
    "runs is a dict": group(runs={}),
    "seconds is text": group(run_seconds="x"),
    "status unknown": group(run_status="exploded"),
    "id is a path": group(id="../x"),
    "name is a list": group(name=["a"]),
    "diverged_step text": group(run_diverged_step="7"),
    "history not a list": group(run_history={"step": 0}),
    "a list": [1, 2],
}


@pytest.mark.parametrize("case", BAD_GROUPS)
def test_bad_groups_are_refused_with_a_reason(case):
    with pytest.raises(StoreError):
        parse_group(BAD_GROUPS[case], "file.json")


@pytest.mark.parametrize(
    "kind,row",
    [
        ("history", {"epoch": 1.0}),  # no step
        ("history", {"step": 0}),  # no epoch
        ("history", {**HIST, "test_acc": "x"}),
        ("history", {**HIST, "step": True}),
        ("history", {**HIST, "train_loss": 10**400}),
        ("layers", {**LAYER, "point": "elsewhere"}),
        ("layers", {**LAYER, "layer": "1"}),
        ("layers", {**LAYER, "hist": {"edges": "abc", "counts": []}}),
        ("layers", {**LAYER, "quantiles": [[1]]}),
        ("params", {**PARAM, "norm": {"weight": 3}}),
        ("params", "not a row"),
        ("elsewhere", HIST),
    ],
)
def test_bad_rows_are_refused(kind, row):
    assert not check_row(kind, row)


def test_good_rows_pass_and_bad_rows_are_skipped_by_name():
    assert check_row("history", HIST) and check_row("layers", LAYER)
    assert check_row("params", PARAM)
    g, notes = parse_group(group(run_history=[HIST, {"step": "x"}, HIST]), "f.json")
    assert len(g.runs[0].history) == 2
    assert notes == ["f.json run 1: 1 damaged history rows skipped"]


def test_old_json_store_is_imported_once_and_bad_files_are_named(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "good.json").write_text(json.dumps(group(id="20250101-000000-aaaaaa")))
    (runs / "evil.json").write_text(json.dumps(group(id="../outside")))  # id refused: file name
    (runs / "broken.json").write_text("{not json")
    (runs / "nested.json").write_text(deep(100_000))
    (runs / "wrong.json").write_text(json.dumps(group(run_config="abc")))
    (runs / ".half.json.tmp").write_text("")  # the old store's interrupted write
    victim = tmp_path / "outside.json"
    victim.write_text("keep me")
    m = JobManager(runs_dir=runs, warm=False)
    try:
        assert sorted(m.jobs) == ["20250101-000000-aaaaaa", "evil"]
        text = "\n".join(m.problems)
        for name in ("broken.json", "nested.json", "wrong.json"):
            assert f"old run file {name}" in text
        assert "nested too deeply" in text
        assert not (runs / ".half.json.tmp").exists()
        m.delete("evil")
        assert victim.read_text() == "keep me"  # delete never follows a path from a file
    finally:
        m.shutdown()
    again = JobManager(runs_dir=runs, warm=False)  # imported once: the deleted one stays gone
    try:
        assert sorted(again.jobs) == ["20250101-000000-aaaaaa"]
    finally:
        again.shutdown()


def test_damaged_database_rows_are_skipped_by_name(tmp_path):
    m = JobManager(runs_dir=tmp_path, warm=False)
    gid = m.submit([TINY])
    wait_for(lambda: not m.get(gid).active, what="finish")
    m.shutdown()
    db = sqlite3.connect(tmp_path / "runs.sqlite")
    with db:
        db.execute("UPDATE rows SET data=? WHERE kind='history' AND seq=1", (deep(50_000),))
        db.execute("UPDATE rows SET data='{\"step\": \"x\"}' WHERE kind='layers' AND seq=0")
        db.execute(
            "INSERT INTO groups VALUES ('foreign', 'x', '', 'yesterday', NULL, NULL, '', "
            "'closed', NULL)"
        )
        db.execute("INSERT INTO runs VALUES ('foreign', 0, '\"abc\"', 'finished', '', '', 0, NULL)")
    db.close()
    again = JobManager(runs_dir=tmp_path, warm=False)
    try:
        assert list(again.jobs) == [gid]
        text = "\n".join(again.problems)
        assert "stored group 'foreign'" in text and "skipped" in text
        again.get(gid).snapshot()  # rows are read when shown: their problems come then
        assert f"stored group '{gid}'" in "\n".join(again.problems)
        before = len(m.get(gid).runs[0].history)
        assert len(again.get(gid).runs[0].history) == before - 1
    finally:
        again.shutdown()


def test_rows_are_written_while_a_group_trains(tmp_path):
    m = JobManager(runs_dir=tmp_path, warm=False, flush_s=0.2)
    try:
        gid = m.submit([LONG])
        wait_for(lambda: len(m.get(gid).runs[0].history) > 3, what="rows")

        def rows_stored() -> bool:
            groups, _ = RunStore(tmp_path).load(gid)
            return bool(groups) and len(groups[0].runs[0].history) >= 3

        wait_for(rows_stored, what="rows in the store while it trains")
        stored, _ = RunStore(tmp_path).load(gid)
        assert stored[0].state == "running" and len(stored[0].runs[0].history) >= 3
        assert stored[0].runs[0].status == "running"
    finally:
        m.shutdown()
    stored, _ = RunStore(tmp_path).load(gid)
    assert stored[0].state == "closed" and stored[0].runs[0].status == "interrupted"
    assert "shut down" in stored[0].runs[0].message


def test_groups_left_running_are_marked_interrupted_at_start(tmp_path):
    store = RunStore(tmp_path)
    run = RunRecord(TINY, status="running", history=[HIST])
    g = parse_group(group(), "x")[0]
    g.runs = [run]
    store.save(g, "running", [(0, "history", 0, HIST)], owner="tab-1")
    store.close()
    m = JobManager(runs_dir=tmp_path, warm=False)
    try:
        job = m.get(g.id)
        assert job.state == "interrupted" and not job.active
        assert job.runs[0].status == "interrupted" and job.runs[0].message == INTERRUPTED
        assert job.runs[0].history == [HIST] and job.owner == "tab-1"
    finally:
        m.shutdown()


def test_failing_writes_are_reported_not_swallowed(tmp_path, caplog):
    m = JobManager(runs_dir=tmp_path, warm=False)
    try:
        m.store.conn.execute("PRAGMA max_page_count=1")  # the disk is full from now on
        gid = m.submit([TINY])
        wait_for(lambda: not m.get(gid).active, what="finish")
        assert m.store_error and "full" in m.store_error
        assert m.get(gid).runs[0].status == "finished"  # the run itself is not lost
        assert "cannot save group" in caplog.text
    finally:
        m.shutdown()


def test_unwritable_store_is_reported(tmp_path):
    """A store that cannot be opened (here a file where its folder should be: read-only
    folders do not stop root) trains in memory and says so."""
    (tmp_path / "runs").write_text("")
    m = JobManager(runs_dir=tmp_path / "runs", warm=False)
    try:
        assert m.store_error and "cannot open the run store" in m.store_error
        assert m.store.error in m.store_error and not m.problems  # said once, not twice
        gid = m.submit([TINY.replace(epochs=1)])  # trains anyway, in memory
        wait_for(lambda: not m.get(gid).active, what="finish")
        assert m.get(gid).runs[0].status == "finished"
    finally:
        m.shutdown()


def test_only_the_owner_stops_renames_deletes(tmp_path):
    m = JobManager(runs_dir=tmp_path, warm=False)
    try:
        gid = m.submit([LONG], owner="tab-a")
        assert m.owns(gid, "tab-a") and not m.owns(gid, "tab-b") and not m.owns(gid, "")
        for act in (m.stop, m.delete, lambda g, by: m.rename(g, "x", by=by)):
            with pytest.raises(NotOwner):
                act(gid, by="tab-b")
        assert m.get(gid).active and m.get(gid).name != "x"
        m.rename(gid, "mine", by="tab-a")
        m.stop(gid, by="tab-a")
        wait_for(lambda: not m.get(gid).active, what="stop")
        m.delete(gid, by="tab-a")
        assert m.get(gid) is None
    finally:
        m.shutdown()


def test_a_spare_worker_that_dies_is_replaced(tmp_path):
    m = JobManager(runs_dir=tmp_path, warm=True)
    try:
        wait_for(m.warm_ready, what="warm worker")
        first = m._warm
        first.process.kill()
        first.process.wait()
        wait_for(m.warm_ready, timeout=60, what="a new warm worker")
        assert m._warm is not first
    finally:
        m.shutdown()


def test_group_too_big_or_impossible_is_refused_before_training(tmp_path):
    from bnviz.config import ConfigError
    from bnviz.limits import check_group

    m = JobManager(runs_dir=tmp_path, warm=False)
    try:
        with pytest.raises(ConfigError, match="larger than the 1437 training samples"):
            m.submit([RunConfig(batch_size=5000)])
        with pytest.raises(ConfigError, match="million weights"):
            m.submit([RunConfig(hidden=(4096,) * 16)] * 16)
        assert not m.jobs
    finally:
        m.shutdown()
    assert "device=mps is not available" in check_group([RunConfig(device="mps")], ["cpu"])[0]
    assert check_group([RunConfig(device="cpu")], ["cpu"]) == []
