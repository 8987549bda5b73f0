"""What every lesson page with a page of its own shares (BN's mechanics): the title line with the
lesson's number, previous/next in the tour's order, the lesson's text and its sources."""

from __future__ import annotations

import html
from typing import Any

import streamlit as st

from bnviz.lessons import LESSONS, Lesson, neighbours

from . import nav, present
from .live_chart import live_chart

CHART_HEIGHT = 360  # px: a chart and its controls fit above the fold at 1280×800


def title(lesson: Lesson) -> None:
    """The title line: the lesson's title · lesson N of M."""
    order = list(LESSONS)
    n = order.index(lesson.slug) + 1
    st.subheader(f"{lesson.title} · lesson {n} of {len(order)}", anchor=False)


def links(row: Any, slug: str) -> None:
    """Previous / Next in the tour's order (the tour before the first lesson) and the
    presentation switch, appended to a row of buttons."""
    prev, nxt = neighbours(slug)
    if prev is not None:
        row.page_link(nav.page(prev.slug), label="Previous", icon=":material/arrow_back:")
    else:
        row.page_link(nav.page("tour"), label="Tour", icon=":material/school:")
    if nxt is not None:
        row.page_link(nav.page(nxt.slug), label="Next", icon=":material/arrow_forward:")
    present.toggle(row, f"present-{slug}")


def header(slug: str) -> Lesson:
    """Title line, then Previous / Next and Present."""
    lesson = LESSONS[slug]
    title(lesson)
    links(st.container(horizontal=True, vertical_alignment="center"), slug)
    return lesson


def text(lesson: Lesson) -> None:
    """The lesson's three sections as small headings, then its sources."""
    st.markdown(lesson.text().replace("## ", "##### "))
    st.caption(f"Sources: {html.escape(lesson.sources())}")


def tabs(names: list[str], key: str) -> list:
    """Tabs whose content is drawn only while open (`tab.open`): a chart drawn in a hidden
    tab was laid out at zero width, and Plotly kept it so (legends over the plot, bar and
    heatmap labels cut to "()"), even after a resize. A click on a tab reruns the page and
    the chart is created visible, at its width. `key`: the open tab's label in the session."""
    return st.tabs(names, key=key, on_change="rerun")


def table(columns: dict[str, list]) -> None:
    """A small table as markdown (large type on a projector, never cut): column → cells."""
    names = list(columns)
    rows = zip(*columns.values(), strict=True)
    lines = [" | ".join(names), " | ".join("---" for _ in names)]
    lines += [" | ".join(_cell(v) for v in row) for row in rows]
    st.markdown("\n".join(f"| {line} |" for line in lines))


def _cell(v: object) -> str:
    text = f"{v:.4g}" if isinstance(v, float) else str(v)
    return html.escape(text).replace("|", "\\|")


def plot(fig: dict, key: str) -> None:
    """A figure that a widget changes, redrawn in place (`live_chart`: Plotly.react in one
    iframe): a slider's redraw took 180–250 ms with st.plotly_chart, which validates the
    figure (35 ms even for a small histogram) and replaces the element; ~80 ms this way."""
    live_chart(fig, key=key, height=int(fig["layout"].get("height", CHART_HEIGHT)))
