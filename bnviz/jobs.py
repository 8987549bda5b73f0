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

Nothing is lost quietly: a write that fails (a full disk, a locked store) keeps the group in
`unsaved` and is retried every FLUSH_S until it succeeds; meanwhile `store_error` says so (the
live view shows it). A group's end is written in the transaction that holds its last rows.
The server holds the store's lease (`RunStore.take_lease`): a second server on the same store
is refused (`StoreBusy`). Stored groups are listed from their heads; their rows are read from
the store when a page shows them and a few are kept (ROWS_CACHE).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from .config import ConfigError, RunConfig, to_dict
from .limits import check_group
from .records import KINDS, RunRecord, group_labels, group_name, run_progress
from .store import RunStore, StoreBusy, StoredGroup, StoreUnreadable

log = logging.getLogger("bnviz.jobs")

ACTIVE = ("queued", "running")
STOP_GRACE_S = 5.0  # a worker that ignores the stop flag this long is killed
SMALL_MACHINE_DUTY = 0.7  # of one core while the server is busy, shared by the workers
COMPACT = (",", ":")  # json separators of the run store
WARM_DELAY_S = 3.0  # after a group starts, before the next warm worker is started
FLUSH_S = 2.0  # a training group's new rows are written to the store this often
ENDED = ("finished", "diverged", "cancelled", "failed", "interrupted")
SHUTDOWN = "interrupted: the server shut down while it trained (its rows up to then are kept)"
MAX_QUEUED = 2  # groups one owner may have waiting (not yet training) at once
STORE_POLL_S = 5.0  # how often a server looks for groups the CLI stored or deleted
ROWS_CACHE = 8  # stored groups whose rows are kept in memory (the most recently shown)
SLICE = "slice:"  # a queue entry for a 2-D loss slice (group ids never hold a ':')

__all__ = ["StoreBusy"]  # re-exported: the dashboard refuses a second server with it


class NotOwner(PermissionError):
    """Stop, rename or delete asked for by someone other than the group's owner."""


class QueueFull(ValueError):
    """An owner asked to queue more than MAX_QUEUED groups."""


class StoredRuns(list):
    """A stored group's runs, their rows read from the store on first use (`load`: the runs
    with rows, or None when the store cannot give them) and dropped again by `unload`.
    `len` needs no rows: a list of groups never reads them."""

    def __init__(self, runs: list[RunRecord], load: Callable[[], list[RunRecord] | None]):
        super().__init__(runs)
        self._load = load
        self._lock = threading.Lock()
        self.loaded = False

    def ensure(self) -> None:
        with self._lock:
            if self.loaded:
                return
            full = self._load()
            if full is None:
                return  # the store cannot be read now: the heads, without rows; tried again
            for run, got in zip(list.__iter__(self), full):
                run.rows = got.rows
            self.loaded = True

    def unload(self) -> None:
        with self._lock:
            for run in list.__iter__(self):
                run.rows = {k: [] for k in KINDS}
            self.loaded = False

    def __iter__(self) -> Iterator[RunRecord]:
        self.ensure()
        return super().__iter__()

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        self.ensure()
        return super().__getitem__(i)


def default_runs_dir() -> Path:
    return Path(os.environ.get("BNVIZ_RUNS", Path.home() / ".cache" / "bnviz" / "runs"))


