"""The command line: `python -m bnviz train | list | download | runs | check`.

Owns argument parsing, layering a group of RunConfigs from defaults, a preset, a config file and
`--set`/`--vary`, the terminal progress bars, Ctrl-C handling (stop cleanly, keep the records),
the summary table, writing the records file, and turning bad input into one `bnviz: error: ...`
line with exit code 2. Training itself is `bnviz.train.train_group`; data is `bnviz.data`.

Exit codes: 0 all runs finished or diverged (divergence is a result, not an error); 1 a run
failed or the records could not be written; 2 bad input; 130 interrupted by Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import shutil
import signal
import stat
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from . import audit
from .checks import RULE
from .config import (
    FIELDS,
    PRESETS,
    ConfigError,
    RunConfig,
    from_dict,
    grid,
    parse_assignment,
    parse_values,
    value_text,
)
from .lessons import SEEDS
from .limits import MAX_RUNS, check_group
from .records import ENDED, group_labels, run_progress, status_text, summary

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
PROG = "python -m bnviz"
REFRESH_S = 0.1  # at most ~10 progress-bar redraws per second: redrawing is not free
MAX_CONFIG_BYTES = 2**20  # a config file is a table of a few dozen fields


def _short(path: str, most: int = 120) -> str:
    """A path as shown in an error: a 4,000-character name is cut, not printed whole."""
    return path if len(path) <= most else path[: most - 1] + "…"


class CLIError(Exception):
    """Bad input found by the CLI itself (file, preset, flags); printed as one line, exit 2."""


# ---------------------------------------------------------------------------------------------
# Building the group of configs
# ---------------------------------------------------------------------------------------------


def read_config_file(path: str) -> dict[str, Any]:
    """The field: value table of a .json or .toml file; unknown fields are rejected here."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise CLIError(f"config file {_short(path)} must end in .json or .toml")
    try:
        # a FIFO would block the open, a device (/dev/zero) never end: regular files only
        info = p.stat()
        if not stat.S_ISREG(info.st_mode):
            raise CLIError(f"config file {_short(path)} is not a regular file")
        if info.st_size > MAX_CONFIG_BYTES:
            raise CLIError(f"config file {_short(path)} is larger than 1 MB: not a config")
        with p.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise CLIError(f"cannot read config file {_short(path)}: {e.strerror or e}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise CLIError(f"config file {_short(path)} is larger than 1 MB: not a config")
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise CLIError(f"config file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise CLIError(f"config file {path} is not valid TOML: {e}") from None
    except json.JSONDecodeError as e:
        raise CLIError(
            f"config file {path} is not valid JSON: {e.msg} at line {e.lineno}"
        ) from None
    except RecursionError:
        raise CLIError(f"config file {path} is nested too deeply to be a config") from None
    except ValueError as e:  # Python refuses integers of more than 4,300 digits
        why = "a number has thousands of digits" if "digits" in str(e) else str(e)[:120]
        raise CLIError(f"config file {path} cannot be read: {why}") from None
    if not isinstance(data, dict):
        raise CLIError(f"config file {path} must hold an object of field: value")
    unknown = [k for k in data if k not in FIELDS]
    if unknown:
        raise CLIError(
            f"config file {path}: unknown field '{unknown[0]}': known fields are "
            f"{', '.join(FIELDS)}"
        )
    return data


def build_configs(
    *,
    preset: str | None = None,
    config_file: str | None = None,
    sets: Sequence[str] = (),
    varies: Sequence[str] = (),
) -> list[RunConfig]:
    """The group: defaults ← preset base ← config file ← --set, then the grid of the varied."""
    merged: dict[str, Any] = {}
    vary: dict[str, list[Any]] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise CLIError(f"unknown preset '{preset}': known presets are {', '.join(PRESETS)}")
        merged.update(PRESETS[preset].base)
        vary = dict(PRESETS[preset].vary)
    if config_file is not None:
        merged.update(read_config_file(config_file))
    for text in sets:
        name, value = parse_assignment(text)
        merged[name] = value  # repeated --set of one field: the last one wins, as usual
    if varies:
        vary = {}  # an explicit --vary replaces the preset's comparison instead of adding to it
        for text in varies:
            name, values = parse_assignment(text)
            if name in vary:
                raise CLIError(f"--vary {name} is given twice; list all its values in one --vary")
            vary[name] = parse_values(name, values)
            runs = math.prod(len(v) for v in vary.values())
            if runs > MAX_RUNS:  # before the grid is built: three flags can make a million
                raise CLIError(
                    f"--vary makes {runs} runs; one group has at most {MAX_RUNS}: vary fewer values"
                )
    base = from_dict(merged)
    configs = grid(base, vary)
    devices = {c.device for c in configs}
    if len(devices) > 1:
        # train_group puts the whole group on one device
        raise CLIError(f"device varies in the group ({', '.join(sorted(devices))}); use one")
    return configs


# ---------------------------------------------------------------------------------------------
# Progress bars
# ---------------------------------------------------------------------------------------------


def _clock(seconds: float) -> str:
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def _bar(fraction: float, width: int = 24) -> str:
    filled = min(width, max(0, int(fraction * width)))
    return "[" + "#" * filled + "." * (width - filled) + "]"


class LineWriter:
    """Redraws one status line on a terminal, throttled; a no-op when disabled."""

    def __init__(
        self,
        stream: TextIO,
        enabled: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream, self.enabled, self.clock = stream, enabled, clock
        self.last = -math.inf
        self.shown = False

    def draw(self, text: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if not force and now - self.last < REFRESH_S:
            return
        self.last = now
        width = shutil.get_terminal_size((100, 20)).columns - 1
        # \r + erase-line keeps the bar on one line; cutting to the width stops it wrapping
        self.stream.write("\r\x1b[2K" + text[:width])
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.enabled and self.shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self.shown = False


class TrainProgress:
    """Turns train_group events into a bar: epochs done / planned, ETA, latest test accuracy.

    Progress is the fraction of its epochs each run has done (from the history rows' `epoch`),
    averaged over the runs; no second model is built just to count steps.
    """

    def __init__(self, configs: Sequence[RunConfig], line: LineWriter) -> None:
        self.epochs = [c.epochs for c in configs]
        self.done = [0.0] * len(configs)  # records.run_progress of each run
        self.test_acc: list[float | None] = [None] * len(configs)
        self.status = ["queued"] * len(configs)
        self.line = line
        self.start: float | None = None  # first 'running': excludes data loading from the ETA

    def fraction(self) -> float:
        return sum(self.done) / len(self.done) if self.done else 1.0

    def __call__(self, event: Mapping[str, Any]) -> None:
        i = event["run"]
        if event["type"] == "status":
            self.status[i] = event["status"]
            if event["status"] == "running" and self.start is None:
                self.start = self.line.clock()
            if event["status"] in ENDED:
                self.done[i] = run_progress(event["status"], [], self.epochs[i])
            self.line.draw(self.text(), force=event["status"] != "running")
        elif event["kind"] == "history" and event["rows"]:
            row = event["rows"][-1]
            if self.status[i] == "running":
                self.done[i] = run_progress("running", event["rows"], self.epochs[i])
            self.test_acc[i] = row["test_acc"]
            self.line.draw(self.text())

    def text(self) -> str:
        f = self.fraction()
        eta = "ETA --:--"
        if self.start is not None and f > 0:
            elapsed = self.line.clock() - self.start
            eta = f"ETA {_clock(elapsed * (1 - f) / f)}"
        accs = " ".join("  -  " if a is None else f"{100 * a:4.1f}%" for a in self.test_acc)
        return f"{_bar(f)} {100 * f:3.0f}%  {eta}  test acc {accs}"


# ---------------------------------------------------------------------------------------------
# Ctrl-C
# ---------------------------------------------------------------------------------------------


class StopFlag:
    """While active, the first Ctrl-C asks training to stop after the current step.

    train_group polls should_stop between steps, so catching SIGINT (instead of letting it
    raise KeyboardInterrupt somewhere inside torch) lets every run end 'cancelled' with its
    records intact. A second Ctrl-C raises KeyboardInterrupt for a hard abort.
    """

    def __init__(self, stream: TextIO, quiet: bool) -> None:
        self.stream, self.quiet = stream, quiet
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def __call__(self) -> bool:
        return self.requested

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if not self.quiet:
            self.stream.write("\nstopping after this step (Ctrl-C again to abort) ...\n")
            self.stream.flush()

    def __enter__(self) -> StopFlag:
        # signal handlers can only be set from the main thread (e.g. not inside a test runner's
        # worker thread); there Ctrl-C is simply not ours to handle
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)


# ---------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def summary_table(records: Sequence[Any]) -> str:
    """One row per run: label, status, final train/test accuracy, best test accuracy, time."""
    labels = group_labels([r.config for r in records])
    head = ("run", "status", "train acc", "test acc", "best test", "seconds")
    rows = []
    notes = []
    for label, r in zip(labels, records):
        s = summary(r.history)
        status = status_text(r.status, "", r.diverged_step)
        if r.status == "failed":
            status = "failed (see below)"
            notes.append(f"{label}: {r.message}")
        rows.append(
            (
                label,
                status,
                _pct(s["train_acc"]),
                _pct(s["test_acc"]),
                _pct(s["best_test_acc"]),
                f"{r.seconds:.1f}",
            )
        )
    widths = [max(len(row[k]) for row in (head, *rows)) for k in range(len(head))]
    # text columns left-aligned, numbers right-aligned
    align = ["<", "<", ">", ">", ">", ">"]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip()

    out = [line(head), line(["-" * w for w in widths]), *(line(r) for r in rows)]
    out += [f"failed: {n}" for n in notes]
    if records:
        out.append(f"device: {records[0].device or 'unknown'}")
    return "\n".join(out)


def _check_out_path(path: str) -> Path:
    """Fail before training (not after minutes of it) when --out cannot be written."""
    if not path.strip():
        raise CLIError("--out needs a file name, e.g. --out runs.json")
    p = Path(path)
    shown = _short(path)
    if any(len(part.encode()) > 255 for part in p.parts):
        raise CLIError(f"--out {shown}: a file or folder name is longer than 255 bytes")
    try:
        if p.is_dir():
            raise CLIError(f"--out {shown} is a folder; give a file name such as runs.json")
        parent = p.parent if str(p.parent) else Path(".")
        if not parent.is_dir():
            raise CLIError(f"--out {shown}: folder {_short(str(parent))} does not exist")
    except OSError as e:  # a path too long, a loop of links
        raise CLIError(f"--out {shown}: {e.strerror or e}") from None
    if not os.access(parent, os.W_OK):
        raise CLIError(f"--out {shown}: folder {_short(str(parent))} is not writable")
    return p


def _write_records(path: Path, payload: dict) -> int:
    """Write atomically (temp file + rename) so a crash never leaves half a JSON file."""
    tmp = path.with_name(f".{path.name}.tmp")
    # compact separators: the layer probes make the file big; floats are kept unchanged
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return len(text.encode("utf-8"))


def _preflight(configs: Sequence[RunConfig]) -> None:
    """Load each distinct data set once so that missing data or a batch larger than the training
    set is reported as bad input (exit 2) before training, instead of as failed runs.

    The loader caches the arrays, so train_group's own load of the same data is cheap.
    """
    from .train import data_key, load_data

    seen: dict[tuple, int] = {}
    for c in configs:
        key = data_key(c)
        if key not in seen:
            seen[key] = load_data(c).n_train
        if seen[key] < c.batch_size:
            raise CLIError(
                f"batch_size={c.batch_size} is larger than the {seen[key]} training samples of "
                f"{c.dataset}; use batch_size ≤ {seen[key]}"
            )


def cmd_train(args: argparse.Namespace) -> int:
    try:
        configs = build_configs(
            preset=args.preset, config_file=args.config, sets=args.set, varies=args.vary
        )
    except (OverflowError, RecursionError, TypeError) as e:  # values no field can hold
        raise CLIError(f"the config cannot be read: {str(e)[:120]}") from None
    problems = check_group(configs)  # the dashboard's check, before torch is imported
    if problems:
        raise CLIError(problems[0])
    out = _check_out_path(args.out) if args.out is not None else None
    _check_threads_env()
    # a store that cannot take the group is said before training, not after it
    store = _open_store() if args.store else None
    # torch is imported only now: bad flags are reported without paying for it
    from .train import records_to_json, resolve_device, train_group

    try:
        device = resolve_device(configs[0].device)
    except RuntimeError as e:
        raise CLIError(str(e)) from None
    _preflight(configs)

    err = sys.stderr
    quiet = args.quiet
    line = LineWriter(err, enabled=err.isatty() and not quiet)
    progress = TrainProgress(configs, line)
    started = time.time()
    with StopFlag(err, quiet) as stop:
        if not quiet:  # inside the handler's scope: from here on Ctrl-C keeps the records
            n = len(configs)
            err.write(f"training {n} run{'s' * (n != 1)} on {device} (Ctrl-C stops, keeps them)\n")
            err.flush()
        try:
            records = train_group(configs, should_stop=stop, on_event=progress, device=device)
        finally:
            line.clear()

    print(summary_table(records))
    code = EXIT_OK
    if out is not None:
        try:
            size = _write_records(out, records_to_json(records))
        except OSError as e:
            print(f"bnviz: error: cannot write {out}: {e.strerror or e}", file=sys.stderr)
            code = EXIT_FAILED
        else:
            print(f"records: {out} ({size / 1e6:.1f} MB)")
    if store is not None:
        gid = _store_group(store, configs, records, started)
        if gid is None:
            code = EXIT_FAILED
        else:
            print(f"stored as group {gid} (python -m bnviz runs; the dashboard's Runs page)")
    if stop.requested:
        return EXIT_INTERRUPTED
    if any(r.status == "failed" for r in records):
        return EXIT_FAILED
    return code


# ---------------------------------------------------------------------------------------------
# list, download
# ---------------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from .data import DATASETS

    out: list[str] = ["Datasets:"]
    w = max(len(n) for n in DATASETS)
    for name, info in DATASETS.items():
        where = "offline " if info.offline else "download"
        out.append(f"  {name:<{w}}  {where}  {info.description}")
    out += ["", "Presets (--preset NAME):"]
    w = max(len(n) for n in PRESETS)
    for name, p in PRESETS.items():
        n = len(p.configs())
        out.append(f"  {name:<{w}}  {n} run{'s' * (n != 1)}  {p.description}")
    defaults = RunConfig()
    w = max(len(n) for n in FIELDS)
    groups: dict[str, list[str]] = {}
    for name, f in FIELDS.items():
        groups.setdefault(f.group, []).append(name)
    out += ["", "Fields (--set FIELD=VALUE, --vary FIELD=V1,V2; tuple values split by ';'):"]
    for group, names in groups.items():
        out.append(f"  {group}:")
        for name in names:
            f = FIELDS[name]
            default = value_text(getattr(defaults, name))
            out.append(f"    {name:<{w}}  {f.help}")
            out.append(f"    {'':<{w}}  default {default}; allowed: {f.allowed()}")
    print("\n".join(out))
    return EXIT_OK


def _check_threads_env() -> None:
    """BNVIZ_THREADS (torch threads while training) must be a whole number ≥ 1: said as bad
    input here, before bnviz.train reads it."""
    text = os.environ.get("BNVIZ_THREADS")
    if text is None:
        return
    try:
        ok = int(text) >= 1
    except ValueError:
        ok = False
    if not ok:
        raise CLIError(f"BNVIZ_THREADS={text[:40]!r}: expected a whole number of threads ≥ 1")


def _store_group(
    store: Any, configs: Sequence[RunConfig], records: Sequence[Any], started: float
) -> str | None:
    """Put a trained group into the run store, owned by the CLI (the dashboard shows it
    read-only). Returns its id, or None (the error printed) when the store cannot be written."""
    import uuid

    from .records import KINDS, group_name
    from .store import StoredGroup

    gid = time.strftime("%Y%m%d-%H%M%S-", time.localtime(started)) + uuid.uuid4().hex[:6]
    g = StoredGroup(gid, group_name(configs), list(records), started, started, time.time())
    g.device = records[0].device if records else ""
    rows = [
        (i, k, seq, row)
        for i, r in enumerate(records)
        for k in KINDS
        for seq, row in enumerate(getattr(r, k))
    ]
    ok = store.save(g, "closed", rows, owner="cli")
    store.close()
    if not ok:
        print(f"bnviz: error: {store.error}", file=sys.stderr)
        return None
    return gid


def _open_store() -> Any:
    """The run store of this user (BNVIZ_RUNS or ~/.cache/bnviz/runs), its old JSON files
    taken in; CLIError (exit 2, one line) when it cannot be opened: locked, damaged, foreign."""
    from .jobs import default_runs_dir
    from .store import RunStore

    folder = default_runs_dir()
    store = RunStore(folder)
    if store.error:
        raise CLIError(store.error)
    _, problems = store.import_json(folder)
    for p in problems:
        print(f"bnviz: warning: {p}", file=sys.stderr)
    return store


def _load_groups(store: Any) -> tuple[list[Any], Any]:
    """Every stored group and the live server holding the store (or None). Groups a dead
    server left queued or running are marked interrupted first (any reader may: no live
    server holds them). CLIError when the store cannot be read: never an empty list."""
    from .store import StoreUnreadable

    try:
        server = store.holder()
        if server is None:
            store.mark_interrupted()
        groups, problems = store.load(strict=True)
    except StoreUnreadable as e:
        raise CLIError(str(e)) from None
    for p in problems:
        print(f"bnviz: warning: {p}", file=sys.stderr)
    return groups, server


def _find_group(groups: Sequence[Any], gid: str) -> Any:
    """The stored group with this id, or the only one whose id starts with it."""
    exact = [g for g in groups if g.id == gid]
    matches = exact or [g for g in groups if gid and g.id.startswith(gid)]
    if len(matches) != 1:
        what = "no stored group" if not matches else f"{len(matches)} stored groups"
        raise CLIError(f"{what} with id {gid[:80]!r} (python -m bnviz runs lists them)")
    return matches[0]


def _owner_kind(owner: str) -> str:
    """Who started a group, without the owner token itself (a browser's token is a key)."""
    return "cli" if owner == "cli" else "browser" if owner else "-"


def cmd_runs(args: argparse.Namespace) -> int:
    from datetime import datetime

    from .records import KINDS

    store = _open_store()
    groups, server = _load_groups(store)
    if args.action == "export":
        if not args.id:
            raise CLIError("runs export needs a group id: python -m bnviz runs export ID --out F")
        out = _check_out_path(args.out if args.out is not None else f"{args.id[:80]}.json")
        if out.resolve().parent == store.folder.resolve():
            # a file there would be taken for a group of the old JSON store at the next start
            raise CLIError(
                f"--out {_short(str(out))} is inside the run store's folder; use another"
            )
        g = _find_group(groups, args.id)
        try:
            size = _write_records(out, {"runs": [r.to_dict() for r in g.runs]})
        except (OSError, ValueError) as e:
            print(f"bnviz: error: cannot write {_short(str(out))}: {e}", file=sys.stderr)
            return EXIT_FAILED
        print(f"records of group {g.id} ({len(g.runs)} runs): {out} ({size / 1e6:.1f} MB)")
        return EXIT_OK
    if args.action == "delete":
        if not args.id:
            raise CLIError("runs delete needs a group id")
        g = _find_group(groups, args.id)
        if g.state != "closed" and server is not None:
            raise CLIError(
                f"group {g.id} is training on a live server ({server.text()}): stop it there"
            )
        if not store.delete(g.id):
            print(f"bnviz: error: {store.error}", file=sys.stderr)
            return EXIT_FAILED
        with contextlib.suppress(OSError):  # its saved final weights go with it
            (store.folder / "weights" / f"{g.id}.pt").unlink(missing_ok=True)
        print(f"deleted group {g.id}")
        return EXIT_OK
    if args.id:
        raise CLIError(f"unexpected {args.id[:80]!r}: runs [list|export ID|delete ID]")
    groups.sort(key=lambda g: g.created, reverse=True)
    items = []
    for g in groups:
        labels = group_labels([r.config for r in g.runs])
        live = g.state != "closed" and server is not None
        items.append(
            {
                "id": g.id,
                "name": g.name,
                "created": datetime.fromtimestamp(g.created).isoformat(timespec="seconds"),
                "state": g.state,
                # who trains it now: a live server's pid and host (a dead one's are closed)
                "server": {"pid": server.pid, "host": server.host} if live else None,
                "started_by": _owner_kind(g.owner),
                "runs": [
                    {
                        "label": label,
                        "status": r.status,
                        "rows": {k: len(getattr(r, k)) for k in KINDS},
                    }
                    for label, r in zip(labels, g.runs)
                ],
            }
        )
    if args.json:
        print(json.dumps(items, indent=1))
        return EXIT_OK
    if not items:
        print(f"no stored groups in {store.folder}")
        return EXIT_OK
    for it in items:
        statuses: dict[str, int] = {}
        for r in it["runs"]:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        status = ", ".join(f"{n} {s}" for s, n in statuses.items())
        if it["server"]:
            status += f" (on the live server, pid {it['server']['pid']})"
        rows = sum(sum(r["rows"].values()) for r in it["runs"])
        name = " ".join(it["name"].split())  # one line, whatever the name holds
        print(f"{it['id']}  {it['created'].replace('T', ' ')}  {status}  {rows} rows  {name}")
    return EXIT_OK


def cmd_download(args: argparse.Namespace) -> int:
    from .data import DATASETS, DatasetError, download_dataset

    name = args.name
    if name in DATASETS and DATASETS[name].offline:
        # nothing is fetched or written for these; say so instead of printing an empty folder
        print(f"{name} needs no download: {DATASETS[name].description}; it is available offline.")
        return EXIT_OK
    err = sys.stderr
    line = LineWriter(err, enabled=err.isatty())
    start = time.monotonic()

    def progress(done: int, total: int) -> None:
        mb = f"{done / 1e6:.1f}"
        if total:
            elapsed = time.monotonic() - start
            rate = done / elapsed if elapsed > 0 else 0.0
            eta = f"ETA {_clock((total - done) / rate)}" if rate > 0 else "ETA --:--"
            text = f"{_bar(done / total)} {mb}/{total / 1e6:.1f} MB  {eta}"
        else:
            text = f"{mb} MB"
        line.draw(f"{name} {text}", force=total > 0 and done >= total)

    try:
        folder = download_dataset(name, args.root, progress)
    except DatasetError:
        line.clear()
        raise
    line.clear()
    print(f"{name}: files are in {folder}")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train and compare networks with and without Batch Normalization.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = sub.add_parser(
        "train",
        help="train a group of runs and print a summary",
        # raw: the example below must keep its line breaks to be copy-pasteable
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Train a group of runs together. The base config is the defaults, then the\n"
            "preset's base, then the config file, then --set. Each --vary adds a field to\n"
            "the grid (all combinations are trained). `list` shows every field."
        ),
        epilog=(
            "example:\n"
            "  %(prog)s --set dataset=digits --set epochs=5 \\\n"
            "    --vary norm=none,batch --vary 'hidden=100,100;50,50' --out runs.json\n"
        ),
    )
    train.add_argument("--config", metavar="FILE", help="a .json or .toml table of field: value")
    train.add_argument(
        "--preset",
        metavar="NAME",
        help=f"start from a stored comparison: one of {', '.join(PRESETS)} (its own --vary "
        "applies unless --vary is given)",
    )
    train.add_argument(
        "--set",
        metavar="FIELD=VALUE",
        action="append",
        default=[],
        help="set one field (repeatable), e.g. --set hidden=100,100 --set lr=0.5",
    )
    train.add_argument(
        "--vary",
        metavar="FIELD=V1,V2",
        action="append",
        default=[],
        help="train every value (repeatable: the grid of all); tuple fields split by ';'",
    )
    train.add_argument("--out", metavar="FILE", help="write the records as JSON here")
    train.add_argument("--quiet", action="store_true", help="no progress output on stderr")
    train.add_argument(
        "--store",
        action="store_true",
        help="also keep the group in the run store (BNVIZ_RUNS): listed by `runs`, shown "
        "read-only on the dashboard's Runs page",
    )
    train.set_defaults(func=cmd_train)

    lst = sub.add_parser("list", help="show data sets, presets and every config field")
    lst.set_defaults(func=cmd_list)

    dl = sub.add_parser("download", help="download a data set (MNIST, Fashion-MNIST, CIFAR-10)")
    dl.add_argument("name", metavar="NAME", help="data set name (see `list`)")
    dl.add_argument(
        "--root", metavar="DIR", help="cache folder (default: $BNVIZ_DATA or ~/.cache/bnviz)"
    )
    dl.set_defaults(func=cmd_download)
    runs = sub.add_parser(
        "runs",
        help="list the stored groups, export or delete one",
        description="The run store the dashboard writes (BNVIZ_RUNS or ~/.cache/bnviz/runs).",
    )
    runs.add_argument(
        "action",
        nargs="?",
        default="list",
        choices=("list", "export", "delete"),
        help="list (default), export ID, delete ID",
    )
    runs.add_argument("id", nargs="?", metavar="ID", help="a group id (or its unique start)")
    runs.add_argument("--json", action="store_true", help="list as JSON, for scripts")
    runs.add_argument("--out", metavar="FILE", help="export: where (default ID.json)")
    runs.set_defaults(func=cmd_runs)
    add_check_parser(sub)
    return parser


def cmd_check(args: argparse.Namespace) -> int:
    """`check`: a lesson trained at its seeds, its verdict over them (`bnviz.audit`)."""
    try:
        lesson = audit.find_lesson(args.lesson)
        seeds = audit.parse_seeds(args.seeds) if args.seeds is not None else lesson.seeds
    except audit.AuditError as e:
        raise CLIError(str(e)) from None
    configs = lesson.configs(seeds)
    problems = check_group(configs)
    if problems:
        raise CLIError(problems[0])
    from .train import resolve_device, train_group

    device = resolve_device(configs[0].device)
    _preflight(configs)
    err = sys.stderr
    line = LineWriter(err, enabled=err.isatty() and not args.quiet)
    progress = TrainProgress(configs, line)
    if not args.quiet:
        n = len(configs)
        err.write(
            f"training {lesson.slug}: {n} runs ({n // len(seeds)} per seed × {len(seeds)} "
            f"seeds: {', '.join(map(str, seeds))}) on {device}\n"
        )
        err.flush()
    start = time.perf_counter()
    with StopFlag(err, args.quiet) as stop:
        try:
            records = train_group(configs, should_stop=stop, on_event=progress, device=device)
        finally:
            line.clear()
    seconds = time.perf_counter() - start
    result = lesson.check(records)
    print(audit.report(lesson, result, seconds))
    if stop.requested:
        return EXIT_INTERRUPTED
    failed = [r for r in records if r.status == "failed"]
    if failed:
        print(f"failed: {failed[0].config.label()}: {failed[0].message}", file=err)
    return audit.EXIT_HOLDS if result.passed and not failed else audit.EXIT_DOES_NOT_HOLD


def add_check_parser(sub: argparse._SubParsersAction) -> None:
    """The `check` subcommand, on the CLI's subparsers."""
    p = sub.add_parser(
        "check",
        help="train a lesson at several seeds and print its verdict (exit 0: the claim holds)",
        description=(
            "Train a lesson's runs at every seed in one group (seed = data_seed) and print "
            "each seed's check, the figures per seed and the verdict over the seeds. "
            f"{RULE} Exit 0: it holds; 1: it does not; 2: bad input."
        ),
    )
    p.add_argument("lesson", metavar="LESSON", help=f"one of {', '.join(audit.training_lessons())}")
    p.add_argument(
        "--seeds",
        metavar="SEEDS",
        help="seeds to train, e.g. 0,1,2 or 100-104 (default: the lesson's own, "
        f"{','.join(map(str, SEEDS))})",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output on stderr")
    p.set_defaults(func=cmd_check)


def _error(message: str) -> int:
    one_line = " ".join(str(message).split())  # the contract is one line, whatever the source
    print(f"bnviz: error: {one_line}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (argparse's own usage errors exit 2 via SystemExit)."""
    args = build_parser().parse_args(argv)
    # The library logs what the server's log should show; here every message is printed as
    # one line by the command itself (no second copy from logging's last-resort handler).
    logging.getLogger("bnviz").addHandler(logging.NullHandler())
    try:
        return int(args.func(args))
    except (ConfigError, CLIError) as e:
        return _error(str(e))
    except KeyboardInterrupt:
        print("\nbnviz: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # stdout closed early (e.g. `list | head`): not an error worth a traceback. Point
        # stdout at devnull so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    except Exception as e:
        # DatasetError lives in bnviz.data, which imports torch; it can only have been raised
        # if that module is loaded, so look it up there rather than importing torch for it
        data = sys.modules.get(f"{__package__}.data")
        if data is not None and isinstance(e, data.DatasetError):
            return _error(str(e))
        raise
