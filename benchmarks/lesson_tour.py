"""The tour as a lecturer takes it: every lesson page in headless Chromium, Run this experiment,
seconds until the check is shown, its verdict, and screenshots of what the room sees.

    python benchmarks/lesson_tour.py [--only SLUG ...]

Starts `streamlit run app.py` on a free port (as `make run` does, with this machine's worker
duty cycle). Per lesson it prints the seconds from the click to "What the records show" with
a verdict, and writes artifacts/tour/<n>_<slug>_{1280x800,1024x768,full}.png: the two
projector sizes as the room sees them (above the fold), and the whole page in one tall shot.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bnviz.lessons import LESSONS
from tests.browser import ARTIFACTS, launch, serve

OUT = ARTIFACTS / "tour"
VERDICTS = ("The claim holds over", "The claim does not hold over")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", default=None, help="lesson slugs (default: all)")
    args = p.parse_args()
    slugs = args.only or [s for s, x in LESSONS.items() if x.trains and not x.page]
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    with serve() as base, launch() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(base + "/tour")
        for n, slug in enumerate(slugs, start=1):
            page.set_viewport_size({"width": 1280, "height": 800})
            page.goto(f"{base}/{slug}")
            page.get_by_role("button", name="Run this experiment").wait_for(timeout=60_000)
            time.sleep(1.0)  # the warm worker and the empty charts
            t0 = time.perf_counter()
            page.get_by_role("button", name="Run this experiment").click()
            verdict = page.get_by_text(VERDICTS[0]).or_(page.get_by_text(VERDICTS[1])).first
            verdict.wait_for(timeout=300_000)
            seconds = time.perf_counter() - t0
            text = verdict.inner_text()
            time.sleep(1.5)  # the last chart update
            stem = f"{n}_{slug}"
            page.screenshot(path=str(OUT / f"{stem}_1280x800.png"))
            page.set_viewport_size({"width": 1024, "height": 768})
            time.sleep(1.0)
            page.screenshot(path=str(OUT / f"{stem}_1024x768.png"))
            page.set_viewport_size({"width": 1280, "height": 2600})
            time.sleep(1.0)
            page.screenshot(path=str(OUT / f"{stem}_full.png"))
            holds = text.startswith(VERDICTS[0])
            rows.append((slug, seconds, "holds" if holds else "does not hold"))
            print(f"{slug:15s} {seconds:6.1f} s  {rows[-1][2]}", flush=True)
    print("\n| lesson | click → check shown | verdict |\n|---|---|---|")
    for slug, seconds, verdict in rows:
        print(f"| `{slug}` | {seconds:.1f} s | {verdict} |")


if __name__ == "__main__":
    main()
