"""The tick cache's versions: one per tick for a fast group's rows, at once for a status."""

from __future__ import annotations

from types import SimpleNamespace

from dashboard.tick_cache import TickCache


def _job(rows: int, status: str = "running", closed: bool = False) -> SimpleNamespace:
    # What job_version reads of a GroupJob: closed, and per run its status and rows by kind.
    run = SimpleNamespace(status=status, rows={"train": list(range(rows))})
    return SimpleNamespace(id="g", closed=closed, runs=[run])


def test_new_rows_within_a_tick_keep_the_version_every_viewer_shares():
    cache = TickCache()
    cache.tick_s = 3600.0  # a tick that never ends within the test
    first = cache.version(_job(10))
    assert cache.version(_job(11)) == first  # rows arrived: the next tick shows them
    assert cache.version(_job(500)) == first


def test_new_rows_after_a_tick_are_a_new_version():
    cache = TickCache()
    cache.tick_s = 0.0
    first = cache.version(_job(10))
    assert cache.version(_job(11)) != first
    assert cache.version(_job(11)) == cache.version(_job(11))  # nothing new: the same


def test_a_status_change_is_a_new_version_at_once():
    cache = TickCache()
    cache.tick_s = 3600.0
    first = cache.version(_job(10))
    ended = cache.version(_job(12, status="finished"))
    assert ended != first and ended[1][0][1] == (12,)  # the last rows come with it
    closed = cache.version(_job(12, status="finished", closed=True))
    assert closed != ended and closed[0]


def test_versions_are_bounded():
    cache = TickCache(size=4)
    for i in range(10):
        job = _job(1)
        job.id = f"g{i}"
        cache.version(job)
    assert len(cache._versions) == 4
