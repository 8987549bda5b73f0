"""A store that grows: the Runs page and the server's memory with many stored groups.

Trains one real group (a BN/no-BN comparison on digits), stores N copies of it (its rows
verbatim, new ids) in a fresh store, starts `streamlit run app.py` on it and opens the Runs page
in headless Chromium: seconds from the request until the group table is drawn, then the
server process's resident memory (VmRSS; the pre-started worker is off: BNVIZ_WARM=0). As a
baseline in the same run: the same with a store of one group; then the page again in a second
tab (the server running: what a student who opens it meets). Goal (issue #22): with 200
groups the first page in < 3 s and the server < 400 MB.
Usage: python benchmarks/store_scale.py [--groups 200] [--epochs 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bnviz.config import RunConfig  # noqa: E402
from bnviz.records import KINDS  # noqa: E402
from bnviz.store import DB_NAME, RunStore, StoredGroup  # noqa: E402
from tests.browser import launch, serve  # noqa: E402


def build(folder: Path, n: int, epochs: int) -> float:
    """A store of n copies of one trained group; its size in MB."""
    from bnviz.train import train_group

    configs = [RunConfig(epochs=epochs), RunConfig(epochs=epochs, norm="none")]
    records = train_group(configs, device="cpu")
    rows = [
        (i, k, seq, row)
        for i, r in enumerate(records)
        for k in KINDS
        for seq, row in enumerate(getattr(r, k))
    ]
    store = RunStore(folder)
    now = time.time()
    for g in range(n):
        gid = time.strftime("%Y%m%d-%H%M%S-", time.localtime(now - g * 60)) + f"{g:06d}"
        group = StoredGroup(gid, f"copy {g}", records, now - g * 60, now - g * 60, now)
        assert store.save(group, "closed", rows, owner="cli"), store.error
    store.close()
    return (folder / DB_NAME).stat().st_size / 1e6


def server_rss_mb(port: int) -> float:
    """VmRSS of the `streamlit run` process serving `port`."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            if b"streamlit" in b" ".join(cmd) and str(port).encode() in cmd:
                for line in (proc / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            continue
    return float("nan")


def runs_page_seconds(browser, base: str) -> float:
    """Seconds from a new tab's request of the Runs page until its group table is drawn."""
    page = browser.new_page()
    t0 = time.perf_counter()
    page.goto(base + "/runs")
    page.get_by_text("Compare any runs").wait_for(timeout=120_000)
    page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=120_000)
    seconds = time.perf_counter() - t0
    page.close()
    return seconds


def measure(folder: Path, browser) -> tuple[float, float, float]:
    """(seconds to the Runs page's group table on a fresh server over `folder`, the same in
    a second tab once it runs, server MB)."""
    env = {"BNVIZ_RUNS": str(folder), "BNVIZ_WARM": "0"}
    with serve(env=env) as base:
        port = int(base.rsplit(":", 1)[1])
        first = runs_page_seconds(browser, base)
        again = runs_page_seconds(browser, base)  # a student's tab on the running server
        mb = server_rss_mb(port)
    return first, again, mb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--groups", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as many:
        size1 = build(Path(one), 1, args.epochs)
        size = build(Path(many), args.groups, args.epochs)
        with launch() as browser:
            s1, a1, mb1 = measure(Path(one), browser)
            s, a, mb = measure(Path(many), browser)
    print(f"store: 1 group {size1:.1f} MB; {args.groups} groups {size:.1f} MB")
    print(f"first Runs page: 1 group {s1:.2f} s, {args.groups} groups {s:.2f} s ({s / s1:.2f}×)")
    print(f"a second tab:    1 group {a1:.2f} s, {args.groups} groups {a:.2f} s ({a / a1:.2f}×)")
    print(f"server memory:   1 group {mb1:.0f} MB, {args.groups} groups {mb:.0f} MB")
    print(f"goal: < 3 s and < 400 MB with 200 groups: {'met' if s < 3 and mb < 400 else 'NOT met'}")


if __name__ == "__main__":
    main()
