"""The README's pictures, made from the real app in headless Chromium: `make screenshots`.

    python tools/screenshots.py [--lesson SLUG] [--out docs/img]

Starts `streamlit run app.py` on a free port (a fresh, empty run store), then writes at 1280×800:
- `lesson_present.png`: a lesson (default `ioffe_fig1`) in presentation mode (`?present=1`),
  after Run this experiment, once its check ("What the records show") is shown;
- `train_live.png`: the Train page while a group trains (sigmoid, with vs without BN), once
  the progress bar has passed 40 %; training is then stopped.
Every step waits on a condition of the page (a button, a verdict, the progress text, the charts'
point counts), never a fixed time, and a step that does not come names what it waited for.
The PNGs are quantized to 256 colours (charts and text stay sharp) so each stays well under
300 KB in the repository.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bnviz.lessons import LESSONS  # noqa: E402
from tests.browser import charts, launch, serve  # noqa: E402

VIEWPORT = {"width": 1280, "height": 800}
VERDICT = re.compile(r"The claim (holds|does not hold) (over \d+ seeds|in this run)")
PROGRESS = re.compile(r"training on \S+ — (\d+)%")
TRAIN_URL = "/?activation=sigmoid&epochs=100"  # Ioffe & Szegedy's sigmoid net, long enough to watch
MAX_BYTES = 300_000
# The first progress bar's value (0–100), or null: st.progress is a role=progressbar element.
PROGRESS_JS = """() => { const b = document.querySelector('[role="progressbar"]');
  return b && b.hasAttribute('aria-valuenow') ? Number(b.getAttribute('aria-valuenow')) : null; }"""


class ScreenshotError(RuntimeError):
    """A step of the script did not happen in time: the message names what it waited for."""


def wait(pred: Callable[[], object], timeout: float, what: str) -> object:
    """Poll `pred` until it returns something true; ScreenshotError naming `what` otherwise."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    raise ScreenshotError(f"timed out after {timeout:.0f} s waiting for {what}")


def visible(page, locator, timeout: float, what: str) -> None:
    try:
        locator.first.wait_for(state="visible", timeout=timeout * 1000)
    except Exception as e:  # playwright's TimeoutError: say which element, not its stack
        raise ScreenshotError(f"{what} not found on {page.url} within {timeout:.0f} s") from e


def settled(page, n_charts: int, timeout: float = 30.0) -> None:
    """Until the first `n_charts` live charts have drawn points and their point counts have
    stopped changing for a second (the last figure after the runs ended has arrived)."""
    last: list = []
    since = time.monotonic()

    def still() -> bool:
        nonlocal last, since
        now = charts(page)[:n_charts]
        ready = len(now) == n_charts and all(c and sum(c) > 0 for c in now)
        if now != last or not ready:
            last, since = now, time.monotonic()
            return False
        return time.monotonic() - since >= 1.0

    wait(still, timeout, f"{n_charts} charts with points that stop changing")


def save(page, path: Path) -> int:
    """A viewport screenshot as a 256-colour PNG; its size in bytes."""
    from PIL import Image

    # No hover or focus colour on the button just pressed, no sidebar handle under the mouse.
    page.mouse.move(VIEWPORT["width"] - 2, VIEWPORT["height"] - 2)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.screenshot(path=str(path))
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ScreenshotError(f"{path} is {size / 1000:.0f} KB, over {MAX_BYTES / 1000:.0f} KB")
    return size


def lesson_shot(page, base: str, slug: str, out: Path) -> int:
    lesson = LESSONS[slug]
    page.goto(f"{base}/{slug}?present=1")
    run = page.get_by_role("button", name="Run this experiment")
    visible(page, run, 60, "the button 'Run this experiment'")
    visible(page, page.get_by_role("button", name="Exit presentation"), 30, "presentation mode")
    run.click()
    visible(page, page.get_by_text(VERDICT), 300, "the lesson's verdict (What the records show)")
    settled(page, len(lesson.charts))
    page.evaluate("() => window.scrollTo(0, 0)")
    return save(page, out / "lesson_present.png")


def train_shot(page, base: str, out: Path) -> int:
    page.goto(base + TRAIN_URL)
    train = page.get_by_role("button", name="Train", exact=True)
    visible(page, train, 60, "the button 'Train'")
    visible(page, page.get_by_text("training worker ready"), 90, "'training worker ready'")
    train.click()

    def far_enough() -> bool:
        m = PROGRESS.search(page.inner_text("body"))
        if m:
            return int(m.group(1)) >= 40
        value = page.evaluate(PROGRESS_JS)  # the bar itself, should its text change
        return value is not None and 40 <= value < 100

    wait(far_enough, 120, "the progress bar at 40 % ('training on … — 40%')")
    # Accuracy and loss (above the fold) show points of both runs. The charts below the fold
    # keep their figures pending until scrolled into view (dashboard/live_chart.py).
    wait(
        lambda: (c := charts(page)) and len(c) >= 2 and all(x and min(x) > 0 for x in c[:2]),
        30,
        "the accuracy and loss charts with points of every run",
    )
    page.evaluate("() => window.scrollTo(0, 0)")
    size = save(page, out / "train_live.png")
    page.get_by_role("button", name="Stop training").click()
    return size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--lesson", default="ioffe_fig1", choices=[s for s, x in LESSONS.items() if x.trains]
    )
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        with serve() as base, launch() as browser:
            page = browser.new_page(viewport=VIEWPORT)
            size = lesson_shot(page, base, args.lesson, args.out)
            print(f"lesson_present.png  {size / 1000:.0f} KB  ({args.lesson}, presentation mode)")
            page = browser.new_page(viewport=VIEWPORT)  # a new tab: the lab's own session
            size = train_shot(page, base, args.out)
            print(f"train_live.png      {size / 1000:.0f} KB  (Train page while training)")
    except (ScreenshotError, RuntimeError) as e:  # RuntimeError: no Chromium, no server
        sys.exit(f"screenshots: {e}")
    print(f"written to {args.out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
