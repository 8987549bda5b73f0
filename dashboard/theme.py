"""The theme a viewer picks (the menu's Light / Dark) survives a reload on any page.

Streamlit keeps that choice in the browser's localStorage under a key made of the URL path the
tab first loaded (`stActiveTheme-/<path>-v2`): a reload on another lesson's page found no choice
and fell back to light. A hidden same-origin component copies the choice to every page's key
whenever it changes (a `storage` event reaches every other document of the origin, this
iframe among them), and on each load fills in pages added since.
"""

from __future__ import annotations

import json

import streamlit as st

_JS = """<script>
const store = window.parent.localStorage;
const PAGES = __PAGES__;  // every page's URL path, "" for the default page
const HERE = __HERE__;  // the page shown now
const KEY = /^stActiveTheme-(.*)-v2$/;
// The app's base path (server.baseUrlPath): the URL path less the shown page's own part.
const path = window.parent.location.pathname;
const base = (HERE && path.endsWith("/" + HERE) ? path.slice(0, -HERE.length) : path)
  .replace(/\\/?$/, "/");
function spread(value) {
  for (const p of PAGES) {
    for (const k of ["stActiveTheme-" + base + p + "-v2", "stActiveTheme-" + base + p + "/-v2"]) {
      if (value === null) store.removeItem(k);
      else if (store.getItem(k) !== value) store.setItem(k, value);
    }
  }
}
window.addEventListener("storage", (e) => {
  if (!e.key || !KEY.test(e.key) || e.key === "bnviz-theme") return;
  if (e.newValue === null) store.removeItem("bnviz-theme");
  else store.setItem("bnviz-theme", e.newValue);
  spread(e.newValue);
});
const chosen = store.getItem("bnviz-theme");
if (chosen !== null) spread(chosen);
</script>"""

_CSS = "<style>.st-key-bnviz-theme-sync { display: none !important; }</style>"


def keep(pages: list[str], here: str) -> None:
    """Every run, on every page: the hidden theme keeper (`pages`: every page's URL path)."""
    st.html(_CSS)
    with st.container(key="bnviz-theme-sync"):
        js = _JS.replace("__PAGES__", json.dumps(pages)).replace("__HERE__", json.dumps(here))
        st.iframe(js, height=1)
