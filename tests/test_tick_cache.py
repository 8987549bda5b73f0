"""The tick cache's versions: one per tick for a fast group's rows, at once for a status."""

from __future__ import annotations

import time
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


def test_followers_draw_in_turns_and_the_owner_at_once():
    """dashboard.live.in_turn: with FOLLOWERS_AT_ONCE followers drawing, another waits; the
    owner's view (wait=False) goes at once. The control: no further turn is to be had."""
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


def test_followers_take_turns_in_the_order_they_came():
    """dashboard.live.Turns: a released turn goes to the follower that waited longest, not
    back to the thread that released it (whose next refresh is already asked for). The
    control: threading.Semaphore lets the releasing thread take its turn again (it does in
    nearly every try: the woken waiter has not run yet)."""
    import threading

    from dashboard import live

    def again_before_the_waiter(turns, queued) -> bool:
        """Hold the turn, let a thread queue for it, release: can this thread take it back?"""
        assert turns.acquire()
        served = threading.Event()

        def waiter() -> None:
            turns.acquire()
            served.set()
            turns.release()

        t = threading.Thread(target=waiter)
        t.start()
        deadline = time.monotonic() + 30
        while not queued(turns) and time.monotonic() < deadline:
            time.sleep(0.01)
        turns.release()
        again = turns.acquire(blocking=False)
        if again:
            turns.release()
        assert served.wait(timeout=30)
        t.join(timeout=30)
        return again

    fair = live.Turns(1)
    assert not any(again_before_the_waiter(fair, lambda x: x._waiting) for _ in range(5))
    unfair = threading.Semaphore(1)
    assert any(again_before_the_waiter(unfair, lambda x: x._cond._waiters) for _ in range(20))


def test_a_follower_gives_way_to_the_owners_refresh(monkeypatch):
    """dashboard.live: while an owner's refresh of a live group draws (the projector's), a
    follower's waits for it, without the GIL, before each chart; never longer than
    OWNER_FIRST_S. The control: with no owner drawing, the follower draws at once."""
    import threading

    from dashboard import live

    def follower(entered: threading.Event) -> threading.Thread:
        def run() -> None:
            with live.in_turn(True):
                live.give_way()  # a chart's turn
                entered.set()

        t = threading.Thread(target=run)
        t.start()
        return t

    entered = threading.Event()
    follower(entered).join(timeout=30)
    assert entered.is_set()  # the control: no owner, no wait
    monkeypatch.setattr(live, "OWNER_FIRST_S", 60.0)
    entered = threading.Event()
    with live.in_turn(False, first=True):
        t = follower(entered)
        deadline = time.monotonic() + 30
        while not live._owners._waiters and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.01)
        assert live._owners._waiters and not entered.is_set()  # type: ignore[attr-defined]
    assert entered.wait(timeout=30)  # the owner's refresh ended: the follower draws
    t.join(timeout=30)
    monkeypatch.setattr(live, "OWNER_FIRST_S", 0.5)
    entered = threading.Event()
    took: list[float] = []

    def many_parts() -> None:
        t0 = time.monotonic()
        with live.in_turn(True):
            for _ in range(5):
                live.give_way()
        took.append(time.monotonic() - t0)
        entered.set()

    with live.in_turn(False, first=True):  # an owner drawing for good: the follower goes on
        t = threading.Thread(target=many_parts)
        t.start()
        assert entered.wait(timeout=30)
    t.join(timeout=30)
    # OWNER_FIRST_S in all, not at each of its six waits (which would be ≥ 3 s)
    assert 0.5 <= took[0] < 2.5


def test_a_closed_group_is_never_held_back():
    """Another closed group under the same id (as a restarted server loads it from the
    store) is shown at once, whatever the tick: its rows are not the old group's."""
    cache = TickCache()
    cache.tick_s = 3600.0
    first = cache.version(_job(10, status="finished", closed=True))
    assert cache.version(_job(30, status="finished", closed=True)) != first
