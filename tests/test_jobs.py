"""JobManager with real worker processes: streaming, stop, queueing, crashes, persistence."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from bnviz.config import RunConfig
from bnviz.jobs import JobManager, RunState
from bnviz.store import RunStore

TINY = RunConfig(hidden=(16,), epochs=2, batch_size=64, record_every=2)
LONG = RunConfig(hidden=(64, 64), epochs=200, batch_size=32)


def stored(runs_dir, gid: str):
    """A group as the run store holds it (read beside a running server), or None."""
    groups, _ = RunStore(runs_dir).load(gid)
    return groups[0] if groups else None


def wait_for(pred, timeout: float = 60.0, what: str = "condition") -> None:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def manager(tmp_path):
    m = JobManager(max_running=1, runs_dir=tmp_path / "runs", warm=False)
    yield m
    m.shutdown()


def test_group_streams_and_finishes(manager, tmp_path):
    gid = manager.submit([TINY, TINY.replace(norm="none")])
    job = manager.get(gid)
    wait_for(lambda: not job.active, what="group to finish")
    runs = job.snapshot()
    assert [r.status for r in runs] == ["finished", "finished"]
    assert all(r.history and r.layers and r.params for r in runs)
    assert runs[0].history[-1]["epoch"] == pytest.approx(2.0)
    assert job.device == "cpu" and runs[0].device == "cpu"
    assert job.progress()[0] == 1.0
    # Persisted: a new manager on the same folder (one server per store: after this one)
    # sees the group with all its rows.
    manager.shutdown()
    again = JobManager(runs_dir=tmp_path / "runs", warm=False)
    loaded = again.get(gid)
    assert loaded is not None
    assert len(loaded.runs[0].history) == len(runs[0].history)
    assert loaded.labels() == ["norm=batch", "norm=none"]
    assert loaded.name == "hidden 16, batch_size 64, epochs 2 · norm batch vs none"
    again.shutdown()


def test_stop_is_idempotent_and_cancels(manager):
    gid = manager.submit([LONG])
    job = manager.get(gid)
    wait_for(lambda: job.snapshot()[0].history, what="first record")
    manager.stop(gid)
    manager.stop(gid)
    wait_for(lambda: not job.active, what="stop")
    run = job.snapshot()[0]
    assert run.status == "cancelled"
    assert run.history[-1]["epoch"] < LONG.epochs
    manager.stop(gid)  # after the end: still harmless


def test_cap_queues_groups_in_order(manager):
    first = manager.submit([LONG])
    second = manager.submit([TINY])
    third = manager.submit([TINY])
    assert manager.position(first) is None
    assert manager.position(second) == 1 and manager.position(third) == 2
    assert manager.get(second).state == "queued"
    manager.stop(third)  # stopping a queued group dequeues it
    assert manager.get(third).snapshot()[0].status == "cancelled"
    assert manager.position(second) == 1
    manager.stop(first)
    wait_for(lambda: not manager.get(second).active, what="queued group to run")
    assert manager.get(second).snapshot()[0].status == "finished"


def test_worker_crash_marks_runs_failed_not_server(manager):
    gid = manager.submit([LONG])
    job = manager.get(gid)
    wait_for(lambda: job.snapshot()[0].history, what="first record")
    worker = manager.workers[gid]
    os.kill(worker.process.pid, signal.SIGKILL)
    wait_for(lambda: not job.active, what="crash to be noticed")
    run = job.snapshot()[0]
    assert run.status == "failed"
    assert "stopped unexpectedly" in run.message
    # The manager still works afterwards.
    gid2 = manager.submit([TINY])
    wait_for(lambda: not manager.get(gid2).active, what="next group")
    assert manager.get(gid2).snapshot()[0].status == "finished"


def test_bad_device_is_reported(manager):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the error path needs a machine without it")
    gid = manager.submit([TINY.replace(device="cuda")])
    job = manager.get(gid)
    wait_for(lambda: not job.active, what="failure")
    run = job.snapshot()[0]
    assert run.status == "failed" and "CUDA" in run.message


def test_rename_delete_and_damaged_files(manager, tmp_path):
    gid = manager.submit([TINY])
    wait_for(lambda: not manager.get(gid).active, what="finish")
    manager.rename(gid, "  my lecture run ")
    assert manager.get(gid).name == "my lecture run"
    (tmp_path / "runs" / "broken.json").write_text("{not json")
    assert stored(tmp_path / "runs", gid).name == "my lecture run"
    manager.delete(gid)
    assert manager.get(gid) is None
    assert not (tmp_path / "runs" / f"{gid}.json").exists()


def test_delete_while_training_stays_deleted(manager, tmp_path):
    gid = manager.submit([LONG])
    wait_for(lambda: manager.get(gid).runs[0].history, what="first rows")
    manager.delete(gid)
    wait_for(lambda: manager.running() == 0, what="worker gone")
    # the reader thread's last save comes before it ends
    reader = f"bnviz-read-{gid}"
    wait_for(lambda: all(t.name != reader for t in threading.enumerate()), what="reader gone")
    assert not (tmp_path / "runs" / f"{gid}.json").exists()
    assert stored(tmp_path / "runs", gid) is None


def test_runs_of_a_stack_arrive_together(manager):
    """The worker sends rows in whole steps: a page never sees one run a record ahead."""
    gid = manager.submit([LONG, LONG.replace(norm="none")])  # one stack, one step for both
    job = manager.get(gid)
    wait_for(lambda: job.runs[0].history, what="first rows")
    seen = set()
    end = time.time() + 3
    while time.time() < end:
        seen.add(tuple(len(r.history) for r in job.snapshot()))
        time.sleep(0.005)
    manager.stop(gid)
    assert all(a == b for a, b in seen), sorted(seen)[:5]
    assert len(seen) > 5  # it did grow while watched


def test_runstate_round_trip():
    r = RunState(TINY, status="diverged", diverged_step=7, history=[{"step": 0}])
    back = RunState.from_dict(r.to_dict())
    assert back.config == TINY and back.status == "diverged" and back.diverged_step == 7


def test_library_never_imports_streamlit():
    import subprocess
    import sys

    code = (
        "import sys, pkgutil, importlib, bnviz\n"
        "for m in pkgutil.iter_modules(bnviz.__path__):\n"
        "    if m.name != '__main__': importlib.import_module('bnviz.' + m.name)\n"
        "assert 'streamlit' not in sys.modules, 'bnviz imported streamlit'\n"
        "print(len(list(pkgutil.iter_modules(bnviz.__path__))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) >= 12  # every module was imported


@pytest.mark.parametrize("rows", [1, 2, 3, 200])
def test_json_chunks_equal_one_dumps(rows):
    import json

    from bnviz.jobs import json_chunks

    doc = {
        "id": "g",
        "empty": [],
        "runs": [{"history": [{"step": i, "acc": i / 7} for i in range(5)], "x": None}] * 3,
        "nested": [[1, 2], [3], []],
        "text": 'quote " and ünïcode',
    }
    assert "".join(json_chunks(doc, rows)) == json.dumps(doc, separators=(",", ":"))


def test_duty_cycle_sleeps_the_rest_of_each_slice():
    from bnviz.worker import DutyCycle

    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    throttle = DutyCycle(0.7, period=0.02, clock=lambda: now[0], sleep=sleep)
    for _ in range(1000):  # 1 ms steps
        now[0] += 0.001
        throttle()
    busy = 1.0
    assert busy / now[0] == pytest.approx(0.7, abs=0.01)
    assert all(s < 0.01 for s in slept)  # short pauses, not one long one
    never = DutyCycle(1.0, clock=lambda: now[0], sleep=sleep)
    n = len(slept)
    now[0] += 1.0
    never()
    assert len(slept) == n
    with pytest.raises(ValueError, match="duty"):
        DutyCycle(0.0)


def test_duty_cycle_holds_only_while_the_server_is_busy():
    """With `server_busy`, training sleeps its share only while the server needs the CPU: a
    lesson's page trains as fast as the CLI when no one else is served."""
    from bnviz.worker import DutyCycle

    now = [0.0]
    busy = [False]

    def sleep(s: float) -> None:
        now[0] += s

    throttle = DutyCycle(0.7, clock=lambda: now[0], sleep=sleep, server_busy=lambda: busy[0])
    for _ in range(500):
        now[0] += 0.001
        throttle()
    assert now[0] == pytest.approx(0.5)  # idle server: never slept
    busy[0] = True
    start = now[0]
    for _ in range(500):
        now[0] += 0.001
        throttle()
    assert 0.5 / (now[0] - start) == pytest.approx(0.7, abs=0.02)