def worker_threads(max_running: int) -> int:
    """Torch threads per worker: leave a core to the web server on small machines."""
    cores = os.cpu_count() or 1
    return max(1, min(4, (cores - 1) // max(1, max_running)))


def worker_duty(max_running: int, cores: int | None = None) -> float:
    """Share of the wall time each worker trains (worker.DutyCycle); BNVIZ_WORKER_DUTY overrides.

    On ≤ 2 cores, while the web server is busy (asking for over 0.4 of a core, run or
    waiting to run: followers of a live group; worker.ParentLoad), the running workers share
    0.7 of a core; otherwise each trains its whole core. A fixed 0.7 made a lesson's page
    take 1.4–1.7× its CLI time (the server idle meanwhile); a fixed 1.0 starved 30 followers
    (0 of 30 without a 2-s gap, health p95 395 ms, against 22 of 30 and 79 ms at 0.7;
    benchmarks/class_load.py, 2 quiet cores, one run each).
    With more cores training takes whole ones.
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

    def _heads(self) -> list[RunState]:
        """The runs without reading a stored group's rows (configs, statuses)."""
        return list(list.__iter__(self.runs))

    @property
    def configs(self) -> list[RunConfig]:
        return [r.config for r in self._heads()]

    @property
    def state(self) -> str:
        """queued | running | done | interrupted (the server stopped while it trained)."""
        if self.closed:
            interrupted = any(r.status == "interrupted" for r in self._heads())
            return "interrupted" if interrupted else "done"
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
            # a stored group's runs have all ended: their progress needs no rows
            fracs = [run_progress(r.status, r.history, r.config.epochs) for r in self._heads()]
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
    def from_stored(
        cls, g: StoredGroup, load: Callable[[], list[RunRecord] | None] | None = None
    ) -> GroupJob:
        """A closed group as the store read it back (validated); `load`: its rows on demand
        (g.runs without rows)."""
        return cls(
            id=g.id,
            name=g.name,
            runs=StoredRuns(g.runs, load) if load else g.runs,
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
    """Server-wide: submit groups, cap how many train at once, keep and persist the history.

    StoreBusy when another live server holds the store (one server per store)."""

    def __init__(
        self,
        max_running: int = 1,
        runs_dir: str | Path | None = None,
        warm: bool = True,
        flush_s: float = FLUSH_S,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self.max_running = max_running
        self.max_queued = max_queued
        self.threads = worker_threads(max_running)
        self.duty = worker_duty(max_running)
        self.runs_dir = Path(runs_dir) if runs_dir else default_runs_dir()
        self.flush_s = flush_s
        self.lock = threading.RLock()
        self._flush_lock = threading.Lock()  # one store write at a time; delete waits for it
        self._cache_lock = threading.Lock()  # the stored groups whose rows are in memory
        self.jobs: dict[str, GroupJob] = {}
        self.waiting: list[str] = []  # queued group ids (and SLICE + id entries), oldest first
        self.workers: dict[str, Worker] = {}
        self.warm_enabled = warm
        self._warm: Worker | None = None
        self._closed = False
        self._device: str | None = None  # the last device_label a worker reported
        self._devices: list[str] = []
        self._saved: dict[str, dict[tuple[int, str], int]] = {}  # rows stored, per run and kind
        self._stored: set[str] = set()  # groups the store has (a later write must find them)
        self.unsaved: dict[str, str] = {}  # group → why its last write failed (retried)
        self._cached: OrderedDict[str, None] = OrderedDict()  # stored groups with rows loaded
        self._measuring: dict[str, str] = {}  # group → "" while its slice is computed, or why not
        self._slicing: set[str] = set()  # groups whose slice holds a training slot now
        self._served: dict[str, float] = {}  # owner → when a group of theirs last started
        self.poll_s = STORE_POLL_S
        self._attached = False  # the store was opened, its lease taken and its groups listed
        self.store = RunStore(self.runs_dir)
        self.problems: list[str] = []  # what loading the store skipped, for the pages to show
        self._attach()  # StoreBusy: another server has it
        if warm:
            self._warm = Worker(self.threads, self.duty)
        threading.Thread(target=self._flusher, daemon=True, name="bnviz-store").start()

    # --- the store -------------------------------------------------------------------------

    @property
    def store_error(self) -> str | None:
        """Why runs are not being saved now (None while every group is saved): a store that
        cannot be opened, or groups whose writes failed and are being retried."""
        if not self.store.readable:
            return f"{self.store.error} — runs are kept in memory until it can be opened"
        with self.lock:
            unsaved = dict(self.unsaved)
        if not unsaved:
            return None
        n = len(unsaved)
        why = next(iter(unsaved.values()))
        return (
            f"{n} group{'s' * (n != 1)} not saved yet ({why}); retrying every "
            f"{self.flush_s:g} s — they are kept in memory while this server runs"
        )

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

    def _attach(self) -> None:
        """Take the store's lease, close what a dead server left running, list the stored
        groups (heads only) and tidy weights/ against a store read whole. A store that cannot
        be opened now (locked, damaged) is tried again by the flusher; nothing is deleted."""
        if not self.store.readable:
            return  # store_error says why, on every page
        try:
            self.store.take_lease()  # StoreBusy goes to the caller
        except StoreBusy:
            raise
        except StoreUnreadable as e:
            self.problems = [str(e)]
            return
        interrupted = self.store.mark_interrupted()
        if interrupted:
            log.warning("groups left running by a stopped server: %s", ", ".join(interrupted))
        _, problems = self.store.import_json(self.runs_dir)
        groups, more = self.store.load(rows=False)
        self.problems = problems + more
        with self.lock:
            for g in groups:
                if g.id not in self.jobs:
                    self._adopt(g)
        self._tidy_weights()
        self._attached = True

    def _adopt(self, g: StoredGroup) -> None:
        """A stored group, rows on demand (the caller holds self.lock)."""
        self.jobs[g.id] = GroupJob.from_stored(g, lambda gid=g.id: self._load_rows(gid))
        self._stored.add(g.id)

    def _load_rows(self, gid: str) -> list[RunRecord] | None:
        """A stored group's rows (StoredRuns' loader); the ROWS_CACHE most recent stay."""
        groups, problems = self.store.load(gid)
        if not groups:
            return None
        runs = groups[0].runs
        self._saved[gid] = {(i, k): len(getattr(r, k)) for i, r in enumerate(runs) for k in KINDS}
        with self.lock:
            self.problems += [p for p in problems if p not in self.problems]
        evict = []
        with self._cache_lock:
            self._cached[gid] = None
            self._cached.move_to_end(gid)
            busy = set(self.unsaved) | set(self._measuring)
            for old in list(self._cached):
                if len(self._cached) <= ROWS_CACHE:
                    break
                if old != gid and old not in busy:
                    del self._cached[old]
                    evict.append(old)
        for old in evict:
            job = self.get(old)
            if job is not None and isinstance(job.runs, StoredRuns):
                job.runs.unload()
        return runs

    def _refresh(self) -> None:
        """Groups the CLI stored (or deleted) while this server runs: listed (or dropped)."""
        try:
            ids = self.store.ids()
        except StoreUnreadable:
            return
        with self.lock:
            known = set(self.jobs)
            gone = [
                g
                for g in self._stored & known - ids
                if self.jobs[g].closed and g not in self.unsaved and g not in self._measuring
            ]
            for gid in gone:
                self._forget(gid)
        for gid in ids - known:
            groups, _ = self.store.load(gid, rows=False)
            with self.lock:
                if groups and gid not in self.jobs and not self._closed:
                    self._adopt(groups[0])

    def _forget(self, gid: str) -> None:
        """Drop a group from memory (deleted here or elsewhere); the caller holds self.lock."""
        self.jobs.pop(gid, None)
        self._saved.pop(gid, None)
        self._stored.discard(gid)
        self.unsaved.pop(gid, None)
        with self._cache_lock:
            self._cached.pop(gid, None)

    def _tidy_weights(self) -> None:
        """Remove saved weights that no stored group owns and half-written files (a worker
        killed while saving) — only against the store's ids read whole: a store that cannot
        be read, or a group that was skipped as damaged, never loses a file."""
        folder = self.runs_dir / "weights"
        if not folder.is_dir():
            return
        try:
            kept = self.store.ids()
        except StoreUnreadable as e:
            log.warning("saved weights not tidied: %s", e)
            return
        with self.lock:
            kept |= set(self.jobs)
        for p in folder.iterdir():
            if p.suffix == ".tmp" or (p.suffix == ".pt" and p.stem not in kept):
                with contextlib.suppress(OSError):
                    p.unlink()

    def _flush(self, job: GroupJob) -> bool:
        """Write the job's new rows and its runs' statuses to the store, one transaction. Its
        state follows its runs: once every run has ended it is written closed, with those rows.
        A failed write keeps the group in `unsaved` (the flusher retries it)."""
        with self._flush_lock:
            with self.lock:
                if self.jobs.get(job.id) is not job:
                    return True  # deleted meanwhile (e.g. while it trained): stays deleted
            saved = self._saved.get(job.id, {})
            with job.lock:
                runs = list(job.runs)  # a stored group's rows are read in here if need be
                rows = []
                counts = {}
                for i, r in enumerate(runs):
                    for k in KINDS:
                        have, done = getattr(r, k), saved.get((i, k), 0)
                        rows += [(i, k, seq, have[seq]) for seq in range(done, len(have))]
                        counts[i, k] = len(have)
                ended = all(r.status in ENDED for r in runs)
                state = (
                    "closed"
                    if job.closed or ended
                    else "queued"
                    if job.started is None
                    else "running"
                )
                finished = job.finished
                if state == "closed" and finished is None:
                    finished = time.time()
                head = replace(
                    job,
                    runs=[r.replace(rows={}) for r in runs],
                    finished=finished,
                    lock=threading.Lock(),
                    first_rows=threading.Event(),
                )
            create = job.id not in self._stored
            ok = self.store.save(head, state, rows, owner=job.owner, create=create)
            with self.lock:
                if ok is None:  # deleted from the store elsewhere (the CLI): not written back
                    log.warning("group %s was deleted from the store: not written back", job.id)
                    if self.jobs.get(job.id) is job:
                        self._forget(job.id)
                    gone = job.active
                elif ok:
                    self._saved[job.id] = counts
                    self._stored.add(job.id)
                    self.unsaved.pop(job.id, None)
                    return True
                else:
                    self.unsaved[job.id] = str(self.store.error)
                    return False
        if gone:
            worker = self.workers.get(job.id)
            if worker is not None:
                worker.stop()
        return True

    def _save(self, job: GroupJob) -> None:
        """A group that ended: everything, state closed."""
        self._flush(job)

    def _flusher(self) -> None:
        """Every flush_s: the training groups' new rows to the store, and again every group
        whose last write failed; the lease's heartbeat; every STORE_POLL_S what the CLI stored
        or deleted. A spare worker that died (killed, out of memory) is replaced."""
        polled = time.monotonic()
        while not self._closed:
            time.sleep(self.flush_s)
            if not self._attached:
                if not self.store.open():
                    continue
                try:
                    self._attach()
                except StoreBusy as e:
                    self.store.close()
                    self.store.error = str(e)
                    continue
            with self.lock:
                jobs = [
                    j
                    for j in self.jobs.values()
                    if (j.active and j.started is not None) or j.id in self.unsaved
                ]
            for job in jobs:
                if not self._closed:
                    self._flush(job)
            if not self._closed:
                self.store.beat()
            if time.monotonic() - polled > self.poll_s and not self._closed:
                polled = time.monotonic()
                self._refresh()
            self.warm_ready()

    def groups(self) -> list[GroupJob]:
        """Newest first."""
        with self.lock:
            return sorted(self.jobs.values(), key=lambda j: j.created, reverse=True)

    def get(self, gid: str) -> GroupJob | None:
        with self.lock:
            return self.jobs.get(gid)

    def owns(self, gid: str, who: str | None) -> bool:
        """Whether `who` (a browser's token) may stop, rename and delete the group."""
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
            if not self.store.rename(gid, job.name):
                with self.lock:  # the next flush writes the name with the group's row
                    self.unsaved[gid] = str(self.store.error)

    def delete(self, gid: str, by: str | None = None) -> bool:
        """Delete a group (stopping it first); False when the store could not delete it (the
        group is kept, `store.error` says why)."""
        job = self.get(gid)
        if job is None:
            return True
        self._check_owner(job, by, "delete")
        self.stop(gid)
        with self._flush_lock:
            if gid in self._stored and self.store.delete(gid) is False:
                return False  # by id, inside the database: never a path from a file
            with self.lock:
                self._forget(gid)
        self._remove_weights(gid)
        return True

    def _remove_weights(self, gid: str) -> None:
        for p in (self.weights_path(gid), self.weights_path(gid).with_suffix(".tmp")):
            with contextlib.suppress(OSError):
                p.unlink(missing_ok=True)

    # --- measures of ended groups, from their saved final weights (bnviz.saved) -------------

    def weights_path(self, gid: str) -> Path:
        """Where a group's final weights are kept (gid: the manager's own id, never a name)."""
        return self.runs_dir / "weights" / f"{gid}.pt"

    def slice_state(self, gid: str) -> str | None:
        """None: no slice asked for (or it finished); "": queued or being computed; else why
        it failed."""
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
        """Queue the 2-D loss slice of every run of an ended group that has none: it takes a
        training slot (it counts against max_running like a group) in a worker process; the
        rows join the group's records (and the store) when done. Anyone may ask: it adds a
        measure, it changes nothing that was recorded."""
        why = self.can_slice(gid)
        if why:
            raise ValueError(why)
        with self.lock:
            if self._measuring.get(gid) == "":
                return  # already queued or under way
            self._measuring[gid] = ""
            self.waiting.append(SLICE + gid)
        self._schedule()

    def _start_slice(self, gid: str) -> None:
        """Start a queued slice (the caller holds self.lock and a free slot)."""
        job = self.jobs.get(gid)
        if job is None:
            self._measuring.pop(gid, None)
            return
        self._slicing.add(gid)
        threading.Thread(
            target=self._slice, args=(job,), daemon=True, name=f"bnviz-slice-{gid}"
        ).start()

    def _slice(self, job: GroupJob) -> None:
        error = "the worker stopped before the slice was done"
        try:
            runs = [i for i, r in enumerate(job.snapshot()) if not r.slice]
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
        finally:
            with self.lock:
                self._slicing.discard(job.id)
                if error:
                    self._measuring[job.id] = error
                else:
                    self._measuring.pop(job.id, None)
            self._schedule()

    # --- scheduling ------------------------------------------------------------------------

    def submit(self, configs: Sequence[RunConfig], name: str | None = None, owner: str = "") -> str:
        """Queue a group owned by `owner`; ConfigError when the group cannot train
        (`limits.check_group`: a batch larger than the data, too big for memory, more runs
        than the store keeps); QueueFull when `owner` already has max_queued groups waiting."""
        if not configs:
            raise ValueError("a group needs at least one config")
        problems = check_group(configs)
        if problems:
            raise ConfigError(problems[0])
        gid = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        name = (name or group_name(configs))[:200]
        job = GroupJob(gid, name, [RunState(c) for c in configs], owner=owner)
        with self.lock:
            if owner and self.queued_by(owner) >= self.max_queued:
                raise QueueFull(
                    f"you have {self.max_queued} groups waiting already: each browser may queue "
                    f"{self.max_queued}; stop one (Runs page) or wait until one starts"
                )
            self.jobs[gid] = job
            self.waiting.append(gid)
        self._flush(job)
        self._schedule()
        return gid

    def queued_by(self, owner: str) -> int:
        """Groups of `owner` waiting for a training slot."""
        with self.lock:
            return sum(1 for g in self.waiting if g in self.jobs and self.jobs[g].owner == owner)

    def position(self, gid: str) -> int | None:
        """1-based place in the queue, None when not waiting."""
        with self.lock:
            return self.waiting.index(gid) + 1 if gid in self.waiting else None

    def running(self) -> int:
        """Training slots in use: groups training and slices being computed."""
        with self.lock:
            return len(self.workers) + len(self._slicing)

    def stop(self, gid: str, by: str | None = None) -> None:
        """Stop a group (idempotent): dequeue it, or signal its worker and kill it if it hangs.
        `by`: who asks (NotOwner unless it is the group's owner; None: the server itself)."""
        with self.lock:
            job = self.jobs.get(gid)
            if job is None:
                return
            self._check_owner(job, by, "stop")
            dequeued = gid in self.waiting
            if dequeued:
                self.waiting.remove(gid)
                job.fail_unfinished("stopped before it started", status="cancelled")
                job.finished = time.time()
                job.closed = True
            worker = self.workers.get(gid)
        if dequeued:
            self._save(job)  # outside self.lock: _flush takes the flush lock first
            return
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

    def _next_waiting(self) -> str:
        """The queue entry to start next: round robin over owners — the oldest entry of the
        owner with the fewest groups training, then the one served longest ago (one browser's
        many groups never keep everyone else's waiting). The caller holds self.lock."""
        busy = Counter(self.jobs[g].owner for g in self.workers if g in self.jobs)

        def rank(entry: str) -> tuple[int, float]:
            job = self.jobs.get(entry)
            if job is None or not job.owner:  # slices, the server's own: in queue order
                return (0, -math.inf)
            return (busy[job.owner], self._served.get(job.owner, -math.inf))

        return min(self.waiting, key=rank)  # min keeps queue order among equals

    def _schedule(self) -> None:
        with self.lock:
            while self.waiting and self.running() < self.max_running and not self._closed:
                entry = self._next_waiting()
                self.waiting.remove(entry)
                if entry.startswith(SLICE):
                    self._start_slice(entry[len(SLICE) :])
                    continue
                gid = entry
                job = self.jobs[gid]
                self._served[job.owner] = time.monotonic()
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
        """Apply a worker's events to its job until it is done or dies. Once every run has
        ended, the group is written closed at once, with its last rows (before the weights
        are saved): a kill after that never brings it back interrupted."""
        worker.ready.wait()  # its first line belongs to the ready-reader
        ended_written = False
        for line in worker.process.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue  # not ours (a library printing to stdout)
            kind = msg.get("type")
            if kind == "batch":
                job.apply_batch(msg["events"])
                if not ended_written and all(r.status in ENDED for r in job.runs):
                    job.finished = time.time()
                    ended_written = self._flush(job)
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
        job.finished = job.finished or time.time()
        self._save(job)
        job.closed = True
        job.first_rows.set()
        with contextlib.suppress(OSError):  # a worker killed while saving its weights
            self.weights_path(job.id).with_suffix(".tmp").unlink(missing_ok=True)
        with self.lock:
            self.workers.pop(job.id, None)
            deleted = self.jobs.get(job.id) is not job
        if deleted:  # deleted while it trained: the weights it saved meanwhile go too
            self._remove_weights(job.id)
        self._schedule()

    def shutdown(self) -> None:
        """Stop everything (a server's exit, SIGTERM included): training groups are stored as
        interrupted with every row they have, then the workers are killed and the store's
        lease is released."""
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
            self._flush(job)
        for w in workers:
            w.kill()
        for job in active:
            job.closed = True
            job.first_rows.set()
        if self._attached:
            self.store.release()
