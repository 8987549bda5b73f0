"""AppTest: every page renders, widgets ↔ RunConfig ↔ URL, a tiny group trains via the page."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from bnviz.config import PRESETS, RunConfig, grid
from dashboard import config_form

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("views/train.py", "views/runs.py", "views/layers.py")


pytestmark = pytest.mark.usefixtures("fresh_server")  # conftest: a store of its own


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


def group_of(at: AppTest, monkeypatch) -> tuple[list[RunConfig], list[str]]:
    """The group Train would submit now: config_form reading the page's session state."""
    with monkeypatch.context() as m:
        m.setattr(config_form, "st", SimpleNamespace(session_state=at.session_state.to_dict()))
        cfg, problems = config_form.read_config()
        assert cfg is not None, problems
        return config_form.group_configs(cfg)


def grid_rows(at: AppTest, *rows: tuple[str, str]) -> AppTest:
    """Fill the grid's rows (field, values text) as a user would."""
    for i, (name, values) in enumerate(rows):
        f, v = config_form.row_keys(i)
        at.selectbox(key=f).set_value(name).run()
        at.text_input(key=v).set_value(values).run()
    return at


def url_vary(at: AppTest) -> list[str]:
    """The URL's repeated `vary` (AppTest gives one value as a plain string)."""
    v = at.query_params.get("vary", [])
    return [v] if isinstance(v, str) else v


def captions(at: AppTest) -> str:
    return " ".join(c.value for c in at.caption)


def test_grid_of_several_fields_builds_the_configs(monkeypatch):
    at = grid_rows(app(), ("lr", "0.1,0.5,3"), ("batch_size", "8,32"))
    assert not at.exception
    base = RunConfig()
    # the checkbox (on by default) adds norm = (configured, none) as the slowest field
    vary = {"norm": ["batch", "none"], "lr": [0.1, 0.5, 3.0], "batch_size": [8, 32]}
    assert group_of(at, monkeypatch) == (grid(base, vary), [])
    assert "12 runs train together" in captions(at)
    assert "norm (2) × lr (3) × batch_size (2)" in captions(at)
    at.checkbox(key=config_form.BASELINE).uncheck().run()
    vary.pop("norm")
    assert group_of(at, monkeypatch) == (grid(base, vary), [])
    assert "6 runs train together" in captions(at)
    # varying norm yourself: the checkbox adds nothing (and is disabled)
    at.checkbox(key=config_form.BASELINE).check().run()
    grid_rows(at, ("lr", "0.1,0.5,3"), ("batch_size", "8,32"), ("norm", "layer,none"))
    assert at.checkbox(key=config_form.BASELINE).disabled
    vary["norm"] = ["layer", "none"]
    assert group_of(at, monkeypatch) == (grid(base, vary), [])
    # more than 16 runs, a field twice, a bad value: errors before training, Train disabled
    grid_rows(at, ("lr", "0.1,0.5,3"), ("batch_size", "8,16,32"), ("seed", "0,1"))
    assert any("36 runs" in e.value and "at most 16" in e.value for e in at.error)
    assert next(b for b in at.button if b.label == "Train").disabled
    grid_rows(at, ("lr", "0.1,0.5,3"), ("batch_size", "8,x"), ("lr", "1"))
    errors = " ".join(e.value for e in at.error)
    assert "batch_size=x is not allowed" in errors and "lr is varied in two rows" in errors


def test_url_round_trip_of_a_two_field_grid(monkeypatch):
    at = grid_rows(app(hidden="32,32"), ("lr", "0.1,0.5,3"), ("hidden", "8;16,16"))
    at.checkbox(key=config_form.BASELINE).uncheck().run()
    assert url_vary(at) == ["lr:0.1,0.5,3", "hidden:8;16,16"]
    assert at.query_params["baseline"] == "0"
    group = group_of(at, monkeypatch)
    assert len(group[0]) == 6 and group[0][1].hidden == (16, 16)
    again = app(**at.query_params)
    assert not again.exception and not again.warning
    assert group_of(again, monkeypatch) == group
    assert again.query_params == at.query_params


