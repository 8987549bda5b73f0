"""A Plotly chart that updates in place, for fragments that rerun several times a second.

``st.plotly_chart`` in Streamlit 1.67 swaps its element on every data change, so a chart
refreshed from ``@st.fragment(run_every=...)`` flickers and forgets the user's zoom.

Mechanism: a components-v1 iframe (``declare_component(path=...)``), not components v2.
v2 ships its inline JS inside every delta and can only serve files from an installed
package's manifest ``asset_dir``; v1 serves any folder, so plotly.min.js is fetched once
per iframe from the installed plotly package (offline), and a stable ``key`` keeps the same
iframe/div alive so each rerun is just a ``streamlit:render`` message -> ``Plotly.react``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import plotly
import plotly.io.json as pio_json
import streamlit as st
from streamlit.components import v1 as components
from streamlit.runtime import get_instance

from .chart_stream import ChartStream
from .tick_cache import CACHE

_PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"

# Single page per iframe: plotly.min.js is parsed once; later renders only call Plotly.react
# on the same div (never cleared), coalescing bursts so a slow draw never queues stale frames.
_INDEX_HTML = """<!doctype html>
<html>
<head>
<meta charset="utf-8">
<style>html, body { margin: 0; padding: 0; overflow: hidden; } #chart { width: 100%; }</style>
</head>
<body>
<div id="chart"></div>
<script>
"use strict";
const chart = document.getElementById("chart");
// The figure as the server last sent it, full resolution: {stream, rev, data, layout, config}.
// A full figure replaces it; a patch (dashboard/chart_stream.py) appends the points added
// since its revision. Each message changes the model at once; drawing is coalesced below.
let model = null;
let dirty = false;  // the model (or the zoom) changed since the last draw
let drawing = false;
let drawn = false;  // the first figure is always drawn: a chart is never blank
let visible = true;
let height = 0;

// A redraw costs ~0.1 s of CPU in a software-rendered browser; a chart scrolled out of view
// (or in a hidden tab) keeps its newest figure pending and draws it when it shows again.
new IntersectionObserver((entries) => {
  visible = entries.some((e) => e.isIntersecting);
  if (visible) drain().catch((err) => console.error(err));
}).observe(chart);
document.addEventListener("visibilitychange", () => drain().catch((err) => console.error(err)));
// A chart drawn in a hidden tab was laid out at a width of its own (legends over the plot,
// labels cut); a resize of the window or of the page's column is the same: the next draw, at
// the new width, comes when the width changes (not only when a new figure arrives).
let drawnWidth = -1;
new ResizeObserver(() => {
  const w = chart.clientWidth;
  if (!drawn || w <= 0 || w === drawnWidth) return;
  dirty = true;
  drain().catch((err) => console.error(err));
}).observe(chart);

function shown() {
  return !drawn || (visible && !document.hidden);
}

// For tests and screenshots, which wait on it instead of sleeping: the newest figure is
// drawn, or waits (out of view) for the chart to show.
window.bnvizSettled = () => drawn && !drawing && (!dirty || !shown());

// Loaded async (once per iframe) so the handshake and the frame height go out at once and
// the page doesn't reflow when the 4.8 MB bundle finishes parsing.
const plotlyLoaded = new Promise((resolve, reject) => {
  const script = document.createElement("script");
  script.src = "plotly.min.js";
  script.onload = resolve;
  script.onerror = () => reject(new Error("live_chart: plotly.min.js failed to load"));
  document.head.appendChild(script);
});

