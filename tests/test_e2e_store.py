"""The run store in a real browser (issue #22): a disk that fills while a group trains is said
on the live view within seconds, and the notice goes once the rows are saved; a reload keeps
one's groups one's own (a cookie, not the Streamlit session), another browser follows them."""

from __future__ import annotations

import pytest

from tests.browser import launch, serve, wait_until, wait_worker_ready
from tests.test_store_guarantees import fill, small_disk  # noqa: F401 - a fixture

pytestmark = pytest.mark.browser

STATUS_JS = "() => Array.from(document.querySelectorAll('.bnviz-run')).map(e => e.dataset.status)"
NOTICE = "Runs are not being saved"


def test_a_full_disk_is_said_on_the_live_view_and_cleared_once_saved(small_disk):  # noqa: F811
    runs = small_disk / "runs"
    with serve(env={"BNVIZ_RUNS": str(runs)}) as base, launch() as browser:
        page = browser.new_page()
        page.goto(base + "/?epochs=300&hidden=64,64")
        wait_worker_ready(page)  # the server has opened its store
        filler = fill(small_disk)
        page.get_by_role("button", name="Train", exact=True).click()
        seconds = wait_until(
            lambda: page.get_by_text(NOTICE).count() > 0, timeout=30, what="the notice"
        )
        print(f"\nthe full disk was said {seconds:.1f} s after Train")
        assert page.evaluate(STATUS_JS) == ["running", "running"]  # while it trains
        assert "full" in page.get_by_text(NOTICE).first.inner_text()
        filler.unlink()
        wait_until(lambda: page.get_by_text(NOTICE).count() == 0, what="the notice to go")
        page.get_by_role("button", name="Stop training").click()
        wait_until(lambda: page.evaluate(STATUS_JS) == ["cancelled", "cancelled"], what="stop")


def test_a_reload_keeps_ones_groups_and_others_follow():
    with serve() as base, launch() as browser:
        mine = browser.new_context()
        page = mine.new_page()
        page.goto(base + "/?epochs=300&hidden=64,64")
        wait_worker_ready(page)
        page.get_by_role("button", name="Train", exact=True).click()
        wait_until(lambda: page.evaluate(STATUS_JS) == ["running", "running"], what="train")
        wait_until(lambda: "group=" in page.evaluate("location.href"), what="the link")
        link = page.evaluate("location.href")
        page.reload()  # a new Streamlit session: the cookie keeps the groups this browser's
        wait_until(lambda: page.evaluate(STATUS_JS) == ["running", "running"], what="reload")
        stop = page.get_by_role("button", name="Stop training")
        wait_until(stop.is_enabled, what="Stop to be this browser's after the reload")
        assert page.get_by_text("Started elsewhere").count() == 0

        other = browser.new_context().new_page()  # another browser: a follower
        other.goto(link)
        other.get_by_text("Started elsewhere; you are following it").wait_for()
        assert other.get_by_role("button", name="Stop training").is_disabled()

        stop.click()
        wait_until(lambda: page.evaluate(STATUS_JS) == ["cancelled", "cancelled"], what="stop")
