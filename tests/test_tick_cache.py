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


def test_followers_draw_two_at_a_time_and_the_owner_at_once():
    """dashboard.live.in_turn: with FOLLOWERS_AT_ONCE followers drawing, another waits; the
    owner's view (wait=False) goes at once. The control: a third turn is not to be had."""
    import contextlib
    import threading

    from dashboard import live

    with contextlib.ExitStack() as held:
        for _ in range(live.FOLLOWERS_AT_ONCE):
            held.enter_context(live.in_turn(True))
        assert not live._turns.acquire(blocking=False)  # no turn left for a follower
        with live.in_turn(False):  # the owner: not queued
            pass
        entered = threading.Event()

        def follower() -> None:
            with live.in_turn(True):
                entered.set()

        t = threading.Thread(target=follower)
        t.start()
        assert not entered.is_set()
    # the turns given back: the waiting follower draws
    assert entered.wait(timeout=30)
    t.join(timeout=30)


def test_a_closed_group_is_never_held_back():
    """Another closed group under the same id (as a restarted server loads it from the
    store) is shown at once, whatever the tick: its rows are not the old group's."""
    cache = TickCache()
    cache.tick_s = 3600.0
    first = cache.version(_job(10, status="finished", closed=True))
    assert cache.version(_job(30, status="finished", closed=True)) != first