// A modebar button that saves the chart as it is now as one HTML file that works offline:
// the figure and this iframe's own copy of plotly.js, inline.
let current = null;  // the figure last drawn
async function saveHtml() {
  if (!current) return;
  const bs = String.fromCharCode(92);  // a backslash (this page is a Python string)
  const end = "<" + "/script";  // never literally in this inline script: it would close it
  const js = (await (await fetch("plotly.min.js")).text())
    .replace(new RegExp(end, "gi"), "<" + bs + "/script");
  const name = (current.config.toImageButtonOptions || {}).filename || "chart";
  const fig = JSON.stringify({ data: current.data, layout: current.layout })
    .replace(new RegExp("<", "g"), bs + "u003c");
  const page = '<!doctype html><html><head><meta charset="utf-8"><title>' + name +
    "</title><script>" + js + end + '></head><body style="margin:0">' +
    '<div id="chart" style="width:100vw;height:100vh"></div><script>' +
    "const fig = " + fig + "; fig.layout.autosize = true; delete fig.layout.height;" +
    'Plotly.newPlot("chart", fig.data, fig.layout, {responsive: true, displaylogo: false});' +
    end + "></body></html>";
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([page], { type: "text/html" }));
  a.download = name + ".html";
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}
const HTML_BUTTON = {
  name: "downloadHtml",
  title: "Download plot as HTML (opens offline)",
  icon: {  // an arrow into a tray
    width: 1000,
    height: 1000,
    path: "M100 850h800v100H100zM450 50h100v520l160-160 70 70-280 280-280-280 70-70 160 160z",
  },
  click: () => saveHtml().catch((err) => console.error("live_chart: HTML export failed", err)),
};

// Streamlit sends its theme with every render: in a dark theme the figure follows it (the
// figures are built light, for PNG export and print). Axis keys are xaxis, xaxis2, yaxis, ...
let theme = null;
const INK = new Set(["#222", "#444", "#888"]);  // the figures' own greys for lines and keys
function themed(fig) {
  if (!theme || theme.base !== "dark") return fig;
  const fg = theme.textColor || "#fff", bg = theme.backgroundColor || "#000";
  const grid = "rgba(255,255,255,0.18)";
  const layout = Object.assign({}, fig.layout, {
    template: "plotly_dark", paper_bgcolor: bg, plot_bgcolor: bg,
    font: Object.assign({}, fig.layout.font, { color: fg }),
  });
  for (const k of Object.keys(layout)) {
    if (/^[xy]axis[0-9]*$/.test(k)) {
      const ax = { gridcolor: grid, zerolinecolor: grid, linecolor: fg };
      layout[k] = Object.assign({}, layout[k], ax);
    }
  }
  const ink = (c) => (typeof c === "string" && INK.has(c) ? fg : c);
  const data = fig.data.map((t) => {
    const u = Object.assign({}, t);
    if (t.line) u.line = Object.assign({}, t.line, { color: ink(t.line.color) });
    if (t.marker) u.marker = Object.assign({}, t.marker, { color: ink(t.marker.color) });
    return u;
  });
  return { data: data, layout: layout };
}

function post(type, extra) {
  window.parent.postMessage(Object.assign({ isStreamlitMessage: true, type: type }, extra), "*");
}

async function drain() {
  if (drawing) return;
  drawing = true;
  try {
    await plotlyLoaded;
    while (dirty && model !== null && shown()) {
      dirty = false;
      const look = themed({ data: model.data, layout: model.layout });
      const config = Object.assign({}, model.config || {});
      config.modeBarButtonsToAdd = [...(config.modeBarButtonsToAdd || []), HTML_BUTTON];
      // Plotly writes the user's zoom and legend clicks into the objects it is given: it
      // gets copies (arrays shared), so the model stays the server's and every draw looks
      // to Plotly like a fresh figure with the same uirevision, whose zoom it keeps. A new
      // datarevision each draw: the model's arrays grow in place.
      const layout = { datarevision: ++draws };
      for (const [k, v] of Object.entries(look.layout)) {
        layout[k] = v && typeof v === "object" && !Array.isArray(v) ? Object.assign({}, v) : v;
      }
      try {
        if (drawn && chart.clientWidth !== drawnWidth) {  // Plotly keeps its old size
          await Plotly.Plots.resize(chart);
        }
        drawnWidth = chart.clientWidth;
        await Plotly.react(chart, lighten(look.data, chart), layout, config);
        current = { data: look.data, layout: look.layout, config: config };  // full resolution
        drawn = true;
      } catch (err) {
        console.error("live_chart: Plotly.react failed", err);
      }
    }
  } finally {
    drawing = false;
  }
}
let draws = 0;

