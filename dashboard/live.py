"""The live view of one group: statuses, progress, curves and per-layer distributions.

Drawn inside fragments that rerun every 0.5 s while the group trains (and once more when it
ends, which turns the timer off). Every chart goes through `live_chart`, which updates the
same Plotly div in place, so nothing flickers and a zoom survives the next update.
"""

from __future__ import annotations

import collections
import contextlib
import html
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import streamlit as st

from bnviz import charts, palette
from bnviz.jobs import GroupJob, JobManager, RunState
from bnviz.records import latest_layers, layer_series, status_text, sweep_axes, sweep_points

from . import state
from .live_chart import live_chart as _live_chart
from .tick_cache import CACHE

REFRESH_S = 0.5
# Followers' live refreshes drawn at once; the others wait their turn, blocked without the
# GIL. Unbounded, 30 followers' script threads each took the GIL in turn with the server's
# event loop, which then answered every websocket and /_stcore/health late. One: the GIL
# runs one at a time anyway, and with two the owner's refresh shared it with both.
FOLLOWERS_AT_ONCE = 1


class Turns:
    """A semaphore that serves its waiters in the order they came (`threading.Semaphore`
    does not): a released turn goes to the longest waiter, not to whichever thread asks next.
    With more followers than the server can refresh twice a second, a follower whose next
    refresh was already asked for took its turn again at once, before the woken waiter ran;
    some followers waited 2-4 s while others refreshed on time."""

    def __init__(self, n: int) -> None:
        self._free = n
        self._lock = threading.Lock()
        self._waiting: collections.deque[threading.Event] = collections.deque()

    def acquire(self, blocking: bool = True) -> bool:
        with self._lock:
            if self._free and not self._waiting:
                self._free -= 1
                return True
            if not blocking:
                return False
            mine = threading.Event()
            self._waiting.append(mine)
        mine.wait()  # set by `release`, which hands its turn over
        return True

    def release(self) -> None:
        with self._lock:
            if self._waiting:
                self._waiting.popleft().set()
            else:
                self._free += 1

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


_turns = Turns(FOLLOWERS_AT_ONCE)
# The owner's refresh first (the projector's view): a follower's refresh, before each of its
# parts, waits while an owner's refresh of a live group draws, at most this long (s) in all,
# so that followers are never held up for long by slow or many owners (at 100 followers a
# wait at each of its seven parts held the one follower's turn for most of a second). Sharing
# the GIL with two followers, the lecturer's refresh took 3-6x its time alone (p95 43-257 ms
# with 30 followers, 24 ms alone: docs/classroom.md).
OWNER_FIRST_S = 0.1
_owners = threading.Condition()
_owners_drawing = 0
_local = threading.local()  # .give_way_until: in a follower's refresh, its waits' end


def turn(job: GroupJob | None, manager: JobManager) -> contextlib.AbstractContextManager:
    """The refresh of a page showing `job`, in its turn: a follower's waits (`in_turn`), the
    owner's of a live group goes first, any other at once."""
    live = job is not None and job.active
    mine = live and manager.owns(job.id, state.owner())  # type: ignore[union-attr]
    return in_turn(live and not mine, first=mine)


@contextlib.contextmanager
def in_turn(wait: bool, first: bool = False) -> Iterator[None]:
    """A follower's refresh, one of FOLLOWERS_AT_ONCE at a time (`wait`), giving way to the
    owners' (`give_way`); an owner's (`first`: the projector's view) and every page without
    a live group go at once."""
    global _owners_drawing
    if first:
        with _owners:
            _owners_drawing += 1
        try:
            yield
        finally:
            with _owners:
                _owners_drawing -= 1
                if not _owners_drawing:
                    _owners.notify_all()
        return
    if not wait:
        yield
        return
    with _turns:
        _local.give_way_until = time.monotonic() + OWNER_FIRST_S
        try:
            give_way()
            yield
        finally:
            _local.give_way_until = None


def give_way() -> None:
    """In a follower's refresh: wait (without the GIL) while an owner's refresh draws, up to
    OWNER_FIRST_S in all over the refresh. Elsewhere nothing."""
    until = getattr(_local, "give_way_until", None)
    if until is not None:
        with _owners:
            _owners.wait_for(lambda: not _owners_drawing, timeout=until - time.monotonic())


