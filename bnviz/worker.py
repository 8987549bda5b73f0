"""`python -m bnviz.worker`: a training process for the dashboard, driven over its pipes.

Protocol (JSON lines): the worker warms up and prints {"type": "ready"}; it reads one task
{"configs": [...], "save": path or absent} from stdin, prints {"type": "device"}, then batches
of engine events {"type": "batch", "events": [...]} and finally {"type": "done"} (or
{"type": "fatal"}); with "save" it writes the final weights there (bnviz.saved). The task
{"slice": {"path", "runs"}} instead measures the 2-D loss slice of runs from saved weights:
one batch of "slice" rows events, then done.
A line "stop" on stdin stops the group within one step. Anything else the process prints goes
to stderr, so stdout carries the protocol alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

from .config import ConfigError, RunConfig, from_dict

WARMUP = RunConfig(hidden=(8,), epochs=1, record_every=1, batch_size=600)  # 2 steps
FLUSH_S = 0.1  # rows are sent at most this often; status changes at once


class DutyCycle:
    """Called between steps, sleeps so that the work between calls takes at most `duty` of
    the wall time (1 = never sleeps). Slices of `period` seconds: short enough to look smooth,
    long enough that sleeping costs nothing.

    `server_busy` (optional): whether the web server needs the CPU now. Then the cycle holds
    only while it does, and training takes the whole core otherwise: a lesson's page trains as
    fast as the CLI, and 30 followers of a live group still get the server's share."""

    def __init__(
        self,
        duty: float,
        period: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        server_busy: Callable[[], bool] | None = None,
    ) -> None:
        if not 0 < duty <= 1:
            raise ValueError(f"duty={duty}: must be in (0, 1]")
        self.duty, self.period, self.clock, self.sleep = duty, period, clock, sleep
        self.server_busy = server_busy
        self.since = clock()

    def __call__(self) -> None:
        busy = self.clock() - self.since
        if self.duty < 1 and busy >= self.period:
            if self.server_busy is None or self.server_busy():
                self.sleep(busy * (1 - self.duty) / self.duty)
            self.since = self.clock()


class ParentLoad:
    """Whether the parent process (the web server) asked for more than `share` of a core over
    the last `window` seconds: the time its threads ran plus the time they waited to run
    (Linux's /proc/PID/task/*/schedstat), so a server starved by training still counts as
    busy. Where /proc cannot be read, `readable()` is False: the caller keeps its fixed duty
    cycle."""

    def __init__(
        self,
        share: float = 0.4,
        window: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        pid: int | None = None,
    ) -> None:
        self.share, self.window, self.clock = share, window, clock
        self.tasks = f"/proc/{pid or os.getppid()}/task"
        self.at, self.demand = clock(), self._demand()
        self.busy = True

    def _demand(self) -> float | None:
        """Seconds the parent's threads have run or waited to run, in all."""
        try:
            total = 0
            for tid in os.listdir(self.tasks):
                with contextlib.suppress(FileNotFoundError):  # a thread that just ended
                    with open(f"{self.tasks}/{tid}/schedstat") as f:
                        run, wait = f.read().split()[:2]
                    total += int(run) + int(wait)
            return total / 1e9
        except (OSError, ValueError):
            return None

    def readable(self) -> bool:
        return self.demand is not None

    def __call__(self) -> bool:
        now = self.clock()
        if now - self.at >= self.window:
            demand = self._demand()
            if demand is not None and self.demand is not None:
                self.busy = (demand - self.demand) / (now - self.at) > self.share
            self.at, self.demand = now, demand
        return self.busy


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--duty", type=float, default=1.0, help="share of wall time spent training")
    args = ap.parse_args()
    # Ctrl-C in the server's terminal reaches its whole process group: the server, not the
    # worker, decides what a stop means (it stops the worker and marks the runs).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Training yields the CPU to the web server and the browser: the page must stay responsive.
    # (Nice acts only within the server's session: the browser is usually in another.)
    with contextlib.suppress(OSError):
        os.nice(19)
    proto = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # keep stray prints off the protocol

    def send(msg: dict) -> None:
        try:
            proto.write(json.dumps(msg) + "\n")
        except BrokenPipeError:  # the server is gone (killed): no one reads, stop quietly
            os._exit(0)

    import torch

    from . import saved
    from .train import device_label, resolve_device, train_group

    train_group(
        [WARMUP], threads=args.threads
    )  # the first steps pay for lazy initialisation: do it now
    # The device comes from here: the web server itself never imports torch.
    mps = getattr(torch.backends, "mps", None)
    devices = (
        ["cpu"] + ["cuda"] * torch.cuda.is_available() + ["mps"] * bool(mps and mps.is_available())
    )
    ready = {"device": device_label(resolve_device("auto")), "devices": devices}
    send({"type": "ready", **ready})
    line = sys.stdin.readline()
    if not line.strip():
        return
    try:
        task = json.loads(line)
        if "slice" in task:  # a measure of a group that ended, from its saved weights
            _slice(task["slice"], send)
            return
        configs = [from_dict(d) for d in task["configs"]]
        save_to = task.get("save")  # where the final weights go (bnviz.saved), if anywhere
        device = str(resolve_device(configs[0].device))
    except (ConfigError, RuntimeError, ValueError, KeyError) as e:
        send({"type": "fatal", "message": str(e)})
        return
    stop = threading.Event()

    def watch_stdin() -> None:
        for cmd in sys.stdin:
            if cmd.strip() == "stop":
                stop.set()
        stop.set()  # the server went away: no one is watching, stop

    threading.Thread(target=watch_stdin, daemon=True).start()
    send({"type": "device", "device": device})
    buffer: list[dict] = []
    last = time.monotonic()

    def flush() -> None:
        nonlocal last
        send({"type": "batch", "events": buffer})
        buffer.clear()
        last = time.monotonic()

    def on_event(e: dict) -> None:
        buffer.append(e)
        if e["type"] == "status":
            flush()

    load = ParentLoad()
    throttle = DutyCycle(args.duty, server_busy=load if load.readable() else None)

    def should_stop() -> bool:
        # Polled before every step, where every run's rows of the last step are in: a batch
        # never ends between runs, so the page never shows one run a record ahead.
        if buffer and time.monotonic() - last > FLUSH_S:
            flush()
        throttle()
        return stop.is_set()

    def on_end(stacks: list) -> None:
        if save_to:
            try:
                saved.save(stacks, save_to)
            except Exception as e:  # the records matter more than the weights: go on
                print(f"bnviz worker: the final weights were not saved: {e}", file=sys.stderr)

    train_group(
        configs,
        should_stop=should_stop,
        on_event=on_event,
        device=device,
        threads=args.threads,
        on_end=on_end,
    )
    if buffer:
        flush()
    send({"type": "done"})


def _slice(task: dict, send: Callable[[dict], None]) -> None:
    """The 2-D loss slice of task["runs"] from the weights saved at task["path"]: one batch of
    rows events, or a fatal message that says why not."""
    from . import saved

    try:
        rows = saved.slice_rows(task["path"], [int(r) for r in task["runs"]])
    except Exception as e:  # a missing or damaged file, a config this version cannot build
        send({"type": "fatal", "message": str(e) or type(e).__name__})
        return
    events = [{"type": "rows", "run": r, "kind": "slice", "rows": v} for r, v in rows.items()]
    send({"type": "batch", "events": events})
    send({"type": "done"})


if __name__ == "__main__":
    main()
