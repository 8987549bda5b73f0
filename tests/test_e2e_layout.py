"""Layouts a projector can show, in headless Chromium: the Train page with a finished 4-run
group at 1024×768, 1280×800 and 1920×1080, in normal and presentation mode. Fails when a
button label is cut, a title wraps, two text boxes of a chart overlap, or (presenting) the
curves and the key chart are not above the fold. Screenshots → artifacts/layout_*.png."""

from __future__ import annotations

import time

import pytest

from tests.browser import IFRAME, launch, serve, shot

pytestmark = pytest.mark.browser

VIEWPORTS = ((1024, 768), (1280, 800), (1920, 1080))
GROUP = "/?epochs=3&vary=lr:0.1,0.5"  # norm (batch, none) × lr: 4 runs

# Buttons (and page links) whose label is cut: its text box is wider than its box.
CUT_JS = """() => Array.from(document.querySelectorAll(
    'button, a[data-testid="stPageLink-NavLink"]'))
  .filter(b => b.offsetParent !== null)
  .map(b => { const t = b.querySelector('p') || b;
    return t.scrollWidth > t.clientWidth + 1 ? (b.innerText || '?') : null; })
  .filter(x => x)"""
# Titles (h1–h3) whose text runs over more than one line (distinct line boxes of its text).
WRAP_JS = """() => Array.from(document.querySelectorAll('h1, h2, h3'))
  .filter(h => h.offsetParent !== null && h.innerText.trim())
  .map(h => { const r = document.createRange(); r.selectNodeContents(h);
    const tops = new Set(Array.from(r.getClientRects()).filter(b => b.width > 0)
      .map(b => Math.round(b.top / 4)));
    return tops.size > 1 ? h.innerText : null; })
  .filter(x => x)"""
# Per chart, pairs of visible SVG text elements whose boxes overlap (> 2 px each way).
OVERLAP_JS = """() => Array.from(document.querySelectorAll('IFRAME')).map((f, i) => {
  const d = f.contentDocument; if (!d) return [];
  const boxes = Array.from(d.querySelectorAll('svg text'))
    .filter(t => t.textContent.trim() && t.getClientRects().length &&
      getComputedStyle(t).opacity !== '0' && getComputedStyle(t).display !== 'none')
    .map(t => [t.textContent.trim(), t.getBoundingClientRect()])
    .filter(([_, r]) => r.width > 0 && r.height > 0);
  const out = [];
  for (let a = 0; a < boxes.length; a++) for (let b = a + 1; b < boxes.length; b++) {
    const [ta, ra] = boxes[a], [tb, rb] = boxes[b];
    const w = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
    const h = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
    if (w > 2 && h > 2) out.push(`chart ${i}: "${ta}" × "${tb}"`);
  }
  return out; }).flat()""".replace("IFRAME", IFRAME)
CHART_BOXES_JS = """() => Array.from(document.querySelectorAll('IFRAME'))
  .map(f => { const r = f.getBoundingClientRect(); return [r.top, r.bottom]; })""".replace(
    "IFRAME", IFRAME
)


BACKGROUNDS_JS = """() => Array.from(document.querySelectorAll('IFRAME')).map(f => {
  const d = f.contentDocument && f.contentDocument.querySelector('.js-plotly-plot');
  return d && d._fullLayout ? d._fullLayout.paper_bgcolor : null; })""".replace("IFRAME", IFRAME)


def check(page, where: str) -> list[str]:
    problems = [f"{where}: cut button label {x!r}" for x in page.evaluate(CUT_JS)]
    problems += [f"{where}: title over two lines {x!r}" for x in page.evaluate(WRAP_JS)]
    # A chart out of view keeps its newest figure pending (live_chart): show each one first.
    frames = page.locator(IFRAME)
    for i in range(frames.count()):
        frames.nth(i).scroll_into_view_if_needed()
        time.sleep(0.6)
    problems += [f"{where}: {x}" for x in page.evaluate(OVERLAP_JS)]
    page.evaluate("() => window.scrollTo(0, 0)")
    page.locator(IFRAME).first.scroll_into_view_if_needed()
    return problems


def test_train_page_fits_every_projector_in_both_modes():
    with serve() as base, launch() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(base + GROUP)
        page.get_by_role("button", name="Train", exact=True).wait_for(timeout=60_000)
        page.get_by_text("training worker ready").wait_for(timeout=90_000)
        page.get_by_role("button", name="Train", exact=True).click()
        page.get_by_text("done on").wait_for(timeout=120_000)
        time.sleep(2.0)  # the last chart update
        problems: list[str] = []
        for mode in ("normal", "present"):
            if mode == "present":
                page.get_by_role("button", name="Present").click()
                page.get_by_role("button", name="Exit presentation").wait_for()
            for w, h in VIEWPORTS:
                page.set_viewport_size({"width": w, "height": h})
                time.sleep(1.5)
                shot(page, f"layout_{mode}_{w}x{h}")
                problems += check(page, f"{mode} {w}×{h}")
                if mode == "present":
                    boxes = page.evaluate(CHART_BOXES_JS)  # acc, loss, key chart
                    assert len(boxes) == 3, boxes
                    for name, (_top, bottom) in zip(("accuracy", "loss", "key"), boxes):
                        if bottom > h + 1:
                            problems.append(
                                f"present {w}×{h}: the {name} chart ends at "
                                f"{bottom:.0f} px, below the fold ({h})"
                            )
        # A dim hall: the system's dark preference selects the high-contrast dark theme
        # (.streamlit/config.toml [theme.dark]) and the charts follow it.
        page.emulate_media(color_scheme="dark")
        page.wait_for_function(f"() => ({BACKGROUNDS_JS})().every(c => c === '#000000')")
        shot(page, "layout_present_dark_1920x1080")
        page.emulate_media(color_scheme="light")
        page.get_by_role("button", name="Exit presentation").click()
        page.get_by_role("button", name="Present").wait_for()
        end = time.time() + 10
        while "present=1" in page.evaluate("location.href") and time.time() < end:
            time.sleep(0.2)
        assert "present=1" not in page.evaluate("location.href")
        assert not problems, "\n".join(problems)