def live_chart(figure: dict | Callable[[], dict], **kwargs: Any) -> None:
    """`live_chart.live_chart`, after giving way to an owner's refresh (`give_way`)."""
    give_way()
    _live_chart(figure, **kwargs)


def colors(runs: list[RunState]) -> list[str]:
    """Each run's colour on every chart and status line: its norm's, shaded by the other
    varied fields (`bnviz.palette`)."""
    return palette.run_colors([r.config for r in runs])


def group_view(job: GroupJob | None) -> tuple[list[RunState], list[str], tuple | None]:
    """The group's runs and labels as this tick's shared snapshot (one copy for all of its
    viewers, `tick_cache`), and its version: what the charts share their figures by (None
    without a group: empty charts, nothing to share)."""
    if job is None:
        return [], [], None
    version = CACHE.version(job)
    runs = CACHE.snapshot(job, version)
    labels = CACHE.value(("labels", job.id), None, job.labels)
    return runs, labels, (job.id, version)


def _share(version: tuple | None, *what: object) -> tuple | None:
    """live_chart's `share` for a chart of the group at `version` (None: not shared)."""
    return None if version is None else ((version[0], *what), version[1])


def status_block(
    job: GroupJob | None,
    runs: list[RunState],
    labels: list[str],
    position: int | None,
    worker_ready: bool = True,
    compact: bool = False,
    count_over: int = 4,
) -> None:
    """One coloured line per run (`compact`: wrapped side by side, smaller; past `count_over`
    runs only counts, for pages whose sweep chart names the runs), the progress bar with ETA,
    the device and queue place.

    Drawn (idle) before any group exists too: the elements below keep their places, so the
    live charts are not re-mounted (and do not reload plotly.js) when Train is pressed.
    """
    give_way()
    if job is None:
        st.progress(0.0, text="Press Train: the network and its comparison train side by side")
        worker = "ready" if worker_ready else "starting (first points take a few seconds)…"
        st.markdown(
            f'<div class="bnviz-worker">training worker {worker}</div>', unsafe_allow_html=True
        )
        return
    frac, eta = job.progress()
    state = job.state
    if state == "queued":
        text = f"queued: position {position} — waiting for a free training slot"
    elif state == "running":
        text = f"training on {job.device or '…'} — {frac:.0%}" + (
            f", about {eta:.0f} s left" if eta is not None else ""
        )
    else:
        secs = (job.finished or 0) - (job.started or job.finished or 0)
        ended = (
            "interrupted (the server stopped)"
            if any(r.status == "interrupted" for r in runs)
            else "stopped"
            if any(r.status == "cancelled" for r in runs)
            else "done"
        )
        text = f"{ended} on {job.device or 'cpu'} after {secs:.1f} s"
    if compact and not job.active:  # a full bar says nothing more: its line is kept
        st.markdown(f'<div class="bnviz-ended">{html.escape(text)}</div>', unsafe_allow_html=True)
    else:
        st.progress(min(1.0, frac), text=text)
    lines = []
    cs = colors(runs)
    for i, (r, label) in enumerate(zip(runs, labels)):
        last = r.history[-1] if r.history else {}
        acc = last.get("test_acc")
        acc_txt = f" · test acc {acc:.1%}" if acc is not None else ""
        lines.append(
            f'<div class="bnviz-run" data-status="{r.status}" data-group="{job.id}">'
            f'<span style="color:{cs[i]};font-weight:700">■ {html.escape(label)}</span>'
            f" — <b>{html.escape(status_text(r.status, r.message, r.diverged_step))}</b>"
            f"{acc_txt}</div>"
        )
    if compact and len(runs) > count_over:  # counts; only the runs that went wrong by name
        counts: dict[str, int] = {}
        for r in runs:
            counts[r.status] = counts.get(r.status, 0) + 1
        head = f"{len(runs)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items())
        lines = [f"<div>{html.escape(head)}</div>"] + [
            x for x, r in zip(lines, runs) if r.status in ("diverged", "failed", "cancelled")
        ]
    if compact:  # runs side by side in smaller type: a 12-run lesson keeps its charts in view
        inner = "\n".join(x.replace("<div ", "<span ").replace("</div>", "</span>") for x in lines)
        lines = [
            f'<div style="font-size:0.8em;display:flex;flex-wrap:wrap;gap:0 1.2em">{inner}</div>'
        ]
    st.markdown("\n".join(lines), unsafe_allow_html=True)


