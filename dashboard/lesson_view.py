"""The body of every lesson page: text, Run this experiment, live charts, what the records show.

A lesson is data (`bnviz.lessons.Lesson`): this module only draws it. Its group trains in the
server's shared worker like a Train-page group; the page remembers the group it started (per
tab) and otherwise shows the latest group this server trained for the lesson, read-only.
"""

from __future__ import annotations

import html

import streamlit as st

from bnviz import charts
from bnviz.checks import Check
from bnviz.config import RunConfig, from_dict
from bnviz.jobs import GroupJob, RunState
from bnviz.lessons import Lesson
from bnviz.records import layer_series, sweep_axes, sweep_points

from . import config_form, lesson_page, live, nav, present, state
from .live_chart import live_chart
from .tick_cache import CACHE

CHART_HEIGHT = 330  # px: two charts and the status line fit above the fold at 1280×800


def group_name(lesson: Lesson) -> str:
    return f"Lesson: {lesson.title}"


def _group(lesson: Lesson) -> tuple[GroupJob | None, bool]:
    """The group this page shows — the one this tab started, else the server's latest for the
    lesson (followed read-only) — and whether this tab owns it: only the owner can stop it
    (`JobManager.owns`, as on the Train and Runs pages)."""
    manager = state.manager()
    started = st.session_state.get(f"lesson-{lesson.slug}")
    job = manager.get(started) if started else None
    if job is None:
        latest = [g for g in manager.groups() if g.name == group_name(lesson)]
        job = max(latest, key=lambda g: g.created) if latest else None
    return job, job is not None and manager.owns(job.id, state.owner())


def render(lesson: Lesson) -> None:
    """The whole lesson page."""
    lesson_page.title(lesson)
    _buttons(lesson)
    if present.is_on():  # the charts take the width; the text waits below them
        _live(lesson, columns=2)
        with st.expander("The lesson's text"):
            st.markdown(lesson.text().replace("## ", "##### "))
        return
    left, right = st.columns([2, 3], gap="large")
    with left:
        # The text's sections ("## The claim", …) as small headings: the title is the page's.
        st.markdown(lesson.text().replace("## ", "##### "))
        st.caption(f"Sources: {html.escape(lesson.sources())}")
        with st.expander("The runs of this lesson"):
            st.markdown(lesson.runs.description)
            st.code(f"python -m bnviz train --preset {lesson.preset}", language="bash")
    with right:
        _live(lesson)


def _buttons(lesson: Lesson) -> None:
    manager = state.manager()
    job, mine = _group(lesson)
    # One row of buttons at their natural widths: no label is ever cut.
    row = st.container(horizontal=True, vertical_alignment="center")
    run = row.button("Run this experiment", type="primary", key=f"run-{lesson.slug}")
    can_stop = bool(mine and job is not None and job.active)
    stop = row.button("Stop", disabled=not can_stop, key=f"stop-{lesson.slug}")
    lab = row.button(
        "Open in the lab",
        key=f"lab-{lesson.slug}",
        help="The Train page with this lesson's runs loaded, to change a field and train again",
    )
    lesson_page.links(row, lesson.slug)
    if job is not None and job.active and not mine:
        st.caption(
            "Started elsewhere; you are following it (only its owner can stop it). "
            "Run this experiment trains your own copy."
        )
    if run:
        gid = manager.submit(lesson.runs.configs(), name=group_name(lesson), owner=state.owner())
        st.session_state[f"lesson-{lesson.slug}"] = gid
        manager.get(gid).first_rows.wait(timeout=1.0)  # type: ignore[union-attr]
    elif stop and can_stop:
        manager.stop(job.id, by=state.owner())  # type: ignore[union-attr]
    if lab:
        config_form.load_grid(from_dict(lesson.runs.base), lesson.runs.vary)
        st.switch_page(nav.page(""))


