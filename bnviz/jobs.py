"""Background training for a server: worker processes, a queue with a cap, and the run store.

Why processes: training in a thread of the Streamlit server stalled its event loop for up to
0.7 s (see shared notes); a process keeps the server responsive, can be killed, and its crash
(or CUDA running out of memory) cannot take the server down. One warm worker is kept started,
torch imported and kernels exercised, so a pressed Train shows its first point within a second.

The worker streams the engine's events as JSON lines on its stdout; a reader thread in the
server applies them to a `GroupJob`, whose lists only grow, under a lock. Pages read snapshots.
Every group is written to the run store (`bnviz.store`, SQLite in `runs_dir`) while it trains:
new rows every FLUSH_S seconds and at every end, each write one transaction, so a server killed
at any moment loses at most the last seconds of rows; at the next start, groups it left running
are marked interrupted. A group belongs to whoever submitted it (`owner`): only the owner may
stop, rename or delete it (`NotOwner` otherwise); anyone may read it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from .config import ConfigError, RunConfig, to_dict
from .limits import check_group
from .records import KINDS, RunRecord, group_labels, group_name, run_progress
from .store import RunStore, StoredGroup

log = logging.getLogger("bnviz.jobs")

ACTIVE = ("queued", "running")
STOP_GRACE_S = 5.0  # a worker that ignores the stop flag this long is killed
SMALL_MACHINE_DUTY = 0.7  # of one core, shared by the running workers (see worker_duty)
COMPACT = (",", ":")  # json separators of the run store
WARM_DELAY_S = 3.0  # after a group starts, before the next warm worker is started
FLUSH_S = 2.0  # a training group's new rows are written to the store this often
ENDED = ("finished", "diverged", "cancelled", "failed", "interrupted")
SHUTDOWN = "interrupted: the server shut down while it trained (its rows up to then are kept)"


class NotOwner(PermissionError):
    """Stop, rename or delete asked for by someone other than the group's owner."""


def default_runs_dir() -> Path:
    return Path(os.environ.get("BNVIZ_RUNS", Path.home() / ".cache" / "bnviz" / "runs"))


