"""Is the server responsive while a group trains? Polls /_stcore/health every 50 ms.

Starts `streamlit run app.py` on a free port and, as a baseline in the same run, a plain
`python -m http.server` polled at the same moments: when the machine itself is busy both slow
down, when Streamlit's event loop is blocked only it does. Phases: idle with a tab open;
training with the tab open (Train pressed in headless Chromium on a long comparison);
training with no tab. Also the time from the click to the first point on the accuracy chart.
Usage: python benchmarks/bench_health.py [--seconds 20]
"""

from __future__ import annotations

import argparse
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

from tests.browser import (  # noqa: E402
    first_point_seconds,
    free_port,
    launch,
    serve,
    wait_worker_ready,
)

SLOW_MS = 50.0  # a poll this slow is a stall; the report says whether the control had one too


def poll(url: str, seconds: float, out: list[float], at: list[float] | None = None) -> None:
    """Polls every 50 ms; out gets each latency (ms), at (if given) when each poll started."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.perf_counter()
        with urllib.request.urlopen(url, timeout=5) as r:
            r.read()
        out.append((time.perf_counter() - t) * 1e3)
        if at is not None:
            at.append(t)
        time.sleep(max(0.0, 0.05 - (time.perf_counter() - t)))


def poll_both(app: str, control: str, seconds: float) -> tuple[list[float], list[float], str]:
    """Latencies of both servers over the same seconds, and a line on the app's stalls."""
    a: list[float] = []
    c: list[float] = []
    a_at: list[float] = []
    c_at: list[float] = []
    t = threading.Thread(target=poll, args=(control, seconds, c, c_at))
    t.start()
    poll(app, seconds, a, a_at)
    t.join()
    # A stall of the machine (CPU steal, a burst of the browser) slows both servers at once;
    # one of the app alone is its own. Overlap: the two slow requests were in flight together.
    slow_c = [(s, s + ms / 1e3) for s, ms in zip(c_at, c) if ms > SLOW_MS]
    own = shared = 0
    for s, ms in zip(a_at, a):
        if ms > SLOW_MS:
            e = s + ms / 1e3
            if any(s < ce and cs < e for cs, ce in slow_c):
                shared += 1
            else:
                own += 1
    line = f"stalls > {SLOW_MS:.0f} ms: {own} streamlit only, {shared} shared with the control"
    return a, c, line


def describe(name: str, ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=100)
    stats = f"p50 {q[49]:6.1f} ms  p95 {q[94]:6.1f} ms  max {max(ms):6.1f} ms"
    return f"{name:<34} n={len(ms):4d}  {stats}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    port = free_port()
    control = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            "127.0.0.1",
            "-d",
            tempfile.mkdtemp(),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ctl = f"http://127.0.0.1:{port}/"
    query = "?epochs=300&hidden=100,100,100"  # long enough to train through every phase
    rows = []
    try:
        with serve() as base, launch() as browser:
            health = base + "/_stcore/health"
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(base + query)
            wait_worker_ready(page)
            rows.append(("idle, tab open", *poll_both(health, ctl, args.seconds / 2)))
            first = first_point_seconds(page)
            rows.append(("training, tab open", *poll_both(health, ctl, args.seconds)))
            page.close()  # the group trains on; nothing draws it
            rows.append(("training, no tab", *poll_both(health, ctl, args.seconds / 2)))
    finally:
        control.kill()
    for name, app, base_ms, stalls in rows:
        print(describe(f"{name}: streamlit", app))
        print(describe(f"{name}: baseline http.server", base_ms))
        print(f"{name}: {stalls}")
    print(f"first live point {first:.2f} s after pressing Train")


if __name__ == "__main__":
    main()