def _live(lesson: Lesson, columns: int = 1) -> None:
    job, _ = _group(lesson)
    active = job is not None and job.active
    manager = state.manager()
    # Until the warm worker is up (a fresh server on a busy laptop: seconds), say so and poll.
    warming = not active and manager.warm_enabled and not manager.warm_ready()

    @st.fragment(run_every=live.REFRESH_S if active else 1.0 if warming else None)
    def view() -> None:
        job, _ = _group(lesson)
        runs, labels, version = live.group_view(job)  # one snapshot a tick for all viewers
        position = manager.position(job.id) if job else None
        ready = manager.warm_ready() or not manager.warm_enabled
        if job is None:
            st.info(
                "Press **Run this experiment**: its runs train here, live, side by side."
                + (
                    ""
                    if ready
                    else " The training worker is starting: the first points take a few seconds."
                )
            )
        else:
            # A sweep chart names its runs: the status line may count them. Elsewhere (e.g.
            # eight runs of no_norm) it is the only key to the curves' colours: name each.
            many = 4 if "sweep" in lesson.charts else len(runs)
            live.status_block(job, runs, labels, position, compact=True, count_over=many)
        cols = st.columns(columns) if columns > 1 else [st.container()]
        for i, name in enumerate(lesson.charts):
            tall = name == "bands" and len(runs) > 2 and columns == 1
            key = f"lesson-{lesson.slug}-{name}"
            if version is None:
                fig = figure(name, runs, labels, lesson)
            else:  # built once per tick for every viewer of the group
                fig = CACHE.value(
                    (key, version[0]), version[1], lambda n=name: figure(n, runs, labels, lesson)
                )
            # A chart that sizes itself (heatmaps: a panel per run) gets at least its height.
            own = fig.get("layout", {}).get("height") or 0
            with cols[i % len(cols)]:
                live_chart(
                    fig,
                    key=key,
                    height=max(CHART_HEIGHT + (120 if tall else 0), own),
                    share=None if version is None else ((version[0],), version[1]),
                )
        if job is not None:
            show_check(lesson, job, runs)
        if job is not None and job.active != active:
            st.rerun()  # the group started or ended: turn the timer on or off
        if warming and ready:
            st.rerun()  # once: the worker is up, stop polling

    view()


def figure(name: str, runs: list[RunState], labels: list[str], lesson: Lesson) -> dict:
    """One of `lessons.CHARTS` for the runs as they are now (empty axes before any run)."""
    histories = [r.history for r in runs]
    statuses = [r.status for r in runs]
    if name in ("acc", "loss"):
        # No legend: the status line right above names every run in its colour.
        return charts.without_legend(charts.curves(labels, histories, name, statuses))
    if name == "sweep":
        configs = [r.config for r in runs] or lesson.runs.configs()
        axes = sweep_axes(configs)
        field, by = axes if axes else ("norm", None)
        return charts.sweep(sweep_points(configs, histories, statuses, field, by), field, by)
    if name == "gap":
        return charts.gap(labels, histories)
    depth = len((runs[0].config if runs else RunConfig()).hidden)
    if name == "bands":
        # What the last hidden layer's norm puts out: with placement=before that is the
        # activation's input, with placement=after its own probe point (norm_out).
        series = [
            layer_series(r.layers, "norm_out" if r.config.placement == "after" else "act_in", depth)
            for r in runs
        ]
        after = any(r.config.placement == "after" for r in runs)
        title = (
            f"Layer {depth}: the norm's output over training"
            if after
            else f"Layer {depth}: {charts.POINT_NAMES['act_in']} over training"
        )
        return charts.percentile_bands(labels, series, title, cols=2)
    if name == "saturation":
        return live.detail_figure("saturation / dead units", runs, labels, "act_out", depth, depth)
    if name in live.MEASURE_VIEWS:  # the measures' views: records kinds of config.measures
        return live.MEASURE_VIEWS[name][1](runs, labels, depth)
    raise KeyError(name)


def show_check(lesson: Lesson, job: GroupJob, runs: list[RunState]) -> None:
    """ "What the records show": the lesson's check over this group's records, once it ended."""
    st.subheader("What the records show", anchor=False)
    if job.active:
        st.caption("The check is computed from the records when every run has ended.")
        return
    result: Check = lesson.check(runs)
    if result.passed is None:
        st.warning(result.summary)
    elif result.passed:
        st.success(f"**The claim holds in this run.** {result.summary}")
    else:
        # A finding, not a fault of the app: amber, not the red of an error.
        st.warning(f"**The claim does not hold in this run.** {result.summary}")
    if result.figures:
        rows = "\n".join(f"| {_cell(a)} | {_cell(b)} |" for a, b in result.figures)
        st.markdown(f"| figure | value |\n|---|---|\n{rows}")


def _cell(text: str) -> str:
    return html.escape(str(text)).replace("|", "\\|")
