"""One read per group per tick, for every viewer of the group.

A live group is watched by its owner and by every student on the link, each tab rerunning its
fragment twice a second. Before this cache each rerun copied every row of the group
(`GroupJob.snapshot`) and rebuilt every figure from them: the server's work was history ×
viewers, and 30 followers of a 2000-epoch group stalled it for seconds. Here a group's
snapshot, the values derived from it and each chart's figures are computed once per
*version* of the group and shared by all sessions; the figures go into a `ChartStream`, from
which each viewer gets only what it lacks.

A version is the group's row counts and statuses, but its row counts move on at most once a
tick (`TICK_S`): a fast worker sends rows many times a second, and with a version per row
count nearly every viewer's refresh found a new one and rebuilt every figure from the whole
history (30 followers of an `epochs=10000` group: 35 ms of server CPU a refresh, a third of
it rebuilding). A change of status (a run ended, diverged; the group closed) is a new
version at once, so an ended group's last rows are never held back.

Bounded: the newest `SIZE` entries are kept (least recently used go first); a viewer of an
evicted chart gets its whole figure once more. Thread-safe: Streamlit runs each session's
script in its own thread; one builds an entry while the others wait for it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from bnviz.jobs import GroupJob, RunState

from .chart_stream import ChartStream

SIZE = 256  # entries (snapshots, derived values, chart streams) kept server-wide
# s between two versions of a group that differ only in row counts: under the pages'
# refresh (0.5 s), so that a lone viewer, whose refreshes come every 0.5 s and a little
# more, sees every one of them bring new rows.
TICK_S = 0.4


def job_version(job: GroupJob) -> tuple:
    """What a chart of the group depends on, cheaply: whether it ended, each run's status and
    its row counts per kind (lengths of lists that only grow; read without the group's lock,
    a count one row behind is caught up on the next tick)."""
    return (
        job.closed,
        tuple((r.status, tuple(len(v) for v in r.rows.values())) for r in job.runs),
    )


class TickCache:
    """Values computed once per (what, version), shared by every session of the server."""

    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, list] = OrderedDict()  # key → [version, value, lock]
        self.builds = 0  # how many values were computed (tests and benchmarks read it)
        self.tick_s = TICK_S
        # job id → (the version shown, when it was taken: time.monotonic())
        self._versions: OrderedDict[str, tuple[tuple, float]] = OrderedDict()

    def version(self, job: GroupJob) -> tuple:
        """The group's version for this tick, the same for every viewer: `job_version`, whose
        row counts are taken at most once every `tick_s` seconds (statuses at once)."""
        now = job_version(job)
        t = time.monotonic()
        with self._lock:
            shown = self._versions.get(job.id)
            if shown is not None:
                self._versions.move_to_end(job.id)
                old, at = shown
                same_status = old[0] == now[0] and [r[0] for r in old[1]] == [r[0] for r in now[1]]
                # a closed group's rows never change: a difference there is another group
                # under the same id (a restarted store's), shown at once
                if old == now or (not now[0] and same_status and t - at < self.tick_s):
                    return old
            self._versions[job.id] = (now, t)
            while len(self._versions) > self.size:
                self._versions.popitem(last=False)
            return now

    def _entry(self, key: Hashable, make: Callable[[], Any]) -> list:
        with self._lock:
            e = self._entries.get(key)
            if e is None:
                e = self._entries[key] = [_UNSET, make(), threading.Lock()]
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(key)
            return e

    def value(self, key: Hashable, version: Hashable, compute: Callable[[], Any]) -> Any:
        """compute() once per version of `key`; the same object for every caller meanwhile
        (read-only to them)."""
        e = self._entry(key, lambda: None)
        if e[0] == version:
            return e[1]
        with e[2]:
            if e[0] != version:
                e[1] = compute()
                e[0] = version
                self.builds += 1
            return e[1]

    def stream(self, key: Hashable, version: Hashable, build: Callable[[], dict]) -> ChartStream:
        """The chart `key`'s stream, with build()'s figure pushed once per version."""
        e = self._entry(("stream", key), ChartStream)
        if e[0] == version:
            return e[1]
        with e[2]:
            if e[0] != version:
                e[1].push(build())
                e[0] = version
                self.builds += 1
            return e[1]

    def snapshot(self, job: GroupJob, version: tuple) -> list[RunState]:
        """The group's runs as `GroupJob.snapshot` copies them, once per `version` (this
        tick's, from `version`): rows the worker sent since wait for the next tick."""
        return self.value(("snapshot", job.id), version, job.snapshot)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._versions.clear()


_UNSET = object()
CACHE = TickCache()  # the server's: one per process, like the job manager