// A zoom (or a reset) redraws: the decimated view is drawn again at the new range.
let ranges = "";
function watchZoom() {
  chart.on("plotly_relayout", (ev) => {
    if (!Object.keys(ev || {}).some((k) => /^xaxis[0-9]*[.](range|autorange)/.test(k))) return;
    const now = JSON.stringify(xRanges(chart));
    if (now === ranges) return;
    ranges = now;
    dirty = true;
    drain().catch((err) => console.error(err));
  });
}

// Drawn traces: those with more points than the plot has pixels, decimated (min/max per
// pixel bucket, at full resolution inside a zoomed range); the others as they are.
function lighten(data, gd) {
  const width = Math.max(200, gd.clientWidth || 600);
  const seen = xRanges(gd);
  ranges = JSON.stringify(seen);
  return data.map((t) => {
    const range = seen[t.xaxis || "x"] || null;
    const keep = decimateTrace(t, range, Math.round(width / 2));
    const u = Object.assign({}, t);
    if (keep === null) return u;
    const n = t.x.length;
    for (const k of Object.keys(t)) {
      if (Array.isArray(t[k]) && t[k].length === n) u[k] = keep.map((i) => t[k][i]);
    }
    return u;
  });
}

// {x: [lo, hi], x2: ...} for each x axis the user zoomed (autorange off), from the plot.
function xRanges(gd) {
  const out = {};
  const full = gd._fullLayout || {};
  for (const k of Object.keys(full)) {
    const m = /^xaxis([0-9]*)$/.exec(k);
    if (m && full[k] && full[k].autorange === false && Array.isArray(full[k].range)) {
      const r = full[k].range.map(Number);
      if (r.every(Number.isFinite)) out["x" + m[1]] = r;
    }
  }
  return out;
}

__DECIMATE_JS__
__PATCH_JS__

// The component's value tells the server what it holds: `have`, the whole figure it got
// last ("stream:rev"; the server sends whole figures until it reads one, since a message
// can be lost: an iframe still loading, two renders in one frame only pass on the last),
// and `resync`, a count raised when a patch does not fit (once a second at most).
// A resync asked within a second of the last is put off to the end of that second, never
// dropped: a new iframe (a chart moved by presentation mode) whose first message is a patch
// must get its whole figure even when no later message comes (the group has ended).
// The count is told with this iframe's own nonce: a new iframe (the same key, remounted)
// counting from 0 again would repeat an old iframe's count, which the server has answered.
let asked = 0, askedAt = -Infinity, have = "", later = null;
const nonce = Math.random().toString(36).slice(2, 10);
function tell() {
  const count = asked === 0 ? 0 : nonce + ":" + asked;
  post("streamlit:setComponentValue", { value: { resync: count, have: have }, dataType: "json" });
}
function resync() {
  const wait = askedAt + 1000 - performance.now();
  if (wait > 0) {
    if (later === null) later = setTimeout(() => { later = null; resync(); }, wait);
    return;
  }
  askedAt = performance.now();
  asked++;
  tell();
}

function receive(args) {
  if (args.figure) {
    const f = args.figure;
    model = { stream: args.stream, rev: args.rev, data: f.data || [], layout: f.layout || {},
              config: f.config || {} };
    dirty = true;
    have = args.stream + ":" + args.rev;
    tell();
  } else if (args.patch) {
    const p = args.patch;
    // A patch from an older revision than the model's applies as well (its arrays are set
    // to their length then, and appended to): the server sends them so, so that a skipped
    // message is no loss.
    const ours = model && model.stream === args.stream;
    if (ours && p.rev <= model.rev) return;  // had it
    if (ours && p.from <= model.rev && applyPatch(model, p)) {
      model.rev = p.rev;
      dirty = true;
    } else {
      resync();
    }
  }
}

