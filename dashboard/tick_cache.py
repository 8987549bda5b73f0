"""One read per group per tick, for every viewer of the group.

A live group is watched by its owner and by every student on the link, each tab rerunning its
fragment twice a second. Before this cache each rerun copied every row of the group
(`GroupJob.snapshot`) and rebuilt every figure from them: the server's work was history ×
viewers, and 30 followers of a 2000-epoch group stalled it for seconds. Here a group's
snapshot, the values derived from it and each chart's figures are computed once per
*version* of the group (its runs' row counts and statuses: they change only when the
worker sends rows) and shared by all sessions; the figures go into a `ChartStream`, from
which each viewer gets only what it lacks.

Bounded: the newest `SIZE` entries are kept (least recently used go first); a viewer of an
evicted chart gets its whole figure once more. Thread-safe: Streamlit runs each session's
script in its own thread; one builds an entry while the others wait for it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from bnviz.jobs import GroupJob, RunState

from .chart_stream import ChartStream

SIZE = 256  # entries (snapshots, derived values, chart streams) kept server-wide


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

    def snapshot(self, job: GroupJob) -> list[RunState]:
        """The group's runs as `GroupJob.snapshot` copies them, once per version."""
        return self.value(("snapshot", job.id), job_version(job), job.snapshot)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_UNSET = object()
CACHE = TickCache()  # the server's: one per process, like the job manager
