"""The run store's guarantees under attack (issue #22): a full disk is retried and said, an
unreadable store deletes nothing, a dead server's groups are told from a live one's, one schema
on both ends, fair use of the training slots, rows read on demand, and the smaller holes.
Each test fails on the store before #22 (see docs/store.md)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bnviz import cli
from bnviz.jobs import ROWS_CACHE, JobManager, QueueFull, StoreBusy, StoredRuns
from bnviz.records import RunRecord
from bnviz.store import DB_NAME, RunStore, StoredGroup
from tests.test_jobs import LONG, TINY, stored, wait_for

ROOT = Path(__file__).resolve().parents[1]


def one_line_error(code: int, err: str) -> bool:
    return code == 2 and err.startswith("bnviz: error: ") and err.count("\n") == 1


def put_group(runs: Path, gid: str, rows: int = 3, owner: str = "cli") -> None:
    """A closed group of two runs with `rows` history rows each, written as the CLI does."""
    hist = [
        {"step": i, "epoch": i / 10, "train_loss": 1.0, "train_acc": 0.5, "test_loss": 1.0}
        | {"test_acc": 0.5}
        for i in range(rows)
    ]
    runs_ = [RunRecord(TINY, "finished", history=hist), RunRecord(TINY, "finished", history=hist)]
    g = StoredGroup(gid, "g", runs_, time.time(), time.time(), time.time())
    store = RunStore(runs)
    assert store.save(
        g, "closed", [(i, "history", s, h) for i in (0, 1) for s, h in enumerate(hist)], owner
    )
    store.close()


# ---------------------------------------------------------------------------------------------
# 1. Nothing lost quietly
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB filesystem of its own (tmpfs; root only), to fill."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True
    )
    if r.returncode:
        pytest.skip("cannot mount a small filesystem here (needs root)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(folder: Path) -> Path:
    """Write a file until the disk is full; returns it (delete it to free the space)."""
    filler = folder / "filler"
    with open(filler, "wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    with contextlib.suppress(OSError), open(filler, "ab") as f:  # the last bytes
        while True:
            f.write(b"\0" * 512)
            f.flush()
    return filler


def test_a_full_disk_is_retried_said_and_loses_nothing(small_disk):
    """The disk fills while a group trains: the manager says so (store_error, which the live
    view draws) until the group's rows are saved; once space returns every row is written, and
    after a restart the group is done with all of them."""
    runs = small_disk / "runs"
    m = JobManager(runs_dir=runs, warm=False, flush_s=0.2)
    try:
        filler = fill(small_disk)
        gid = m.submit([TINY, TINY.replace(norm="none")])
        wait_for(lambda: m.store_error, what="the full disk to be said")
        assert "full" in m.store_error
        wait_for(lambda: not m.get(gid).active, what="the group to end")
        assert m.store_error and gid in m.unsaved  # still said: its rows are not saved yet
        have = len(m.get(gid).runs[0].history)
        filler.unlink()  # space returns
        wait_for(lambda: m.store_error is None, what="the retried write")
    finally:
        m.shutdown()
    again = JobManager(runs_dir=runs, warm=False)
    try:
        job = again.get(gid)
        assert job is not None and job.state == "done"
        assert [r.status for r in job.runs] == ["finished", "finished"]
        assert len(job.runs[0].history) == have and job.runs[1].layers
    finally:
        again.shutdown()


def test_an_error_clears_only_when_its_rows_are_saved(tmp_path):
    """Other writes that succeed (the lease's heartbeat, another group) do not clear the error
    of a group whose rows are still unsaved."""
    m = JobManager(runs_dir=tmp_path, warm=False, flush_s=0.2)
    try:
        pages = m.store.conn.execute("PRAGMA page_count").fetchone()[0]
        m.store.conn.execute(f"PRAGMA max_page_count={pages}")  # full: no page more
        gid = m.submit([LONG.replace(epochs=3)], owner="a")
        wait_for(lambda: m.store_error, what="a failed write")
        wait_for(lambda: m.store.error is None, what="a write that fits (the heartbeat)")
        assert m.store_error and gid in m.unsaved
        m.stop(gid)
        wait_for(lambda: not m.get(gid).active, what="stop")
        m.store.conn.execute("PRAGMA max_page_count=1073741823")  # space again
        wait_for(lambda: m.store_error is None, what="the retried write")
        assert len(stored(tmp_path, gid).runs[0].history) == len(m.get(gid).runs[0].history)
    finally:
        m.shutdown()


def test_the_end_is_written_with_the_last_rows(tmp_path, monkeypatch):
    """A server that dies after its runs finished but before the group's final write (here:
    that write never comes) still has the group stored closed, finished, with every row."""
    monkeypatch.setattr(JobManager, "_save", lambda self, job: None)
    m = JobManager(runs_dir=tmp_path, warm=False, flush_s=60)  # no periodic write either
    try:
        gid = m.submit([TINY, TINY.replace(norm="none")])
        job = m.get(gid)
        wait_for(lambda: all(r.status == "finished" for r in job.snapshot()), what="finish")
        wait_for(lambda: stored(tmp_path, gid).state == "closed", what="the end written")
        g = stored(tmp_path, gid)
        assert [r.status for r in g.runs] == ["finished", "finished"]
        assert len(g.runs[0].history) == len(job.snapshot()[0].history)
    finally:
        m.shutdown()


# ---------------------------------------------------------------------------------------------
# 2. Never delete what could not be read
# ---------------------------------------------------------------------------------------------


def _corrupt(db: Path) -> None:
    with open(db, "r+b") as f:
        f.seek(0)
        f.write(b"this is not sqlite" * 4)


def _foreign(db: Path) -> None:
    db.unlink()
    c = sqlite3.connect(db)
    c.execute("CREATE TABLE notes (x TEXT)")
    c.commit()
    c.close()


def _dropped(db: Path) -> None:
    c = sqlite3.connect(db)
    c.execute("DROP TABLE runs")
    c.commit()
    c.close()


def _empty(db: Path) -> None:
    db.write_bytes(b"")


DAMAGE = {"corrupt": _corrupt, "foreign": _foreign, "dropped table": _dropped, "empty": _empty}


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_damaged_store_deletes_no_weights_and_is_an_error(kind, tmp_path, capsys, monkeypatch):
    put_group(tmp_path, "20250101-000000-aaaaaa")
    weights = tmp_path / "weights"
    weights.mkdir()
    kept = [weights / "20250101-000000-aaaaaa.pt", weights / "20200101-000000-orphan.pt"]
    for p in kept:
        p.write_bytes(b"weights")
    for p in tmp_path.glob(f"{DB_NAME}-*"):
        p.unlink()
    DAMAGE[kind](tmp_path / DB_NAME)
    m = JobManager(runs_dir=tmp_path, warm=False)
    try:
        assert m.store_error and "cannot open the run store" in m.store_error
    finally:
        m.shutdown()
    assert all(p.exists() for p in kept)
    monkeypatch.setenv("BNVIZ_RUNS", str(tmp_path))
    for argv in (["runs"], ["runs", "--json"]):
        code = cli.main(argv)
        captured = capsys.readouterr()
        assert one_line_error(code, captured.err), captured.err
        assert captured.out == ""  # never "no stored groups", never []


def test_a_locked_store_deletes_nothing_fails_fast_and_is_taken_when_free(tmp_path):
    put_group(tmp_path, "20250101-000000-aaaaaa")
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "20250101-000000-aaaaaa.pt").write_bytes(b"weights")
    holder = sqlite3.connect(tmp_path / DB_NAME)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    t = time.monotonic()
    m = JobManager(runs_dir=tmp_path, warm=False, flush_s=0.2)
    try:
        started = time.monotonic() - t
        assert started < 5.0, f"a locked store held the server {started:.1f} s"
        assert m.store_error and "locked" in m.store_error
        assert (weights / "20250101-000000-aaaaaa.pt").exists()
        holder.rollback()
        holder.close()  # the lock goes: the server takes the store then
        wait_for(lambda: m.get("20250101-000000-aaaaaa") is not None, what="the store taken")
        assert m.store_error is None
        assert (weights / "20250101-000000-aaaaaa.pt").exists()
    finally:
        m.shutdown()


def test_a_skipped_groups_weights_are_kept(tmp_path):
    put_group(tmp_path, "20250101-000000-aaaaaa")
    c = sqlite3.connect(tmp_path / DB_NAME)
    c.execute("UPDATE groups SET created='yesterday'")  # one bad field: the group is skipped
    c.commit()
    c.close()
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "20250101-000000-aaaaaa.pt").write_bytes(b"weights")
    (weights / "20200101-000000-orphan.pt").write_bytes(b"no group")
    (weights / "20250101-000000-aaaaaa.tmp").write_bytes(b"half")
    m = JobManager(runs_dir=tmp_path, warm=False)
    try:
        assert m.get("20250101-000000-aaaaaa") is None and m.problems
    finally:
        m.shutdown()
    assert sorted(p.name for p in weights.iterdir()) == ["20250101-000000-aaaaaa.pt"]


# ---------------------------------------------------------------------------------------------
# 3. Liveness in the store
# ---------------------------------------------------------------------------------------------


def test_a_second_server_on_one_store_is_refused(tmp_path):
    m = JobManager(runs_dir=tmp_path, warm=False)
    try:
        with pytest.raises(StoreBusy, match=f"another bnviz server \\(pid {os.getpid()}"):
            JobManager(runs_dir=tmp_path, warm=False)
    finally:
        m.shutdown()
    JobManager(runs_dir=tmp_path, warm=False).shutdown()  # the lease was released


def test_the_cli_tells_a_dead_servers_groups_from_live_ones(tmp_path, monkeypatch, capsys):
    from tests.test_faults import Server

    runs = tmp_path / "runs"
    monkeypatch.setenv("BNVIZ_RUNS", str(runs))
    server = Server(runs, "long")
    gid = server.wait(lambda m: "gid" in m)["gid"]
    server.wait(lambda m: m.get("rows", 0) >= 3)
    wait_for(lambda: (stored(runs, gid) or StoredGroup("", "", [], 0)).state == "running")

    def listed() -> dict:
        assert cli.main(["runs", "--json"]) == 0
        (item,) = json.loads(capsys.readouterr().out)
        return item

    item = listed()
    assert item["state"] == "running" and item["server"]["pid"] == server.proc.pid
    assert cli.main(["runs", "delete", gid]) == 2  # a live server trains it
    assert "live server" in capsys.readouterr().err
    server.kill(signal.SIGKILL)
    item = listed()
    assert item["state"] == "closed" and item["server"] is None
    assert {r["status"] for r in item["runs"]} == {"interrupted"}
    assert cli.main(["runs", "delete", gid]) == 0


# ---------------------------------------------------------------------------------------------
# 4. One schema, checked on both ends
# ---------------------------------------------------------------------------------------------


def test_the_cli_refuses_before_training_a_group_the_store_would_not_keep(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("BNVIZ_RUNS", str(tmp_path))
    seeds = ",".join(str(i) for i in range(70))
    argv = ["train", "--quiet", "--store", "--set", "epochs=1", "--vary", f"seed={seeds}"]
    t = time.monotonic()
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert one_line_error(code, err) and "at most 64" in err, err
    assert time.monotonic() - t < 10  # refused, not trained
    assert not (tmp_path / DB_NAME).exists() or RunStore(tmp_path).ids() == set()


# ---------------------------------------------------------------------------------------------
# 5. Fair use
# ---------------------------------------------------------------------------------------------


def test_the_slice_takes_a_training_slot(tmp_path):
    m = JobManager(max_running=1, runs_dir=tmp_path, warm=False)
    try:
        gid = m.submit([TINY])
        wait_for(lambda: not m.get(gid).active, what="finish")
        m.compute_slice(gid)
        other = m.submit([TINY], owner="b")
        assert m.running() == 1 and m.position(other) == 1  # waits for the slice's slot
        wait_for(lambda: m.slice_state(gid) is None, what="the slice")
        wait_for(lambda: not m.get(other).active, what="the next group")
        assert m.get(gid).snapshot()[0].slice
    finally:
        m.shutdown()


def test_each_browser_queues_at_most_two_groups_and_takes_turns(tmp_path):
    m = JobManager(max_running=1, runs_dir=tmp_path, warm=False)
    try:
        first = m.submit([LONG], owner="a")
        a1, a2 = m.submit([TINY], owner="a"), m.submit([TINY], owner="a")
        with pytest.raises(QueueFull, match="2 groups waiting"):
            m.submit([TINY], owner="a")
        b1 = m.submit([TINY], owner="b")  # another browser still may
        m.stop(first, by="a")
        # a trained last: b's group goes before a's second and third
        wait_for(lambda: not m.get(b1).active, what="b's group")
        assert m.get(a2).started is None or m.get(a2).started >= m.get(b1).started
        assert m.get(a1).started is not None and m.get(a1).started >= m.get(b1).started
        wait_for(lambda: not m.get(a2).active, what="a's groups")
    finally:
        m.shutdown()


# ---------------------------------------------------------------------------------------------
# 7. Rows on demand; 9. groups the CLI stored or deleted meanwhile
# ---------------------------------------------------------------------------------------------


def test_stored_rows_are_read_when_shown_and_few_are_kept(tmp_path):
    ids = [f"20250101-000000-{i:06d}" for i in range(ROWS_CACHE + 4)]
    for gid in ids:
        put_group(tmp_path, gid, rows=5)
    m = JobManager(runs_dir=tmp_path, warm=False)
    try:
        jobs = [m.get(g) for g in ids]
        assert all(isinstance(j.runs, StoredRuns) and not j.runs.loaded for j in jobs)
        assert [len(j.runs) for j in jobs] == [2] * len(ids)  # a list needs no rows
        for j in jobs:
            assert len(j.snapshot()[0].history) == 5
        assert sum(j.runs.loaded for j in jobs) == ROWS_CACHE
        assert len(jobs[0].snapshot()[1].history) == 5  # read again when shown again
    finally:
        m.shutdown()


def test_a_running_server_sees_what_the_cli_stores_and_deletes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BNVIZ_RUNS", str(tmp_path))
    m = JobManager(runs_dir=tmp_path, warm=False, flush_s=0.2)
    m.poll_s = 0.2
    try:
        argv = ["train", "--quiet", "--store", "--set", "hidden=8", "--set", "epochs=1"]
        assert cli.main(argv) == 0
        gid = capsys.readouterr().out.split("stored as group ")[1].split()[0]
        wait_for(lambda: m.get(gid) is not None, what="the CLI's group on the server")
        assert m.get(gid).owner == "cli"
        assert cli.main(["runs", "delete", gid]) == 0
        wait_for(lambda: m.get(gid) is None, what="the CLI's delete on the server")
    finally:
        m.shutdown()


def test_a_group_deleted_elsewhere_is_not_written_back_by_its_slice(tmp_path):
    m = JobManager(runs_dir=tmp_path, warm=False)
    try:
        gid = m.submit([TINY])
        wait_for(lambda: not m.get(gid).active, what="finish")
        m.compute_slice(gid)
        other = RunStore(tmp_path)
        assert other.delete(gid)  # e.g. `python -m bnviz runs delete` meanwhile
        wait_for(lambda: m.slice_state(gid) is None, what="the slice")
        assert gid not in RunStore(tmp_path).ids() and m.get(gid) is None
    finally:
        m.shutdown()


def test_weights_of_a_group_deleted_while_it_trained_do_not_linger(tmp_path):
    m = JobManager(runs_dir=tmp_path, warm=False)
    try:
        gid = m.submit([LONG])
        wait_for(lambda: m.get(gid).snapshot()[0].history, what="first rows")
        m.delete(gid)
        wait_for(lambda: m.running() == 0, what="worker gone")
        wait_for(lambda: not m.weights_path(gid).exists(), what="its weights removed")
        assert not m.weights_path(gid).with_suffix(".tmp").exists()
    finally:
        m.shutdown()


def test_an_export_in_the_store_folder_is_refused_and_never_imported(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BNVIZ_RUNS", str(tmp_path))
    put_group(tmp_path, "20250101-000000-aaaaaa")
    code = cli.main(["runs", "export", "20250101", "--out", str(tmp_path / "x.json")])
    assert one_line_error(code, capsys.readouterr().err)
    (tmp_path / "x.json").write_text(json.dumps({"runs": [{"config": {}, "history": []}]}))
    m = JobManager(runs_dir=tmp_path, warm=False)
    try:
        assert sorted(m.jobs) == ["20250101-000000-aaaaaa"]  # not a group dated 1970
        assert any("x.json is not a group of the old store" in p for p in m.problems)
    finally:
        m.shutdown()


# ---------------------------------------------------------------------------------------------
# 9. CLI inputs that gave tracebacks or hung
# ---------------------------------------------------------------------------------------------


def cli_run(argv: list[str], env: dict | None = None, timeout: float = 60) -> tuple[int, str]:
    """The CLI in a process of its own: a hang is a timeout, not a stuck test run."""
    p = subprocess.run(
        [sys.executable, "-m", "bnviz", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    return p.returncode, p.stderr


@pytest.mark.parametrize(
    "case",
    ["out name > 255", "config name > 255", "export name > 255", "threads", "dev zero"],
)
def test_cli_inputs_that_gave_tracebacks(case, tmp_path):
    long = str(tmp_path / ("x" * 300 + ".json"))
    (tmp_path / "zero.json").symlink_to("/dev/zero")
    put_group(tmp_path / "runs", "20250101-000000-aaaaaa")
    env = {"BNVIZ_RUNS": str(tmp_path / "runs")}
    tiny = ["train", "--quiet", "--set", "epochs=1", "--set", "hidden=8"]
    argv = {
        "out name > 255": [*tiny, "--out", long],
        "config name > 255": ["train", "--config", long],
        "export name > 255": ["runs", "export", "20250101", "--out", long],
        "threads": tiny,
        "dev zero": ["train", "--config", str(tmp_path / "zero.json")],
    }[case]
    if case == "threads":
        env["BNVIZ_THREADS"] = "four"
    code, err = cli_run(argv, env)
    assert one_line_error(code, err), err


def test_a_fifo_as_config_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "config.json"
    os.mkfifo(fifo)
    code, err = cli_run(["train", "--config", str(fifo)], timeout=30)
    assert one_line_error(code, err) and "not a regular file" in err, err


def test_three_vary_flags_of_a_million_runs_are_refused_at_once():
    values = ",".join(str(i) for i in range(100))
    argv = ["train", "--vary", f"seed={values}", "--vary", f"lr={values.replace(',', '.1,')}.1"]
    argv += ["--vary", "epochs=" + ",".join(str(i + 1) for i in range(100))]
    code, err = cli_run(argv, timeout=30)
    assert one_line_error(code, err) and "at most 64" in err, err
