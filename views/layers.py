"""Layers: one group's per-layer detail — distributions over training, heatmaps, BN statistics."""

import streamlit as st

from bnviz import charts
from bnviz.records import layer_series
from dashboard import history, live, state
from dashboard.live_chart import live_chart

for problem in state.ensure_config_state():
    st.warning(f"From the link: {problem}.")
manager = state.manager()
st.title("Layers")
st.caption(
    "What each hidden layer sees during training. Probes are taken on the training "
    "mini-batch every few steps (record_every), in training mode."
)

job = history.pick_group(manager, "layers-group")
if job is not None:

    @st.fragment(run_every=live.REFRESH_S if job.active else None)
    def detail() -> None:
        runs, labels = job.snapshot(), job.labels()
        depth = len(runs[0].config.hidden)
        live.controls("layers", depth)
        point = st.session_state.get("layers-point", "act_in")
        layer = st.session_state.get("layers-layer", depth)
        live.layers_block(runs, labels, "layers")
        st.subheader(f"Layer {layer}: histograms over training")
        cols = st.columns(min(3, len(runs)))
        for i, (r, label) in enumerate(zip(runs, labels)):
            with cols[i % len(cols)]:
                live_chart(
                    charts.heatmap(layer_series(r.layers, point, layer), label),
                    key=f"heat-{i}",
                    height=320,
                )

    detail()
state.sync_url()