def curves_block(
    runs: list[RunState],
    labels: list[str],
    key: str,
    height: int = 380,
    legend: int = 2,
    version: tuple | None = None,
) -> None:
    """Accuracy and loss side by side; the legend only up to `legend` runs (past that the
    status lines name each run's colour). `version`: `group_view`'s, to share the figures."""
    statuses = [r.status for r in runs]
    histories = [r.history for r in runs]
    bare = len(runs) > legend  # past `legend` runs the status lines name each run's colour
    c1, c2 = st.columns(2)
    for col, metric in ((c1, "acc"), (c2, "loss")):

        def build(metric: str = metric) -> dict:
            fig = charts.curves(labels, histories, metric, statuses, colors(runs))
            return charts.without_legend(fig) if bare else fig

        with col:
            live_chart(build, key=f"{key}-{metric}", height=height, share=_share(version, bare))


def key_figure(runs: list[RunState], labels: list[str], key: str, cols: int = 4) -> dict:
    """The one chart a projector shows next to the curves: the sweep when the group sweeps a
    field, else the chosen per-layer view (percentile bands of the last layer by default)."""
    configs = [r.config for r in runs]
    axes = sweep_axes(configs)
    if axes is not None:
        field, by = axes
        histories, statuses = [r.history for r in runs], [r.status for r in runs]
        return charts.sweep(sweep_points(configs, histories, statuses, field, by), field, by)
    depth = len(configs[0].hidden) if configs else 3
    point = st.session_state.get(f"{key}-point", "act_in")
    view = st.session_state.get(f"{key}-view") or DETAIL_VIEWS[0]
    return detail_figure(view, runs, labels, point, depth, depth, cols=cols)


def key_chart(
    runs: list[RunState], labels: list[str], key: str, height: int, version: tuple | None
) -> None:
    """`key_figure` drawn as the live chart `key`, shared by the group's viewers who chose
    the same view."""
    what = (
        st.session_state.get(f"{key}-point", "act_in"),
        st.session_state.get(f"{key}-view") or DETAIL_VIEWS[0],
    )
    live_chart(
        lambda: key_figure(runs, labels, key),
        key=f"{key}-key",
        height=height,
        share=_share(version, *what),
    )


def sweep_block(
    runs: list[RunState], labels: list[str], key: str, version: tuple | None = None
) -> None:
    """Final and best test accuracy against the swept field (one that takes ≥ 3 values), a
    line per value of the other varied field; nothing when the group sweeps no field. Runs
    without records yet are left out, so the chart grows as the group trains. (`labels`: the
    points are named by their field values, as the sweep's axes say what differs.)"""
    configs = [r.config for r in runs]
    axes = sweep_axes(configs)
    if axes is None:
        return
    field, by = axes
    histories, statuses = [r.history for r in runs], [r.status for r in runs]
    live_chart(
        lambda: charts.sweep(sweep_points(configs, histories, statuses, field, by), field, by),
        key=f"{key}-sweep",
        height=440,
        share=_share(version),
    )


def _units_view(runs: list[RunState], labels: list[str], layer: int) -> dict:
    """records "units": one unit of a layer, its own histogram over training, per run."""
    series = [[u for u in r.units if u["layer"] == layer and u["unit"] == 0] for r in runs]
    return charts.heatmaps(labels, series, f"Layer {layer}, unit 0: its activation input")


