"""The tour: the lectures' claims in the lectures' order, each one button away."""

import streamlit as st

from bnviz.lessons import LECTURES, LESSONS, OUT_OF_SCOPE
from dashboard import nav

st.title("Tour: Batch Normalization, claim by claim", anchor=False)
st.markdown(
    "Each lesson takes one claim from the lectures, trains the networks that test it — with "
    "and without BatchNorm, side by side, live — and then says what the records show. Press "
    "**Run this experiment** on a lesson page; a run takes under a minute on a laptop. The "
    "first lessons, like the lectures, open BN up: they compute on one batch as you move "
    "their sliders."
)
first = next(iter(LESSONS))
st.page_link(nav.page(first), label="Start the tour", icon=":material/play_arrow:")
for i, lesson in enumerate(LESSONS.values(), start=1):
    c1, c2 = st.columns([2, 3])
    c1.page_link(nav.page(lesson.slug), label=f"{i}. {lesson.title}")
    c2.markdown(lesson.teaser)
with st.expander("Claims of the lectures that no lesson shows, and why"):
    st.markdown(
        "\n".join(
            f"- **{x.claim}** (lecture{'s' * (len(x.lectures) > 1)} {', '.join(x.lectures)}): "
            f"{x.why}"
            for x in OUT_OF_SCOPE
        )
    )
with st.expander("The lectures these lessons come from"):
    st.markdown("\n".join(f"- **{k}** — {name}" for k, name in LECTURES.items()))
    st.caption(
        "The lesson texts cite the paper and lecture each claim comes from; the figures under "
        "each run are computed from that run's records, never assumed."
    )
