"""Successive figures of one live chart, and what a viewer that has an older one needs.

A live chart redraws twice a second from a history that only grows. Sending the whole figure
each time made a refresh's bytes and the server's work grow with the history (a 2000-epoch
group: ~290 KB a refresh, to every viewer). A `ChartStream` numbers the figures pushed into
it (revisions) and remembers, per trace and key, the last revision at which the value changed
other than by appending points to an array. A viewer known to hold revision `have` then gets a
patch: for each trace nothing, the points added to its arrays since `have` (idempotent:
"set the arrays to length n, then append these"), the values of the keys that changed
otherwise (a histogram's heights), or the whole trace when its keys changed; the
layout's top-level keys that changed (the whole layout, "replace", when one went away). A
viewer that missed any number of revisions catches up with one patch; one further back than
the remembered revisions (or on another stream) gets the whole figure. Pure Python, no
Streamlit: the component's JavaScript applies the patches (`live_chart._PATCH_JS`), and
tests apply them with the same code.

Patch format (JSON): {"rev": R, "from": have, "traces": [[i, T]...], "layout": {k: v},
"replace": true}, T = {"full": trace} or {"set": {key: value}, "at": {key: n}, "add": {key:
values}} where a 2-D key (a heatmap's z: rows that each grow) has "at" the row length and
"add" a list per row.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

KEEP_REVS = 120  # revisions whose array lengths are remembered: one minute at 2 a second


def _arrays(trace: dict) -> dict[str, int]:
    """The trace's point arrays and their lengths: 1-D lists (x, y, text, width) and 2-D
    lists of rows (z: the length of its rows, which must be equal)."""
    out = {}
    for k, v in trace.items():
        if not isinstance(v, list):
            continue
        if v and isinstance(v[0], list):
            lens = {len(row) for row in v}
            if len(lens) == 1 and all(isinstance(row, list) for row in v):
                out[k] = lens.pop()
        else:
            out[k] = len(v)
    return out


def _is_2d(v: list) -> bool:
    return bool(v) and isinstance(v[0], list)


def _grew(v: Any, w: Any, n: int | None) -> bool:
    """Whether `w` is `v` with points appended (`n`: v's length as an array, None when v is
    not one): an array of the same kind whose first points are v's."""
    if n is None or not isinstance(w, list) or (_is_2d(v) != _is_2d(w) and (v or w)):
        return False
    if _is_2d(v):
        return len(v) == len(w) and all(a == b[:n] for a, b in zip(v, w))
    return len(w) >= n and v == w[:n]


@dataclass(frozen=True)
class _State:
    """One revision, replaced whole (a reader in another thread sees one or the other)."""

    rev: int
    figure: dict
    lens: tuple[dict[str, int], ...]  # per trace, its arrays' lengths
    since: tuple[dict[str, int], ...]  # per trace and key, the revision it last changed other
    #                                    than by growing (the whole value is sent then)
    shape: tuple[int, ...]  # per trace, the revision its keys last changed (sent whole then)
    layout_since: dict[str, int]  # per layout key, the revision it last changed
    history: dict[int, tuple[dict[str, int], ...]]  # rev → lens (the last KEEP_REVS)
    layout_dropped: int  # the revision at which the layout last lost a key
    shared: dict = field(default_factory=dict)  # `ChartStream.shared`'s values at this revision


class ChartStream:
    """The figures of one chart over time (thread-safe: one writer at a time, any readers)."""

    def __init__(self) -> None:
        self.token = uuid.uuid4().hex[:10]  # names this stream to the component
        self._state: _State | None = None
        self._lock = threading.Lock()
        self.checked = 0  # the revision whose whole figure is known to be JSON (live_chart)

    def state(self) -> _State | None:
        """The newest revision (rev, figure, ...) as one consistent object."""
        return self._state

    @property
    def rev(self) -> int:
        s = self._state
        return s.rev if s else 0

    @property
    def figure(self) -> dict | None:
        s = self._state
        return s.figure if s else None

    def push(self, figure: dict) -> None:
        """The chart's next figure (plain JSON; not modified afterwards by anyone)."""
        with self._lock:
            old = self._state
            data = figure.get("data", [])
            lens = tuple(_arrays(t) for t in data)
            rev = (old.rev if old else 0) + 1
            since: list[dict[str, int]] = []
            shape: list[int] = []
            same = old is not None and len(old.figure.get("data", [])) == len(data)
            for i, t in enumerate(data):
                o = old.figure["data"][i] if same else None
                if o is None or o.keys() != t.keys():
                    since.append(dict.fromkeys(t, rev))
                    shape.append(rev)
                    continue
                n, was = old.lens[i], old.since[i]
                since.append(
                    {
                        k: was[k] if (o[k] == v if k not in n else _grew(o[k], v, n[k])) else rev
                        for k, v in t.items()
                    }
                )
                shape.append(old.shape[i])
            layout = figure.get("layout", {})
            before = old.figure.get("layout", {}) if old else {}
            layout_since = {
                k: old.layout_since.get(k, rev) if old and k in before and before[k] == v else rev
                for k, v in layout.items()
            }
            dropped = old.layout_dropped if old else 0
            if before.keys() - layout.keys():
                dropped = rev
            history = dict(old.history) if old else {}
            history[rev] = lens
            for r in [r for r in history if r <= rev - KEEP_REVS]:
                del history[r]
            self._state = _State(
                rev, figure, lens, tuple(since), tuple(shape), layout_since, history, dropped
            )

    def shared(self, key: Any, make: Callable[[_State | None], Any]) -> Any:
        """make(newest revision) once per revision and `key`, for every caller meanwhile
        (read-only to them): viewers holding the same revision need the same patch."""
        s = self._state
        if s is None:
            return make(None)
        try:
            return s.shared[key]
        except KeyError:
            value = s.shared[key] = make(s)  # two threads at once: both compute, one is kept
            return value

    def patch(self, have: int | None, s: _State | None = None) -> dict | None:
        """What a viewer holding revision `have` needs to reach the newest one (or `s`): a
        patch, or None when only the whole figure will do (no revision, an unknown or
        forgotten one)."""
        s = s or self._state
        if s is None or have is None or have not in s.history:
            return None
        if have == s.rev:
            return {"rev": s.rev, "from": have, "traces": []}
        had = s.history[have]
        if len(had) != len(s.lens):
            return None
        traces: list[list] = []
        for i, (trace, since, lens) in enumerate(zip(s.figure["data"], s.since, s.lens)):
            if s.shape[i] > have:
                traces.append([i, {"full": trace}])
                continue
            t: dict[str, dict] = {}
            for k, v in trace.items():
                n = had[i].get(k)
                if since[k] > have or (k in lens and n is None):
                    t.setdefault("set", {})[k] = v
                elif k in lens and n != lens[k]:
                    t.setdefault("at", {})[k] = n
                    t.setdefault("add", {})[k] = [row[n:] for row in v] if _is_2d(v) else v[n:]
            if t:
                traces.append([i, t])
        out: dict[str, Any] = {"rev": s.rev, "from": have, "traces": traces}
        layout = s.figure.get("layout", {})
        if s.layout_dropped > have:  # a key went away: the whole layout replaces the old one
            out["layout"], out["replace"] = layout, True
        else:
            changed = {k: v for k, v in layout.items() if s.layout_since[k] > have}
            if changed:
                out["layout"] = changed
        return out
