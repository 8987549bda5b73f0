"""AppTest: every page renders, widgets ↔ RunConfig ↔ URL, a tiny group trains via the page."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from bnviz.config import RunConfig
from dashboard import config_form

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("views/train.py", "views/runs.py", "views/layers.py")


@pytest.fixture(autouse=True)
def fresh_server(tmp_path, monkeypatch):
    """Each test gets its own run store and job manager (cache_resource outlives AppTests)."""
    monkeypatch.setenv("BNVIZ_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("BNVIZ_WARM", "0")
    st.cache_resource.clear()
    yield
    from dashboard import state

    state.manager().shutdown()
    st.cache_resource.clear()


def app(path: str = "app.py", **query: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / path), default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def by_key(at: AppTest, key: str):
    for kind in ("selectbox", "text_input", "number_input", "checkbox"):
        for w in getattr(at, kind):
            if w.key == key:
                return w
    raise KeyError(key)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_empty(page):
    at = app().switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]


def test_widgets_make_the_config_and_the_url():
    at = app()
    by_key(at, "cfg_lr").set_value(0.5)
    by_key(at, "cfg_hidden").set_value("32,32")
    by_key(at, "cfg_activation").set_value("tanh")
    at.run()
    assert not at.exception
    assert at.query_params["lr"] == "0.5"
    assert at.query_params["hidden"] == "32,32"
    assert at.query_params["activation"] == "tanh"
    values = {n: at.session_state[config_form.key(n)] for n in ("lr", "hidden", "activation")}
    assert RunConfig().replace(**values) == RunConfig(lr=0.5, hidden=(32, 32), activation="tanh")


def test_url_fills_the_widgets_and_bad_values_are_reported():
    at = app(lr="0.3", norm="layer", hidden="20,20", batch_size="abc", foo="1")
    assert not at.exception
    assert by_key(at, "cfg_lr").value == pytest.approx(0.3)
    assert by_key(at, "cfg_norm").value == "layer"
    assert by_key(at, "cfg_hidden").value == "20,20"
    warnings = " ".join(w.value for w in at.warning)
    assert "batch_size=abc" in warnings
    assert "'foo' is not a setting" in warnings
    at.run()  # a rerun (a click, the worker becoming ready) keeps them on screen
    assert "'foo' is not a setting" in " ".join(w.value for w in at.warning)


def test_url_bad_compare_and_unknown_group_are_reported():
    at = app(vary="colour", values="1,2", group="20990101-000000-abcdef")
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "vary=colour is not a field" in warnings
    assert "group 20990101-000000-abcdef is not in this server's run history" in warnings


def test_invalid_combination_is_explained_and_train_disabled():
    at = app()
    by_key(at, "cfg_norm").set_value("group")
    at.run()
    by_key(at, "cfg_num_groups").set_value(7)
    at.run()
    assert any("num_groups=7" in e.value for e in at.error)
    train = next(b for b in at.button if b.label == "Train")
    assert train.disabled


def test_tiny_group_trains_through_the_page():
    at = app(hidden="8", epochs="2", record_every="2", batch_size="100")
    next(b for b in at.button if b.label == "Train").click().run()
    assert not at.exception
    gid = at.session_state["group_id"]
    from dashboard import state

    job = state.manager().get(gid)
    end = time.time() + 90
    while job.active and time.time() < end:
        time.sleep(0.2)
    assert not job.active
    at.run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert text.count("<b>finished</b>") == 2, text
    assert at.query_params["group"] == gid
    for page in PAGES[1:]:
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])


def test_vary_field_compare_builds_the_group():
    at = app()
    at.radio(key="cmp_mode").set_value(config_form.COMPARE_FIELD).run()
    at.selectbox(key="cmp_field").set_value("batch_size").run()
    at.text_input(key="cmp_values").set_value("8,32,128").run()
    assert not at.exception
    assert "3 runs train together" in " ".join(c.value for c in at.caption)
    assert at.query_params["vary"] == "batch_size"
    at.text_input(key="cmp_values").set_value("8,x").run()
    assert any("batch_size" in e.value for e in at.error)


def test_every_control_says_what_it_does_to_bn():
    from bnviz.config import FIELDS
    from dashboard.config_form import BN_HELP, field_help

    assert set(BN_HELP) == set(FIELDS)
    for name in FIELDS:
        assert field_help(name).startswith(FIELDS[name].help)
        assert len(field_help(name)) > len(FIELDS[name].help) + 20
