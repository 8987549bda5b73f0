"""Is the server responsive while a group trains? Polls /_stcore/health every 50 ms.

Starts `streamlit run app.py` on a free port, measures the health endpoint idle (with a
browser tab open), then presses Train in headless Chromium on a long comparison and measures
again while it trains, and the time from the click to the first point on the accuracy chart.
Prints p50/p95/max latencies of both phases. Usage: python benchmarks/bench_health.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import first_point_seconds, launch, serve, wait_worker_ready  # noqa: E402


def poll(url: str, seconds: float, out: list[float]) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.perf_counter()
        with urllib.request.urlopen(url, timeout=5) as r:
            r.read()
        out.append((time.perf_counter() - t) * 1e3)
        time.sleep(max(0.0, 0.05 - (time.perf_counter() - t)))


def describe(name: str, ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=100)
    stats = f"p50 {q[49]:6.1f} ms  p95 {q[94]:6.1f} ms  max {max(ms):6.1f} ms"
    return f"{name:<20} n={len(ms):4d}  {stats}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    query = "?epochs=200&hidden=100,100,100"  # long enough to train through the whole window
    with serve() as base, launch() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(base + query)
        page.get_by_role("button", name="Train", exact=True).wait_for()
        wait_worker_ready(page)
        idle: list[float] = []
        poll(base + "/_stcore/health", args.seconds / 2, idle)
        busy: list[float] = []
        t = threading.Thread(target=poll, args=(base + "/_stcore/health", args.seconds, busy))
        first = first_point_seconds(page, start_polling=t.start)
        t.join()
        # Same group, no tab drawing it: what the server alone costs while a group trains.
        page.close()
        closed: list[float] = []
        poll(base + "/_stcore/health", args.seconds / 2, closed)
    print(describe("idle", idle))
    print(describe("training, tab open", busy))
    print(describe("training, no tab", closed))
    print(f"first live point {first:.2f} s after pressing Train")


if __name__ == "__main__":
    main()
