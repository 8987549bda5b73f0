"""Presentation mode: one click (or `present=1` in a link) hides the configuration sidebar and
the page chrome, so a projector shows the status, the curves and the key chart above the fold.

The flag lives in the tab's session state and in the URL. Streamlit has no setting that hides
its header or sidebar from Python, so this is the one place with CSS of our own.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

KEY = "present"

# Hidden while presenting: the header (page list, menu), the sidebar and its toggle. The main
# block starts near the top edge: every pixel counts at 768.
_CSS = """<style>
header[data-testid="stHeader"], section[data-testid="stSidebar"],
[data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
[data-testid="stToolbar"], [data-testid="stDecoration"] { display: none !important; }
[data-testid="stMainBlockContainer"] { padding-top: 0.75rem !important;
  padding-bottom: 1rem !important; max-width: 100% !important;
  padding-left: 1.5rem !important; padding-right: 1.5rem !important; }
</style>"""


def is_on() -> bool:
    return bool(st.session_state.get(KEY, False))


def from_url(value: str | None) -> None:
    """On a tab's first run: `present=1` (or true/yes/on) in the link turns it on."""
    st.session_state[KEY] = str(value).strip().lower() in ("1", "true", "yes", "on")


def query() -> dict[str, str]:
    """The flag as URL parameters (nothing when off)."""
    return {KEY: "1"} if is_on() else {}


def toggle(container: Any, key: str) -> None:
    """The one-click switch, labelled for what it does now (`key`: unique on the page). A
    click reruns the whole app (also from inside a fragment): the layout changes with it."""
    if container.button(
        "Exit presentation" if is_on() else "Present",
        key=key,
        icon=":material/fullscreen_exit:" if is_on() else ":material/slideshow:",
        help="Hide (or show again) the page list and the configuration: the room sees the "
        "status, the curves and the key chart without scrolling. A link with present=1 "
        "opens in this mode.",
    ):
        st.session_state[KEY] = not is_on()
        # Straight into the URL: the lesson pages keep the lab's config out of their URL
        # (they never call state.sync_url), yet a copied link should keep this mode.
        if is_on():
            st.query_params[KEY] = "1"
        else:
            st.query_params.pop(KEY, None)
        st.rerun(scope="app")


def leave() -> None:
    """Presenting off (before a switch to the lab, whose configuration is in the sidebar)."""
    st.session_state[KEY] = False
    st.query_params.pop(KEY, None)


def apply() -> None:
    """Every run, before the page: the CSS while presenting, and `present=1` in the URL —
    a page link (Next, Previous) clears the URL's parameters, and a reload then lost the mode."""
    if is_on():
        st.html(_CSS)
        if st.query_params.get(KEY) != "1":
            st.query_params[KEY] = "1"