window.addEventListener("message", (event) => {
  const msg = event.data;
  if (!msg || msg.type !== "streamlit:render") return;
  // A new theme redraws even when the figure did not change (themed() recolours it).
  if (msg.theme && JSON.stringify(msg.theme) !== JSON.stringify(theme)) dirty = true;
  theme = msg.theme || theme;
  const args = msg.args;
  receive(args.a || {});
  if (args.height !== height) {
    height = args.height;
    chart.style.height = height + "px";
    post("streamlit:setFrameHeight", { height: height });
  }
  drain().catch((err) => console.error(err));
});
plotlyLoaded.then(() => {
  // plotly's event hooks exist once the div is a plot
  const hook = () => (chart.on ? watchZoom() : setTimeout(hook, 100));
  hook();
});
post("streamlit:componentReady", { apiVersion: 1 });
</script>
</body>
</html>
"""

# Pure functions of the page, kept apart so tests run them in Node on figures from Python.
_DECIMATE_JS = """
// Which points of a trace to draw: null (all), or indices such that each of `buckets` equal
// slices of the x range keeps its first, lowest, highest and last point (and a gap, a null
// y, where it has one). `range` [lo, hi]: the zoomed x range, drawn at `buckets` buckets;
// outside it an eighth as many, so the curve still reaches the data's ends.
const DECIMATE_OVER = 2000;
function decimateTrace(t, range, buckets) {
  const x = t.x, y = t.y;
  if (!Array.isArray(x) || !Array.isArray(y) || x.length !== y.length) return null;
  if (x.length <= Math.max(DECIMATE_OVER, 4 * buckets)) return null;
  if (t.fill && t.fill !== "none") return null;  // an outline drawn back along itself
  if (t.type && t.type !== "scatter" && t.type !== "scattergl") return null;
  for (let i = 1; i < x.length; i++) {
    if (!(x[i] >= x[i - 1])) return null;  // only x that never goes back (and is numeric)
  }
  const n = x.length;
  const lo = range ? range[0] : x[0], hi = range ? range[1] : x[n - 1];
  let a = 0;
  while (a < n && x[a] < lo) a++;
  let b = a;
  while (b < n && x[b] <= hi) b++;
  // one point on each side of the range, so the lines run to its edges
  const a1 = Math.max(0, a - 1), b1 = Math.min(n, b + 1);
  const out = [];
  const side = Math.max(1, Math.round(buckets / 8));
  minMax(x, y, 0, a1, side, out);
  minMax(x, y, a1, b1, buckets, out);
  minMax(x, y, b1, n, side, out);
  return out;
}
function minMax(x, y, a, b, buckets, out) {
  if (b <= a) return;
  const x0 = x[a], w = (x[b - 1] - x0) / buckets || 1;
  let cur = -1, first = 0, last = 0, lo = -1, hi = -1, gap = -1;
  const flush = () => {
    if (cur < 0) return;
    const pts = [first, lo, hi, gap, last].filter((i) => i >= 0).sort((p, q) => p - q);
    for (let k = 0; k < pts.length; k++) if (k === 0 || pts[k] !== pts[k - 1]) out.push(pts[k]);
  };
  for (let i = a; i < b; i++) {
    const k = Math.min(buckets - 1, Math.floor((x[i] - x0) / w));
    if (k !== cur) {
      flush();
      cur = k; first = i; lo = -1; hi = -1; gap = -1;
    }
    last = i;
    const v = y[i];
    if (v === null || v === undefined) {
      if (gap < 0) gap = i;
    } else {
      if (lo < 0 || v < y[lo]) lo = i;
      if (hi < 0 || v > y[hi]) hi = i;
    }
  }
  flush();
}
"""

_PATCH_JS = """
// A patch of dashboard/chart_stream.py onto a model {data, layout}: a trace replaced
// (full), keys set, points appended to arrays (at: their length before). False (the model
// untouched) when it does not fit: a trace missing, an array shorter than the patch expects.
function applyPatch(model, p) {
  for (const [i, t] of p.traces) {
    if (t.full) continue;
    const trace = model.data[i];
    if (!trace) return false;
    for (const k of Object.keys(t.at || {})) {
      const have = trace[k], n = t.at[k], add = t.add[k];
      if (!Array.isArray(have) || !Array.isArray(add)) return false;
      const rows = have.length > 0 && Array.isArray(have[0]);
      if (rows) {
        if (add.length !== have.length || have.some((r) => r.length < n)) return false;
      } else if (have.length < n) {
        return false;
      }
    }
  }
  for (const [i, t] of p.traces) {
    if (t.full) {
      model.data[i] = t.full;
      continue;
    }
    const trace = model.data[i];
    Object.assign(trace, t.set || {});
    for (const k of Object.keys(t.at || {})) {
      const have = trace[k], n = t.at[k], add = t.add[k];
      const rows = have.length > 0 && Array.isArray(have[0]) ? have : [have];
      const adds = rows === have ? add : [add];
      rows.forEach((row, j) => {
        row.length = n;
        for (const v of adds[j]) row.push(v);
      });
    }
  }
  if (p.layout) model.layout = p.replace ? p.layout : Object.assign({}, model.layout, p.layout);
  return true;
}
"""
_INDEX_HTML = _INDEX_HTML.replace("__DECIMATE_JS__", _DECIMATE_JS).replace(
    "__PATCH_JS__", _PATCH_JS
)


@cache
def _component_dir() -> str:
    """Build (once per process) the folder Streamlit serves: index.html + plotly.min.js.

    The folder name hashes the page and the plotly version, so edits or upgrades never reuse
    a stale folder; plotly.min.js is hard-linked or copied because Streamlit refuses to serve
    symlinks that point outside the component folder.
    """
    tag = hashlib.sha256(f"{_INDEX_HTML}{plotly.__version__}".encode()).hexdigest()[:12]
    for base in (os.environ.get("XDG_CACHE_HOME") or "~/.cache", tempfile.gettempdir()):
        folder = Path(base).expanduser() / "bnviz" / f"live_chart-{tag}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _install(folder / "plotly.min.js", lambda tmp: _link_or_copy(_PLOTLY_JS, tmp))
            _install(folder / "index.html", lambda tmp: tmp.write_text(_INDEX_HTML, "utf-8"))
            return str(folder)
        except OSError:
            continue  # read-only home (containers): fall back to the temp dir
    raise OSError("live_chart: no writable cache folder for the component files")


def _install(target: Path, write) -> None:
    # Write-then-rename so a concurrent server/test process never serves a half-written file.
    if target.exists() and (target.name != "plotly.min.js" or _same_size(target, _PLOTLY_JS)):
        return
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    write(tmp)
    os.replace(tmp, target)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _same_size(a: Path, b: Path) -> bool:
    return a.stat().st_size == b.stat().st_size


def _payload(figure: Any, key: str, plain: bool = False) -> dict:
    """Figure -> plain-JSON dict. bnviz's figures are already plain (lists of finite floats,
    None for gaps): one C-speed check, no copy. Anything else (numpy arrays, NaN, dates) goes
    through plotly's encoder, ~10× slower, which a fragment rerun pays per chart.

    `plain`: the caller vouches for lists and numbers (a shared live figure, built from the
    records, whose values are finite or None: `probes.record_values`): no check here, whose
    cost grew with the history (740 ms for 200 000 points a trace, once per tick); what is
    sent is checked instead (`_sendable`), a patch's new points or a whole figure once."""
    if plain:
        fig = dict(figure)
    else:
        try:
            json.dumps(figure, allow_nan=False)
            fig = dict(figure)
        except (TypeError, ValueError):
            fig = json.loads(pio_json.to_json_plotly(figure))
    layout = dict(fig.get("layout", {}))  # the caller's figure stays untouched
    # A constant uirevision is what makes Plotly.react keep the user's zoom/pan/legend state.
    layout.setdefault("uirevision", "live_chart")
    config = {
        "displaylogo": False,
        "responsive": True,
        "toImageButtonOptions": {"format": "png", "filename": key, "scale": 2},
        **fig.get("config", {}),
    }
    return {"data": fig.get("data", []), "layout": layout, "config": config}


