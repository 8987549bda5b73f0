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
from functools import cache
from pathlib import Path
from typing import Any

import plotly
import plotly.io.json as pio_json
from streamlit.components import v1 as components

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
let latest = null;  // newest args not yet drawn; older ones are dropped
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

function shown() {
  return !drawn || (visible && !document.hidden);
}

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
    while (latest !== null && shown()) {
      const fig = latest.figure;
      latest = null;
      const look = themed({ data: fig.data || [], layout: fig.layout || {} });
      const config = Object.assign({}, fig.config || {});
      config.modeBarButtonsToAdd = [...(config.modeBarButtonsToAdd || []), HTML_BUTTON];
      try {
        await Plotly.react(chart, look.data, look.layout, config);
        current = { data: look.data, layout: look.layout, config: config };
        drawn = true;
      } catch (err) {
        console.error("live_chart: Plotly.react failed", err);
      }
    }
  } finally {
    drawing = false;
  }
}

window.addEventListener("message", (event) => {
  const msg = event.data;
  if (!msg || msg.type !== "streamlit:render") return;
  theme = msg.theme || theme;
  latest = msg.args;
  if (latest.height !== height) {
    height = latest.height;
    chart.style.height = height + "px";
    post("streamlit:setFrameHeight", { height: height });
  }
  drain().catch((err) => console.error(err));
});
post("streamlit:componentReady", { apiVersion: 1 });
</script>
</body>
</html>
"""


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


def _payload(figure: Any, key: str) -> dict:
    """Figure -> plain-JSON dict. bnviz's figures are already plain (lists of finite floats,
    None for gaps): one C-speed check, no copy. Anything else (numpy arrays, NaN, dates) goes
    through plotly's encoder, ~10× slower, which a fragment rerun pays per chart."""
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


def live_chart(figure: dict, *, key: str, height: int = 360) -> None:
    """Render a Plotly figure (a plain dict {"data": [...], "layout": {...}}) that updates
    in place via Plotly.react.

    ``key`` must be stable across reruns: it pins the iframe (so the plot div survives) and
    names the PNG the modebar downloads. ``layout.font`` and any ``layout.uirevision`` the
    caller sets are kept; an optional ``figure["config"]`` overrides the default config.
    """
    # Declared per call (cheap, idempotent) so it is registered with whichever runtime is
    # running the script, e.g. a fresh one per AppTest, not only the one that imported us.
    component = components.declare_component("live_chart", path=_component_dir())
    component(figure=_payload(figure, key), height=int(height), key=key, default=None)
