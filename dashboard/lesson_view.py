"""The body of every lesson page: text, Run this experiment, live charts, what the records show.

A lesson is data (`bnviz.lessons.Lesson`): this module only draws it. Its group trains in the
server's shared worker like a Train-page group; the page remembers the group it started (per
tab) and otherwise shows the latest group this server trained for the lesson, read-only.
"""

from __future__ import annotations

import contextlib
import html

import streamlit as st

from bnviz import charts, seed_charts
from bnviz.checks import RULE, Check
from bnviz.config import RunConfig, from_dict
from bnviz.jobs import GroupJob, QueueFull, RunState
from bnviz.lessons import MORE_SEEDS, Lesson
from bnviz.records import group_labels, layer_series, sweep_axes, sweep_points

from . import config_form, lesson_page, live, nav, present, state
from .live_chart import live_chart
from .tick_cache import CACHE

CHART_HEIGHT = 330  # px
# The key chart in normal mode: with the status line above and the verdict below, all three
# fit above the fold at 1280×800 (at 330 the verdict began at 700 px and ended below 800).
KEY_HEIGHT = 280


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
            seeds = ",".join(map(str, lesson.seeds))
            st.code(f"python -m bnviz check {lesson.slug} --seeds {seeds}", language="bash")
    with right:
        _live(lesson)


def _run(lesson: Lesson) -> None:
    """Run this experiment (a callback: it runs before the page is drawn, so the buttons
    below are drawn for the group it started — Stop enabled, Run disabled)."""
    job, mine = _group(lesson)
    if mine and job is not None and job.active:
        return  # a second click while the first group trains: never a duplicate group
    submit(lesson, lesson.seeds)


def submit(lesson: Lesson, seeds: tuple[int, ...]) -> None:
    """Train the lesson's runs at these seeds as one group, followed by this tab."""
    manager = state.manager()
    try:
        gid = manager.submit(lesson.configs(seeds), name=group_name(lesson), owner=state.owner())
    except QueueFull as e:  # this tab's quota of queued groups: said under the buttons
        st.session_state[f"lesson-full-{lesson.slug}"] = str(e)
        return
    st.session_state[f"lesson-{lesson.slug}"] = gid
    manager.get(gid).first_rows.wait(timeout=1.0)  # type: ignore[union-attr]


def more_seeds(seeds: list[int]) -> tuple[int, ...]:
    """The group's seeds and MORE_SEEDS new ones after the largest: a new group trains them all
    (the earlier seeds again: on the CPU equal configs give identical records, and the verdict
    is computed from one group's records)."""
    top = max(seeds, default=-1)
    return (*seeds, *range(top + 1, top + 1 + MORE_SEEDS))


def _stop(lesson: Lesson) -> None:
    job, mine = _group(lesson)
    if mine and job is not None and job.active:
        state.manager().stop(job.id, by=state.owner())


def _buttons(lesson: Lesson) -> None:
    job, mine = _group(lesson)
    # One row of buttons at their natural widths: no label is ever cut.
    row = st.container(horizontal=True, vertical_alignment="center")
    training = bool(mine and job is not None and job.active)
    row.button(
        "Run this experiment",
        type="primary",
        key=f"run-{lesson.slug}",
        disabled=training,
        on_click=_run,
        args=(lesson,),
        help="Stop it first to train again" if training else None,
    )
    row.button(
        "Stop", disabled=not training, key=f"stop-{lesson.slug}", on_click=_stop, args=(lesson,)
    )
    lab = row.button(
        "Open in the lab",
        key=f"lab-{lesson.slug}",
        help="The Train page with this lesson's runs loaded, to change a field and train again",
    )
    lesson_page.links(row, lesson.slug)
    if full := st.session_state.pop(f"lesson-full-{lesson.slug}", None):
        st.warning(full)
    if job is not None and job.active and not mine:
        st.caption(
            "Started elsewhere; you are following it (only its owner can stop it). "
            "Run this experiment trains your own copy."
        )
    if lab:
        config_form.load_grid(from_dict(lesson.runs.base), lesson.runs.vary)
        # The lab shows the lesson's runs (read-only when another tab trained them) until the
        # student trains their own; then one click compares the two groups.
        state.show_group(job.id if job is not None else None)
        present.leave()  # the lab's configuration is in the sidebar that presenting hides
        st.switch_page(nav.page(""))


