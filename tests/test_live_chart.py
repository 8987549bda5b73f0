"""dashboard.live_chart: renders under AppTest, and in real Chromium updates in place
(no blank frame, ≥ ~2 updates/s) while keeping the user's zoom, fully offline."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from urllib.parse import urlparse

import pytest

from dashboard.chart_stream import ChartStream
from dashboard.live_chart import _patch, _payload, _sendable
from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, serve

ROOT = Path(__file__).resolve().parents[1]
DEMO = "tests/apps/live_chart_demo.py"
PNG_BUTTON = '.modebar-btn[data-title="Download plot as a PNG"]'
HTML_BUTTON = '.modebar-btn[data-title="Download plot as HTML (opens offline)"]'
IFRAME = 'iframe[title="dashboard.live_chart.live_chart"]'
# Reads the plot inside the component iframe from the *parent* page, so a replaced iframe,
# a cleared div or a zero-size frame all count as blank.
SAMPLE_JS = """() => {
  const frame = document.querySelector('IFRAME');
  const doc = frame && frame.contentDocument;
  const div = doc && doc.querySelector('.js-plotly-plot');
  const n = div && div._fullData && div._fullData.length ? div._fullData[0].x.length : 0;
  const traces = div ? div.querySelectorAll('.scatterlayer .trace').length : 0;
  const box = (el) => {
    const r = el ? el.getBoundingClientRect() : null;
    return Boolean(r && r.width > 0 && r.height > 0);
  };
  return { frame, div, n, ok: n > 0 && traces > 0 && box(frame) && box(div) };
}""".replace("IFRAME", IFRAME)


def test_payload_keeps_caller_layout_and_adds_uirevision():
    fig = {"data": [{"type": "scatter", "y": [1.5, 2.0]}], "layout": {"font": {"size": 18}}}
    out = _payload(fig, "loss")
    assert out["layout"]["font"] == {"size": 18}
    assert out["layout"]["uirevision"] == "live_chart"
    assert out["config"]["displaylogo"] is False
    assert out["config"]["toImageButtonOptions"]["filename"] == "loss"
    assert _payload({"data": [], "layout": {"uirevision": 7}}, "k")["layout"]["uirevision"] == 7
    assert "uirevision" not in fig["layout"]  # the caller's figure is not modified


def test_payload_of_non_plain_figures_is_plain_json():
    """NaN and numpy values (not what bnviz's charts make, but what a caller may pass) are
    encoded the way Plotly does: NaN → null, arrays → lists."""
    import numpy as np

    fig = {"data": [{"type": "scatter", "y": np.array([1.0, np.nan, 3.0])}], "layout": {}}
    out = _payload(fig, "k")
    assert out["data"][0]["y"] == [1.0, None, 3.0]
    json.dumps(out, allow_nan=False)


def test_a_shared_figure_is_checked_where_it_is_sent_not_where_it_is_built():
    """A shared live figure is not checked when built (that cost grew with the history);
    what is sent is: a NaN that reached a figure (or only its newest points) goes out as
    null, so the browser's JSON.parse never fails on it. The control: the same args sent
    as they are are not JSON."""
    stream = ChartStream()
    stream.push(_payload({"data": [{"type": "scatter", "y": [1.0, 2.0]}]}, "k", plain=True))
    stream.push(_payload({"data": [{"type": "scatter", "y": [1.0, 2.0, math.nan]}]}, "k", True))
    with pytest.raises(ValueError):
        json.dumps(stream.patch(1), allow_nan=False)  # the control: as built, not JSON
    sent = _sendable({"stream": stream.token, "patch": _patch(stream, 1)}, stream)
    assert sent["patch"]["traces"][0][1]["add"]["y"] == [None]
    whole = {"stream": stream.token, "rev": stream.rev, "figure": stream.figure}
    sent = _sendable(whole, stream)
    assert sent["figure"]["data"][0]["y"] == [1.0, 2.0, None]
    assert stream.figure["data"][0]["y"][2] != stream.figure["data"][0]["y"][2]  # untouched
    assert stream.checked != stream.rev  # a figure with NaN is never taken as checked
    clean = ChartStream()
    clean.push(_payload({"data": [{"type": "scatter", "y": [1.0]}]}, "k", plain=True))
    args = {"stream": clean.token, "rev": clean.rev, "figure": clean.figure}
    assert _sendable(args, clean) is args and clean.checked == clean.rev  # once a revision


def test_viewers_at_one_revision_share_one_patch():
    """Followers holding the same revision get the same patch object, made (and checked)
    once per revision; one holding another revision gets its own, and a new revision makes
    new ones. The controls: the other revision's patch differs, and so does the next one."""
    stream = ChartStream()
    for n in (1, 2, 3):
        stream.push(_payload({"data": [{"type": "scatter", "y": [0.5] * n}]}, "k", plain=True))
    first = _patch(stream, 1)
    assert _patch(stream, 1) is first and first["traces"][0][1]["add"]["y"] == [0.5, 0.5]
    assert _patch(stream, 2) is not first and _patch(stream, 2)["from"] == 2
    stream.push(_payload({"data": [{"type": "scatter", "y": [0.5] * 4}]}, "k", plain=True))
    again = _patch(stream, 1)
    assert again is not first and again["rev"] == 4 and len(again["traces"][0][1]["add"]["y"]) == 3
    assert _patch(stream, None) is None  # nothing held: only the whole figure will do


def test_demo_renders_in_apptest():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / DEMO), default_timeout=30).run()
    assert not at.exception
    (chart,) = at.get("component_instance")
    assert chart.proto.component_name == "dashboard.live_chart.live_chart"
    args = json.loads(chart.proto.json_args)["a"]
    assert args["figure"]["layout"]["uirevision"] == "live_chart"
    assert args["figure"]["layout"]["font"] == {"size": 17}

    # New data, same element id: that identity is what keeps the browser's iframe alive.
    # Until the component says it holds a whole figure there is nothing to patch onto: the
    # whole figure again, at its newest.
    n = len(args["figure"]["data"][0]["x"])
    at.run()
    (again,) = at.get("component_instance")
    assert again.proto.id == chart.proto.id
    sent = json.loads(again.proto.json_args)["a"]
    assert sent["rev"] == args["rev"] + 1 and len(sent["figure"]["data"][0]["x"]) == n + 1
    # It holds the first: only the new points cross the wire, from the revision it holds.
    at.session_state["demo_chart"] = {"resync": 0, "have": f"{args['stream']}:{args['rev']}"}
    for run in (2, 3):
        at.run()
        sent = json.loads(at.get("component_instance")[0].proto.json_args)["a"]
        assert "figure" not in sent
        patch = sent["patch"]
        assert patch["from"] == args["rev"] + run - 2 and patch["rev"] == args["rev"] + run
        ((i, trace),) = patch["traces"]
        at_n = n + run - 2
        assert i == 0 and trace["at"] == {"x": at_n, "y": at_n} and len(trace["add"]["y"]) == 2

    # The component asks for the whole figure (a new iframe, a lost message): it gets it.
    at.session_state["demo_chart"] = {"resync": 1, "have": f"{args['stream']}:{args['rev']}"}
    at.run()
    (third,) = at.get("component_instance")
    whole = json.loads(third.proto.json_args)["a"]
    assert len(whole["figure"]["data"][0]["x"]) == n + 4 and whole["rev"] == args["rev"] + 4
    # Until it says it holds that one: patches from the one it held before, which fit whether
    # or not the new one arrived. The control (patches from the new one): a patch that takes
    # the whole figure's place in the browser (two renders in one frame reach the iframe as
    # the last one only) does not fit, and the figure asked for again is replaced again.
    at.run()
    patch = json.loads(at.get("component_instance")[0].proto.json_args)["a"]["patch"]
    assert patch["from"] == args["rev"] and patch["rev"] == args["rev"] + 5


