"""The run store: groups and their rows in one SQLite file (WAL mode), written while they train.

Why SQLite: every write is a transaction, so a server killed at any moment (kill -9, OOM, a
full disk) leaves the last committed state — at most the last few seconds of rows are lost and
a finished group never is. The old store wrote one JSON file per group when it closed: a kill
mid-training lost the group, a kill during the write lost finished ones.

Layout: `groups` (one row per group, `state` queued | running | closed), `runs` (status per
run, the config as JSON), `rows` (append-only history/layers/params rows as JSON, numbered per
run and kind) and `imported` (old JSON files already taken in). Everything read back is
validated (`parse_group`, `check_row`): a damaged or foreign record is reported by name and
skipped, never handed to a page. Nothing here uses a path taken from a file's contents.

A store is checked when it is opened (`open_problem`): a zero-length, corrupt or foreign file,
or one missing a table, is an error that names the file — never an empty store — so that no
reader takes "could not read" for "nothing there" (the server tidies saved weights against
what it read). One server at a time holds the store's `lease` (its pid, host, process start
and a heartbeat): any reader (the CLI, a restarted or second server) tells a live server's
groups from a dead one's, and a second server on the same store is refused (`StoreBusy`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ConfigError, from_dict, to_dict
from .limits import MAX_RUNS
from .records import BASIS_POINTS, KINDS, RECORDER, RunRecord

log = logging.getLogger("bnviz.store")

DB_NAME = "runs.sqlite"
RUN_STATUSES = ("queued", "running", "finished", "diverged", "cancelled", "failed", "interrupted")
ACTIVE = ("queued", "running")
POINTS = ("linear", "act_in", "act_out", "norm_out")
GROUP_ID = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
MAX_NAME = 200  # characters of a group name
MAX_TEXT = 2000  # characters of a run's message
INTERRUPTED = "interrupted: the server stopped while it trained (its rows up to then are kept)"
APPLICATION_ID = 0x626E767A  # "bnvz" in the file's header: a store this program made
BUSY_TIMEOUT_S = 1.0  # a locked store fails a call after this (retried later), never 10 s
LEASE_S = 15.0  # a server on another host whose heartbeat is older than this is gone

SCHEMA = """
CREATE TABLE IF NOT EXISTS groups (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, owner TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL, started REAL, finished REAL, device TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL, updated REAL
);
CREATE TABLE IF NOT EXISTS runs (
    group_id TEXT NOT NULL, idx INTEGER NOT NULL, config TEXT NOT NULL, status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '', device TEXT NOT NULL DEFAULT '',
    seconds REAL NOT NULL DEFAULT 0, diverged_step INTEGER, PRIMARY KEY (group_id, idx)
);
CREATE TABLE IF NOT EXISTS rows (
    group_id TEXT NOT NULL, run INTEGER NOT NULL, kind TEXT NOT NULL, seq INTEGER NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (group_id, run, kind, seq)
);
CREATE TABLE IF NOT EXISTS imported (file TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS lease (
    one INTEGER PRIMARY KEY CHECK (one = 1), token TEXT NOT NULL, pid INTEGER NOT NULL,
    host TEXT NOT NULL, birth TEXT NOT NULL, since REAL NOT NULL, beat REAL NOT NULL
);
"""
# What a reader relies on: each table and the columns it reads (a store missing one is damaged).
TABLES = {
    "groups": {"id", "name", "owner", "created", "started", "finished", "device", "state"},
    "runs": {"group_id", "idx", "config", "status", "message", "device", "seconds"},
    "rows": {"group_id", "run", "kind", "seq", "data"},
    "imported": {"file", "at"},
}


class StoreError(ValueError):
    """A stored record that is not a valid group, run or row; the message says what is wrong."""


class StoreUnreadable(StoreError):
    """The store as a whole cannot be read (locked, corrupt, foreign): nothing may be taken
    from it as "not there", and nothing may be deleted on its account."""


class StoreBusy(StoreError):
    """Another live server holds the store's lease."""


class GroupGone(StoreError):
    """A write for a group that is no longer in the store (deleted elsewhere): not written."""


def process_birth(pid: int) -> str:
    """When process `pid` started (Linux: clock ticks since boot, /proc/PID/stat field 22), or
    "" where that cannot be read: with the pid it names one process, not whoever reuses it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def pid_alive(pid: int, birth: str) -> bool:
    """Whether the process that took a lease on this host is still running."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    except (OSError, OverflowError, ValueError):
        return False
    return not birth or process_birth(pid) in ("", birth)


@dataclass
class Lease:
    """Who holds a store: a server's pid, host, process start, since when, its last beat."""

    token: str
    pid: int
    host: str
    birth: str
    since: float
    beat: float

    def alive(self, now: float | None = None) -> bool:
        """On this host: its process still runs (a heartbeat may lag behind a full disk); on
        another host: it beat within LEASE_S."""
        if self.host == socket.gethostname():
            return pid_alive(self.pid, self.birth)
        return (now or time.time()) - self.beat < LEASE_S

    def text(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"pid {self.pid} on {self.host}, since {started}"


# ---------------------------------------------------------------------------------------------
# Validation: what a page may rely on
# ---------------------------------------------------------------------------------------------


def _is_num(v: Any) -> bool:
    """A finite JSON number (not a bool) that fits a float."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and abs(v) < 2**53


def _opt_num(v: Any) -> bool:
    return v is None or _is_num(v)


def _num_list(v: Any, most: int = 10_000) -> bool:
    return isinstance(v, list) and len(v) <= most and all(_opt_num(x) for x in v)


HISTORY_NUMBERS = ("train_loss", "train_acc", "test_loss", "test_acc")
LAYER_NUMBERS = ("mean", "std", "p15", "p50", "p85")  # always there (the charts index them)
LAYER_OPTIONAL = ("under", "over", "n", "saturated", "dead")
PARAM_NUMBERS = ("grad_norm", "weight_norm", "update_ratio")


def check_row(kind: str, row: Any) -> bool:
    """Whether a row of a kind (records.RECORDERS) has the fields the charts read, with valid
    types."""
    if not isinstance(row, dict) or not _is_int(row.get("step")) or row["step"] < 0:
        return False
    if kind == "history":
        # every column present (the charts index them), each a number or null
        return _is_num(row.get("epoch")) and all(
            k in row and _opt_num(row[k]) for k in HISTORY_NUMBERS
        )
    if kind not in ("layers", "params"):  # the measures' kinds: what their Recorder declares
        rec = RECORDER.get(kind)
        return (
            rec is not None
            and all(_is_int(row.get(k)) and 0 <= row[k] <= 100_000 for k in rec.keys)
            and all(k in row and _opt_num(row[k]) for k in rec.numbers)
        )
    if not _is_int(row.get("layer")) or not 1 <= row["layer"] <= 64:
        return False
    if kind == "layers":
        # the charts index these: 9 quantiles (records.BASIS_POINTS), a histogram whose edges
        # (numbers: bar widths are their differences) bound its counts
        if row.get("point") not in POINTS or not all(
            k in row and _opt_num(row[k]) for k in LAYER_NUMBERS
        ):
            return False
        if not all(_opt_num(row.get(k)) for k in LAYER_OPTIONAL):
            return False
        q, hist = row.get("quantiles"), row.get("hist")
        if not (_num_list(q, len(BASIS_POINTS)) and len(q) == len(BASIS_POINTS)):
            return False
        if not isinstance(hist, dict):
            return False
        edges, counts = hist.get("edges"), hist.get("counts")
        return (
            isinstance(edges, list)
            and isinstance(counts, list)
            and 2 <= len(edges) == len(counts) + 1 <= 1025
            and all(_is_num(x) for x in edges)
            and all(_is_num(x) for x in counts)
        )
    if kind == "params":
        if not all(_opt_num(row.get(k)) for k in PARAM_NUMBERS):
            return False
        if "norm" not in row:
            return True
        norm = row["norm"]
        return isinstance(norm, dict) and all(
            isinstance(s, dict) and all(_opt_num(x) for x in s.values()) for s in norm.values()
        )
    return False


def _text(v: Any, most: int, what: str) -> str:
    if v is None:
        return ""
    if not isinstance(v, str):
        raise StoreError(f"{what} is not text")
    return v[:most]


def _opt_time(v: Any, what: str) -> float | None:
    """A Unix time (seconds, between 1970 and 2286) or None."""
    if v is None:
        return None
    if not _is_num(v) or not 0 <= v < 1e10:
        raise StoreError(f"{what}={str(v)[:40]!r} is not a time")
    return float(v)


def parse_run(d: Any, where: str) -> tuple[RunRecord, list[str]]:
    """A RunRecord from a stored run dict, and notes about rows skipped; StoreError if the run
    itself is unusable (no valid config, unknown status)."""
    if not isinstance(d, dict):
        raise StoreError(f"{where} is not an object")
    if not isinstance(d.get("config"), dict):
        raise StoreError(f"{where}: config is not an object of field: value")
    try:
        config = from_dict(d["config"], strict=False)
    except (ConfigError, TypeError, ValueError, OverflowError, RecursionError) as e:
        raise StoreError(f"{where}: config: {str(e)[:200]}") from None
    status = d.get("status", "finished")
    if status not in RUN_STATUSES:
        raise StoreError(f"{where}: status {str(status)[:40]!r} is not one of {RUN_STATUSES}")
    seconds = d.get("seconds", 0.0)
    if not _is_num(seconds) or seconds < 0:
        raise StoreError(f"{where}: seconds={str(seconds)[:40]!r} is not a duration")
    step = d.get("diverged_step")
    if step is not None and not _is_int(step):
        raise StoreError(f"{where}: diverged_step={str(step)[:40]!r} is not a step")
    notes = []
    rows: dict[str, list[dict]] = {}
    for kind in KINDS:
        raw = d.get(kind, [])
        if not isinstance(raw, list):
            raise StoreError(f"{where}: {kind} is not a list of rows")
        rows[kind] = [r for r in raw if check_row(kind, r)]
        if len(rows[kind]) < len(raw):
            notes.append(f"{where}: {len(raw) - len(rows[kind])} damaged {kind} rows skipped")
    run = RunRecord(
        config=config,
        status=status,
        message=_text(d.get("message"), MAX_TEXT, f"{where}: message"),
        device=_text(d.get("device"), 100, f"{where}: device"),
        seconds=float(seconds),
        diverged_step=step,
        **rows,
    )
    return run, notes


@dataclass
class StoredGroup:
    """A group as read back from the store (or an old JSON file), validated."""

    id: str
    name: str
    runs: list[RunRecord]
    created: float
    started: float | None = None
    finished: float | None = None
    device: str = ""
    owner: str = ""
    state: str = "closed"
    updated: float | None = None


def parse_group(d: Any, where: str, fallback_id: str | None = None) -> tuple[StoredGroup, list]:
    """A StoredGroup from a records dict ({"id", "name", "created", ..., "runs": [...]}).

    The id must look like one this program makes (letters, digits, `_.-`); otherwise
    `fallback_id` (e.g. the file's name) is used, or the group is refused."""
    if not isinstance(d, dict):
        raise StoreError(f"{where} is not an object")
    gid = d.get("id", fallback_id)
    if not isinstance(gid, str) or not GROUP_ID.match(gid):
        if fallback_id is None or not GROUP_ID.match(fallback_id):
            raise StoreError(f"{where}: id {str(gid)[:40]!r} is not a group id")
        gid = fallback_id
    runs_raw = d.get("runs")
    if not isinstance(runs_raw, list) or not 1 <= len(runs_raw) <= MAX_RUNS:
        raise StoreError(f"{where}: runs must be a list of 1 to {MAX_RUNS} runs")
    created = _opt_time(d.get("created", 0.0), f"{where}: created")
    runs, notes = [], []
    for i, r in enumerate(runs_raw):
        run, n = parse_run(r, f"{where} run {i + 1}")
        runs.append(run)
        notes += n
    name = d.get("name") or gid
    group = StoredGroup(
        id=gid,
        name=_text(name, MAX_NAME, f"{where}: name") or gid,
        runs=runs,
        created=created or 0.0,
        started=_opt_time(d.get("started"), f"{where}: started"),
        finished=_opt_time(d.get("finished"), f"{where}: finished"),
        device=_text(d.get("device"), 100, f"{where}: device"),
    )
    return group, notes


def check_storable(runs: Any) -> str | None:
    """Why a group of these runs (or configs) could not be stored and read back, or None."""
    if not 1 <= len(runs) <= MAX_RUNS:
        return f"a stored group has 1 to {MAX_RUNS} runs; this one has {len(runs)}"
    return None


def _suppress() -> contextlib.AbstractContextManager:
    return contextlib.suppress(sqlite3.Error)


def _why(e: BaseException) -> str:
    """An exception as one short line of text (sqlite's 'database is locked', …)."""
    text = " ".join(str(e).split()) or type(e).__name__
    if isinstance(e, sqlite3.OperationalError) and "locked" in text:
        return f"{text} (another process holds it)"
    return text[:300]


def loads(text: str | bytes) -> Any:
    """json.loads that turns every way a text can fail (deep nesting, 5,000-digit numbers)
    into ValueError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


# ---------------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------------


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


class RunStore:
    """One SQLite file; every method is thread-safe and never raises on a failed write: the
    error is logged and kept in `error` (None after the next write that succeeds), for the
    pages to show."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / DB_NAME
        self.lock = threading.RLock()
        self.error: str | None = None
        self.conn: sqlite3.Connection | None = None
        self.token = f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"
        self.open()

    def open(self) -> bool:
        """(Re)open the store; False (and `error` says why) when it cannot be used."""
        with self.lock:
            if self.conn is not None:
                return True
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                fresh = not self.path.exists()
                if not fresh and self.path.is_file() and self.path.stat().st_size == 0:
                    raise StoreUnreadable("it is an empty file (0 bytes), not a run store")
                conn = sqlite3.connect(self.path, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
                try:
                    self._prepare(conn, fresh)
                except BaseException:
                    conn.close()
                    raise
                self.conn = conn
                self.error = None
                return True
            except (sqlite3.Error, OSError, StoreError) as e:
                self.error = f"cannot open the run store {self.path}: {_why(e)}"
                log.error(self.error)
                return False

    def _prepare(self, conn: sqlite3.Connection, fresh: bool) -> None:
        """Check an existing file is a whole store of this program's; make a new one."""
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        app = conn.execute("PRAGMA application_id").fetchone()[0]
        if tables or not fresh:
            if app not in (0, APPLICATION_ID):
                raise StoreUnreadable(f"it is another program's database (application id {app})")
            for table, cols in TABLES.items():
                if table not in tables:
                    raise StoreUnreadable(f"its table {table!r} is missing (damaged or foreign)")
                have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
                if not cols <= have:
                    missing = ", ".join(sorted(cols - have))
                    raise StoreUnreadable(f"table {table!r} lacks {missing} (damaged or foreign)")
            check = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
            if check != "ok":
                raise StoreUnreadable(f"it is damaged ({str(check)[:120]})")
        conn.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        conn.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process
        conn.executescript(SCHEMA)
        if app != APPLICATION_ID:
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")

    @property
    def readable(self) -> bool:
        return self.conn is not None

    def _fail(self, what: str, e: BaseException) -> None:
        self.error = f"{what}: {_why(e)}"
        log.error(self.error)

    def _write(self, what: str, fn: Any) -> bool | None:
        """Run fn(conn) in one transaction; False (and `error` set) when it failed, None when
        it found its group gone (GroupGone: nothing written)."""
        with self.lock:
            if self.conn is None:  # reopened by its owner only (`open`), never in passing
                return False
            try:
                with self.conn:  # commits, or rolls back on an exception
                    self.conn.execute("BEGIN IMMEDIATE")
                    fn(self.conn)
            except GroupGone:
                return None
            except (sqlite3.Error, OSError, ValueError) as e:
                self._fail(f"cannot {what} in {self.path}", e)
                return False
            self.error = None
            return True

    def _snapshot(self, queries: list[tuple[str, tuple]]) -> list[list[tuple]]:
        """Several queries' rows from one read transaction: one consistent state of the store."""
        with self.lock:
            if self.conn is None:
                raise StoreUnreadable(str(self.error))
            try:
                self.conn.execute("BEGIN")
                try:
                    return [self.conn.execute(q, a).fetchall() for q, a in queries]
                finally:
                    self.conn.execute("COMMIT")
            except sqlite3.Error as e:
                with _suppress():
                    self.conn.rollback()
                raise StoreUnreadable(f"cannot read the run store {self.path}: {_why(e)}") from None

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        """Rows of a query; StoreUnreadable (never an empty list) when the store cannot be read."""
        with self.lock:
            if self.conn is None:
                raise StoreUnreadable(str(self.error))
            try:
                return self.conn.execute(sql, args).fetchall()
            except sqlite3.Error as e:
                raise StoreUnreadable(f"cannot read the run store {self.path}: {_why(e)}") from None

    def close(self) -> None:
        with self.lock:
            if self.conn is not None:
                self.conn.close()
                self.conn = None

    # --- the lease: which server, if any, is alive on this store --------------------------

    def holder(self) -> Lease | None:
        """The lease's holder if it is alive (StoreUnreadable when the store cannot be read)."""
        rows = self._read("SELECT token, pid, host, birth, since, beat FROM lease")
        if not rows:
            return None
        try:
            lease = Lease(*rows[0])
            return lease if lease.alive() else None
        except (TypeError, ValueError):
            return None

    def take_lease(self) -> None:
        """Hold the store for this server: StoreBusy when another live server holds it."""
        pid, now = os.getpid(), time.time()
        busy: list[Lease] = []

        def fn(c: sqlite3.Connection) -> None:
            rows = c.execute("SELECT token, pid, host, birth, since, beat FROM lease").fetchall()
            if rows:
                with_lease = Lease(*rows[0])
                if with_lease.token != self.token and with_lease.alive(now):
                    busy.append(with_lease)
                    return
            c.execute(
                "INSERT OR REPLACE INTO lease VALUES (1, ?, ?, ?, ?, ?, ?)",
                (self.token, pid, socket.gethostname(), process_birth(pid), now, now),
            )

        ok = self._write("take the run store's lease", fn)
        if busy:
            raise StoreBusy(
                f"another bnviz server ({busy[0].text()}) is using the run store {self.path}; "
                "stop it first, or give this one its own store (BNVIZ_RUNS=another/folder)"
            )
        if not ok:
            raise StoreUnreadable(str(self.error))

    def beat(self) -> bool:
        """The holder's heartbeat (every store write of a server carries one too)."""
        return bool(
            self._write(
                "renew the lease",
                lambda c: c.execute(
                    "UPDATE lease SET beat=? WHERE token=?", (time.time(), self.token)
                ),
            )
        )

    def release(self) -> None:
        self._write(
            "release the lease",
            lambda c: c.execute("DELETE FROM lease WHERE token=?", (self.token,)),
        )

    # --- writing ---------------------------------------------------------------------------

    def put_group(self, g: Any, state: str, owner: str = "") -> bool:
        """Insert or update a group's row and its runs' statuses (not their rows)."""
        return self.save(g, state, (), owner)

    def save(
        self,
        g: Any,
        state: str,
        rows: Iterable[tuple[int, str, int, dict]],
        owner: str = "",
        create: bool = True,
    ) -> bool | None:
        """A group's row, its runs' statuses and new (run, kind, seq, row) rows, in one
        transaction (seq counts from 0 per run and kind; a row already stored stays as is).
        `owner` is written when the group is first stored and never changed. `create=False`:
        only a group still in the store is written (None when it is gone: deleted elsewhere).
        A group the store could not read back (`check_storable`) is refused, not written."""
        why = check_storable(g.runs)
        if why:
            self._fail(f"cannot save group {g.id}", StoreError(why))
            return False
        data = [(g.id, run, kind, seq, _dumps(row)) for run, kind, seq, row in rows]
        runs = [
            (
                g.id,
                i,
                _dumps(to_dict(r.config)),
                r.status,
                r.message,
                r.device,
                r.seconds,
                r.diverged_step,
            )
            for i, r in enumerate(g.runs)
        ]
        head = (g.id, g.name, owner, g.created, g.started, g.finished, g.device, state)

        def fn(c: sqlite3.Connection) -> None:
            if not create and not c.execute("SELECT 1 FROM groups WHERE id=?", (g.id,)).fetchone():
                raise GroupGone(g.id)
            c.execute(
                "INSERT INTO groups (id, name, owner, created, started, finished, device, state,"
                " updated) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET"
                " name=excluded.name, started=excluded.started, finished=excluded.finished,"
                " device=excluded.device, state=excluded.state, updated=excluded.updated",
                (*head, time.time()),
            )
            c.executemany(
                "INSERT INTO runs (group_id, idx, config, status, message, device, seconds,"
                " diverged_step) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(group_id, idx) DO UPDATE"
                " SET status=excluded.status, message=excluded.message, device=excluded.device,"
                " seconds=excluded.seconds, diverged_step=excluded.diverged_step",
                runs,
            )
            c.executemany("INSERT OR IGNORE INTO rows VALUES (?,?,?,?,?)", data)

        return self._write(f"save group {g.id}", fn)

    def rename(self, gid: str, name: str) -> bool | None:
        return self._write(
            f"rename group {gid}",
            lambda c: c.execute("UPDATE groups SET name=? WHERE id=?", (name[:MAX_NAME], gid)),
        )

    def delete(self, gid: str) -> bool | None:
        def fn(c: sqlite3.Connection) -> None:
            for table, col in (("rows", "group_id"), ("runs", "group_id"), ("groups", "id")):
                c.execute(f"DELETE FROM {table} WHERE {col}=?", (gid,))

        return self._write(f"delete group {gid}", fn)

    def mark_interrupted(self) -> list[str]:
        """Groups left queued or running by a server that is gone are closed, their unfinished
        runs marked interrupted (rows kept). Returns their ids. The caller makes sure no live
        server holds the store (`take_lease`, or `holder()` is None)."""
        try:
            ids = [r[0] for r in self._read("SELECT id FROM groups WHERE state != 'closed'")]
        except StoreUnreadable:
            return []

        def fn(c: sqlite3.Connection) -> None:
            for gid in ids:
                c.execute(
                    "UPDATE runs SET status='interrupted', message=? WHERE group_id=? AND"
                    " status IN ('queued', 'running')",
                    (INTERRUPTED, gid),
                )
                c.execute(
                    "UPDATE groups SET state='closed', finished=COALESCE(updated, created)"
                    " WHERE id=?",
                    (gid,),
                )

        return ids if ids and self._write("mark interrupted groups", fn) else []

    def ids(self) -> set[str]:
        """Every group id in the store, read whole (StoreUnreadable otherwise): what may be
        tidied against."""
        return {str(r[0]) for r in self._read("SELECT id FROM groups")}

    # --- reading ---------------------------------------------------------------------------

    def load(
        self, only: str | None = None, rows: bool = True, strict: bool = False
    ) -> tuple[list[StoredGroup], list[str]]:
        """Every stored group (or the one with id `only`), validated, and what was skipped.
        `rows=False`: the groups and their runs without rows (what a list of groups shows).
        A store that cannot be read: StoreUnreadable with `strict`, else ([], [why])."""
        g_where, r_where, args = (
            ("WHERE id=?", "WHERE group_id=?", (only,)) if only else ("", "", ())
        )
        queries = [
            (
                "SELECT id, name, owner, created, started, finished, device, state, updated"
                f" FROM groups {g_where}",
                args,
            ),
            (
                "SELECT group_id, idx, config, status, message, device, seconds,"
                f" diverged_step FROM runs {r_where} ORDER BY group_id, idx",
                args,
            ),
        ]
        if rows:
            queries.append(
                (
                    f"SELECT group_id, run, kind, data FROM rows {r_where}"
                    " ORDER BY group_id, run, kind, seq",
                    args,
                )
            )
        try:
            groups, runs, *more = self._snapshot(queries)
            data = more[0] if more else []
        except StoreUnreadable as e:
            if strict:
                raise
            return [], [str(e)]
        rows_ = data
        by_group: dict[str, dict[int, dict]] = {}
        for gid, idx, config, status, message, device, seconds, step in runs:
            run = {"status": status, "message": message, "device": device, "seconds": seconds}
            run |= {"diverged_step": step, **{k: [] for k in KINDS}}
            try:
                run["config"] = loads(config)
            except (ValueError, TypeError):
                run["config"] = None
            by_group.setdefault(gid, {})[idx] = run
        bad_rows: dict[str, int] = {}
        for gid, run_i, kind, data in rows_:
            run = by_group.get(gid, {}).get(run_i)
            if run is None or kind not in KINDS:
                continue
            try:
                run[kind].append(loads(data))
            except (ValueError, TypeError):
                bad_rows[gid] = bad_rows.get(gid, 0) + 1
        out, problems = [], []
        for gid, name, owner, created, started, finished, device, state, updated in groups:
            where = f"stored group {str(gid)[:80]!r}"
            runs_of = by_group.get(gid, {})
            d = {
                "id": gid,
                "name": name,
                "created": created,
                "started": started,
                "finished": finished,
                "device": device,
                "runs": [runs_of[i] for i in sorted(runs_of)],
            }
            try:
                g, notes = parse_group(d, where)
            except StoreError as e:
                problems.append(f"{e}: skipped")
                continue
            if bad_rows.get(gid):
                notes.append(f"{where}: {bad_rows[gid]} unreadable rows skipped")
            g.owner = owner if isinstance(owner, str) else ""
            g.state = state if state in ("queued", "running", "closed") else "closed"
            g.updated = updated if _is_num(updated) else None
            out.append(g)
            problems += notes
        for p in problems:
            log.warning(p)
        return out, problems

    # --- old JSON stores -------------------------------------------------------------------

    def import_json(self, folder: str | Path) -> tuple[list[str], list[str]]:
        """Take in the old store's `*.json` files once (a file taken in is remembered by name;
        the files are left where they are). Returns (imported ids, problems). Leftover
        `.ID.json.tmp` files of the old store's interrupted writes are removed."""
        folder = Path(folder)
        if not self.readable or not folder.is_dir():
            return [], []
        for tmp in folder.glob(".*.json.tmp"):
            tmp.unlink(missing_ok=True)
        try:
            done = {r[0] for r in self._read("SELECT file FROM imported")}
            have = self.ids()
        except StoreUnreadable:
            return [], []
        ids, problems = [], []
        for path in sorted(folder.glob("*.json")):
            if path.name in done:
                continue
            where = f"old run file {path.name}"
            try:
                if not path.is_file() or path.stat().st_size > 512 * 2**20:
                    raise StoreError(f"{where} is not a file of at most 512 MB")
                d = loads(path.read_bytes())
                if not isinstance(d, dict) or not _is_num(d.get("created")) or d["created"] <= 0:
                    # an export (`runs export`, a page's download) has no time: not a group
                    # of the old store, and taken in it would be dated 1970
                    self._remember(path.name)
                    raise StoreError(f"{where} is not a group of the old store (no 'created')")
                g, notes = parse_group(d, where, fallback_id=path.stem)
            except StoreError as e:
                problems.append(f"{str(e)[:300]}: skipped")
                continue
            except (ValueError, OSError) as e:  # not JSON, too deep, unreadable
                problems.append(f"{where} is not a run group ({str(e)[:200]}): skipped")
                continue
            if g.id in have:
                g.id = f"{g.id}-{int(time.time())}"
            problems += notes
            rows = [
                (i, kind, seq, row)
                for i, r in enumerate(g.runs)
                for kind in KINDS
                for seq, row in enumerate(getattr(r, kind))
            ]
            ok = self.save(g, "closed", rows) and self._remember(path.name)
            if ok:
                ids.append(g.id)
                have.add(g.id)
        for p in problems:
            log.warning(p)
        return ids, problems

    def _remember(self, name: str) -> bool:
        """An old JSON file looked at once: it is not read again."""
        return bool(
            self._write(
                f"remember {name} as imported",
                lambda c: c.execute(
                    "INSERT OR REPLACE INTO imported VALUES (?, ?)", (name, time.time())
                ),
            )
        )


def group_dict(g: StoredGroup) -> dict:
    """The records file of one group: {"runs": [...]} (docs/records.md), with its id and name."""
    return {
        "id": g.id,
        "name": g.name,
        "created": g.created,
        "started": g.started,
        "finished": g.finished,
        "device": g.device,
        "runs": [r.to_dict() for r in g.runs],
    }