def _live(lesson: Lesson, columns: int = 1) -> None:
    job, _ = _group(lesson)
    active = job is not None and job.active
    manager = state.manager()
    # Until the warm worker is up (a fresh server on a busy laptop: seconds), say so and poll.
    warming = not active and manager.warm_enabled and not manager.warm_ready()

    refresh = live.REFRESH_S if active else 1.0 if warming or manager.store_error else None

    @st.fragment(run_every=refresh)
    def view() -> None:
        job, _ = _group(lesson)
        with live.turn(job, manager):
            _view(job)

    def _view(job: GroupJob | None) -> None:
        state.store_error_notice()  # in the live view: a failing write shows within a refresh
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
        every = False
        if job is not None:
            # A sweep chart names its runs: the status line may count them. Elsewhere (e.g.
            # eight runs of no_norm) it is the only key to the curves' colours: name each.
            many = _named(lesson, runs)
            seeded = len(seed_charts.seeds_of([r.config for r in runs])) > 1
            # Over several seeds the toggle sits beside the status: one line less above the
            # verdict, which must end above a 1280×800 screen's fold.
            left, right = (
                st.columns([3, 2], vertical_alignment="bottom")
                if seeded
                else (contextlib.nullcontext(), None)
            )
            with left:
                live.status_block(job, runs, labels, position, compact=True, count_over=many)
            if right is not None:
                with right:
                    every = st.toggle(
                        "Show every seed",
                        key=f"seeds-{lesson.slug}",
                        help="Each seed's own test curve, thin, next to the mean and the band "
                        "over seeds",
                    )
        # The key chart (the lesson's first) and the verdict come first: at 1024×768
        # presenting, and at 1280×800 in normal mode, both are above the fold; the other
        # charts follow below.
        key, *rest = lesson.charts
        if columns > 1:  # presenting: the verdict beside the key chart
            left, right = st.columns([3, 2], gap="medium")
            with left:
                _chart(key, runs, labels, lesson, columns, every=every, version=version)
            with right:
                show_check(lesson, job, runs)
            for col, name in zip(st.columns(len(rest)) if rest else [], rest):
                with col:
                    _chart(name, runs, labels, lesson, columns, every=every, version=version)
        else:
            _chart(key, runs, labels, lesson, columns, KEY_HEIGHT, every=every, version=version)
            show_check(lesson, job, runs)
            for name in rest:
                _chart(name, runs, labels, lesson, columns, every=every, version=version)
        if job is not None and job.active != active:
            st.rerun()  # the group started or ended: turn the timer on or off
        if warming and ready:
            st.rerun()  # once: the worker is up, stop polling

    view()


def _named(lesson: Lesson, runs: list[RunState]) -> int:
    """How many runs the status line names one by one (past that it counts them): all, but
    four on a sweep's page (the sweep chart names its points) and eight at most; none over
    several seeds (the charts' legends name the arms)."""
    if len(seed_charts.seeds_of([r.config for r in runs])) > 1:
        return 0
    return 4 if "sweep" in lesson.charts else min(len(runs), 8)


