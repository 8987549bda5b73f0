"""A class on one server: simulated students speaking Streamlit's websocket protocol.

    python benchmarks/class_load.py --scenario follow --followers 30
    python benchmarks/class_load.py --scenario train --students 30

follow: a lecturer opens the Train page (`--query`, default a long group, epochs=2000) and
presses Train; after `--alone` seconds of the lecturer watching alone, `--followers` students
open the lecturer's link (its query, group= included) arriving evenly over `--arrive` seconds,
each watching `--watch` seconds. Reported: each follower's live refresh (round trip p50/p95,
bytes per refresh, whether it stayed live: no gap between refreshes over GAP_S), the
lecturer's own refresh alone and with followers, /_stcore/health polled every 100 ms, and the
server's memory.

train: `--students` students each open the Train page (`--query`, default a short group) and
press Train, arriving evenly over `--arrive` seconds; each watches until its group ends.
Reported: whether the server stayed up, health, whether every group finished, the wait from a
press to the group's first point.

Everything runs on loopback against a server this script starts (and stops); every loop is
bounded by `--deadline`. The clients share the machine's cores with the server: on a small
machine compare runs of this script, not absolute times across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.st_client import Viewer  # noqa: E402
from tests.browser import free_port  # noqa: E402

GAP_S = 2.0  # a follower whose refreshes stop this long is not live
ENDED = {"finished", "diverged", "cancelled", "failed", "interrupted"}


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


class Server:
    """`streamlit run app.py` on a free loopback port with its own run store."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.runs = tempfile.mkdtemp(prefix="bnviz-load-")
        self.log = open(Path(self.runs) / "server.log", "w")  # noqa: SIM115 - closed in stop
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "app.py",
                "--server.port",
                str(self.port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
            ],
            cwd=ROOT,
            env={**os.environ, "BNVIZ_RUNS": self.runs, **(env or {})},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        end = time.monotonic() + 60
        while not self.healthy(2.0):
            if self.proc.poll() is not None or time.monotonic() > end:
                self.stop()
                raise RuntimeError((Path(self.runs) / "server.log").read_text()[-2000:])
            time.sleep(0.2)

    def healthy(self, timeout: float) -> bool:
        try:
            with urllib.request.urlopen(self.base + "/_stcore/health", timeout=timeout) as r:
                return r.read() == b"ok"
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Monitor(threading.Thread):
    """Polls /_stcore/health every 100 ms and the server's memory every second."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.health: list[tuple[float, float]] = []  # (monotonic, ms); a failure counts 5000
        self.rss: list[tuple[float, float]] = []
        self.failures = 0
        self.done = threading.Event()

    def run(self) -> None:
        last_rss = 0.0
        while not self.done.is_set():
            t = time.perf_counter()
            ok = self.server.healthy(5.0)
            ms = (time.perf_counter() - t) * 1e3
            self.failures += not ok
            self.health.append((time.monotonic(), ms if ok else 5000.0))
            if time.monotonic() - last_rss >= 1.0:
                last_rss = time.monotonic()
                self.rss.append((last_rss, rss_mb(self.server.proc.pid)))
            self.done.wait(max(0.0, 0.1 - (time.perf_counter() - t)))

    def between(self, a: float, b: float) -> list[float]:
        return [ms for t, ms in self.health if a <= t <= b]


def refreshes(v: Viewer, a: float = 0.0, b: float = float("inf")) -> list:
    """The viewer's live refreshes (fragment runs it asked for) that ended in [a, b]."""
    return [r for r in v.runs if r.fragment and r.ms is not None and a <= r.at <= b]


def describe_ms(xs: list[float]) -> str:
    return f"p50 {pct(xs, 50):7.1f} ms  p95 {pct(xs, 95):7.1f} ms  max {max(xs, default=0):7.1f}"