def test_parent_load_reads_a_real_process():
    """ParentLoad measures a process's CPU from /proc: a child spinning is busy, one
    sleeping is not (the control)."""
    import subprocess
    import sys

    from bnviz.worker import ParentLoad

    if not os.path.exists(f"/proc/{os.getpid()}/stat"):
        pytest.skip("no /proc: the worker keeps its fixed duty cycle there")
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    rest = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for proc, expected in ((spin, True), (rest, False)):
            load = ParentLoad(share=0.25, window=0.3, pid=proc.pid)
            assert load.readable()
            t = time.monotonic()
            while time.monotonic() - t < 0.6:  # two windows
                load()
                time.sleep(0.05)
            assert load() is expected, proc.args
    finally:
        spin.kill()
        rest.kill()
    assert not ParentLoad(pid=2**22 + 12345).readable()  # no such process: the fixed cycle


def test_worker_duty_only_throttles_small_machines(monkeypatch):
    from bnviz.jobs import worker_duty

    monkeypatch.delenv("BNVIZ_WORKER_DUTY", raising=False)
    assert worker_duty(1, cores=8) == 1.0
    assert worker_duty(1, cores=2) == pytest.approx(0.7)  # while the server is busy
    assert worker_duty(2, cores=2) == pytest.approx(0.35)
    monkeypatch.setenv("BNVIZ_WORKER_DUTY", "1")
    assert worker_duty(1, cores=2) == 1.0
    for bad in ("abc", "0", "1.5"):  # a bad setting falls back to the default, with a warning
        monkeypatch.setenv("BNVIZ_WORKER_DUTY", bad)
        assert worker_duty(1, cores=2) == pytest.approx(0.7)


