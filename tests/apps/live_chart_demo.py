"""Demo for dashboard.live_chart: a fragment appends one point every 0.5 s."""

import math
import sys
from pathlib import Path

import streamlit as st

# `streamlit run` puts only this folder on sys.path; the repo root holds `dashboard`.
ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:  # the script reruns: don't grow sys.path each time
    sys.path.insert(0, ROOT)
from dashboard.live_chart import live_chart  # noqa: E402

st.set_page_config(page_title="live_chart demo", layout="wide")
st.title("live_chart demo")
st.session_state.setdefault("n", 0)


@st.fragment(run_every=0.5)
def live() -> None:
    st.session_state.n += 1
    xs = list(range(st.session_state.n))
    figure = {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "sin",
                "x": xs,
                "y": [math.sin(x / 4) for x in xs],
            }
        ],
        "layout": {
            "title": {"text": f"{len(xs)} points"},
            "font": {"size": 17},
            "margin": {"l": 60, "r": 20, "t": 60, "b": 50},
            "xaxis": {"title": {"text": "step"}},
            "yaxis": {"title": {"text": "value"}},
        },
    }
    live_chart(figure, key="demo_chart", height=380)
    st.caption(f"{len(xs)} points")


live()