def test_old_vary_values_link_still_loads_one_field(monkeypatch):
    at = app(vary="lr", values="0.1,1")
    assert not at.exception and not at.warning
    # as it trained then: one run per value, without the no-norm baseline
    assert group_of(at, monkeypatch) == ([RunConfig(lr=0.1), RunConfig(lr=1.0)], [])
    assert url_vary(at) == ["lr:0.1,1"] and at.query_params["baseline"] == "0"
    assert "values" not in at.query_params


def test_bad_grid_parts_are_reported_and_the_rest_kept(monkeypatch):
    at = app(vary=["colour:1,2", "lr:0.1,x", "batch_size:8,32", "batch_size:4"], baseline="yes")
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 4, warnings
    text = " ".join(warnings)
    assert "vary=colour is not a field" in text
    assert "vary=lr:0.1,x is left out: lr=x is not allowed" in text
    assert "vary=batch_size is given twice" in text
    assert "baseline=yes should be 0 or 1" in text
    vary = {"norm": ["batch", "none"], "batch_size": [8, 32]}
    assert group_of(at, monkeypatch) == (grid(RunConfig(), vary), [])
    assert url_vary(at) == ["batch_size:8,32"]


def test_preset_load_gives_the_presets_configs_as_the_cli_does(monkeypatch):
    from bnviz.cli import build_configs
    from dashboard import state

    at = grid_rows(app(lr="0.7", epochs="3"), ("seed", "1,2"), ("dropout", "0.1,0.2"))

    def load(name: str) -> None:
        at.selectbox(key="cmp_preset").set_value(name).run()  # picking it loads it

    assert at.selectbox(key="cmp_preset").value == config_form.CUSTOM
    for name, preset in PRESETS.items():
        load(name)
        assert not at.exception
        configs, problems = group_of(at, monkeypatch)
        assert not problems, (name, problems)
        assert configs == preset.configs() == build_configs(preset=name), name
        # the box names what is loaded (it showed another preset than the one loaded)
        assert at.selectbox(key="cmp_preset").value == name
    # a field changed by hand: the box says so, not the preset's name
    at.session_state[config_form.key("seed")] = 12345
    at.run()
    assert at.selectbox(key="cmp_preset").value == config_form.CUSTOM
    # and Train submits exactly those configs (stopped at once)
    load(next(iter(PRESETS)))
    next(b for b in at.button if b.label == "Train").click().run()
    job = state.manager().get(at.session_state["group_id"])
    state.manager().stop(job.id)
    assert job.configs == next(iter(PRESETS.values())).configs()


def test_load_grid_and_grid_state_round_trip(monkeypatch):
    """The API the lesson pages use: load_grid puts a base and a grid into the widgets."""
    at = app()
    base = RunConfig(activation="tanh", hidden=(16, 16))
    vary = {"batch_size": [4, 16, 64], "norm": ["batch", "group"], "hidden": [(8,), [16, 16]]}
    with monkeypatch.context() as m:
        session = at.session_state.to_dict()
        m.setattr(config_form, "st", SimpleNamespace(session_state=session))
        config_form.load_grid(base, vary)
        got = config_form.grid_state()
    assert got == {
        "batch_size": [4, 16, 64],
        "norm": ["batch", "group"],
        "hidden": [(8,), (16, 16)],
    }
    for k, v in session.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception
    assert group_of(at, monkeypatch) == (grid(base, vary), [])
    assert at.selectbox(key="cmp_field_2").value == "hidden"
    assert at.text_input(key="cmp_values_2").value == "8;16,16"


def test_every_control_says_what_it_does_to_bn():
    from bnviz.config import FIELDS
    from dashboard.config_form import BN_HELP, field_help

    assert set(BN_HELP) == set(FIELDS)
    for name in FIELDS:
        assert field_help(name).startswith(FIELDS[name].help)
        assert len(field_help(name)) > len(FIELDS[name].help) + 20


