"""The page list: the lab (Train, Runs, Layers) and the lessons (the tour, then one page per
lesson of `bnviz.lessons.LESSONS`). Pages link to each other through `page(...)`.

The lessons without a page of their own share one body, dashboard.lesson_view.render, which
links back here: app.py passes it to `navigation` so that this module imports no page."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from bnviz.lessons import LESSONS, Lesson

LAB = {  # url path → (file, title, icon)
    "": ("views/train.py", "Train", ":material/science:"),
    "runs": ("views/runs.py", "Runs", ":material/history:"),
    "layers": ("views/layers.py", "Layers", ":material/stacked_bar_chart:"),
}
TOUR = ("tour", "views/tour.py", "Tour: the lectures' claims", ":material/school:")


def _lesson_page(slug: str, body: Callable[[Lesson], None] | None = None) -> StreamlitPage:
    """A lesson's page. Streamlit knows a page by its URL path alone (its script hash), so a
    link's target needs no body; the one `navigation` runs gets it."""
    lesson = LESSONS[slug]
    if lesson.page:  # a lesson with a page of its own
        return st.Page(
            f"views/{lesson.page}.py",
            title=lesson.title,
            url_path=slug,
            icon=":material/play_lesson:",
        )

    def render() -> None:
        if body is not None:
            body(LESSONS[slug])

    return st.Page(render, title=LESSONS[slug].title, url_path=slug, icon=":material/play_lesson:")


def page(name: str) -> StreamlitPage:
    """A page by URL path: "" (Train), "runs", "layers", "tour" or a lesson's slug."""
    if name in LAB:
        path, title, icon = LAB[name]
        return st.Page(path, title=title, icon=icon, url_path=name or None, default=name == "")
    if name == TOUR[0]:
        return st.Page(TOUR[1], title=TOUR[2], icon=TOUR[3], url_path=TOUR[0])
    return _lesson_page(name)


def url_paths() -> list[str]:
    """Every page's URL path ("" for Train)."""
    return [*LAB, TOUR[0], *LESSONS]


def navigation(lesson_body: Callable[[Lesson], None]) -> StreamlitPage:
    """The page list, grouped; returns the page to run. lesson_body(lesson) draws the lessons
    that have no page file (dashboard.lesson_view.render)."""
    # On top, not in the sidebar: lesson pages then use the whole width of a projector, and
    # the sidebar holds only the Train page's configuration.
    return st.navigation(
        {
            "Lab": [page(k) for k in LAB],
            "Lessons": [page(TOUR[0]), *(_lesson_page(s, lesson_body) for s in LESSONS)],
        },
        position="top",
    )