def _ics_view(runs: list[RunState], labels: list[str], layer: int) -> dict:
    """records "ics": ‖G − G′‖ / ‖G‖ per layer (Santurkar et al.'s ICS, relative)."""
    layers = sorted({r["layer"] for run in runs for r in run.ics}) or [2]
    return charts.per_layer_lines(
        labels,
        [r.ics for r in runs],
        layers,
        lambda x: (
            x["l2"] / x["grad_norm"] if x.get("l2") is not None and x.get("grad_norm") else None
        ),
        {
            "text": "Internal covariate shift",
            "subtitle": {
                "text": "‖G − G′‖/‖G‖, G′ after the earlier layers' update",
                "font": {"size": 14},
            },
        },
        "relative ICS",
        log=True,
        colors=colors(runs),
    )


# The measures' views (config.measures): records kind → (name in the picker, figure). A new
# measure is one records.Recorder, one chart in bnviz.charts and one entry here.
MEASURE_VIEWS = {
    "units": ("per-unit distributions", _units_view),
    "ics": ("internal covariate shift", _ics_view),
    "landscape": (
        "loss landscape",
        lambda runs, labels, layer: charts.landscape_bands(
            labels, [r.landscape for r in runs], colors(runs)
        ),
    ),
    "slice": (
        "2-D loss slice",
        lambda runs, labels, layer: charts.loss_slice(
            labels,
            [r.slice[-1] if r.slice else None for r in runs],
            ["diverged:<br>no slice" if r.status == "diverged" else "no slice yet" for r in runs],
        ),
    ),
}
_MEASURE_BY_NAME = {name: f for name, f in MEASURE_VIEWS.values()}

DETAIL_VIEWS = (
    "percentile bands",
    "saturation / dead units",
    "gradient norm",
    "update : data",
    "BN running_mean",
    "BN running_var",
    "γ (weight)",
    "β (bias)",
    *_MEASURE_BY_NAME,
)
_BN_KEYS = {
    "BN running_mean": "running_mean",
    "BN running_var": "running_var",
    "γ (weight)": "weight",
    "β (bias)": "bias",
}


def detail_figure(
    view: str,
    runs: list[RunState],
    labels: list[str],
    point: str,
    layer: int,
    depth: int,
    cols: int | None = None,
) -> dict:
    """The figure of one per-layer view (one chart, whichever view is picked)."""
    if view in _MEASURE_BY_NAME:
        return _MEASURE_BY_NAME[view](runs, labels, layer)
    layers = list(range(1, depth + 1))
    params = [r.params for r in runs]
    if view == "percentile bands":
        series = [layer_series(r.layers, point, layer) for r in runs]
        title = f"Layer {layer}, {charts.POINT_NAMES[point]} over training"
        return charts.percentile_bands(labels, series, title, cols=cols, colors=colors(runs))
    if view == "saturation / dead units":
        act_rows = [[x for x in r.layers if x["point"] == "act_out"] for r in runs]
        return charts.per_layer_lines(
            labels,
            act_rows,
            layers,
            lambda x: x.get("saturated", x.get("dead")),
            {
                "text": "Saturated or dead units",
                "subtitle": {
                    "text": "sigmoid/tanh: output near its bounds · ReLU: never active",
                    "font": {"size": 14},
                },
            },
            "share",
            colors=colors(runs),
        )
    if view == "gradient norm":
        return charts.per_layer_lines(
            labels,
            params,
            layers,
            lambda x: x.get("grad_norm"),
            "Gradient norm of each layer's weights",
            "‖∇W‖",
            log=True,
            colors=colors(runs),
        )
    if view == "update : data":
        return charts.per_layer_lines(
            labels,
            params,
            layers,
            lambda x: x.get("update_ratio"),
            {
                "text": "Update : data ratio",
                "subtitle": {"text": "‖ΔW‖/‖W‖ per step (guide: 1e-3)", "font": {"size": 14}},
            },
            "ratio",
            log=True,
            guide=1e-3,
            colors=colors(runs),
        )
    name = _BN_KEYS[view]
    bn = [[p for p in rows if "norm" in p] for rows in params]
    return charts.per_layer_lines(
        labels,
        bn,
        layers,
        lambda x: x["norm"].get(name, {}).get("mean"),
        # what it shows in the subtitle: a title this long was cut at a projector's 3/5 width
        {
            "text": view,
            "subtitle": {
                "text": "mean over the layer's units (runs with BN only)",
                "font": {"size": 14},
            },
        },
        name,
        colors=colors(runs),
    )


