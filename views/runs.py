"""Runs: the history of this server — compare, rename, delete, download."""

import streamlit as st

from bnviz import charts
from bnviz.text import plain_label
from dashboard import history, live, state
from dashboard.live_chart import live_chart

for problem in state.ensure_config_state():
    st.warning(f"From the link: {problem}.")
manager = state.manager()
st.title("Runs")
state.store_notices()
state.store_error_notice()

groups = manager.groups()
if not groups:
    st.info("No runs yet: train a group on the **Train** page first.")
    state.sync_url()  # the link stays shareable from here too
    st.stop()

st.subheader("Compare any runs")
ids = [g.id for g in groups]
current = st.session_state.get("group_id")
# "Compare with the previous group" on the Train page sends both groups here.
asked = [g for g in st.session_state.pop("compare_groups", None) or [] if g in ids]
if asked:
    st.session_state.pop("runs-groups", None)  # the picker starts from the asked groups
picked = st.multiselect(
    "groups",
    ids,
    default=asked or [current if current in ids else ids[0]],
    key="runs-groups",
    format_func=lambda i: history.group_title(manager.get(i)),
    max_selections=len(charts.SYMBOLS),
)
jobs = [j for j in map(manager.get, picked) if j is not None]
tags = {j.id: chr(ord("A") + k) for k, j in enumerate(jobs)}  # A, B, … in the order picked
several = len(jobs) > 1
run_labels = {(j.id, i): lab for j in jobs for i, lab in enumerate(j.labels())}


def short(o: tuple[str, int]) -> str:
    return f"{tags[o[0]]} · {run_labels[o]}" if several else run_labels[o]


options = list(run_labels)
chosen = st.multiselect("runs", options, default=options, format_func=short)
if chosen:
    snaps = {j.id: j.snapshot() for j in jobs}
    runs = [snaps[gid][i] for gid, i in chosen]
    names = [short(c) for c in chosen]
    hovers = [
        # group names are anyone's text: on hover they are characters, never HTML
        f"{tags[g]} {plain_label(manager.get(g).name)} ({history.trained_at(manager.get(g))})<br>"
        f"{run_labels[(g, i)]}"
        for g, i in chosen
    ]
    marks = [picked.index(g) for g, _ in chosen]
    statuses = [r.status for r in runs]
    colors = live.colors(runs)
    st.markdown(history.compare_key(jobs, tags, chosen, run_labels, colors), unsafe_allow_html=True)
    col1, col2 = st.columns(2)
    for col, metric in ((col1, "acc"), (col2, "loss")):
        fig = charts.compare_curves(
            names, hovers, marks, [r.history for r in runs], metric, statuses, colors
        )
        with col:
            live_chart(charts.without_legend(fig), key=f"cmp-{metric}", height=380)

st.subheader("Groups")
job = history.pick_group(manager, "runs-group")
if job is not None:
    runs = job.snapshot()
    pct = {c: st.column_config.NumberColumn(format="percent") for c in history.ACC_COLUMNS}
    pct["status"] = st.column_config.TextColumn(width="medium")  # "diverged at step 12"
    st.dataframe(  # every run in view (at most 16), no scrolling inside the table
        history.summary_rows(job, runs),
        hide_index=True,
        width="stretch",
        height="content",
        column_config=pct,
    )
    live.sweep_block(runs, job.labels(), f"runs-{job.id}")  # a field with ≥ 3 values
    mine = manager.owns(job.id, state.owner())
    if not mine:
        st.caption(
            "Started elsewhere"
            + ("; you are following it" if job.active else "")
            + ": only the tab (or command line) that started it can rename, stop or delete it."
        )
    if mine and job.active and st.button("Stop this group", key=f"stop-{job.id}"):
        manager.stop(job.id, by=state.owner())
        st.rerun()
    c1, c2 = st.columns([3, 1])
    new = c1.text_input("name", value=job.name, key=f"name-{job.id}", disabled=not mine)
    if c2.button("Rename", disabled=not mine or new.strip() in ("", job.name)):
        manager.rename(job.id, new, by=state.owner())
        st.rerun()
    fig = charts.curves(
        job.labels(),
        [r.history for r in runs],
        "acc",
        [r.status for r in runs],
        live.colors(runs),
    )
    history.downloads(job, runs, fig, f"dl-{job.id}")
    with st.expander("Delete this group"):
        sure = st.checkbox(
            "yes, delete it and its records", key=f"sure-{job.id}", disabled=not mine
        )
        if st.button("Delete", disabled=not (sure and mine), type="primary"):
            manager.delete(job.id, by=state.owner())
            if st.session_state.get("group_id") == job.id:
                st.session_state["group_id"] = None
            st.rerun()

own = [g.id for g in groups if manager.owns(g.id, state.owner())]
if own:
    with st.expander(f"Your groups ({len(own)}): stop or delete several at once"):
        chosen_ids = st.multiselect(
            "your groups",
            own,
            key="bulk-ids",
            # name and time only: a title that changed with the state would drop the pick
            format_func=lambda i: (
                f"{j.name} · {history.trained_at(j)} · {i[-6:]}" if (j := manager.get(i)) else i
            ),
        )
        b1, b2 = st.columns(2)
        if b1.button("Stop them", disabled=not chosen_ids, key="bulk-stop"):
            for gid in chosen_ids:
                manager.stop(gid, by=state.owner())
            st.rerun()
        sure = b2.checkbox("yes, delete them and their records", key="bulk-sure")
        if b2.button("Delete them", disabled=not (chosen_ids and sure), type="primary"):
            failed = [g for g in chosen_ids if not manager.delete(g, by=state.owner())]
            if st.session_state.get("group_id") in chosen_ids:
                st.session_state["group_id"] = None
            st.session_state.pop("bulk-ids", None)
            if not failed:
                st.rerun()
            st.error(f"{len(failed)} group(s) could not be deleted: {manager.store.error}")
state.sync_url()
