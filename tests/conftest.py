"""Shared fixtures: the lesson presets trained on the real engine, once per test session."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest

from bnviz.config import PRESETS
from bnviz.records import RunRecord


@pytest.fixture(scope="session")
def lesson_records() -> Callable[[str], list[RunRecord]]:
    """`get(slug)`: the records of a training lesson at its own seeds (lessons.SEEDS, one
    group, as its page trains them), trained on the first call and cached for the session."""
    from bnviz import train
    from bnviz.lessons import LESSONS

    @functools.cache
    def get(slug: str) -> list[RunRecord]:
        return train.train_group(LESSONS[slug].configs(), device="cpu")

    return get


@pytest.fixture(scope="session")
def preset_records(lesson_records) -> Callable[[str], list[RunRecord]]:
    """`get(name)`: the records of PRESETS[name] at its defaults (seed 0, CPU), in the
    preset's order. A lesson's preset is its seed-0 runs of `lesson_records` (the same runs:
    each seed is a stack of its own), so the suite trains each lesson once."""
    from bnviz import train
    from bnviz.lessons import LESSONS

    @functools.cache
    def get(name: str) -> list[RunRecord]:
        if name in LESSONS and LESSONS[name].trains and 0 in LESSONS[name].seeds:
            runs = [r for r in lesson_records(name) if r.config.seed == 0]
            assert [r.config for r in runs] == PRESETS[name].configs()
            return runs
        return train.train_group(PRESETS[name].configs(), device="cpu")

    return get


@pytest.fixture
def fresh_server(tmp_path, monkeypatch):
    """A run store and job manager of the test's own (st.cache_resource outlives AppTests);
    no pre-started worker. Yields the store's folder. Page-test modules use it for every test
    (`pytestmark = pytest.mark.usefixtures("fresh_server")`)."""
    import streamlit as st

    monkeypatch.setenv("BNVIZ_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("BNVIZ_WARM", "0")
    st.cache_resource.clear()
    st.cache_data.clear()
    yield tmp_path / "runs"
    from dashboard import state

    state.manager().shutdown()
    st.cache_resource.clear()
