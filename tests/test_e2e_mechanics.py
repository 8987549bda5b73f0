"""The mechanics lessons in headless Chromium: move γ on BN step by step and the chart redraws
(in place, within a second); undo the normalization and max |y − x| is rounding error; every
mechanics page draws its first chart. Screenshots → artifacts/mechanics_*.png."""

from __future__ import annotations

import pytest

from bnviz.lessons import LESSONS
from tests.browser import IFRAME, launch, serve, shot, wait_until

pytestmark = pytest.mark.browser

# The data of every visible live chart (its plot lives in the component's iframe).
VISIBLE_JS = """() => Array.from(document.querySelectorAll('IFRAME'))
  .filter(f => f.offsetParent !== null)
  .map(f => { const d = f.contentDocument && f.contentDocument.querySelector('.js-plotly-plot');
    return d && d._fullData ? JSON.stringify(d._fullData.map(t => [t.x, t.y, t.z])) : null; })
""".replace("IFRAME", IFRAME)


def visible(page) -> list:
    return page.evaluate(VISIBLE_JS)


def test_gamma_slider_redraws_the_chart():
    with serve() as base, launch() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(base + "/bn_step_by_step")
        page.get_by_role("tab", name="γ and β").click(timeout=60_000)
        wait_until(lambda: visible(page) and all(visible(page)), 30, "the γ/β chart")
        before = visible(page)
        shot(page, "mechanics_gamma_before_1280")
        gamma = page.get_by_role("slider", name="γ (weight)")
        gamma.focus()
        for _ in range(10):
            page.keyboard.press("ArrowRight")  # +0.05 each
        seconds = wait_until(lambda: visible(page) != before, 10, "the chart to change")
        assert seconds < 3.0
        wait_until(lambda: "γ = 1.5000" in page.inner_text("body"), 10, "γ = 1.5 on the page")
        shot(page, "mechanics_gamma_after_1280")
        page.get_by_text("undo the normalization").click()
        page.get_by_text("max |y − x| over the batch =").wait_for()
        wait_until(
            lambda: (
                "e-1" in page.inner_text("body").split("over the batch =")[1][:12]
                and "e-0" not in page.inner_text("body").split("over the batch =")[1][:12]
            ),
            10,
            "max |y − x| at rounding error",
        )


@pytest.mark.parametrize("size", [(1280, 800), (1024, 768)])
def test_every_mechanics_page_draws(size):
    w, h = size
    with serve() as base, launch() as browser:
        page = browser.new_page(viewport={"width": w, "height": h})
        for slug in (s for s, x in LESSONS.items() if x.page):
            page.goto(f"{base}/{slug}")
            page.get_by_text("The claim").first.wait_for(timeout=60_000)
            wait_until(lambda: any(visible(page)), 60, f"a chart on {slug}")
            assert "Error" not in page.inner_text("body")[:2000]
            shot(page, f"mechanics_{slug}_{w}")