def live_chart(
    figure: dict | Callable[[], dict],
    *,
    key: str,
    height: int = 360,
    share: tuple[Hashable, Hashable] | None = None,
) -> None:
    """Render a Plotly figure (a plain dict {"data": [...], "layout": {...}}) that updates
    in place: the browser gets the whole figure once, then only what changed (the points
    added since it last drew, `chart_stream`), and draws long traces decimated.

    ``key`` must be stable across reruns: it pins the iframe (so the plot div survives) and
    names the PNG the modebar downloads. ``layout.font`` and any ``layout.uirevision`` the
    caller sets are kept; an optional ``figure["config"]`` overrides the default config.
    ``share`` = (what the chart shows, its data's version): every session drawing the same
    `key` and `what` shares one figure, built (``figure`` is then a function) once per
    version (`tick_cache`). Without it the session keeps its own previous figure to diff.
    """
    if share is not None:
        what, version = share
        build = figure if callable(figure) else lambda: figure
        stream = CACHE.stream((key, what), version, lambda: _payload(build(), key, plain=True))
    else:
        streams = st.session_state.setdefault("_live_chart_streams", {})
        stream = streams.get(key) or streams.setdefault(key, ChartStream())
        stream.push(_payload(figure() if callable(figure) else figure, key))
    sent = st.session_state.setdefault("_live_chart_sent", {})
    told = st.session_state.get(key) or {}  # the component's value: what it holds
    # The revision of the last whole figure of this stream the iframe got (None: none). A
    # patch from it fits whatever the iframe holds since: patches from an older revision
    # than the browser's apply as well.
    tok, _, got = str(told.get("have", "")).rpartition(":")
    base = int(got) if tok == stream.token and got.isdigit() else None
    s = sent.get(key)
    state = stream.state()
    asked = told.get("resync") or 0
    if s is None or s.token != stream.token or s.asked != asked:
        s = sent[key] = _Sent(stream.token, state.rev, asked, stream, state.rev, 0.0)
    elif s.whole is not None and base is not None and base >= s.whole:
        s.whole, s.before = None, base  # it holds a whole figure of ours: patches now
        s.whole_again = WHOLE_AGAIN_S
    whole = {"stream": stream.token, "rev": state.rev, "figure": state.figure}
    if s.whole is not None:  # not known to hold the whole figure sent
        # Until it is: patches from the whole figure it held before, which fit whether or not
        # the new one arrived. Never from the new one: a message can take the place of the
        # one before it (two renders in one frame reach the iframe as the last one only),
        # and a patch that took the whole figure's place would not fit; the iframe would ask
        # again, and the whole figure sent again be replaced again by the next patch.
        waited = time.monotonic() - s.whole_at
        patch = _patch(stream, base) if base is not None and waited < s.whole_again else None
        if patch is None:  # the whole figure (again: the last one may not have arrived)
            args = whole
            if base is not None or s.whole_at == 0:  # not each run: see WHOLE_AGAIN_S
                if s.whole_at > 0:  # a second time: the next after twice as long
                    s.whole_again = min(WHOLE_AGAIN_MAX_S, 2 * s.whole_again)
                s.whole_at = time.monotonic()
            # With nothing to patch onto (a new iframe, a new stream) it is sent each run,
            # at its newest, until the browser says it holds one: any of them, since
            # `s.whole` stays the first (a browser slower than the tick gets patches too).
        else:  # what was added since the whole figure it held
            args = {"stream": stream.token, "patch": patch}
    elif state.rev == s.rev:  # nothing new: an empty patch
        args = {"stream": stream.token, "patch": {"rev": s.rev, "from": s.rev, "traces": []}}
    else:
        # From the revision before the last one sent: a patch also covers the message
        # before it, which the browser may have skipped (two renders in one frame).
        patch = _patch(stream, s.before if s.before is not None else s.rev)
        if patch is None:  # too far behind: the whole figure, until the browser has it
            args = whole
            s.whole, s.whole_at = state.rev, time.monotonic()
        else:
            args = {"stream": stream.token, "patch": patch}
            s.before = s.rev
    s.rev = args["patch"]["rev"] if "patch" in args else state.rev
    _component()(a=_sendable(args, stream), height=int(height), key=key, default=None)


