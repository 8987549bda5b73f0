"""bnviz.columns: a column of rows that only grow, read incrementally from tick to tick."""

from __future__ import annotations

from bnviz.columns import MIN_ROWS, column


class Row(dict):
    """A record row that counts how often a value is read from it."""

    reads = 0

    def __getitem__(self, key: str) -> object:
        Row.reads += 1
        return super().__getitem__(key)


def _rows(n: int, start: int = 0) -> list[dict]:
    return [Row(epoch=i, test_loss=1.0 / (i + 1)) for i in range(start, start + n)]


def test_a_growing_column_reads_only_the_new_rows():
    """Each tick a snapshot copies the list (the rows shared); the column is extended with
    the rows added since, and equals reading them all. The control: reading them all reads
    every row again."""
    rows = _rows(MIN_ROWS + 1000)
    assert column(list(rows), "test_loss") == [r["test_loss"] for r in rows]
    rows += _rows(10, start=len(rows))
    Row.reads = 0
    got = column(list(rows), "test_loss")  # the next tick's snapshot
    assert Row.reads == 10
    Row.reads = 0
    assert got == [r["test_loss"] for r in rows]
    assert Row.reads == len(rows)  # the control: the whole history again
    Row.reads = 0
    assert column(list(rows), "test_loss") == got and Row.reads == 0  # nothing new: no reads


def test_other_lists_and_changed_rows_are_read_whole():
    """A list that starts with other rows, or whose remembered last row is not the same
    object any more (rows replaced), is read whole, never mixed with a remembered one; a
    returned list is the caller's own."""
    rows = _rows(MIN_ROWS + 50)
    first = column(rows, "epoch")
    first.append("mine")  # the caller's list: the next call does not see it
    other = _rows(MIN_ROWS + 60, start=7)
    assert column(other, "epoch") == list(range(7, 7 + MIN_ROWS + 60))
    replaced = rows[:-1] + _rows(5, start=1000)  # same first row, the old last row gone
    assert column(replaced, "epoch") == [r["epoch"] for r in replaced]
    assert column(rows, "epoch") == list(range(MIN_ROWS + 50))
    assert column(rows[:10], "epoch") == list(range(10))  # short: read as it is


def test_a_layers_probes_are_read_incrementally():
    """records.latest_layers and layer_series on a growing probe history: the same as a
    whole read at every tick, reading only the rows added since. The control: the first
    read (nothing remembered) reads every row."""
    from bnviz.records import latest_layers, layer_series

    def probes(start: int, n: int) -> list[dict]:
        return [
            Row(step=s, point=p, layer=layer, p50=s + layer)
            for s in range(start, start + n)
            for p in ("act_in", "act_out")
            for layer in (1, 2, 3)
        ]

    rows = probes(0, MIN_ROWS)
    Row.reads = 0
    assert latest_layers(list(rows), "act_out")[2]["step"] == MIN_ROWS - 1
    assert Row.reads >= len(rows)  # the control: all of them, once
    series = layer_series(list(rows), "act_in", 3)
    rows += probes(MIN_ROWS, 4)
    Row.reads = 0
    latest = latest_layers(list(rows), "act_out")
    grown = layer_series(list(rows), "act_in", 3)
    assert Row.reads <= 2 * 2 * 24  # the 24 new rows, `point` and `layer` of each, twice
    assert {k: r["step"] for k, r in latest.items()} == {
        1: MIN_ROWS + 3,
        2: MIN_ROWS + 3,
        3: MIN_ROWS + 3,
    }
    whole = [r for r in rows if dict.get(r, "point") == "act_in" and dict.get(r, "layer") == 3]
    assert grown == whole and grown[: len(series)] == series and len(grown) == len(series) + 4
