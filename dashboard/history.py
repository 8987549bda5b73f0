"""Shared pieces of the history pages: choosing groups and runs, export buttons."""

from __future__ import annotations

import json
from datetime import datetime

import plotly.io as pio
import streamlit as st

from bnviz.jobs import GroupJob, JobManager, RunState
from bnviz.records import history_csv, layer_csv, summary


def group_title(job: GroupJob) -> str:
    when = datetime.fromtimestamp(job.created).strftime("%H:%M:%S")
    return f"{job.name} · {when} · {len(job.runs)} runs · {job.state}"


def pick_group(manager: JobManager, key: str) -> GroupJob | None:
    """A selectbox over the server's groups, defaulting to this tab's current one."""
    groups = manager.groups()
    if not groups:
        st.info("No runs yet: train a group on the **Train** page first.")
        return None
    ids = [g.id for g in groups]
    current = st.session_state.get("group_id")
    index = ids.index(current) if current in ids else 0
    gid = st.selectbox(
        "group",
        ids,
        index=index,
        key=key,
        format_func=lambda i: group_title(manager.get(i)) if manager.get(i) else i,
    )
    return manager.get(gid)


def summary_rows(job: GroupJob, runs: list[RunState]) -> list[dict]:
    rows = []
    for label, r in zip(job.labels(), runs):
        s = summary(r.history)
        rows.append(
            {
                "run": label,
                "status": r.status,
                "message": r.message,
                "final train acc": s["train_acc"],
                "final test acc": s["test_acc"],
                "best test acc": s["best_test_acc"],
                "seconds": round(r.seconds, 1),
            }
        )
    return rows


def downloads(job: GroupJob, runs: list[RunState], figure: dict | None, key: str) -> None:
    """Records as JSON and CSV, and a figure as a self-contained HTML file."""
    labels = job.labels()
    c = st.columns(4)
    c[0].download_button(
        "records (JSON)",
        json.dumps(job.to_dict()),
        f"{job.id}.json",
        "application/json",
        key=f"{key}-json",
    )
    c[1].download_button(
        "curves (CSV)",
        history_csv(labels, [r.history for r in runs]),
        f"{job.id}-history.csv",
        "text/csv",
        key=f"{key}-csv",
    )
    c[2].download_button(
        "layer stats (CSV)",
        layer_csv(labels, [r.layers for r in runs]),
        f"{job.id}-layers.csv",
        "text/csv",
        key=f"{key}-lcsv",
    )
    if figure is not None:
        html = pio.to_html(figure, include_plotlyjs=True, full_html=True)  # works offline
        c[3].download_button(
            "figure (HTML)", html, f"{job.id}-curves.html", "text/html", key=f"{key}-html"
        )
    st.caption("PNG: use the camera icon in each chart's toolbar.")
