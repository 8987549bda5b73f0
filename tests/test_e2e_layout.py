"""Layouts a projector can show, in headless Chromium: the Train page with a finished 4-run
group at 1024×768, 1280×800 and 1920×1080, in normal and presentation mode. Fails when a
button label is cut, a title wraps, two text boxes of a chart overlap, or (presenting) the
curves and the key chart are not above the fold. Screenshots → artifacts/layout_*.png."""

from __future__ import annotations

import re
import time

import pytest

from tests.browser import IFRAME, launch, serve, shot, wait_charts_drawn, wait_laid_out

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
# Per chart, pairs of visible SVG text elements whose boxes overlap (> 2 px each way), and
# texts that run past the chart's edge (a long title is cut there, not wrapped).
OVERLAP_JS = """() => Array.from(document.querySelectorAll('IFRAME')).map((f, i) => {
  const d = f.contentDocument; if (!d || !d.documentElement) return [];
  const width = d.documentElement.clientWidth;
  const boxes = Array.from(d.querySelectorAll('svg text'))
    .filter(t => t.textContent.trim() && t.getClientRects().length &&
      getComputedStyle(t).opacity !== '0' && getComputedStyle(t).display !== 'none')
    .map(t => [t.textContent.trim(), t.getBoundingClientRect()])
    .filter(([_, r]) => r.width > 0 && r.height > 0);
  const out = boxes.filter(([_, r]) => r.right > width + 2 || r.left < -2)
    .map(([t, _]) => `chart ${i}: "${t}" runs past the chart's edge`);
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
        wait_charts_drawn(page, i)
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
        wait_charts_drawn(page)  # the last chart update, drawn with the status line
        problems: list[str] = []
        for mode in ("normal", "present"):
            if mode == "present":
                page.get_by_role("button", name="Present").click()
                page.get_by_role("button", name="Exit presentation").wait_for()
            for w, h in VIEWPORTS:
                page.set_viewport_size({"width": w, "height": h})
                wait_laid_out(page, f"{mode} {w}×{h}")
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
        # leaving presentation mode gives the configuration sidebar back
        page.locator('section[data-testid="stSidebar"]').get_by_text("Configuration").wait_for()
        assert not problems, "\n".join(problems)


# The verdict's first box (the check's alert, or before a run the line saying where it will
# be) and the key chart (the lesson's first live chart): their bottoms, in viewport pixels.
FOLD_JS = """() => {
  const v = document.querySelector('.st-key-verdict');
  const box = v && (v.querySelector('[data-testid="stAlert"]')
    || v.querySelector('[data-testid="stCaptionContainer"]'));
  const key = document.querySelector('IFRAME');
  return [box ? box.getBoundingClientRect().bottom : null,
          key ? key.getBoundingClientRect().bottom : null]; }""".replace("IFRAME", IFRAME)
# Per drawn chart: the line and marker colours Plotly drew, for the dark theme's check.
INKS_JS = """() => Array.from(document.querySelectorAll('IFRAME')).map(f => {
  const d = f.contentDocument && f.contentDocument.querySelector('.js-plotly-plot');
  if (!d || !d._fullData) return [];
  return d._fullData.flatMap(t => [t.line && t.line.color, t.marker && t.marker.color])
    .filter(c => typeof c === 'string'); }).flat()""".replace("IFRAME", IFRAME)
# The backgrounds of the charts in view (one out of view keeps its new figure until shown).
IN_VIEW_BG_JS = """() => Array.from(document.querySelectorAll('IFRAME'))
  .filter(f => f.getBoundingClientRect().top < window.innerHeight)
  .map(f => { const d = f.contentDocument && f.contentDocument.querySelector('.js-plotly-plot');
    return d && d._fullLayout ? d._fullLayout.paper_bgcolor : null; })""".replace("IFRAME", IFRAME)
DARK_INKS = {"black", "#000", "#000000", "#222", "#222222", "#444", "#444444", "rgb(0, 0, 0)"}


def _fold(page, where: str, h: int) -> list[str]:
    from tests.browser import wait_until

    wait_until(lambda: all(page.evaluate(FOLD_JS)), 30, f"{where}: the verdict and key chart")
    verdict, key = page.evaluate(FOLD_JS)
    out = []
    if key > h + 1:
        out.append(f"{where}: the key chart ends at {key:.0f} px, below the fold ({h})")
    if verdict > h + 1:
        out.append(f"{where}: the verdict ends at {verdict:.0f} px, below the fold ({h})")
    return out


# "over N seeds", or "in this run" for one
VERDICT = re.compile(r"The claim (holds|does not hold) (over \d+ seeds|in this run)")
TRAINED = ("ioffe_fig1", "batch_size")  # lessons trained for the layout test (seconds each)
SIZES = ((1280, 800), (1024, 768))


def test_every_lesson_shows_its_key_chart_and_verdict_above_the_fold():
    """Every training lesson, in one browser session: at 1280×800 (normal mode) and at
    1024×768 presenting, the key chart and the verdict end above the fold (with a real
    verdict on the lesson trained here, and its place before a run elsewhere); no chart has
    overlapping text at 1024 or 1280; presenting survives Next and a reload; in the dark theme
    no line or marker keeps a dark ink, and the theme survives a reload on another page."""
    from bnviz.lessons import LESSONS
    from tests.browser import wait_until

    slugs = [s for s, x in LESSONS.items() if x.trains]
    problems: list[str] = []
    with serve() as base, launch() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        # Real verdicts and curves: two lessons that train in seconds, one of 12 runs.
        for slug in TRAINED:
            page.goto(f"{base}/{slug}")
            page.get_by_role("button", name="Run this experiment").wait_for(timeout=60_000)
            wait_until(lambda: page.get_by_text("is starting").count() == 0, 90, "worker ready")
            page.get_by_role("button", name="Run this experiment").click()
            page.get_by_text(VERDICT).first.wait_for(timeout=120_000)
        for slug in slugs:
            for present, sizes in ((False, SIZES), (True, SIZES[::-1])):
                # the other size (a resize) only where runs drew their curves: time
                sizes = sizes if slug in TRAINED else sizes[:1]
                page.set_viewport_size(dict(zip(("width", "height"), sizes[0])))
                page.goto(f"{base}/{slug}" + ("?present=1" if present else ""))
                page.get_by_role("button", name="Run this experiment").wait_for(timeout=60_000)
                for k, (w, h) in enumerate(sizes):
                    where = f"{slug} {'presenting' if present else 'normal'} {w}×{h}"
                    if k:  # the other size: a resize, not a reload
                        page.set_viewport_size({"width": w, "height": h})
                    if (w, h) == ((1024, 768) if present else (1280, 800)):
                        problems += _fold(page, where, h)
                    wait_laid_out(page, where)
                    problems += [f"{where}: {x}" for x in page.evaluate(OVERLAP_JS)]
                    problems += [f"{where}: cut label {x!r}" for x in page.evaluate(CUT_JS)]
                    if slug in TRAINED:
                        shot(page, f"lesson_{slug}_{'present' if present else 'normal'}_{w}")
            # Presenting at 1024 now: the dark theme (a dim hall) on the same page.
            page.emulate_media(color_scheme="dark")
            page.wait_for_function(f"() => ({IN_VIEW_BG_JS})().every(c => c === '#000000')")
            inks = set(page.evaluate(INKS_JS)) & DARK_INKS
            if inks:
                problems.append(f"{slug} dark: lines or markers in {sorted(inks)}")
            if slug in TRAINED:
                shot(page, f"lesson_{slug}_present_dark_1024")
            page.emulate_media(color_scheme="light")
        # Presenting survives a reload: present=1 stays in the URL. (Next's URL is not
        # checked: after a training, Streamlit 1.67 switched the page but kept the old URL.)
        page.goto(f"{base}/{slugs[0]}?present=1")
        page.locator(".st-key-verdict").wait_for(timeout=60_000)
        page.reload()
        page.get_by_role("button", name="Exit presentation").wait_for(timeout=60_000)
        # A theme picked in the menu survives a reload on another page.
        page.goto(f"{base}/tour")
        page.get_by_role("link", name="Start the tour").wait_for(timeout=60_000)
        page.locator('[data-testid="stMainMenu"]').click()
        page.locator('[data-testid="stMainMenuList"]').get_by_text("Dark").click()
        wait_until(
            lambda: page.evaluate("localStorage.getItem('bnviz-theme')"), 30, "the theme kept"
        )
        page.goto(f"{base}/{slugs[-1]}")
        page.get_by_role("button", name="Run this experiment").wait_for(timeout=60_000)
        wait_until(
            lambda: (
                page.evaluate("getComputedStyle(document.querySelector('.stApp')).backgroundColor")
                == "rgb(0, 0, 0)"
            ),
            30,
            "the dark theme after a reload on another page",
        )
    assert not problems, "\n".join(problems)
