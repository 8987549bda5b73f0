"""Helpers for the end-to-end tests and benchmarks: a real server, headless Chromium, charts.

Chromium is Debian's (/usr/bin/chromium; CI installs it); Playwright never downloads one.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("BNVIZ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(script: str = "app.py", env: dict | None = None) -> Iterator[str]:
    """Run `streamlit run script` on a free local port; yields its base URL."""
    port = free_port()
    runs = tempfile.mkdtemp(prefix="bnviz-runs-")
    log = open(Path(runs) / "server.log", "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            script,
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
        ],
        cwd=ROOT,
        env={**os.environ, "BNVIZ_RUNS": runs, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        end = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > end:
                raise RuntimeError(
                    f"server did not start: {(Path(runs) / 'server.log').read_text()}"
                )
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextlib.contextmanager
def launch():
    """Headless Chromium through Playwright."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install "
            "chromium), as .ci/run does"
        )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


IFRAME = 'iframe[title="dashboard.live_chart.live_chart"]'
# Run in the page: per live chart (document order), the point count of each trace, or null
# while its plot is missing. Reads the iframes' documents from the parent, because Playwright
# does not list component iframes in page.frames in this Chromium.
CHARTS_JS = """() => Array.from(document.querySelectorAll('IFRAME')).map(f => {
  const d = f.contentDocument && f.contentDocument.querySelector('.js-plotly-plot');
  return d && d._fullData ? d._fullData.map(t => (t.x || []).length) : null; })""".replace(
    "IFRAME", IFRAME
)


# Run in the page: whether every live chart (or the index-th) has drawn its newest figure,
# or keeps it pending out of view (dashboard/live_chart.py's window.bnvizSettled).
SETTLED_JS = """(i) => { const fs = Array.from(document.querySelectorAll('IFRAME'));
  return (i === null ? fs : [fs[i]]).every(f => f && f.contentWindow
    && f.contentWindow.bnvizSettled && f.contentWindow.bnvizSettled()); }""".replace(
    "IFRAME", IFRAME
)


_CHART_STATE_JS = """() => Array.from(document.querySelectorAll('IFRAME')).map(f => {
  const w = f.contentWindow, r = f.getBoundingClientRect();
  let s = null;
  try { s = w.eval('({drawn, drawing, dirty, visible, hidden: document.hidden})'); }
  catch (e) { s = String(e); }
  return {top: Math.round(r.top), width: Math.round(r.width), state: s}; })""".replace(
    "IFRAME", IFRAME
)


def wait_charts_drawn(page, index: int | None = None, timeout: float = 60.0) -> None:
    """Until the live charts (or the index-th) show their newest figure: after a scroll, a
    resize or a run's end, instead of a fixed sleep. Two animation frames more, so that a
    screenshot sees what was drawn."""
    try:
        page.wait_for_function(SETTLED_JS, arg=index, timeout=timeout * 1000)
    except Exception as e:
        state = page.evaluate(_CHART_STATE_JS)
        raise AssertionError(f"live charts not drawn (chart {index}): {state}") from e
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


# Whether every drawn live chart is laid out at its column's width and done drawing. Each
# step lags the one before: Streamlit sets the iframe's width attribute from its column's
# width a render after a resize (680 px for a 526 px column, measured), the chart redraws
# when its frame's width changes (Plotly's resize is a relayout after a 100 ms timer, then
# a react), and only bnvizSettled says the redraw is over.
LAID_OUT_JS = """() => Array.from(document.querySelectorAll('IFRAME')).every(f => {
  const d = f.contentDocument && f.contentDocument.querySelector('.js-plotly-plot');
  if (!d || !d._fullLayout) return true;
  const w = f.contentWindow;
  return Math.abs(f.clientWidth - f.parentElement.clientWidth) <= 2
    && Math.abs(d._fullLayout.width - f.clientWidth) <= 2
    && w.bnvizSettled && w.bnvizSettled(); })
""".replace("IFRAME", IFRAME)


def wait_laid_out(page, where: str, timeout: float = 30.0) -> None:
    """Until every drawn live chart is redrawn at its column's width: after a resize."""
    wait_until(lambda: page.evaluate(LAID_OUT_JS), timeout, f"{where}: charts laid out")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def charts(page) -> list[list[int] | None]:
    return page.evaluate(CHARTS_JS)


def chart_frame(page, index: int):
    """The Playwright frame of the index-th live chart."""
    return page.locator(IFRAME).nth(index).element_handle().content_frame()


_GROUP_JS = "() => { const e = document.querySelector('.bnviz-run'); return e && e.dataset.group; }"


def wait_worker_ready(page, timeout: float = 90.0) -> None:
    """Until the page says its pre-started training worker is ready."""
    page.get_by_text("training worker ready").wait_for(timeout=timeout * 1000)


def first_point_seconds(
    page, start_polling: Callable[[], None] | None = None, timeout: float = 30.0
) -> float:
    """Press Train; seconds until the accuracy chart shows a point of every run."""
    before = page.evaluate(_GROUP_JS)
    page.get_by_role("button", name="Train", exact=True).click()
    t0 = time.perf_counter()
    if start_polling:
        start_polling()
    end = t0 + timeout
    while time.perf_counter() < end:
        group = page.evaluate(_GROUP_JS)
        acc = charts(page)[:1]
        # The new group's status lines and curves are drawn by the same fragment run.
        if (
            group
            and group != before
            and acc
            and acc[0]
            and len(acc[0]) >= 4
            and all(n > 0 for n in acc[0][:4])
        ):
            return time.perf_counter() - t0
        time.sleep(0.02)
    raise AssertionError("no point on the accuracy chart within the timeout")


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_until(pred: Callable[[], object], timeout: float = 60, what: str = "") -> float:
    """Poll `pred` until it is true; the seconds it took, or AssertionError naming `what`."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if pred():
            return time.perf_counter() - t0
        time.sleep(0.01)
    raise AssertionError(f"timed out: {what}")