def _patch(stream: ChartStream, have: int | None) -> dict | None:
    """`stream.patch(have)` as JSON a browser parses (`_json_safe`), made once per revision
    and `have` for every viewer (most followers hold the same revision: one patch for all)."""
    return stream.shared(
        ("patch", have), lambda s: None if s is None else _json_safe(stream.patch(have, s))
    )


def _json_safe(value: dict | None) -> dict | None:
    """`value` as JSON a browser parses: NaN and ±inf are not JSON (Streamlit would write
    them as they are, and the chart would never draw again): null instead."""
    if value is None:
        return None
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return json.loads(pio_json.to_json_plotly(value))
    return value


def _sendable(args: dict, stream: ChartStream) -> dict:
    """`args` as JSON a browser parses (`_json_safe`): a whole figure checked once per
    revision; a patch is (`_patch`)."""
    if "figure" not in args or stream.checked == args["rev"]:
        return args
    figure = _json_safe(args["figure"])
    if figure is args["figure"]:  # clean: not checked again (one with NaN is, each time)
        stream.checked = args["rev"]
        return args
    return {**args, "figure": figure}


# Until the browser says it holds the whole figure sent, one is sent again after 2 s, then
# after twice as long each time up to this (seconds); meanwhile patches from the one it held
# before (the new one may have been lost, or still be on its way). On a busy server a
# follower's confirmation takes longer than 2 s: re-sending every 2 s there (100 followers:
# ~100 KB a figure, four figures each) kept it busy re-sending. A lost figure is also asked
# for again by the component itself (a patch it cannot apply: a resync), within a second.
WHOLE_AGAIN_S = 2.0
WHOLE_AGAIN_MAX_S = 30.0