def layers_block(
    runs: list[RunState], labels: list[str], key: str, version: tuple | None = None
) -> None:
    """Histograms of every layer now, and one chosen per-layer view over training.

    Two charts whatever the view: each live chart is an iframe with its own plotly.js, and
    drawing a dozen of them twice a second starves a 2-core machine's web server.
    """
    point = st.session_state.get(f"{key}-point", "act_in")
    # Drawn before the first record too (empty): a chart that appeared later would load
    # plotly.js first and show blank meanwhile.
    live_chart(
        lambda: charts.histograms(
            labels, [latest_layers(r.layers, point) for r in runs], point, colors=colors(runs)
        ),
        key=f"{key}-hist",
        height=340,
        share=_share(version, point),
    )
    # Depth from act_out, which every hidden layer has (norm_out: only normed layers, some runs)
    depth = (
        _depth(runs)
        if version is None
        else CACHE.value(("depth", version[0]), version[1], lambda: _depth(runs))
    )
    layer = min(st.session_state.get(f"{key}-layer", depth), depth)
    view = st.session_state.get(f"{key}-view") or DETAIL_VIEWS[0]  # None when deselected
    live_chart(
        lambda: detail_figure(view, runs, labels, point, layer, depth),
        key=f"{key}-detail",
        height=360,
        share=_share(version, view, point, layer, depth),
    )


def _depth(runs: list[RunState]) -> int:
    """The deepest hidden layer probed so far (1 before any probe)."""
    every = [latest_layers(r.layers, "act_out") for r in runs]
    return max((max(d) for d in every if d), default=1)


SLICE_WAIT_S = 120.0  # the longest the page waits for slices it asked for


def slice_control(
    manager: JobManager, job: GroupJob | None, runs: list[RunState], key: str
) -> None:
    """Under the per-layer view, when it is the 2-D loss slice: compute the slices of an
    ended group on demand (from its saved final weights), or say why they cannot be.
    `runs`: the snapshot the page drew (no second copy of the rows per refresh)."""
    view = st.session_state.get(f"{key}-view")
    if job is None or view != MEASURE_VIEWS["slice"][0]:
        return
    missing = [r for r in runs if not r.slice and r.status != "diverged"]
    if any(r.status == "diverged" and not r.slice for r in runs):
        st.caption("Diverged runs have no slice: their weights are not finite.")
    if not missing:
        return
    why = manager.can_slice(job.id)
    if why:
        st.caption(f"No 2-D loss slice yet: {why}.")
        return
    failed = manager.slice_state(job.id)
    if failed:
        st.warning(f"The slice could not be computed: {failed}")
    if st.button(
        "Compute the 2-D loss slice",
        key=f"{key}-slice",
        help="The training loss around each run's final weights, on a 7×7 grid along two "
        "random filter-normalized directions (Li et al. 2018). Takes a few seconds.",
    ):
        manager.compute_slice(job.id)
        with st.spinner("Computing the loss around each run's final weights…"):
            deadline = time.monotonic() + SLICE_WAIT_S
            while manager.slice_state(job.id) == "" and time.monotonic() < deadline:
                time.sleep(0.2)
        st.rerun()


def controls(key: str, depth: int) -> None:
    """Probe point and layer pickers; inside the fragment, so a change redraws only it."""
    give_way()
    c1, c2 = st.columns([3, 2])
    c1.radio(
        "probe point",
        list(charts.POINT_NAMES),
        key=f"{key}-point",
        horizontal=True,
        format_func=lambda p: charts.POINT_NAMES[p],
        index=1,
        help="Linear/Conv output: Wx+b · activation input: what the non-linearity sees "
        "(the BN output when BN sits before it) · activation output · norm output: the BN "
        "output when BN sits after the activation (only those runs and layers have it)",
    )
    # Always drawn (also for one layer), so the elements after it keep their places.
    c2.slider("layer (percentile bands)", 1, max(depth, 2), value=depth, key=f"{key}-layer")
    st.segmented_control(
        "per-layer view",
        DETAIL_VIEWS,
        key=f"{key}-view",
        default=DETAIL_VIEWS[0],
        help="What the lower chart shows",
    )
