"""A lesson run from its page against the same lesson from the shell, back to back.

    python benchmarks/bench_page.py [--only SLUG ...] [--repeat 3] [--duty D]

The baseline, in the same process and alternated with the page: `python -m bnviz check SLUG
--quiet` (the same seeds, the same check; its wall time includes starting Python and importing
torch). The page: `streamlit run app.py` (as `make run` starts it, with this machine's worker
duty cycle unless `--duty` sets BNVIZ_WORKER_DUTY), headless Chromium on the lesson's page,
seconds from the click on Run this experiment to the verdict drawn. The page's time is split
into the worker's training (the status line's "done on cpu after X s") and the rest (the
worker picking the group up, the records' way to the page, the last refresh, the verdict).
Prints per lesson the medians and page ÷ CLI; the goal of issue #20 is ≤ 1.3×.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bnviz.lessons import LESSONS  # noqa: E402
from tests.browser import launch, serve  # noqa: E402

DEFAULT = ("ioffe_fig1", "lr_ladder", "regularization", "ics")
VERDICT = re.compile(r"The claim (holds|does not hold) (over|in)")
TRAINED = re.compile(r"done on \w+ after ([0-9.]+) s")


def cli_seconds(slug: str) -> float:
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "bnviz", "check", slug, "--quiet"],
        cwd=ROOT,
        check=False,
        capture_output=True,
        timeout=600,
    )
    return time.perf_counter() - t


def page_seconds(page, base: str, slug: str) -> tuple[float, float]:
    """(click → verdict, the worker's training seconds as the page reports them)."""
    page.goto(f"{base}/{slug}")
    run = page.get_by_role("button", name="Run this experiment")
    run.wait_for(timeout=120_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=60_000
    )
    t = time.perf_counter()
    run.click()
    end = t + 600
    fresh = False  # a verdict already on the page (an earlier group's) is not this run's
    while time.perf_counter() < end:
        text = page.inner_text("body")
        if not VERDICT.search(text):
            fresh = True
        elif fresh and (m := TRAINED.search(text)):
            return time.perf_counter() - t, float(m.group(1))
        page.wait_for_timeout(50)  # a poll interval, not a wait for an effect
    raise TimeoutError(f"{slug}: no verdict within 600 s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--only", nargs="*", default=list(DEFAULT), help="lesson slugs, or 'all' (every one)"
    )
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--duty", type=float, default=None, help="BNVIZ_WORKER_DUTY for the server")
    args = p.parse_args()
    if args.only == ["all"]:
        args.only = [slug for slug, lesson in LESSONS.items() if lesson.trains]
    env = {} if args.duty is None else {"BNVIZ_WORKER_DUTY": str(args.duty)}
    rows = []
    with serve(env=env) as base, launch() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page_seconds(page, base, "ioffe_fig1")  # warm-up: the worker, plotly.js, imports
        for slug in args.only:
            assert LESSONS[slug].trains, slug
            cli, web, trained = [], [], []
            for _ in range(args.repeat):
                cli.append(cli_seconds(slug))
                w, tr = page_seconds(page, base, slug)
                web.append(w)
                trained.append(tr)
            c, w, tr = (statistics.median(x) for x in (cli, web, trained))
            rows.append((slug, c, w, tr, w / c))
            print(
                f"{slug:16s} CLI {c:6.2f} s   page {w:6.2f} s (training {tr:5.2f} s, "
                f"rest {w - tr:5.2f} s)   page ÷ CLI {w / c:4.2f}×",
                flush=True,
            )
    ratios = [r[-1] for r in rows]
    print(f"\nmedian page ÷ CLI over {len(rows)} lessons: {statistics.median(ratios):.2f}×")
    print(f"largest: {max(ratios):.2f}× ({max(rows, key=lambda r: r[-1])[0]})\n")
    print("| lesson | CLI | page, click → verdict | of which training | page ÷ CLI |")
    print("|---|---|---|---|---|")
    for slug, c, w, tr, ratio in rows:
        print(f"| {slug} | {c:.1f} s | {w:.1f} s | {tr:.1f} s | {ratio:.2f}× |")


if __name__ == "__main__":
    main()
