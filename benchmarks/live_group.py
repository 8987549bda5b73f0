"""A group trained from the dashboard, as a lecturer does it: open a Train-page link in headless
Chromium, press Train, seconds until every run has ended (the worker's duty cycle and the
browser's live charts included). The default link is the batch-size lesson's grid at 20 epochs
(issue #15: "the small-batch lesson trains live in the dashboard in under a minute").

    python benchmarks/live_group.py [--query 'epochs=20&vary=...'] [--repeat 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.browser import launch, serve, shot, wait_worker_ready

SMALL_BATCH = (
    "dataset=digits&activation=relu&lr=0.1&epochs=20"
    "&vary=batch_size:2,8,32,64&vary=norm:batch,layer,group&baseline=0"
)
STATUS_JS = "() => Array.from(document.querySelectorAll('.bnviz-run')).map(e => e.dataset.status)"
ENDED = {"finished", "diverged", "cancelled", "failed"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--query", default=SMALL_BATCH, help="the Train page's URL query")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--timeout", type=float, default=600.0)
    args = p.parse_args()
    times = []
    with serve() as base, launch() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{base}/?{args.query}")
        train = page.get_by_role("button", name="Train", exact=True)
        train.wait_for(timeout=60_000)
        wait_worker_ready(page)
        for n in range(args.repeat):
            if n:  # the spare worker starts a few seconds after a group: let it warm up
                time.sleep(15)
            before = page.evaluate("() => document.querySelector('.bnviz-run')?.dataset.group")
            train.click()
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < args.timeout:
                group = page.evaluate("() => document.querySelector('.bnviz-run')?.dataset.group")
                st = page.evaluate(STATUS_JS)
                if group != before and st and all(s in ENDED for s in st):
                    break
                time.sleep(0.1)
            else:
                raise SystemExit(f"not done within {args.timeout} s")
            times.append(time.perf_counter() - t0)
            ended = ", ".join(sorted(set(st)))
            print(f"{len(st)} runs ended ({ended}) {times[-1]:.1f} s after Train")
        shot(page, "live_group_done")
    print(f"median {statistics.median(times):.1f} s over {len(times)}")


if __name__ == "__main__":
    main()