async def wait_for(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        await asyncio.sleep(0.1)


async def follow(server: Server, mon: Monitor, args: argparse.Namespace) -> dict:
    lecturer = Viewer(server.base, query=args.query or "epochs=2000", name="lecturer")
    await lecturer.open()
    await wait_for(lambda: "training worker ready" in lecturer.text("bnviz-worker"), 120, "worker")
    await lecturer.click("Train")
    await wait_for(lambda: "group=" in lecturer.query, 60, "the group in the lecturer's URL")
    await wait_for(lambda: len(refreshes(lecturer)) >= 3, 60, "the lecturer's live refresh")
    t_alone = time.monotonic()
    cpu0 = cpu_s(server.proc.pid)
    await asyncio.sleep(args.alone)
    t_follow = time.monotonic()
    cpu_alone = cpu_s(server.proc.pid) - cpu0
    cpu1 = cpu_s(server.proc.pid)
    link = lecturer.query
    followers: list[Viewer] = []
    spans: list[tuple[float, float]] = []
    opened: dict[str, float] = {}  # follower → when it opened the link (monotonic)

    async def student(i: int) -> None:
        await asyncio.sleep(args.arrive * i / max(1, args.followers))
        v = Viewer(server.base, query=link, name=f"follower {i}")
        followers.append(v)
        a = time.monotonic()
        opened[v.name] = a
        try:
            await v.open()
            await asyncio.sleep(args.watch)
        finally:
            spans.append((a, time.monotonic()))
            await v.close()

    await asyncio.gather(*(student(i) for i in range(args.followers)))
    t_end = time.monotonic()
    cpu_crowd = cpu_s(server.proc.pid) - cpu1
    statuses = lecturer.statuses()
    await lecturer.close()

    per = []
    for v in followers:
        rs = [r for r in v.runs if r.fragment]
        gaps = [b.at - a.at for a, b in itertools.pairwise(rs)]
        first = v.runs[0].at if v.runs else None
        per.append(
            {
                "first_page_s": v.runs[0].at - opened[v.name] if v.runs else float("inf"),
                "refreshes": len(rs),
                "ms": [r.ms for r in rs if r.ms is not None],
                "bytes": [r.nbytes for r in rs],
                "wire": [r.wire for r in rs],
                "first_bytes": v.runs[0].nbytes if v.runs else 0,
                "first_wire": v.runs[0].wire if v.runs else 0,
                "max_gap_s": max(gaps, default=float("inf")),
                "live": bool(rs) and max(gaps, default=0) <= GAP_S and first is not None,
                "errors": v.errors,
            }
        )
    ms = [x for p in per for x in p["ms"]]
    nbytes = [x for p in per for x in p["bytes"]]
    wire = [x for p in per for x in p["wire"]]
    alone = [r.ms for r in refreshes(lecturer, t_alone, t_follow)]
    crowd = [r.ms for r in refreshes(lecturer, t_follow, t_end)]
    rss = [m for t, m in mon.rss if t_follow <= t <= t_end]
    n_crowd = sum(len(refreshes(v, t_follow, t_end)) for v in [lecturer, *followers])
    return {
        "scenario": "follow",
        "followers": args.followers,
        "link": link,
        "lecturer_statuses_at_end": statuses,
        "followers_live": sum(p["live"] for p in per),
        # from opening the link to the page's first run (the charts' first draw)
        "follower_first_page_s_p50": pct([p["first_page_s"] for p in per], 50),
        "follower_first_page_s_p95": pct([p["first_page_s"] for p in per], 95),
        "followers_with_a_refresh": sum(p["refreshes"] > 0 for p in per),
        "follower_refresh_ms_p50": pct(ms, 50),
        "follower_refresh_ms_p95": pct(ms, 95),
        "follower_refresh_ms_max": max(ms, default=float("nan")),
        "follower_refreshes_per_s_median": statistics.median(
            [p["refreshes"] / args.watch for p in per]
        )
        if per
        else 0,
        "follower_max_gap_s_worst": max((p["max_gap_s"] for p in per), default=float("nan")),
        "bytes_per_refresh_median": statistics.median(nbytes) if nbytes else float("nan"),
        "bytes_per_refresh_max": max(nbytes, default=0),
        "bytes_first_draw_median": statistics.median([p["first_bytes"] for p in per])
        if per
        else float("nan"),
        # on the wire: compressed when the server compresses (server.enableWebsocketCompression)
        "wire_bytes_per_refresh_median": statistics.median(wire) if wire else float("nan"),
        "wire_bytes_first_draw_median": statistics.median([p["first_wire"] for p in per])
        if per
        else float("nan"),
        "lecturer_alone_ms_p50": pct(alone, 50),
        "lecturer_alone_ms_p95": pct(alone, 95),
        "lecturer_with_followers_ms_p50": pct(crowd, 50),
        "lecturer_with_followers_ms_p95": pct(crowd, 95),
        # The server's CPU per refresh it served (all viewers): less noisy than times on a
        # shared machine, and what sizes a server (cores × 1000 / this = refreshes a second).
        "server_cpu_ms_per_refresh_alone": cpu_alone * 1e3 / max(1, len(alone)),
        "server_cpu_ms_per_refresh_with_followers": cpu_crowd * 1e3 / max(1, n_crowd),
        "refreshes_served_per_s_with_followers": n_crowd / max(1e-9, t_end - t_follow),
        "health_alone_ms_p95": pct(mon.between(t_alone, t_follow), 95),
        "health_with_followers_ms_p95": pct(mon.between(t_follow, t_end), 95),
        "health_with_followers_ms_max": max(mon.between(t_follow, t_end), default=float("nan")),
        "health_failures": mon.failures,
        "server_rss_mb_before_followers": next(
            (m for t, m in reversed(mon.rss) if t <= t_follow), float("nan")
        ),
        "server_rss_mb_max_with_followers": max(rss, default=float("nan")),
        "follower_errors": sum(bool(p["errors"]) for p in per),
    }


async def train(server: Server, mon: Monitor, args: argparse.Namespace) -> dict:
    students: list[Viewer] = []
    waits: list[float] = []
    t0 = time.monotonic()

    async def student(i: int) -> None:
        await asyncio.sleep(args.arrive * i / max(1, args.students))
        v = Viewer(server.base, query=args.query or "epochs=3", name=f"student {i}")
        students.append(v)
        try:
            await v.open()
            await wait_for(lambda: "Train" in v.buttons, 120, "the Train button")
            await v.click("Train")
            pressed = time.monotonic()
            # The status line gains "test acc" with the group's first point.
            await wait_for(lambda: "test acc" in v.text("bnviz-run"), args.deadline, "a point")
            waits.append(time.monotonic() - pressed)
            await wait_for(
                lambda: v.statuses() and all(s in ENDED for s in v.statuses()),
                args.deadline,
                "the group to end",
            )
        except TimeoutError as e:
            v.errors.append(str(e))
        finally:
            await v.close()

    await asyncio.gather(*(student(i) for i in range(args.students)))
    t_end = time.monotonic()
    health = mon.between(t0, t_end)
    finished = [v for v in students if v.statuses() and all(s == "finished" for s in v.statuses())]
    ms = [r.ms for v in students for r in refreshes(v)]
    return {
        "scenario": "train",
        "students": args.students,
        "server_up": server.proc.poll() is None and server.healthy(5.0),
        "groups_finished": len(finished),
        "first_point_wait_s_median": statistics.median(waits) if waits else float("nan"),
        "first_point_wait_s_max": max(waits, default=float("nan")),
        "seconds_to_all_done": t_end - t0,
        "student_refresh_ms_p50": pct(ms, 50),
        "student_refresh_ms_p95": pct(ms, 95),
        "health_ms_p95": pct(health, 95),
        "health_ms_max": max(health, default=float("nan")),
        "health_failures": mon.failures,
        "server_rss_mb_max": max((m for _, m in mon.rss), default=float("nan")),
        "errors": [e for v in students for e in v.errors][:5],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", choices=("follow", "train"), default="follow")
    ap.add_argument("--followers", type=int, default=30)
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--query", default="", help="the Train page's URL query")
    ap.add_argument("--alone", type=float, default=10.0, help="s the lecturer watches alone")
    ap.add_argument("--arrive", type=float, default=None, help="s over which viewers arrive")
    ap.add_argument("--watch", type=float, default=60.0, help="s each follower watches")
    ap.add_argument("--deadline", type=float, default=600.0, help="s before everything stops")
    ap.add_argument("--json", type=Path, help="also write the report here")
    args = ap.parse_args()
    if args.arrive is None:
        args.arrive = 20.0 if args.scenario == "follow" else 60.0
    server = Server()
    mon = Monitor(server)
    mon.start()
    try:
        job = follow if args.scenario == "follow" else train
        report = asyncio.run(asyncio.wait_for(job(server, mon, args), args.deadline))
    finally:
        mon.done.set()
        server.stop()
    for k, v in report.items():
        print(f"{k:<36} {v:.1f}" if isinstance(v, float) else f"{k:<36} {v}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