@dataclass
class _Sent:
    """What a session's chart was sent (its iframe holds it unless a message was lost)."""

    token: str  # the stream
    rev: int  # the revision last sent
    asked: Any  # the component's resync count this answers
    stream: ChartStream
    whole: int | None  # the revision of the last whole figure sent, until the browser has one
    whole_at: float  # when it was sent (time.monotonic)
    before: int | None = None  # the revision sent before `rev` (patches start there)
    whole_again: float = WHOLE_AGAIN_S  # s before an unconfirmed whole figure is sent again


_declared: tuple[object, Any] | None = None  # (the runtime's component registry, component)


def _component() -> Any:
    """The component, declared once per runtime: declaring inspects the caller's module
    (file system calls, ~1.5 ms), which four charts paid twice a second per viewer. A new
    runtime (a fresh one per AppTest) gets it registered again."""
    global _declared
    try:
        registry = get_instance().component_registry
    except RuntimeError:  # no runtime (a bare script): nothing to register with
        registry = None
    if _declared is None or _declared[0] is not registry:
        _declared = (registry, components.declare_component("live_chart", path=_component_dir()))
    return _declared[1]


def drawn_figure(session_state: Any, key: str) -> dict | None:
    """The figure the session's live chart `key` holds after its last run (None: not drawn):
    what tests read, since after the first run the element carries only patches."""
    sent = session_state.get("_live_chart_sent", {})
    have = sent.get(key)
    return have.stream.figure if have else None
