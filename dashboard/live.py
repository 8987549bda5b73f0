"""The live view of one group: statuses, progress, curves and per-layer distributions.

Drawn inside fragments that rerun every 0.5 s while the group trains (and once more when it
ends, which turns the timer off). Every chart goes through `live_chart`, which updates the
same Plotly div in place, so nothing flickers and a zoom survives the next update.
"""

from __future__ import annotations

import html

import streamlit as st

from bnviz import charts
from bnviz.jobs import GroupJob, RunState
from bnviz.records import latest_layers, layer_series, status_text

from .live_chart import live_chart

REFRESH_S = 0.5


def status_block(
    job: GroupJob | None, runs: list[RunState], labels: list[str], position: int | None
) -> None:
    """One coloured line per run, the progress bar with ETA, the device and queue place.

    Drawn (idle) before any group exists too: the elements below keep their places, so the
    live charts are not re-mounted (and do not reload plotly.js) when Train is pressed.
    """
    if job is None:
        st.progress(0.0, text="Press Train: the network and its comparison train side by side")
        st.markdown("")
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
        text = f"done on {job.device or 'cpu'} in {secs:.1f} s"
    st.progress(min(1.0, frac), text=text)
    lines = []
    for i, (r, label) in enumerate(zip(runs, labels)):
        last = r.history[-1] if r.history else {}
        acc = last.get("test_acc")
        acc_txt = f" · test acc {acc:.1%}" if acc is not None else ""
        lines.append(
            f'<div class="bnviz-run" data-status="{r.status}">'
            f'<span style="color:{charts.color(i)};font-weight:700">■ {html.escape(label)}</span>'
            f" — <b>{html.escape(status_text(r.status, r.message, r.diverged_step))}</b>"
            f"{acc_txt}</div>"
        )
    st.markdown("\n".join(lines), unsafe_allow_html=True)


def curves_block(runs: list[RunState], labels: list[str], key: str) -> None:
    statuses = [r.status for r in runs]
    histories = [r.history for r in runs]
    c1, c2 = st.columns(2)
    with c1:
        live_chart(charts.curves(labels, histories, "acc", statuses), key=f"{key}-acc", height=380)
    with c2:
        live_chart(
            charts.curves(labels, histories, "loss", statuses), key=f"{key}-loss", height=380
        )


def layers_block(runs: list[RunState], labels: list[str], key: str) -> None:
    """Histograms of every layer now, and one layer's distribution over training."""
    point = st.session_state.get(f"{key}-point", "act_in")
    latest = [latest_layers(r.layers, point) for r in runs]
    # The same charts are drawn before the first record (empty): a chart that appears later
    # would have to load plotly.js first and show blank meanwhile.
    live_chart(charts.histograms(labels, latest, point), key=f"{key}-hist", height=340)
    depth = max((max(d) for d in latest if d), default=1)
    layer = min(st.session_state.get(f"{key}-layer", depth), depth)
    tabs = st.tabs(
        [
            "percentile bands",
            "saturation / dead units",
            "gradient norm",
            "update : data",
            "BN running stats, γ, β",
        ]
    )
    with tabs[0]:
        series = [layer_series(r.layers, point, layer) for r in runs]
        live_chart(
            charts.percentile_bands(
                labels, series, f"Layer {layer}, {charts.POINT_NAMES[point]} over training"
            ),
            key=f"{key}-bands",
            height=360,
        )
    layers = list(range(1, depth + 1))
    with tabs[1]:
        act_rows = [[x for x in r.layers if x["point"] == "act_out"] for r in runs]
        live_chart(
            charts.per_layer_lines(
                labels,
                act_rows,
                layers,
                lambda x: x.get("saturated", x.get("dead")),
                "Saturated (sigmoid/tanh) or dead (ReLU) share of each layer",
                "share",
            ),
            key=f"{key}-sat",
            height=300,
        )
    with tabs[2]:
        live_chart(
            charts.per_layer_lines(
                labels,
                [r.params for r in runs],
                layers,
                lambda x: x.get("grad_norm"),
                "Gradient norm of each layer's weights",
                "‖∇W‖",
                log=True,
            ),
            key=f"{key}-grad",
            height=300,
        )
    with tabs[3]:
        live_chart(
            charts.per_layer_lines(
                labels,
                [r.params for r in runs],
                layers,
                lambda x: x.get("update_ratio"),
                "Update : data ratio ‖ΔW‖/‖W‖ (guide: 1e-3)",
                "ratio",
                log=True,
                guide=1e-3,
            ),
            key=f"{key}-upd",
            height=300,
        )
    with tabs[4]:
        _bn_stats(runs, labels, layers, key)


def _bn_stats(runs: list[RunState], labels: list[str], layers: list[int], key: str) -> None:
    """BN running statistics and γ/β per layer; always four charts, so nothing re-mounts."""
    bn = [[p for p in r.params if "norm" in p] for r in runs]
    for name, title in (
        ("running_mean", "running_mean (mean over units)"),
        ("running_var", "running_var (mean over units)"),
        ("weight", "γ = weight (mean over units)"),
        ("bias", "β = bias (mean over units)"),
    ):
        live_chart(
            charts.per_layer_lines(
                labels, bn, layers, lambda x, n=name: x["norm"].get(n, {}).get("mean"), title, name
            ),
            key=f"{key}-bn-{name}",
            height=260,
        )
    if runs and not any(bn):
        st.caption("No run of this group has a normalization layer with γ/β or running stats.")


def controls(key: str, depth: int) -> None:
    """Probe point and layer pickers; inside the fragment, so a change redraws only it."""
    c1, c2 = st.columns([3, 2])
    c1.radio(
        "probe point",
        list(charts.POINT_NAMES),
        key=f"{key}-point",
        horizontal=True,
        format_func=lambda p: charts.POINT_NAMES[p],
        index=1,
        help="Linear/Conv output: Wx+b · activation input: what the non-linearity sees "
        "(the BN output when BN sits before it) · activation output",
    )
    # Always drawn (also for one layer), so the elements after it keep their places.
    c2.slider("layer for the over-time views", 1, max(depth, 2), value=depth, key=f"{key}-layer")