def _chart(
    name: str,
    runs: list[RunState],
    labels: list[str],
    lesson: Lesson,
    columns: int,
    height: int = CHART_HEIGHT,
    every: bool = False,
    version: tuple | None = None,
) -> None:
    """One chart of the lesson; `version` (`live.group_view`'s): the figure is built once per
    tick for every viewer of the group and shared with them (`tick_cache`)."""
    tall = name == "bands" and len(first_seed(runs)) > 2 and columns == 1
    key = f"lesson-{lesson.slug}-{name}"

    def build() -> dict:
        return figure(name, runs, labels, lesson, show_seeds=every, height=height)

    # the figure depends on the group's version, the seeds toggle and the chart's height
    fig = (
        build()
        if version is None
        else CACHE.value((key, version[0], every, height), version[1], build)
    )
    # A chart that sizes itself (heatmaps: a panel per run) gets at least its height.
    own = fig.get("layout", {}).get("height") or 0
    live_chart(
        fig,
        key=key,
        height=max(height + (120 if tall else 0), own),
        share=None if version is None else ((version[0], every, height), version[1]),
    )


def first_seed(runs: list[RunState]) -> list[RunState]:
    """The runs of the group's lowest seed: what the charts of one run per arm draw."""
    seeds = seed_charts.seeds_of([r.config for r in runs])
    return [r for r in runs if r.config.seed == seeds[0]] if seeds else runs


def figure(
    name: str,
    runs: list[RunState],
    labels: list[str],
    lesson: Lesson,
    show_seeds: bool = False,
    height: int = CHART_HEIGHT,
) -> dict:
    """One of `lessons.CHARTS` for the runs as they are now (empty axes before any run).
    Accuracy, loss and a sweep: each arm's mean over the seeds with its range (`seed_charts`);
    the other views draw the lowest seed's runs (their titles say which seed)."""
    if name in ("acc", "loss") and len(seed_charts.seeds_of([r.config for r in runs])) > 1:
        arms = seed_charts.arms([r.config for r in runs])
        fig = seed_charts.seed_curves(
            [label for label, _ in arms],
            [[runs[i].history for i in idx] for _, idx in arms],
            name,
            [[runs[i].config.seed for i in idx] for _, idx in arms],
            show_seeds,
        )
        # the arms' legend under the axis (a row per two arms), the plot as high as the others
        fig["layout"]["height"] = charts.legend_below(fig, len(arms), height, per_row=2)
        return fig
    if name == "sweep" and len(seed_charts.seeds_of([r.config for r in runs])) > 1:
        configs = [r.config for r in runs]
        fig = seed_charts.seed_sweep(configs, [r.history for r in runs], [r.status for r in runs])
        if fig is not None:
            return fig
    if len(seed_charts.seeds_of([r.config for r in runs])) > 1:
        runs = first_seed(runs)
        seed = runs[0].config.seed
        labels = group_labels([r.config for r in runs])
        fig = _figure(name, runs, labels, lesson)
        title = fig.get("layout", {}).get("title")
        if isinstance(title, dict) and title.get("text"):
            title["text"] += f" · seed {seed}"
        return fig
    return _figure(name, runs, labels, lesson)


def _figure(name: str, runs: list[RunState], labels: list[str], lesson: Lesson) -> dict:
    histories = [r.history for r in runs]
    statuses = [r.status for r in runs]
    if name in ("acc", "loss"):
        fig = charts.curves(labels, histories, name, statuses, live.colors(runs))
        if len(runs) <= _named(lesson, runs):
            # No legend: the status line right above names every run in its colour.
            return charts.without_legend(fig)
        # Past that, a key under the chart: "the batch-2 curves" must be findable.
        # Two a row: three ran into each other in the ~680-pixel column at 1280×800.
        fig["layout"]["height"] = charts.legend_below(fig, len(runs), CHART_HEIGHT, per_row=2)
        return fig
    if name == "sweep":
        configs = [r.config for r in runs] or lesson.runs.configs()
        axes = sweep_axes(configs)
        field, by = axes if axes else ("norm", None)
        return charts.sweep(sweep_points(configs, histories, statuses, field, by), field, by)
    if name == "gap":
        return charts.gap(labels, histories, live.colors(runs))
    if name == "grad_depth":
        title = "Gradient norm of each layer's weights at the first step"
        params = [r.params for r in runs]
        fig = charts.first_step_by_layer(labels, params, "grad_norm", title, "‖∇W‖")
        return charts.without_legend(fig)  # the status line names every run in its colour
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
        return charts.percentile_bands(labels, series, title, cols=2, colors=live.colors(runs))
    if name in ("gamma", "beta"):
        view = "γ (weight)" if name == "gamma" else "β (bias)"
        return live.detail_figure(view, runs, labels, "act_in", depth, depth)
    if name == "saturation":
        return live.detail_figure("saturation / dead units", runs, labels, "act_out", depth, depth)
    if name in live.MEASURE_VIEWS:  # the measures' views: records kinds of config.measures
        return live.MEASURE_VIEWS[name][1](runs, labels, depth)
    raise KeyError(name)


