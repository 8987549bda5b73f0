"""The page list (`st.navigation`): the lab (Train, Runs, Layers). Pages link to each other
through `page(...)`."""

from __future__ import annotations

import streamlit as st
from streamlit.navigation.page import StreamlitPage

LAB = {  # url path → (file, title, icon)
    "": ("views/train.py", "Train", "🧪"),
    "runs": ("views/runs.py", "Runs", "🗂️"),
    "layers": ("views/layers.py", "Layers", "🔬"),
}


def page(name: str) -> StreamlitPage:
    """A page by URL path: "" (Train), "runs" or "layers"."""
    path, title, icon = LAB[name]
    return st.Page(path, title=title, icon=icon, url_path=name or None, default=name == "")


def navigation() -> StreamlitPage:
    """The page list, grouped; returns the page to run."""
    return st.navigation({"Lab": [page(k) for k in LAB]})