def test_slice_on_demand_for_an_ended_group(manager, tmp_path):
    """The final weights are kept when a group ends; the 2-D loss slice asked for afterwards
    joins the group's records and the store; deleting the group deletes the weights."""
    gid = manager.submit([LONG])
    job = manager.get(gid)
    assert "finished or been stopped" in manager.can_slice(gid)
    with pytest.raises(ValueError):
        manager.compute_slice(gid)
    wait_for(lambda: job.snapshot()[0].history, what="first record")
    manager.stop(gid)  # a stopped ("paused") run: measured at the weights it stopped at
    wait_for(lambda: not job.active, what="stop")
    assert manager.weights_path(gid).exists() and manager.can_slice(gid) is None
    assert not job.snapshot()[0].slice
    manager.compute_slice(gid)
    wait_for(lambda: manager.slice_state(gid) is None, what="the slice")
    (row,) = job.snapshot()[0].slice
    assert row["step"] == job.snapshot()[0].step and len(row["loss"]) == len(row["alphas"])
    assert stored(tmp_path / "runs", gid).runs[0].slice == [row]
    manager.delete(gid)
    assert not manager.weights_path(gid).exists()


def test_slice_without_saved_weights_says_why(manager):
    gid = manager.submit([TINY])
    job = manager.get(gid)
    wait_for(lambda: not job.active, what="group to finish")
    manager.weights_path(gid).write_bytes(b"damaged")
    manager.compute_slice(gid)
    wait_for(lambda: manager.slice_state(gid) != "", what="the worker's answer")
    assert "could not be read" in manager.slice_state(gid)
    assert not job.snapshot()[0].slice
    manager.weights_path(gid).unlink()
    assert "not kept" in manager.can_slice(gid)
    with pytest.raises(ValueError, match="not kept"):
        manager.compute_slice(gid)


def test_weights_of_no_stored_group_and_half_written_files_are_removed(manager, tmp_path):
    gid = manager.submit([TINY])
    job = manager.get(gid)
    wait_for(lambda: not job.active, what="group to finish")
    folder = manager.weights_path(gid).parent
    (folder / "20200101-000000-abcdef.pt").write_bytes(b"orphan")  # its group was deleted
    (folder / f"{gid}.tmp").write_bytes(b"half")  # a worker killed while saving
    manager.shutdown()
    JobManager(runs_dir=tmp_path / "runs", warm=False).shutdown()
    assert [p.name for p in folder.iterdir()] == [f"{gid}.pt"]


def test_a_bad_bnviz_threads_does_not_stop_the_worker_from_importing_the_engine():
    """BNVIZ_THREADS=four crashed the dashboard's worker at import (the CLI refuses it as bad
    input first): the engine logs it and trains with one thread."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "BNVIZ_THREADS": "four"}
    code = "import bnviz.train as t; print(t.CPU_THREADS)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1" and "BNVIZ_THREADS='four'" in out.stderr
