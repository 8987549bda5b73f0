"""Layers: one group's per-layer detail — histograms over training as heatmaps, BN statistics."""

import streamlit as st

from bnviz import charts
from bnviz.records import layer_series
from dashboard import history, live, state
from dashboard.live_chart import live_chart
from dashboard.tick_cache import CACHE

for problem in state.ensure_config_state():
    st.warning(f"From the link: {problem}.")
manager = state.manager()
st.title("Layers")
st.caption(
    "What each hidden layer sees during training. Probes are taken on the training "
    "mini-batch every few steps (record_every), in training mode."
)

# The Train page has the distributions now and the percentile bands; here: each layer's whole
# history as heatmaps, and the other per-layer views below them.
VIEWS = [v for v in live.DETAIL_VIEWS if v != "percentile bands"]

job = history.pick_group(manager, "layers-group")
if job is not None:

    @st.fragment(run_every=live.REFRESH_S if job.active else None)
    def detail() -> None:
        runs, labels, version = live.group_view(job)  # one snapshot a tick for all viewers
        depth = max(len(r.config.hidden) for r in runs)
        c1, c2 = st.columns([3, 2])
        point = c1.radio(
            "probe point",
            list(charts.POINT_NAMES),
            key="layers-point",
            horizontal=True,
            format_func=lambda p: charts.POINT_NAMES[p],
            index=1,
        )
        layer = c2.slider("layer", 1, max(depth, 2), value=depth, key="layers-layer")
        layer = min(layer, depth)
        title = f"Layer {layer}, {charts.POINT_NAMES[point]}: histograms over training"
        # Runs that step alike (same data and batch size) share the step axis.
        alike = len({(r.config.dataset, r.config.n_samples, r.config.batch_size) for r in runs})
        fig = CACHE.value(
            ("layers-heat", version[0], point, layer),
            version[1],
            lambda: charts.heatmaps(
                labels,
                [layer_series(r.layers, point, layer) for r in runs],
                title,
                shared_steps=alike == 1,
            ),
        )
        live_chart(
            fig,
            key="layers-heat",
            height=fig["layout"]["height"],
            share=((version[0], point, layer), version[1]),
        )
        st.caption(
            "Each panel has its own value axis (the bins a run fixed when it started); the "
            "colour is the share of the mini-batch's values in a bin, one scale for all."
        )
        view = st.segmented_control("per-layer view", VIEWS, key="layers-view", default=VIEWS[0])
        view = view or VIEWS[0]
        what = (version[0], view, point, layer, depth)
        fig = CACHE.value(
            ("layers-detail", *what),
            version[1],
            lambda: live.detail_figure(view, runs, labels, point, layer, depth),
        )
        height = charts.legend_below(fig, len(runs), 380) if len(runs) > 4 else 380
        live_chart(fig, key="layers-detail", height=height, share=(what, version[1]))
        live.slice_control(manager, job, runs, "layers")

    detail()
state.sync_url()
