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
