"""What is read from a list of record rows that only grows, read again every tick.

A live chart is rebuilt twice a second from its runs' whole history: pulling a column out of
10 000 rows a run (`[r["test_loss"] for r in rows]`), or one layer's probes out of all of
them, is Python work that grew with the history (curves of 2 runs × 10 000 epochs: ~14 ms a
tick). A run's rows are appended and never changed, and a snapshot copies the list but shares
the rows (`RunRecord.copy_rows`): what was read last time is extended with the rows added
since (`fold`), the list recognised by the identity of its first and last rows read.
Pure Python, no Streamlit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

MIN_ROWS = 256  # shorter lists are read whole: cheaper than remembering them
SIZE = 1024  # results remembered, least recently used forgotten first

_lock = threading.Lock()
# (id of the first row, what) → (the first row, how many rows, the last of them, the result)
_memo: OrderedDict[tuple[int, Hashable], tuple[dict, int, dict, Any]] = OrderedDict()


def fold(rows: Sequence[dict], what: Hashable, step: Callable[[Any, Sequence[dict]], Any]) -> Any:
    """`step(None, rows)`, computed as `step(last result, the rows added since)` when this
    list starts with the rows (the same objects) a call with the same `what` read last.
    `step` returns a new value and never changes the one it is given: a caller may still
    hold it. The result is shared: read-only to the caller."""
    if len(rows) < MIN_ROWS:
        return step(None, rows)
    first = rows[0]
    k = (id(first), what)
    with _lock:
        e = _memo.get(k)
        if e is not None:
            _memo.move_to_end(k)
    # `first` is held by the entry, so its id is not reused while the entry lives
    if e is not None and e[0] is first and e[1] <= len(rows) and rows[e[1] - 1] is e[2]:
        if e[1] == len(rows):
            return e[3]
        value = step(e[3], rows[e[1] :])
    else:
        value = step(None, rows)
    with _lock:
        _memo[k] = (first, len(rows), rows[-1], value)
        while len(_memo) > SIZE:
            _memo.popitem(last=False)
    return value


def column(rows: Sequence[dict], key: str) -> list:
    """`[r[key] for r in rows]`, a new list (`fold`: only the rows added since are read)."""

    def step(old: list | None, new: Sequence[dict]) -> list:
        return (old or []) + [r[key] for r in new]

    return list(fold(rows, ("column", key), step))
