"""Runs: the history of this server — compare, rename, delete, download."""

import streamlit as st

from bnviz import charts
from dashboard import history, live, state
from dashboard.live_chart import live_chart

for problem in state.ensure_config_state():
    st.warning(f"From the link: {problem}.")
manager = state.manager()
st.title("Runs")

groups = manager.groups()
if not groups:
    st.info("No runs yet: train a group on the **Train** page first.")
    state.sync_url()  # the link stays shareable from here too
    st.stop()

st.subheader("Compare any runs")
options = [(g.id, i) for g in groups for i in range(len(g.runs))]
labels = {(g.id, i): f"{g.name} · {lab}" for g in groups for i, lab in enumerate(g.labels())}
default = [o for o in options if o[0] == (st.session_state.get("group_id") or groups[0].id)]
chosen = st.multiselect("runs", options, default=default, format_func=lambda o: labels[o])
if chosen:
    snaps = {gid: manager.get(gid).snapshot() for gid in {c[0] for c in chosen}}
    runs = [snaps[gid][i] for gid, i in chosen]
    names = [labels[c] for c in chosen]
    statuses = [r.status for r in runs]
    col1, col2 = st.columns(2)
    with col1:
        live_chart(
            charts.curves(names, [r.history for r in runs], "acc", statuses),
            key="cmp-acc",
            height=420,
        )
    with col2:
        live_chart(
            charts.curves(names, [r.history for r in runs], "loss", statuses),
            key="cmp-loss",
            height=420,
        )

st.subheader("Groups")
job = history.pick_group(manager, "runs-group")
if job is not None:
    runs = job.snapshot()
    st.dataframe(history.summary_rows(job, runs), hide_index=True, width="stretch")
    live.sweep_block(runs, job.labels(), f"runs-{job.id}")  # a field with ≥ 3 values
    c1, c2 = st.columns([3, 1])
    new = c1.text_input("name", value=job.name, key=f"name-{job.id}")
    if c2.button("Rename", disabled=new.strip() in ("", job.name)):
        manager.rename(job.id, new)
        st.rerun()
    fig = charts.curves(job.labels(), [r.history for r in runs], "acc", [r.status for r in runs])
    history.downloads(job, runs, fig, f"dl-{job.id}")
    with st.expander("Delete this group"):
        sure = st.checkbox("yes, delete it and its records", key=f"sure-{job.id}")
        if st.button("Delete", disabled=not sure, type="primary"):
            manager.delete(job.id)
            if st.session_state.get("group_id") == job.id:
                st.session_state["group_id"] = None
            st.rerun()
state.sync_url()