def test_sweep_chart_on_the_train_and_runs_pages(monkeypatch):
    from dashboard import state

    drawn = capture_charts(monkeypatch)
    at = app(hidden="8", epochs="1", record_every="2", batch_size="100")
    next(b for b in at.button if b.label == "Train").click().run()
    assert "train-sweep" not in drawn  # with vs without BN only: no field takes 3 values
    grid_rows(at, ("lr", "0.05,0.1,0.5"))
    next(b for b in at.button if b.label == "Train").click().run()
    job = state.manager().get(at.session_state["group_id"])
    end = time.time() + 90
    while job.active and time.time() < end:
        time.sleep(0.2)
    drawn.clear()
    at.run()
    assert not at.exception
    finals = [t for t in drawn["train-sweep"]["data"] if t["mode"] == "lines+markers"]
    assert [t["name"] for t in finals] == ["norm=batch", "norm=none"]
    assert all(t["x"] == [0.05, 0.1, 0.5] for t in finals)
    assert drawn["train-sweep"]["layout"]["xaxis"]["type"] == "log"
    at.switch_page("views/runs.py").run()
    assert not at.exception
    assert f"runs-{job.id}-sweep" in drawn


def test_a_prepared_link_with_one_bad_value_keeps_every_other_field():
    """?activation=sigmoid&epochs=5&lr=200: lr falls back (and says so), the rest is the link's."""
    at = app(activation="sigmoid", epochs="5", lr="200")
    assert not at.exception
    assert by_key(at, "cfg_activation").value == "sigmoid"
    assert by_key(at, "cfg_epochs").value == 5
    assert by_key(at, "cfg_lr").value == pytest.approx(0.1)
    warnings = " ".join(w.value for w in at.warning)
    assert "lr=200" in warnings and "default lr=0.1 is used instead" in warnings
    assert at.query_params["activation"] == "sigmoid" and at.query_params["epochs"] == "5"


def capture_charts(monkeypatch) -> dict[str, dict]:
    """Every figure the pages draw, by chart key (still drawn for real)."""
    from dashboard import live, live_chart

    drawn: dict[str, dict] = {}
    real = live_chart.live_chart

    def record(figure, *, key, height=360, share=None):
        drawn[key] = figure() if callable(figure) else figure
        real(drawn[key], key=key, height=height, share=share)

    monkeypatch.setattr(live, "live_chart", record)
    monkeypatch.setattr(live_chart, "live_chart", record)  # the pages import it per run
    return drawn


def finished_group(preset_records, preset: str, created: float):
    """A closed group of a preset's records in this server's manager, as if trained here."""
    from bnviz.jobs import GroupJob
    from bnviz.records import group_name
    from dashboard import state

    runs = preset_records(preset)
    job = GroupJob(f"g-{preset}", group_name([r.config for r in runs]), list(runs))
    job.created, job.closed = created, True
    state.manager().jobs[job.id] = job
    return job


