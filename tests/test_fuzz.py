"""Fuzzing (hypothesis, derandomized: the same cases on every run) of everything a user or a
file can feed in: CLI flags, config files, URL values, stored records. The bar: 0 tracebacks —
bad input is one `bnviz: error:` line and exit 2, a bad record is skipped by name — and 0 page
exceptions (AppTest on every lab page).

Example counts are kept modest so the suite stays fast on 2 cores; the totals are printed
(pytest -s) and quoted in docs/store.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import streamlit as st
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as S

from bnviz import charts, cli
from bnviz.config import FIELDS, RunConfig, from_query, to_dict
from bnviz.records import RunRecord, group_labels
from bnviz.store import StoreError, parse_group

FUZZ = settings(
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NAMES = sorted(FIELDS)
# Text a user could type or paste: digits, huge numbers, separators, markup, odd unicode.
WORDS = S.sampled_from(
    ["", "none", "all", "inf", "-inf", "nan", "1e999", "1" * 400, "5" * 5000, "0", "-1", "2",
     "0.5", "true", "batch", "relu", "100,100", "1;2", "[x](http://e)", "<b>", "🙂", "\x00"]
)  # fmt: skip
TEXT = S.one_of(WORDS, S.text(max_size=30), S.integers().map(str), S.floats().map(repr))
JSON = S.recursive(
    S.none() | S.booleans() | S.integers() | S.floats() | S.text(max_size=12) | WORDS,
    lambda kids: S.lists(kids, max_size=4) | S.dictionaries(S.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)
counts: dict[str, int] = {}


def count(what: str) -> None:
    counts[what] = counts.get(what, 0) + 1


@pytest.fixture(autouse=True, scope="module")
def no_training():
    """A config that passes every check is not trained here: the engine is replaced by one
    that returns finished, empty records (what follows it — table, --out — still runs)."""
    from bnviz import train

    real = train.train_group
    train.train_group = lambda configs, **kw: [
        RunRecord(c, status="finished", device="cpu") for c in configs
    ]
    yield
    train.train_group = real
    print(f"\nfuzz cases tried: {counts}")


def one_line_or_ok(code: int, err: str) -> None:
    assert code in (0, 2), (code, err)
    if code == 2:
        assert err.startswith("bnviz: error: ") and err.count("\n") == 1, err


@settings(FUZZ, max_examples=120)
@given(sets=S.lists(S.tuples(S.sampled_from([*NAMES, "bogus"]), TEXT), max_size=3))
def test_cli_flags(sets, capsys):
    count("CLI --set/--vary")
    argv = ["train", "--quiet"]
    for i, (name, value) in enumerate(sets):
        argv += ["--vary" if i == 2 else "--set", f"{name}={value}"]
    try:
        code = cli.main(argv)
    except SystemExit as e:  # argparse's own usage errors: exit 2 with its usage text
        code = int(e.code or 0)
        assert code == 2
        return
    one_line_or_ok(code, capsys.readouterr().err)


@settings(FUZZ, max_examples=120)
@given(
    table=S.dictionaries(S.sampled_from([*NAMES, "x"]), JSON, max_size=4),
    kind=S.sampled_from(["json", "toml", "raw"]),
    raw=S.binary(max_size=60),
)
def test_cli_config_files(table, kind, raw, tmp_path_factory, capsys):
    count("config files")
    folder = tmp_path_factory.mktemp("cfg")
    if kind == "json":
        path = folder / "c.json"
        path.write_text(json.dumps(table))
    elif kind == "toml":
        path = folder / "c.toml"
        lines = [f"{k} = {json.dumps(v)}" for k, v in table.items()]  # often not TOML: fine
        path.write_text("\n".join(lines))
    else:
        path = folder / "c.json"
        path.write_bytes(raw)
    one_line_or_ok(cli.main(["train", "--quiet", "--config", str(path)]), capsys.readouterr().err)


@settings(FUZZ, max_examples=300)
@given(params=S.dictionaries(S.sampled_from([*NAMES, "group", "vary", "x"]), TEXT, max_size=6))
def test_url_values_give_a_config_and_problems(params):
    count("URL values (codec)")
    cfg, problems = from_query(params)
    assert isinstance(cfg, RunConfig) and all(isinstance(p, str) for p in problems)


def valid_group() -> dict:
    run = RunRecord(RunConfig(hidden=(8, 8)), status="finished").to_dict()
    acc = {"train_acc": 0.1, "test_acc": 0.1, "train_loss": 2.3, "test_loss": None}
    run["history"] = [{"step": 0, "epoch": 0.0, **acc}, {"step": 10, "epoch": 1.0, **acc}]
    hist = {"edges": [-1.0, 0.0, 1.0], "counts": [3, 5]}
    q = [-1.5, -1.0, -0.5, -0.2, 0.0, 0.2, 0.5, 1.0, 1.5]
    stats = {"mean": 0.0, "std": 1.0, "p15": -1.0, "p50": 0.0, "p85": 1.0}
    layer = {"step": 0, "layer": 1, "point": "act_in", **stats, "quantiles": q, "hist": hist}
    run["layers"] = [layer, {**layer, "point": "act_out", "n": 8, "dead": 0.1}]
    norm = {"weight": {"mean": 1.0}, "running_var": {"mean": 0.9}}
    run["params"] = [{"step": 0, "layer": 1, "grad_norm": 0.1, "norm": norm}]
    return {"id": "g1", "name": "g", "created": 1.7e9, "runs": [run, dict(run)]}


def mutate(d: object, path: list, value: object) -> object:
    """d with the item at `path` (indices taken modulo each level's size) replaced by value."""
    if not path or not isinstance(d, (dict, list)) or not d:
        return value
    keys = list(d) if isinstance(d, dict) else list(range(len(d)))
    k = keys[path[0] % len(keys)]
    out = dict(d) if isinstance(d, dict) else list(d)
    out[k] = mutate(d[k], path[1:], value)  # type: ignore[index]
    return out


@settings(FUZZ, max_examples=300)
@given(path=S.lists(S.integers(0, 20), max_size=5), value=JSON)
def test_stored_records_are_valid_or_refused(path, value):
    count("stored records")
    d = mutate(valid_group(), path, value)
    try:
        g, _ = parse_group(d, "fuzz")
    except StoreError:
        return
    # what passed is safe for every chart a page draws from a group
    labels = group_labels([r.config for r in g.runs])
    histories = [r.history for r in g.runs]
    charts.curves(labels, histories, "acc", [r.status for r in g.runs])
    charts.curves(labels, histories, "loss", [r.status for r in g.runs])
    from dashboard import live

    for view in live.DETAIL_VIEWS:
        live.detail_figure(view, g.runs, labels, "act_in", 1, 2)


PAGES = ("views/train.py", "views/runs.py", "views/layers.py")


@settings(FUZZ, max_examples=8, phases=[Phase.explicit, Phase.generate])  # no slow shrinking
@given(
    params=S.dictionaries(S.sampled_from([*NAMES, "group", "vary", "x"]), TEXT, max_size=4),
    path=S.lists(S.integers(0, 20), max_size=5),
    value=JSON,
)
def test_every_page_survives_fuzzed_links_and_stores(params, path, value, tmp_path_factory):
    """A fuzzed link opened on every lab page, over a store holding a fuzzed old JSON file."""
    from streamlit.testing.v1 import AppTest

    from bnviz.text import plain_markdown

    runs = tmp_path_factory.mktemp("runs")
    (runs / "fuzzed.json").write_text(json.dumps(mutate(valid_group(), path, value)))
    import os

    os.environ["BNVIZ_RUNS"], os.environ["BNVIZ_WARM"] = str(runs), "0"
    st.cache_resource.clear()
    try:
        for page in PAGES:
            count("pages (AppTest)")
            at = AppTest.from_file(str(Path(__file__).parents[1] / "app.py"), default_timeout=60)
            for k, v in params.items():
                at.query_params[k] = v.replace("\x00", "")
            at.run()
            at.switch_page(page).run()
            assert not at.exception, [e.value for e in at.exception]
            for w in at.warning:  # every link value is shown as text
                assert "](" not in w.value.replace("\\]", "") or plain_markdown(w.value)
    finally:
        from dashboard import state

        state.manager().shutdown()
        st.cache_resource.clear()
        os.environ.pop("BNVIZ_RUNS", None)
        os.environ.pop("BNVIZ_WARM", None)


def test_a_valid_record_round_trips():
    g, notes = parse_group(valid_group(), "x")
    assert notes == [] and to_dict(g.runs[0].config)["hidden"] == [8, 8]
