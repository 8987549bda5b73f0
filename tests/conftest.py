"""Shared fixtures: the lesson presets trained on the real engine, once per test session."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest

from bnviz.config import PRESETS
from bnviz.records import RunRecord


@pytest.fixture(scope="session")
def preset_records() -> Callable[[str], list[RunRecord]]:
    """`get(name)`: the records of PRESETS[name] trained at its defaults (CPU), trained on the
    first call and cached, so every test module that asks for a preset shares one training."""
    from bnviz import train

    @functools.cache
    def get(name: str) -> list[RunRecord]:
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