def test_an_unconfirmed_whole_figure_is_sent_again_later_each_time(monkeypatch):
    """Until the browser says it holds the whole figure sent, the server sends it again after
    2 s, then 4 s, 8 s... (patches from the one it held before meanwhile): on a busy server
    (100 followers) a re-send every 2 s kept it busy re-sending. The control: at a fixed 2 s
    the fifth run below is a whole figure too."""
    from types import SimpleNamespace

    from streamlit.testing.v1 import AppTest

    import dashboard.live_chart as lc

    clock = [1000.0]
    monkeypatch.setattr(lc, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    at = AppTest.from_file(str(ROOT / DEMO), default_timeout=30).run()
    first = json.loads(at.get("component_instance")[0].proto.json_args)["a"]
    held = f"{first['stream']}:{first['rev']}"
    at.session_state["demo_chart"] = {"resync": "n:1", "have": held}  # it asks again
    kinds = []
    for dt in (0.0, 1.0, 1.1, 2.1, 2.1, 4.2):  # s since the run before
        clock[0] += dt
        at.run()
        (chart,) = at.get("component_instance")
        kinds.append("whole" if "figure" in json.loads(chart.proto.json_args)["a"] else "patch")
    # t = 0 whole; 1 patch; 2.1 whole (again after 2 s); 4.2 patch (< 4 s); 6.3 whole (4.2 s);
    # 10.5 patch (< 8 s)
    assert kinds == ["whole", "patch", "whole", "patch", "whole", "patch"]
    # Once it holds one, patches; a later whole figure starts again from 2 s.
    args = json.loads(chart.proto.json_args)["a"]
    sent = at.session_state["_live_chart_sent"]["demo_chart"]
    at.session_state["demo_chart"] = {"resync": "n:1", "have": f"{args['stream']}:{sent.whole}"}
    at.run()
    assert at.session_state["_live_chart_sent"]["demo_chart"].whole is None
    assert at.session_state["_live_chart_sent"]["demo_chart"].whole_again == lc.WHOLE_AGAIN_S


@pytest.fixture(scope="module")
def server_url():
    ARTIFACTS.mkdir(exist_ok=True)
    with serve(DEMO, env={"PYTHONPATH": str(ROOT)}) as url:
        yield url


def _assert_never_blank(samples: list[dict]) -> None:
    blank = [s for s in samples if not (s["ok"] and s["same"])]
    assert not blank, f"{len(blank)} blank/remounted samples of {len(samples)}: {blank[:3]}"


@pytest.mark.browser
def test_live_chart_updates_in_place_and_keeps_zoom(server_url):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's `chromium` package (CI does)")
    from playwright.sync_api import sync_playwright

    foreign: list[str] = []
    plotly_loads: list[str] = []

    def on_request(request):
        url = urlparse(request.url)
        if url.scheme in ("http", "https", "ws", "wss") and url.hostname != "127.0.0.1":
            foreign.append(request.url)
        if url.path.endswith("/plotly.min.js"):
            plotly_loads.append(request.url)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})  # a fresh tab
            page.on("request", on_request)
            page.goto(server_url)

            page.wait_for_selector(IFRAME, timeout=30_000)
            page.wait_for_function(f"() => ({SAMPLE_JS})().n >= 2", timeout=30_000)
            page.screenshot(path=ARTIFACTS / "live_chart_initial.png")

            # FLICKER: a 50 ms sampler in the parent page that runs to the end of the test
            # (zooms included); it pins the first iframe and div so any remount is caught.
            page.evaluate(
                """(sample) => {
                  const read = eval(sample), first = read();
                  window.__samples = [];
                  setInterval(() => {
                    const s = read();
                    window.__samples.push({ t: performance.now(), n: s.n, ok: s.ok,
                                            same: s.frame === first.frame && s.div === first.div });
                  }, 50);
                }""",
                SAMPLE_JS,
            )
            # Five seconds of samples: a window measured by the page's own clock.
            page.wait_for_function(
                "() => window.__samples.length > 1 && window.__samples.at(-1).t"
                " - window.__samples[0].t >= 5000",
                timeout=60_000,
            )
            samples = page.evaluate("window.__samples")
            assert len(samples) >= 60, f"sampler starved: {len(samples)} samples"
            _assert_never_blank(samples)
            changes = [b for a, b in itertools.pairwise(samples) if b["n"] != a["n"]]
            seconds = (samples[-1]["t"] - samples[0]["t"]) / 1000
            rate = (samples[-1]["n"] - samples[0]["n"]) / seconds
            print(f"\n{len(samples)} samples, 0 blank, {len(changes)} updates, {rate:.2f}/s")
            # run_every=0.5 is nominally 2/s; half of it is the floor on a loaded machine (the
            # rate itself is a benchmark's figure, benchmarks/live_group.py).
            assert rate >= 1.0, f"only {rate:.2f} updates/s"

            # ZOOM (API): the same relayout a drag ends with; must survive later Plotly.reacts.
            frame = page.locator(IFRAME).element_handle().content_frame()
            plot = "document.querySelector('.js-plotly-plot')"
            state = f"() => [{plot}._fullLayout.xaxis.range, {plot}._fullData[0].x.length]"
            setup = frame.evaluate(
                f"""() => [{plot}._context.toImageButtonOptions.filename,
                          {plot}._context.displaylogo, {plot}._fullLayout.font.size,
                          document.querySelectorAll('{PNG_BUTTON}').length]"""
            )
            assert setup == ["demo_chart", False, 17, 1], setup
            a, b = 1.0, 4.0
            frame.evaluate(f"() => Plotly.relayout({plot}, {{'xaxis.range': [{a}, {b}]}})")
            _, n0 = frame.evaluate(state)
            frame.wait_for_function(f"() => {plot}._fullData[0].x.length >= {n0 + 2}")
            x_range, n1 = frame.evaluate(state)
            assert n1 >= n0 + 2, "no new points arrived while zoomed"
            assert x_range == pytest.approx([a, b]), f"zoom lost: {x_range}"
            page.screenshot(path=ARTIFACTS / "live_chart_zoomed.png")

            # ZOOM (real mouse drag across the middle of the plot area).
            box = frame.locator(".nsewdrag").first.bounding_box()
            y = box["y"] + box["height"] / 2
            page.mouse.move(box["x"] + box["width"] * 0.3, y)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.6, y + 2, steps=8)
            page.mouse.up()
            dragged, n0 = frame.evaluate(state)
            assert dragged[0] > a and dragged[1] < b, f"drag did not zoom: {dragged}"
            frame.wait_for_function(f"() => {plot}._fullData[0].x.length >= {n0 + 2}")
            x_range, n1 = frame.evaluate(state)
            assert n1 >= n0 + 2, "no new points arrived after the drag"
            assert x_range == pytest.approx(dragged), f"drag zoom lost: {x_range}"
            page.screenshot(path=ARTIFACTS / "live_chart_dragged.png")

            loads = len(plotly_loads)  # before the export, which reads plotly.js once more
            # HTML export: the modebar button saves a file that draws the chart offline.
            with page.expect_download() as dl:
                frame.locator(HTML_BUTTON).click()
            saved = ARTIFACTS / "live_chart_export.html"
            dl.value.save_as(saved)
            assert dl.value.suggested_filename == "demo_chart.html"
            assert saved.stat().st_size > 1_000_000  # plotly.js inline: no network needed
            viewer = browser.new_page()
            fetched: list[str] = []
            viewer.on("request", lambda r: fetched.append(r.url))
            viewer.goto(saved.as_uri())
            viewer.wait_for_function(
                "() => document.querySelector('.js-plotly-plot')?._fullData?.[0]?.x?.length > 2"
            )
            viewer.close()
            assert all(u.startswith("file:") for u in fetched), fetched  # fully offline

            everything = page.evaluate("window.__samples")
            _assert_never_blank(everything)
            print(f"{len(everything)} samples over the whole test, 0 blank; zoom kept {x_range}")
            assert not foreign, f"requests left 127.0.0.1 (offline app): {foreign}"
            assert loads == 1, f"plotly.min.js fetched {loads}x while updating"
        finally:
            browser.close()