def worker_threads(max_running: int) -> int:
    """Torch threads per worker: leave a core to the web server on small machines."""
    cores = os.cpu_count() or 1
    return max(1, min(4, (cores - 1) // max(1, max_running)))


def worker_duty(max_running: int, cores: int | None = None) -> float:
    """Share of the wall time each worker trains (worker.DutyCycle); BNVIZ_WORKER_DUTY overrides.

    On ≤ 2 cores the browser (software-rendering four live charts: ~0.7 of a core) and the web
    server share them with training; a worker taking a full core saturated both and the server
    answered in p95 21–32 ms, max 100–180 ms. Training 0.7 of a core: p95 11–18 ms over 19
    runs (2 cores, benchmarks/bench_health.py). With more cores training takes whole ones.
    """
    text = os.environ.get("BNVIZ_WORKER_DUTY")
    if text is not None:
        try:
            duty = float(text)
        except ValueError:
            duty = -1.0
        if 0 < duty <= 1:
            return duty
        print(f"BNVIZ_WORKER_DUTY={text!r} ignored: expected a number in (0, 1]", file=sys.stderr)
    cores = cores or os.cpu_count() or 1
    return 1.0 if cores > 2 else SMALL_MACHINE_DUTY / max(1, max_running)


RunState = RunRecord  # the server's view of a run is the engine's record, as rows arrive


@dataclass
class GroupJob:
    """One lockstep group: its runs, where it is in the queue, and when it ran."""

    id: str
    name: str
    runs: list[RunState]
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    device: str = ""
    closed: bool = False  # its worker is gone and its records are saved
    owner: str = ""  # who may stop, rename, delete it: a browser session's token, "cli:…"
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # set once every run has a history row (or the group ended): the page's first draw waits
    first_rows: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def configs(self) -> list[RunConfig]:
        return [r.config for r in self.runs]

    @property
    def state(self) -> str:
        """queued | running | done | interrupted (the server stopped while it trained)."""
        if self.closed:
            return "interrupted" if any(r.status == "interrupted" for r in self.runs) else "done"
        return "queued" if self.started is None else "running"

    @property
    def active(self) -> bool:
        return not self.closed

    def labels(self) -> list[str]:
        return group_labels(self.configs)

    def snapshot(self) -> list[RunState]:
        """Copies of the runs whose row lists can be read while training goes on."""
        with self.lock:
            return [r.copy_rows() for r in self.runs]

    def progress(self) -> tuple[float, float | None]:
        """(fraction done over all runs, seconds left or None) from the epochs recorded."""
        with self.lock:
            fracs = [run_progress(r.status, r.history, r.config.epochs) for r in self.runs]
            frac = sum(fracs) / len(fracs)
            eta = None
            if self.started and 0.02 < frac < 1:
                eta = (time.time() - self.started) * (1 - frac) / frac
            return frac, eta

    def apply(self, event: dict) -> None:
        """Fold one engine event into the runs (called by the reader thread)."""
        self.apply_batch([event])

    def apply_batch(self, events: list[dict]) -> None:
        """Fold a worker's batch in under one lock: a batch holds whole steps, so a snapshot
        taken meanwhile never shows one run of a stack a record ahead of the others."""
        with self.lock:
            for event in events:
                self._apply(event)

    def _apply(self, event: dict) -> None:
        """One event; the caller holds self.lock."""
        run = self.runs[event["run"]]
        if event["type"] == "rows":
            run.rows.setdefault(event["kind"], []).extend(event["rows"])
            if all(r.history for r in self.runs):  # every run has its first point
                self.first_rows.set()
        elif event["type"] == "status":
            run.status, run.message = event["status"], event.get("message", "")
            run.step = event.get("step")
            run.seconds = time.time() - (self.started or time.time())
            if run.status == "diverged":
                run.diverged_step = event.get("step")

    def fail_unfinished(self, message: str, status: str = "failed") -> None:
        with self.lock:
            for r in self.runs:
                if r.status in ACTIVE:
                    r.status, r.message = status, message

    def to_dict(self) -> dict:
        with self.lock:
            return {
                "id": self.id,
                "name": self.name,
                "created": self.created,
                "started": self.started,
                "finished": self.finished,
                "device": self.device,
                "runs": [r.to_dict() for r in self.runs],
            }

    @classmethod
    def from_stored(cls, g: StoredGroup) -> GroupJob:
        """A closed group as the store read it back (validated)."""
        return cls(
            id=g.id,
            name=g.name,
            runs=g.runs,
            created=g.created,
            started=g.started,
            finished=g.finished,
            device=g.device,
            closed=True,
            owner=g.owner,
        )


def json_chunks(obj: object, rows: int = 200) -> Iterator[str]:
    """json.dumps(obj, separators=COMPACT) in pieces: long lists are encoded `rows` items at a
    time.

    One json.dumps of a long group's records holds the GIL for 30–130 ms (measured on 2 cores
    while training), and the web server cannot answer meanwhile; between pieces it can.
    """
    if isinstance(obj, dict):
        yield "{"
        for i, (k, v) in enumerate(obj.items()):
            yield ("," if i else "") + json.dumps(str(k)) + ":"  # JSON keys are strings
            yield from json_chunks(v, rows)
        yield "}"
    elif isinstance(obj, list) and len(obj) > rows:
        yield "["
        for s in range(0, len(obj), rows):
            yield ("," if s else "") + json.dumps(obj[s : s + rows], separators=COMPACT)[1:-1]
        yield "]"
    else:
        yield json.dumps(obj, separators=COMPACT)


class Worker:
    """One training process (`python -m bnviz.worker`) speaking JSON lines over its pipes.

    A plain subprocess, not multiprocessing: under Streamlit, spawn re-runs the page script in
    the child (its __main__), which would start workers of its own.
    """

    def __init__(self, threads: int, duty: float = 1.0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bnviz.worker", "--threads", str(threads), "--duty", str(duty)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            cwd=Path(__file__).resolve().parent.parent,
        )
        self.stopped = False
        self.device: str | None = None  # where it trains with device=auto, once ready
        self.devices: list[str] = []  # the device names it can train on, once ready
        self.ready = threading.Event()  # set once it has warmed up (or died trying)
        threading.Thread(target=self._wait_ready, daemon=True, name="bnviz-ready").start()

    def _wait_ready(self) -> None:
        """Read the worker's first line ('ready'); the job's reader takes over after it."""
        line = self.process.stdout.readline()
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            msg = json.loads(line)
            self.device = msg.get("device")
            self.devices = [str(d) for d in msg.get("devices", [])]
        self.ready.set()

    def send(self, msg: dict | str) -> None:
        try:
            text = msg if isinstance(msg, str) else json.dumps(msg)
            self.process.stdin.write(text + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass  # the reader notices the dead process

    def stop(self) -> None:
        self.stopped = True
        self.send("stop")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=2)


class JobManager:
    """Server-wide: submit groups, cap how many train at once, keep and persist the history."""

    def __init__(
        self,
        max_running: int = 1,
        runs_dir: str | Path | None = None,
        warm: bool = True,
        flush_s: float = FLUSH_S,
    ) -> None:
        self.max_running = max_running
        self.threads = worker_threads(max_running)
        self.duty = worker_duty(max_running)
        self.runs_dir = Path(runs_dir) if runs_dir else default_runs_dir()
        self.flush_s = flush_s
        self.lock = threading.RLock()
        self._flush_lock = threading.Lock()  # one store write at a time; delete waits for it
        self.jobs: dict[str, GroupJob] = {}
        self.waiting: list[str] = []  # queued group ids, oldest first
        self.workers: dict[str, Worker] = {}
        self.warm_enabled = warm
        self._warm: Worker | None = None
        self._closed = False
        self._device: str | None = None  # the last device_label a worker reported
        self._devices: list[str] = []
        self._saved: dict[str, dict[tuple[int, str], int]] = {}  # rows stored, per run and kind
        self._measuring: dict[str, str] = {}  # group → "" while its slice is computed, or why not
        self.store = RunStore(self.runs_dir)
        self.problems: list[str] = []  # what loading the store skipped, for the pages to show
        self._load()
        if warm:
            self._warm = Worker(self.threads, self.duty)
        threading.Thread(target=self._flusher, daemon=True, name="bnviz-store").start()

    # --- the store -------------------------------------------------------------------------

    @property
    def store_error(self) -> str | None:
        """Why the last write to the run store failed (None while writes succeed)."""
        return self.store.error

    def device_label(self) -> str | None:
        """Where a group would train (device=auto), as a started worker reported it."""
        with self.lock:
            for w in [self._warm, *self.workers.values()]:
                if w is not None and w.device:
                    self._device = w.device
                if w is not None and w.devices:
                    self._devices = w.devices
            return self._device

    def devices(self) -> list[str]:
        """Device names a worker said it can train on (empty until one is ready)."""
        self.device_label()
        return list(self._devices)

    def _load(self) -> None:
        interrupted = self.store.mark_interrupted()
        if interrupted:
            log.warning("groups left running by a stopped server: %s", ", ".join(interrupted))
        _, problems = self.store.import_json(self.runs_dir)
        groups, more = self.store.load()
        self.problems = problems + more
        if self.store.error:
            self.problems.append(self.store.error)
        self._tidy_weights({g.id for g in groups})
        for g in groups:
            job = GroupJob.from_stored(g)
            self.jobs[job.id] = job
            self._saved[job.id] = {
                (i, k): len(getattr(r, k)) for i, r in enumerate(job.runs) for k in KINDS
            }

    def _tidy_weights(self, kept: set[str]) -> None:
        """Remove saved weights that no stored group owns and half-written files (a worker
        killed while saving): what is left in weights/ is one finished file per group."""
        folder = self.runs_dir / "weights"
        if not folder.is_dir():
            return
        for p in folder.iterdir():
            if p.suffix != ".pt" or p.stem not in kept:
                with contextlib.suppress(OSError):
                    p.unlink()

    def _flush(self, job: GroupJob, state: str) -> bool:
        """Write the job's new rows and its runs' statuses to the store, one transaction."""
        with self._flush_lock:
            with self.lock:
                if self.jobs.get(job.id) is not job:
                    return True  # deleted meanwhile (e.g. while it trained): stays deleted
            saved = self._saved.setdefault(job.id, {})
            with job.lock:
                rows = []
                counts = {}
                for i, r in enumerate(job.runs):
                    for k in KINDS:
                        have, done = getattr(r, k), saved.get((i, k), 0)
                        rows += [(i, k, seq, have[seq]) for seq in range(done, len(have))]
                        counts[i, k] = len(have)
                head = replace(
                    job,
                    runs=[r.replace(rows={}) for r in job.runs],
                    lock=threading.Lock(),
                    first_rows=threading.Event(),
                )
            ok = self.store.save(head, state, rows, owner=job.owner)
            if ok:
                self._saved[job.id] = counts
            return ok

    def _save(self, job: GroupJob) -> None:
        """A group that ended: everything, state closed."""
        self._flush(job, "closed")

    def _flusher(self) -> None:
        """Every flush_s: the training groups' new rows to the store; a spare worker that died
        (killed, out of memory) is replaced."""
        while not self._closed:
            time.sleep(self.flush_s)
            with self.lock:
                jobs = [j for j in self.jobs.values() if j.active and j.started is not None]
            for job in jobs:
                if not self._closed:
                    self._flush(job, "running")
            self.warm_ready()

    def groups(self) -> list[GroupJob]:
        """Newest first."""
        with self.lock:
            return sorted(self.jobs.values(), key=lambda j: j.created, reverse=True)

    def get(self, gid: str) -> GroupJob | None:
        with self.lock:
            return self.jobs.get(gid)

    def owns(self, gid: str, who: str | None) -> bool:
        """Whether `who` (a session's token) may stop, rename and delete the group."""
        job = self.get(gid)
        return job is not None and bool(who) and job.owner == who

    def _check_owner(self, job: GroupJob, by: str | None, what: str) -> None:
        """by=None: the server itself (tests, shutdown) may do anything."""
        if by is not None and job.owner != by:
            raise NotOwner(f"cannot {what} group {job.id}: it was started elsewhere")

    def rename(self, gid: str, name: str, by: str | None = None) -> None:
        job = self.get(gid)
        if job is not None and name.strip():
            self._check_owner(job, by, "rename")
            job.name = name.strip()[:200]
            self.store.rename(gid, job.name)

    def delete(self, gid: str, by: str | None = None) -> None:
        job = self.get(gid)
        if job is None:
            return
        self._check_owner(job, by, "delete")
        self.stop(gid)
        with self._flush_lock:
            with self.lock:
                self.jobs.pop(gid, None)
                self._saved.pop(gid, None)
            self.store.delete(gid)  # by id, inside the database: never a path from a file
        with contextlib.suppress(OSError):
            self.weights_path(gid).unlink(missing_ok=True)

    # --- measures of ended groups, from their saved final weights (bnviz.saved) -------------

    def weights_path(self, gid: str) -> Path:
        """Where a group's final weights are kept (gid: the manager's own id, never a name)."""
        return self.runs_dir / "weights" / f"{gid}.pt"

    def slice_state(self, gid: str) -> str | None:
        """None: no slice asked for (or it finished); "": being computed; else why it failed."""
        with self.lock:
            return self._measuring.get(gid)

    def can_slice(self, gid: str) -> str | None:
        """Why the group's 2-D loss slices cannot be computed now, or None when they can."""
        job = self.get(gid)
        if job is None:
            return "there is no such group"
        if job.active:
            return "the slice is computed once the group has finished or been stopped"
        if not self.weights_path(gid).exists():
            return (
                "the final weights of this group were not kept (it was interrupted, failed, "
                "or trained with an older bnviz or from the command line)"
            )
        return None

    def compute_slice(self, gid: str) -> None:
        """Compute the 2-D loss slice of every run of an ended group that has none, in a
        worker process; the rows join the group's records (and the store) when done. Anyone
        may ask: it adds a measure, it changes nothing that was recorded."""
        why = self.can_slice(gid)
        if why:
            raise ValueError(why)
        job = self.get(gid)
        with self.lock:
            if self._measuring.get(gid) == "":
                return  # already under way
            self._measuring[gid] = ""
        runs = [i for i, r in enumerate(job.snapshot()) if not r.slice]
        threading.Thread(
            target=self._slice, args=(job, runs), daemon=True, name=f"bnviz-slice-{gid}"
        ).start()

    def _slice(self, job: GroupJob, runs: list[int]) -> None:
        error = "the worker stopped before the slice was done"
        worker = Worker(self.threads)  # not the spare: that one stays ready for a group
        try:
            worker.ready.wait()
            worker.send({"slice": {"path": str(self.weights_path(job.id)), "runs": runs}})
            for line in worker.process.stdout:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if msg.get("type") == "batch":
                    job.apply_batch(msg["events"])
                elif msg.get("type") == "fatal":
                    error = msg.get("message", "")
                    break
                elif msg.get("type") == "done":
                    error = ""
                    break
        finally:
            worker.kill()
        if not error:
            self._save(job)
        with self.lock:
            if error:
                self._measuring[job.id] = error
            else:
                self._measuring.pop(job.id, None)

    # --- scheduling ------------------------------------------------------------------------

    def submit(self, configs: Sequence[RunConfig], name: str | None = None, owner: str = "") -> str:
        """Queue a group owned by `owner`; ConfigError when the group cannot train
        (`limits.check_group`: a batch larger than the data, too big for memory)."""
        if not configs:
            raise ValueError("a group needs at least one config")
        problems = check_group(configs)
        if problems:
            raise ConfigError(problems[0])
        gid = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        name = (name or group_name(configs))[:200]
        job = GroupJob(gid, name, [RunState(c) for c in configs], owner=owner)
        with self.lock:
            self.jobs[gid] = job
            self.waiting.append(gid)
        self._flush(job, "queued")
        self._schedule()
        return gid

    def position(self, gid: str) -> int | None:
        """1-based place in the queue, None when not waiting."""
        with self.lock:
            return self.waiting.index(gid) + 1 if gid in self.waiting else None

    def running(self) -> int:
        with self.lock:
            return len(self.workers)

    def stop(self, gid: str, by: str | None = None) -> None:
        """Stop a group (idempotent): dequeue it, or signal its worker and kill it if it hangs.
        `by`: who asks (NotOwner unless it is the group's owner; None: the server itself)."""
        with self.lock:
            job = self.jobs.get(gid)
            if job is None:
                return
            self._check_owner(job, by, "stop")
            if gid in self.waiting:
                self.waiting.remove(gid)
                job.fail_unfinished("stopped before it started", status="cancelled")
                job.finished = time.time()
                self._save(job)
                job.closed = True
                return
            worker = self.workers.get(gid)
        if worker is not None:
            worker.stop()
            threading.Timer(STOP_GRACE_S, self._kill_if_stuck, args=(gid, worker)).start()

    def _kill_if_stuck(self, gid: str, worker: Worker) -> None:
        with self.lock:
            stuck = self.workers.get(gid) is worker
        if stuck:
            worker.kill()  # the reader thread sees it die and marks the runs

    def _take_worker(self) -> Worker:
        w, self._warm = self._warm, None
        if w is None or not w.alive():
            w = Worker(self.threads, self.duty)
        return w

    def _schedule(self) -> None:
        with self.lock:
            while self.waiting and len(self.workers) < self.max_running and not self._closed:
                gid = self.waiting.pop(0)
                job = self.jobs[gid]
                worker = self._take_worker()
                self.workers[gid] = worker
                job.started = time.time()
                with job.lock:
                    for r in job.runs:
                        r.status = "running"
                worker.send(
                    {
                        "configs": [to_dict(c) for c in job.configs],
                        "save": str(self.weights_path(gid)),
                    }
                )
                threading.Thread(
                    target=self._read, args=(job, worker), daemon=True, name=f"bnviz-read-{gid}"
                ).start()
            if self.warm_enabled and self._warm is None and not self._closed:
                # Started a little later: importing torch would otherwise take CPU from the
                # group that just started, right when its first points are due.
                delay = WARM_DELAY_S if self.workers else 0.0
                timer = threading.Timer(delay, self._start_warm)
                timer.daemon = True
                timer.start()

    def _start_warm(self) -> None:
        with self.lock:
            if self.warm_enabled and self._warm is None and not self._closed:
                self._warm = Worker(self.threads, self.duty)

    def warm_ready(self) -> bool:
        """Whether a started, warmed-up worker is waiting for the next group. A spare that died
        while it waited (killed, out of memory) is replaced at once."""
        with self.lock:
            w = self._warm
            if w is not None and w.process.poll() is not None and not self._closed:
                code = w.process.returncode
                log.warning("the spare training worker exited (code %s): starting another", code)
                self._warm = None
                self._start_warm()
            return self._warm is not None and self._warm.ready.is_set() and self._warm.alive()

    def _read(self, job: GroupJob, worker: Worker) -> None:
        """Apply a worker's events to its job until it is done or dies."""
        worker.ready.wait()  # its first line belongs to the ready-reader
        for line in worker.process.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue  # not ours (a library printing to stdout)
            kind = msg.get("type")
            if kind == "batch":
                job.apply_batch(msg["events"])
            elif kind == "device":
                job.device = msg["device"]
                with job.lock:
                    for r in job.runs:
                        r.device = msg["device"]
            elif kind == "fatal":
                job.fail_unfinished(msg["message"])
            elif kind == "done":
                break
        worker.kill()
        code = worker.process.returncode
        if self._closed:  # the server is shutting down: shutdown() marked the runs
            job.fail_unfinished(SHUTDOWN, status="interrupted")
        elif worker.stopped:
            job.fail_unfinished("stopped by the user", status="cancelled")
        else:
            job.fail_unfinished(f"the training worker stopped unexpectedly (exit code {code})")
        job.finished = time.time()
        self._save(job)
        job.closed = True
        job.first_rows.set()
        with self.lock:
            self.workers.pop(job.id, None)
        self._schedule()

    def shutdown(self) -> None:
        """Stop everything (a server's exit, SIGTERM included): training groups are stored as
        interrupted with every row they have, then the workers are killed."""
        with self.lock:
            if self._closed:
                return
            self._closed = True
            workers = list(self.workers.values())
            if self._warm is not None:
                workers.append(self._warm)
            active = [j for j in self.jobs.values() if j.active]
            self.waiting.clear()
        for job in active:
            job.fail_unfinished(SHUTDOWN, status="interrupted")
            job.finished = time.time()
            self._flush(job, "closed")
        for w in workers:
            w.kill()
        for job in active:
            job.closed = True
            job.first_rows.set()
