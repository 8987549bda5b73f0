"""A lesson end to end in headless Chromium, as a lecturer takes it: the Train page's tour link,
the tour, a lesson, Run this experiment, live charts growing, the check computed from the run.
Screenshots at 1280×800 and 1024×768 → artifacts/lesson_*.png."""

from __future__ import annotations

import re

import pytest

from bnviz.lessons import LESSONS
from tests.browser import (
    IFRAME,
    charts,
    launch,
    serve,
    shot,
    wait_laid_out,
    wait_until,
    wait_worker_ready,
)

pytestmark = pytest.mark.browser

SLUG = "ioffe_fig1"  # the lecture's first figure; trains in a few seconds


@pytest.fixture(scope="module")
def server():
    """One server and one browser for the module (a start costs ~10 s on a loaded machine)."""
    with serve() as base, launch() as browser:
        yield base, browser


def test_a_lesson_from_the_tour_runs_live_and_shows_its_check(server):
    lesson = LESSONS[SLUG]
    base, browser = server
    if True:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(base + "/")
        # Not while the Train page polls for its worker: a link clicked then can meet a
        # Streamlit race (the page's fragment rerun after the new page's run: a blank page;
        # docs/dashboard.md, known problems).
        wait_worker_ready(page)
        page.get_by_role("link", name="New here? Take the tour").click()
        page.get_by_role("link", name="Start the tour").wait_for(timeout=60_000)
        shot(page, "lesson_0_tour_1280")
        index = list(LESSONS).index(SLUG) + 1
        page.get_by_role("link", name=f"{index}. {lesson.title}").click()
        page.get_by_role("button", name="Run this experiment").wait_for(timeout=60_000)
        assert page.url.endswith("/" + SLUG)
        page.get_by_text("The claim").first.wait_for()
        page.get_by_role("button", name="Run this experiment").click()
        # Live: while the runs train (status "running"), the accuracy chart (the lesson's
        # first) already has points, and it has more once they end. The preset trains in a
        # few seconds, so the samples are of what is drawn, not of a count of redraws.
        running: list[int] = []

        runs = len(lesson.configs())  # every arm at every seed: the status line counts them

        def ended() -> bool:
            acc = charts(page)[:1]
            n = max(acc[0]) if acc and acc[0] else 0
            text = page.inner_text("body")
            if n and re.search(rf"{runs} runs: [^\n]*running", text):
                running.append(n)
            return "done on" in text  # the progress line once every run has ended

        wait_until(ended, 90, "the runs to end")
        assert running, "no point was drawn while the runs were running"
        # A live chart draws its newest figure when it is in view (live_chart): show it.
        page.locator(IFRAME).first.scroll_into_view_if_needed()
        wait_until(
            lambda: max(charts(page)[0]) > min(running), 20, "more points once the runs ended"
        )
        shot(page, "lesson_1_live_1280")
        page.get_by_text("What the records show").wait_for(timeout=60_000)
        page.get_by_text("The claim holds over").or_(
            page.get_by_text("The claim does not hold over")
        ).first.wait_for(timeout=120_000)
        text = page.inner_text("body")
        assert "norm=batch" in text and "norm=none" in text
        shot(page, "lesson_2_check_1280")
        page.set_viewport_size({"width": 1024, "height": 768})
        wait_laid_out(page, "the lesson at 1024×768")
        shot(page, "lesson_3_check_1024")
        # Open in the lab: the Train page with the lesson's configuration.
        page.get_by_role("button", name="Open in the lab").click()
        page.get_by_role("button", name="Train", exact=True).wait_for(timeout=60_000)
        wait_until(lambda: "activation=sigmoid" in page.url, 30, "the lab's URL")
        shot(page, "lesson_4_lab_1024")


def test_stop_during_a_lesson_run(server):
    """Stop is enabled as soon as the lesson's group trains (it stayed disabled for a whole
    run), Run is disabled meanwhile (a second click queued a second group), and Stop ends
    the run the page shows."""
    base, browser = server
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    page.goto(base + "/no_norm")  # its runs train for many seconds
    run = page.get_by_role("button", name="Run this experiment")
    run.click(timeout=60_000)
    # in the page, not the header's Stop of a running script
    main = page.get_by_test_id("stMainBlockContainer")
    stop = main.get_by_role("button", name="Stop", exact=True)
    wait_until(stop.is_enabled, 60, "Stop enabled while the lesson trains")
    assert run.is_disabled()
    # over several seeds the status line counts the runs: "24 runs: 3 running, 21 queued"
    training = re.compile(r"\d+ runs: [^\n]*running")
    wait_until(lambda: training.search(page.inner_text("body")), 60, "the runs training")
    assert run.is_disabled() and stop.is_enabled()
    stop.click()
    wait_until(lambda: page.get_by_text("stopped on").count() > 0, 60, "the group stopped")
    wait_until(run.is_enabled, 60, "Run enabled again")
    assert stop.is_disabled()
    page.close()
