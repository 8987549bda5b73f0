"""bnviz — the Train page: configure a network, press Train, watch runs with and without BN."""

import streamlit as st

from bnviz.config import RunConfig
from bnviz.jobs import QueueFull
from bnviz.limits import check_group
from bnviz.records import group_name
from dashboard import config_form, live, nav, present, state

url_problems = state.ensure_config_state()
manager = state.manager()

st.sidebar.subheader("Configuration", anchor=False)
config_form.compare_form(
    config_form.read_config()[0], st.sidebar.expander("Compare: the runs of a group", expanded=True)
)
config_form.sidebar_form()
st.sidebar.caption(f"Training device: **{state.device_label()}**")

presenting = present.is_on()
if not presenting:  # the room sees the runs, not the page's title
    st.subheader("Train: watch BatchNorm learn, live", anchor=False)
    st.page_link(nav.page("tour"), label="New here? Take the tour", icon=":material/school:")
for p in url_problems:
    st.warning(f"From the link: {p}.")
cfg, problems = config_form.read_config()
group, group_problems = config_form.group_configs(cfg) if cfg else ([], [])
group_problems += check_group(group, manager.devices()) if group and not group_problems else []
for p in problems + group_problems:
    st.error(p)
state.store_notices()

gid = st.session_state.get("group_id")
training = gid is not None and (j := manager.get(gid)) is not None and j.active
# Until the warm worker is up, poll gently so the page can say when Train will be instant.
warming = not training and manager.warm_enabled and not manager.warm_ready()


@st.fragment(
    run_every=live.REFRESH_S if training else 1.0 if warming or manager.store_error else None
)
def live_view() -> None:
    """Buttons, status and charts. Train lives in the fragment: its click reruns only this
    part, so the first points show without redrawing the whole page first."""
    gid = st.session_state.get("group_id")
    with live.turn(manager.get(gid) if gid else None, manager):
        _live_view()


def _live_view() -> None:
    gid = st.session_state.get("group_id")
    job = manager.get(gid) if gid else None
    # Buttons at their natural widths in one row: no label is ever cut.
    row = st.container(horizontal=True, vertical_alignment="center")
    train = row.button("Train", type="primary", disabled=bool(problems or group_problems))
    mine = job is not None and manager.owns(job.id, state.owner())
    following = job is not None and not mine  # opened from a link: read-only
    stop = row.button("Stop training", disabled=job is None or not job.active or not mine)
    copy = following and row.button(
        "Train my own copy", help="The same runs, trained again as your own group"
    )
    previous = state.previous_group()
    if previous and row.button(
        "Compare with the previous group",
        icon=":material/compare_arrows:",
        help="The Runs page with this group and the one shown before it (e.g. a lesson's "
        "runs opened in the lab), their curves on one chart",
    ):
        st.session_state["compare_groups"] = [gid, previous]
        st.switch_page(nav.page("runs"))
    present.toggle(row, "present-train")
    row.caption(
        ("Started elsewhere; you are following it" if job.active else "Started elsewhere")
        + " (read-only: only its owner can stop it)"
        if following and job is not None
        # Presenting, the sidebar is hidden: the caption says which experiment this is.
        else f"{group_name(group)} · {len(group)} runs"
        if group and presenting
        else f"{len(group)} runs train together in lockstep"
        if group
        else ""
    )
    queue_full = None
    if train or copy:
        state.clear_url_problems()
        configs = group if train else job.configs  # type: ignore[union-attr]
        try:
            gid = manager.submit(configs, owner=state.owner())
        except QueueFull as e:
            queue_full = str(e)
        else:
            state.show_group(gid)
            job = manager.get(gid)
            # A warm worker sends its first records within a few hundred ms: wait for them, so
            # the first draw after the click already shows points.
            job.first_rows.wait(timeout=1.0)
            if copy:
                st.rerun()  # the buttons and the link now belong to this tab's own group
    if queue_full:
        st.warning(queue_full)
    state.store_error_notice()  # in the live view: a failing write shows within a refresh
    if stop and mine:
        manager.stop(job.id, by=state.owner())  # type: ignore[union-attr]
    # Without a group the charts are drawn empty, so they are loaded before Train is pressed.
    # One snapshot and one figure per chart per tick for every viewer of the group.
    runs, labels, version = live.group_view(job)
    ready = manager.warm_ready() or not manager.warm_enabled
    position = manager.position(job.id) if job else None
    if presenting:  # status, curves and the key chart above the fold at 1024×768
        live.status_block(job, runs, labels, position, ready, compact=True)
        live.curves_block(runs, labels, "train", height=270, legend=0, version=version)
        live.key_chart(runs, labels, "train", 250, version)
    else:
        live.status_block(job, runs, labels, position, ready)
        live.curves_block(runs, labels, "train", version=version)
        live.sweep_block(runs, labels, "train", version)  # only for a field with ≥ 3 values
        live.controls("train", len((runs[0].config if runs else cfg or RunConfig()).hidden))
        live.layers_block(runs, labels, "train", version)
        live.slice_control(manager, job, runs, "train")
    if job is not None and job.active != training:
        st.rerun()  # once, after the first draw: the timer starts (or stops), the URL updates
    if warming and ready:
        st.rerun()  # once: the worker is up, stop polling


live_view()
state.sync_url()
