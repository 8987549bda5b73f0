"""A new user's walkthrough of the Train page, with screenshots and the server's health.

Starts `streamlit run app.py` (as `make run` does), opens it in headless Chromium and, on the
default config: presses Train, looks at the live view after ~1 s and at the per-layer views,
trains a long group and stops it, sets lr=3.0 in the sidebar and retrains (the run without BN
diverges), then opens the page's URL in a new tab. /_stcore/health is polled every 50 ms
throughout; its latency is reported per phase. Screenshots go to artifacts/walkthrough/.
Usage: python benchmarks/walkthrough.py
"""

from __future__ import annotations

import collections
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import (  # noqa: E402
    ARTIFACTS,
    IFRAME,
    charts,
    first_point_seconds,
    launch,
    serve,
    wait_worker_ready,
)

OUT = ARTIFACTS / "walkthrough"
STATUS_JS = "() => Array.from(document.querySelectorAll('.bnviz-run')).map(e => e.dataset.status)"


class Health:
    """Polls the health endpoint in a thread; latencies are filed under the current phase."""

    def __init__(self, url: str) -> None:
        self.url, self.phase = url, "page load"
        self.ms: dict[str, list[float]] = collections.defaultdict(list)
        self.done = threading.Event()
        threading.Thread(target=self._poll, daemon=True).start()

    def _poll(self) -> None:
        while not self.done.is_set():
            t = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    r.read()
            except OSError:
                return
            self.ms[self.phase].append((time.perf_counter() - t) * 1e3)
            time.sleep(max(0.0, 0.05 - (time.perf_counter() - t)))

    def report(self) -> None:
        for phase, v in self.ms.items():
            q = statistics.quantiles(v, n=100) if len(v) > 1 else [v[0]] * 99
            stats = f"p50 {q[49]:6.1f}  p95 {q[94]:6.1f}  max {max(v):6.1f} ms"
            print(f"  {phase:<28} n={len(v):4d}  {stats}")


def wait(pred, timeout: float = 120) -> None:
    end = time.time() + timeout
    while not pred() and time.time() < end:
        time.sleep(0.1)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with serve() as base, launch() as browser:
        health = Health(base + "/_stcore/health")
        page = browser.new_page(viewport={"width": 1600, "height": 1000})

        def status() -> list[str]:
            return page.evaluate(STATUS_JS)

        def shot(name: str, p=page) -> None:
            p.screenshot(path=str(OUT / f"{name}.png"))

        def type_in(field: str, value: str) -> None:
            box = page.get_by_role("spinbutton", name=field)
            box.fill(value)
            box.press("Enter")

        page.goto(base + "/")
        wait_worker_ready(page)
        shot("1_idle")
        health.phase = "training the default"
        print(f"first live point {first_point_seconds(page):.2f} s after pressing Train")
        time.sleep(0.3)
        shot("2_training_1s")
        print("at ~1 s:", status(), "points per trace:", charts(page)[0])
        time.sleep(1.0)
        page.locator(IFRAME).nth(2).scroll_into_view_if_needed()
        time.sleep(0.8)
        shot("3_layer_views")
        health.phase = "editing (idle)"
        page.locator("[data-testid=stSidebar]").get_by_text("Run", exact=True).click()
        type_in("epochs", "300")
        time.sleep(1.0)
        health.phase = "training 300 epochs, Stop"
        page.get_by_role("button", name="Train", exact=True).click()
        time.sleep(2.5)
        page.get_by_role("button", name="Stop training").click()
        wait(lambda: "running" not in status(), 10)
        print("after Stop:", status())
        shot("4_stopped")
        health.phase = "editing (idle)"
        type_in("lr", "3.0")
        type_in("epochs", "20")
        time.sleep(1.0)
        health.phase = "training lr=3.0"
        page.get_by_role("button", name="Train", exact=True).click()
        time.sleep(1.0)
        wait(lambda: not {"cancelled", "running"} & set(status()))
        print("lr=3.0:", page.locator(".bnviz-run").all_inner_texts())
        shot("5_large_lr")
        health.phase = "the URL in a new tab"
        tab = browser.new_page(viewport={"width": 1600, "height": 1000})
        tab.goto(page.url)
        tab.get_by_role("button", name="Train", exact=True).wait_for()
        time.sleep(3)
        print("new tab:", page.url, "lr", tab.get_by_role("spinbutton", name="lr").input_value())
        shot("6_url_new_tab", tab)
        health.done.set()
    print(f"/_stcore/health by phase (screenshots in {OUT}):")
    health.report()


if __name__ == "__main__":
    main()