def show_check(lesson: Lesson, job: GroupJob | None, runs: list[RunState]) -> None:
    """ "What the records show": the lesson's verdict over this group's seeds, once it ended
    (before a run, where it will be: the verdict keeps its place on the page): the verdict,
    the rule, each seed's figures in a column, and More seeds."""
    with st.container(key="verdict"):
        st.markdown("**What the records show**")
        if job is None:
            st.caption("Run this experiment: the check is computed from its records.")
            return
        if job.active:
            st.caption("The check is computed from the records when every run has ended.")
            return
        result: Check = lesson.check(runs)
        n = len(result.seeds)
        where = f"over {n} seeds" if n > 1 else "in this run"
        if result.passed is None:
            st.warning(result.summary)
        elif result.passed:
            st.success(f"**The claim holds {where}.** {result.summary}")
        else:
            # A finding, not a fault of the app: amber, not the red of an error.
            st.warning(f"**The claim does not hold {where}.** {result.summary}")
        st.caption(f"The rule: {RULE}")
        if result.seeds:
            # On a projector the verdict above stays in view; the figures open on a click.
            with st.expander("The figures, seed by seed", expanded=not present.is_on()):
                _seed_table(result)
        elif result.figures:
            rows = "\n".join(f"| {_cell(a)} | {_cell(b)} |" for a, b in result.figures)
            st.markdown(f"| figure | value |\n|---|---|\n{rows}")
        if result.passed is not None:
            nxt = more_seeds(seed_charts.seeds_of([r.config for r in runs]))
            if st.button(
                f"More seeds: train seeds {', '.join(map(str, nxt))}",
                key=f"more-{lesson.slug}",
                help=f"A new group of this lesson at these {len(nxt)} seeds; the verdict is "
                "computed over all of them",
            ):
                submit(lesson, nxt)
                st.rerun()  # the whole page: its Run and Stop buttons follow the new group


def _seed_table(result: Check) -> None:
    seeds = [s for s, _ in result.seeds]
    per_seed = [dict(c.figures) for _, c in result.seeds]
    labels = list(dict.fromkeys(label for c in per_seed for label in c))
    head = "| figure | " + " | ".join(f"seed {s}" for s in seeds) + " |"
    rule = "|---|" + "---|" * len(seeds)
    rows = [
        f"| {_cell(label)} | " + " | ".join(_cell(c.get(label, "–")) for c in per_seed) + " |"
        for label in labels
    ]
    held = " | ".join("✓" if c.passed else "✗" for _, c in result.seeds)
    effect = " | ".join(_cell(c.effect.text()) if c.effect else "–" for _, c in result.seeds)
    rows += [f"| claim holds | {held} |", f"| effect | {effect} |"]
    st.markdown("\n".join([head, rule, *rows]))
    for s, c in result.seeds:
        st.caption(f"Seed {s} ({'holds' if c.passed else 'does not hold'}): {c.summary}")


def _cell(text: str) -> str:
    return html.escape(str(text)).replace("|", "\\|")