def test_runs_page_names_groups_by_what_differs_and_tells_their_runs_apart(
    monkeypatch, preset_records
):
    from dashboard import history, state

    drawn = capture_charts(monkeypatch)
    now = time.time()
    fig1 = finished_group(preset_records, "ioffe_fig1", now - 60)
    faster = finished_group(preset_records, "faster", now - 3600)
    assert fig1.name == "sigmoid · norm none vs batch"
    assert faster.name == "norm none vs batch"
    at = app()
    at.session_state["_owner"] = "this tab"  # its group: it may rename it
    fig1.owner = state.owner_of("this tab")
    at.switch_page("views/runs.py").run()
    assert not at.exception
    groups, runs = at.multiselect[0], at.multiselect[1]
    assert groups.value == [fig1.id]  # the newest
    assert f"sigmoid · norm none vs batch · {history.trained_at(fig1)} · 2 runs" in groups.options
    assert runs.value == [(fig1.id, 0), (fig1.id, 1)]
    one = drawn["cmp-acc"]
    assert [t["name"] for t in one["data"] if t.get("showlegend")] == ["norm=none", "norm=batch"]
    drawn.clear()
    groups.set_value([fig1.id, faster.id]).run()
    assert not at.exception
    assert at.multiselect[1].value == [(g.id, i) for g in (fig1, faster) for i in (0, 1)]
    key = " ".join(m.value for m in at.markdown)
    assert f"<b>A</b> sigmoid · norm none vs batch · trained {history.trained_at(fig1)}" in key
    assert f"<b>B</b> norm none vs batch · trained {history.trained_at(faster)}" in key
    for metric in ("acc", "loss"):
        fig = drawn[f"cmp-{metric}"]
        tests = [t for t in fig["data"] if t.get("showlegend")]
        assert [t["name"] for t in tests] == [
            "A · norm=none",
            "A · norm=batch",
            "B · norm=none",
            "B · norm=batch",
        ]
        assert [t["marker"]["symbol"] for t in tests] == ["circle"] * 2 + ["square"] * 2
        assert len({t["line"]["color"] for t in tests}) == 4  # a colour per run
        assert "sigmoid · norm none vs batch" in tests[0]["hovertemplate"]
        assert fig["layout"]["showlegend"] is False  # the key above names them, uncut
    table = at.dataframe[0].value
    assert list(table.columns[:2]) == ["run", "status"] and "message" not in table.columns
    # renamable as before; the time stays beside the new name
    at.text_input(key=f"name-{fig1.id}").set_value("Fig. 1").run()
    next(b for b in at.button if b.label == "Rename").click().run()
    assert fig1.name == "Fig. 1"
    assert f"Fig. 1 · {history.trained_at(fig1)} · 2 runs" in at.multiselect[0].options


def test_layers_page_heatmaps_readable_and_not_the_train_pages_charts(monkeypatch, preset_records):
    drawn = capture_charts(monkeypatch)
    now = time.time()
    sat = finished_group(preset_records, "saturation", now - 60)
    fig1 = finished_group(preset_records, "ioffe_fig1", now - 120)
    at = app()
    drawn.clear()  # the Train page's
    at.switch_page("views/layers.py").run()
    assert not at.exception
    assert at.selectbox(key="layers-group").value == sat.id
    heat = drawn["layers-heat"]
    assert [t["type"] for t in heat["data"]] == ["heatmap"] * 4
    lay = heat["layout"]
    assert all(lay[f"xaxis{s}"]["domain"] == [0, 1] for s in ("", "2", "3", "4"))  # one per row
    assert lay["title"]["text"] == "Layer 3, activation input: histograms over training"
    # the Train page's charts are not repeated: no current histograms, no percentile bands
    assert set(drawn) == {"layers-heat", "layers-detail"}
    assert drawn["layers-detail"]["layout"]["title"]["text"].startswith("Saturated")
    at.selectbox(key="layers-group").set_value(fig1.id).run()
    assert not at.exception
    lay = drawn["layers-heat"]["layout"]
    assert lay["xaxis"]["domain"][1] < lay["xaxis2"]["domain"][0]  # two runs: side by side
    assert lay["xaxis2"]["matches"] == "x"  # same steps: a shared step axis
    at.slider(key="layers-layer").set_value(1).run()
    at.radio(key="layers-point").set_value("linear").run()
    assert not at.exception
    title = drawn["layers-heat"]["layout"]["title"]["text"]
    assert title == "Layer 1, Linear/Conv output: histograms over training"


def test_runs_page_offers_a_csv_of_every_kind_of_row_the_runs_hold(preset_records):
    """One CSV per recorder kind with rows (records.RECORDERS): the ics lesson's group has
    history, layers, params and ics rows; each downloads with its own columns."""
    from bnviz.records import RECORDER

    job = finished_group(preset_records, "ics", time.time())
    at = app()
    at.switch_page("views/runs.py").run()
    assert not at.exception
    labels = [b.label for b in at.download_button]
    kinds = [k for k in RECORDER if any(r.rows.get(k) for r in job.runs)]
    assert "ics" in kinds and "history" in kinds
    assert labels[0] == "records (JSON)"
    assert [f"{k} (CSV)" for k in kinds] == labels[1 : 1 + len(kinds)]
