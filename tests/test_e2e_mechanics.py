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


# Per visible live chart: the iframe's width and the width Plotly laid the figure out at.
WIDTHS_JS = """() => Array.from(document.querySelectorAll('IFRAME'))
  .filter(f => f.offsetParent !== null)
  .map(f => { const d = f.contentDocument && f.contentDocument.querySelector('.js-plotly-plot');
    return [f.clientWidth, d && d._fullLayout ? d._fullLayout.width : null]; })
""".replace("IFRAME", IFRAME)


def test_every_mechanics_tab_is_laid_out_at_both_projector_sizes():
    """Every tab of every mechanics page at 1024×768 and 1280×800: a chart, laid out at its
    frame's width (a chart drawn in a hidden tab kept a zero-width layout: legends over the
    plot, labels cut to "()"), no overlapping text, no cut button label, no error."""
    from tests.test_e2e_layout import CUT_JS, OVERLAP_JS

    problems: list[str] = []
    with serve() as base, launch() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        for w, h in ((1280, 800), (1024, 768)):
            page.set_viewport_size({"width": w, "height": h})
            for slug in (s for s, x in LESSONS.items() if x.page):
                page.goto(f"{base}/{slug}")
                page.get_by_text("The claim").first.wait_for(timeout=60_000)
                tabs = page.get_by_role("tab")
                names = [tabs.nth(i).inner_text() for i in range(tabs.count())] or [""]
                for name in names:
                    if name:
                        page.get_by_role("tab", name=name, exact=True).click()
                    where = f"{slug} {name or '(no tabs)'} {w}×{h}"

                    def laid_out() -> bool:
                        sizes = page.evaluate(WIDTHS_JS)
                        return bool(sizes) and all(
                            lw is not None and abs(lw - fw) <= 2 for fw, lw in sizes
                        )

                    if not any(x in name for x in ("Batch size 1",)):  # text only
                        wait_until(laid_out, 30, f"{where}: charts at their frames' width")
                    assert page.locator('[data-testid="stException"]').count() == 0, where
                    problems += [f"{where}: {x}" for x in page.evaluate(OVERLAP_JS)]
                    problems += [f"{where}: cut label {x!r}" for x in page.evaluate(CUT_JS)]
                    tab = "".join(c for c in name.split(" ")[0] if c.isalnum()) or "page"
                    shot(page, f"mechanics_{slug}_{tab}_{w}")
    assert not problems, "\n".join(problems)
