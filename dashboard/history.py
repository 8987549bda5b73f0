"""Shared pieces of the history pages: choosing groups and runs, export buttons."""

from __future__ import annotations

import html
import json
import time
from datetime import datetime

import plotly.io as pio
import streamlit as st

from bnviz import charts
from bnviz.jobs import GroupJob, JobManager, RunState
from bnviz.records import KINDS, RECORDER, kind_csv, status_text, summary


def trained_at(job: GroupJob, now: float | None = None) -> str:
    """When a group was trained: "14:02" today, "3 Mar 14:02" on an earlier day."""
    t = datetime.fromtimestamp(job.created)
    today = datetime.fromtimestamp(time.time() if now is None else now).date()
    return f"{t:%H:%M}" if t.date() == today else f"{t.day} {t:%b %H:%M}"


def group_title(job: GroupJob) -> str:
    state = "" if job.state == "done" else f" · {job.state}"
    return f"{job.name} · {trained_at(job)} · {len(job.runs)} runs{state}"


def compare_key(
    jobs: list[GroupJob],
    tags: dict[str, str],
    chosen: list[tuple[str, int]],
    run_labels: dict[tuple[str, int], str],
    colors: list[str] | None = None,
) -> str:
    """HTML naming the compared runs, instead of Plotly's legends (long names wrapped them into
    a scrolling column that squashed the plots): per group its tag and marker (when several),
    name and time, then its chosen runs in their colours (`colors`, per chosen run; else the
    n-th chosen run's color(n))."""
    several = len(jobs) > 1
    out = []
    for k, j in enumerate(jobs):
        glyph = charts.GLYPHS[k % len(charts.GLYPHS)] if several else "━"
        head = f"{glyph} <b>{tags[j.id]}</b> " if several else ""
        items = [
            f'<span style="color:{colors[n] if colors else charts.color(n)};font-weight:700">'
            f"{glyph} {html.escape(run_labels[c])}</span>"
            for n, c in enumerate(chosen)
            if c[0] == j.id
        ]
        out.append(
            f'<div class="bnviz-group-key">{head}{html.escape(j.name)} · trained '
            f"{trained_at(j)}</div>"
            f'<div style="display:flex;flex-wrap:wrap;gap:0 1.2em;margin:0 0 0.3em 1.2em;'
            f'font-size:0.9em">{"".join(items)}</div>'
        )
    return "".join(out)


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


ACC_COLUMNS = ("final train acc", "final test acc", "best test acc")


def summary_rows(job: GroupJob, runs: list[RunState]) -> list[dict]:
    rows = []
    for label, r in zip(job.labels(), runs):
        s = summary(r.history)
        rows.append(
            {
                "run": label,
                "status": status_text(r.status, r.message, r.diverged_step),
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
    # One CSV per kind of row the runs hold (records.RECORDERS: history, layers, params and
    # the measures' kinds), so a new kind of row is downloadable without touching this page.
    kinds = [k for k in KINDS if any(r.rows.get(k) for r in runs)]
    c = st.columns(len(kinds) + 2)
    c[0].download_button(
        "records (JSON)",
        json.dumps(job.to_dict()),
        f"{job.id}.json",
        "application/json",
        key=f"{key}-json",
    )
    for col, kind in zip(c[1:], kinds):
        col.download_button(
            f"{kind} (CSV)",
            kind_csv(kind, labels, [r.rows.get(kind, []) for r in runs]),
            f"{job.id}-{kind}.csv",
            "text/csv",
            key=f"{key}-csv-{kind}",
            help=RECORDER[kind].title,
        )
    if figure is not None:
        html = pio.to_html(figure, include_plotlyjs=True, full_html=True)  # works offline
        c[-1].download_button(
            "figure (HTML)", html, f"{job.id}-curves.html", "text/html", key=f"{key}-html"
        )
    st.caption("PNG: use the camera icon in each chart's toolbar.")
