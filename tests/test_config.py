"""RunConfig: defaults, the FIELDS table, validation messages and lossless codecs."""

from __future__ import annotations

import dataclasses
import json
import math
from urllib.parse import parse_qsl

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bnviz.config import (
    ACTIVATIONS,
    BATCH_NORMS,
    DATASETS,
    FIELDS,
    IMAGE_DATASETS,
    NORMS,
    PRESETS,
    ConfigError,
    RunConfig,
    from_dict,
    from_json,
    from_query,
    grid,
    parse_assignment,
    parse_query_string,
    parse_values,
    to_dict,
    to_json,
    to_query,
    to_query_string,
)

# --- defaults and the FIELDS table -----------------------------------------------------------


def test_defaults_are_valid_and_described() -> None:
    cfg = RunConfig()
    assert cfg.dataset == "digits" and cfg.norm == "batch" and cfg.hidden == (100, 100, 100)
    assert cfg.momentum == 0.1 and cfg.eps == 1e-5 and cfg.norm_layers == "all"
    names = [f.name for f in dataclasses.fields(RunConfig)]
    assert list(FIELDS) == names
    for name, f in FIELDS.items():
        assert f.name == name
        assert f.kind in ("choice", "int", "float", "bool", "ints", "layers", "optfloat")
        assert f.group in ("Data", "Network", "Normalization", "Optimization", "Run")
        assert f.help
        assert f.allowed()
        default = getattr(cfg, name)
        if f.kind == "choice":
            assert f.choices and default in f.choices
        if f.kind in ("int", "float", "ints"):
            vals = default if isinstance(default, tuple) else (default,)
            assert all(f.low <= v <= f.high for v in vals), name


def test_choices_match_module_constants() -> None:
    assert FIELDS["dataset"].choices == DATASETS
    assert FIELDS["norm"].choices == NORMS
    assert FIELDS["activation"].choices == ACTIVATIONS
    assert set(BATCH_NORMS) <= set(NORMS)
    assert set(IMAGE_DATASETS) <= set(DATASETS)


def test_config_is_frozen_and_hashable() -> None:
    cfg = RunConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0  # type: ignore[misc]
    assert hash(cfg) == hash(RunConfig())
    assert cfg == RunConfig() and cfg != RunConfig(lr=0.2)


def test_text_values_are_coerced_to_canonical_types() -> None:
    cfg = RunConfig(
        hidden="32, 16",  # type: ignore[arg-type]
        norm_layers="2",  # type: ignore[arg-type]
        lr="0.5",  # type: ignore[arg-type]
        epochs="3",  # type: ignore[arg-type]
        affine="false",  # type: ignore[arg-type]
        momentum="None",  # type: ignore[arg-type]
        norm="BATCH",
    )
    assert cfg.hidden == (32, 16) and cfg.norm_layers == (2,)
    assert cfg.lr == 0.5 and isinstance(cfg.lr, float)
    assert cfg.epochs == 3 and isinstance(cfg.epochs, int)
    assert cfg.affine is False and cfg.momentum is None and cfg.norm == "batch"
    assert RunConfig(hidden=[8, 8]).hidden == (8, 8)  # type: ignore[arg-type]
    assert RunConfig(epochs=4.0).epochs == 4  # type: ignore[arg-type]


def test_replace_and_label() -> None:
    cfg = RunConfig().replace(lr="0.01", norm="none")
    assert cfg.lr == 0.01 and cfg.norm == "none"
    assert cfg.label() == "norm=none, lr=0.01"
    assert RunConfig().label() == "default"
    assert cfg.label(against=cfg.replace(lr=0.02)) == "lr=0.01"


def test_norm_on() -> None:
    cfg = RunConfig(hidden=(8, 8, 8), norm_layers="1,3")
    assert [cfg.norm_on(i) for i in (1, 2, 3)] == [True, False, True]
    assert all(RunConfig(hidden=(8, 8, 8)).norm_on(i) for i in (1, 2, 3))
    off = RunConfig(hidden=(8, 8, 8), norm="none", norm_layers="1,3")
    assert not any(off.norm_on(i) for i in (1, 2, 3))


# --- errors ----------------------------------------------------------------------------------


def test_from_dict_rejects_unknown_fields() -> None:
    with pytest.raises(ConfigError, match="unknown field 'learning_rate'") as exc:
        from_dict({"learning_rate": 0.1})
    assert "lr" in str(exc.value)  # lists the known fields
    assert from_dict({"learning_rate": 0.1, "lr": 0.3}, strict=False).lr == 0.3


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("norm", "bn", ["batch", "layer", "noisy_batch"]),
        ("dataset", "imagenet", ["digits", "cifar10"]),
        ("activation", "swish", ["relu", "sigmoid"]),
        ("lr", 0, ["[1e-06, 100]"]),
        ("lr", "fast", ["[1e-06, 100]"]),
        ("lr", float("nan"), ["[1e-06, 100]"]),
        ("lr", float("inf"), ["[1e-06, 100]"]),
        ("epochs", 0, ["integer in [1, 10000]"]),
        ("epochs", 1.5, ["integer in [1, 10000]"]),
        ("epochs", "2.5", ["integer in [1, 10000]"]),
        ("epochs", True, ["integer"]),
        ("batch_size", -3, ["[1, 65536]"]),
        ("momentum", 1.5, ["[0, 1]", "none"]),
        ("dropout", 0.99, ["[0, 0.95]"]),
        ("affine", "maybe", ["true or false"]),
        ("hidden", "", ["comma-separated integers"]),
        ("hidden", "10,0", ["comma-separated integers in [1, 4096]"]),
        ("hidden", "10,x", ["comma-separated integers"]),
        ("hidden", [10, 2.5], ["comma-separated integers"]),
        ("norm_layers", "first", ["'all' or comma-separated"]),
    ],
)
def test_bad_value_message_names_field_value_and_allowed(field: str, value, allowed) -> None:
    with pytest.raises(ConfigError) as exc:
        from_dict({field: value})
    msg = str(exc.value)
    assert msg.startswith(f"{field}="), msg
    if not (isinstance(value, float) and not math.isfinite(value)) and value != "":
        shown = str(value).lower() if isinstance(value, bool) else str(value).replace(" ", "")
        assert shown.split(",")[0] in msg, msg
    assert "expected" in msg
    for text in allowed:
        assert text in msg, msg


def test_choice_error_lists_all_choices() -> None:
    with pytest.raises(ConfigError) as exc:
        RunConfig(norm="bn")
    for n in NORMS:
        assert n in str(exc.value)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"norm": "group", "hidden": (12, 10), "num_groups": 4}, ["num_groups=4", "10"]),
        ({"norm": "group", "hidden": (16, 16), "num_groups": 3}, ["num_groups=3", "16"]),
        ({"norm": "instance", "model": "mlp"}, ["instance", "cnn"]),
        ({"model": "cnn", "dataset": "mnist1d"}, ["cnn", "mnist1d"]),
        ({"model": "cnn", "dataset": "spirals"}, ["cnn", "spirals"]),
        ({"norm": "batch", "batch_size": 1}, ["batch_size", "2"]),
        ({"norm": "noisy_batch", "batch_size": 1}, ["batch_size"]),
        ({"norm": "ghost_batch", "batch_size": 30, "ghost_batch_size": 16}, ["16", "30"]),
        ({"norm": "ghost_batch", "batch_size": 8, "ghost_batch_size": 16}, ["16", "8"]),
        ({"hidden": (8, 8), "norm_layers": (3,)}, ["norm_layers=3", "1..2"]),
        ({"hidden": (8, 8), "norm_layers": (0,)}, ["norm_layers=0"]),
        ({"hidden": (4,) * 17}, ["17 layers", "16"]),
    ],
)
def test_impossible_combinations(changes: dict, words: list[str]) -> None:
    with pytest.raises(ConfigError) as exc:
        RunConfig(**changes)
    for w in words:
        assert w in str(exc.value), str(exc.value)


@pytest.mark.parametrize(
    "changes",
    [
        {"norm": "group", "hidden": (12, 8), "num_groups": 4},
        {"norm": "instance", "model": "cnn", "dataset": "digits"},
        {"norm": "layer", "batch_size": 1},
        {"norm": "none", "batch_size": 1},
        {"norm": "ghost_batch", "batch_size": 64, "ghost_batch_size": 16},
        {"norm": "ghost_batch", "batch_size": 16, "ghost_batch_size": 16},
        {"model": "cnn", "dataset": "cifar10"},
        {"hidden": (8, 8), "norm_layers": (2,)},
        {"hidden": (4,) * 16},
        {"momentum": None},
    ],
)
def test_possible_combinations(changes: dict) -> None:
    RunConfig(**changes)


# --- codecs ----------------------------------------------------------------------------------


SMALL = {  # values that often satisfy the cross-field rules, mixed with the full range
    "num_groups": [1, 2, 4, 8],
    "ghost_batch_size": [2, 4, 8, 16],
    "batch_size": [16, 32, 64],
}


def value_strategy(name: str) -> st.SearchStrategy:
    """Values drawn from a field's allowed choices / range."""
    f = FIELDS[name]
    if f.kind == "choice":
        return st.sampled_from(f.choices)
    if f.kind == "bool":
        return st.booleans()
    if f.kind == "int":
        full = st.integers(int(f.low), int(f.high))
        return st.sampled_from(SMALL[name]) | full if name in SMALL else full
    if f.kind in ("float", "optfloat"):
        num = st.floats(f.low, f.high, allow_nan=False, allow_infinity=False)
        return (num | st.none()) if f.kind == "optfloat" else num
    if f.kind == "ints":
        width = st.sampled_from([8, 16, 32, 64]) | st.integers(int(f.low), int(f.high))
        return st.lists(width, min_size=1, max_size=4).map(tuple)
    if f.kind == "layers":
        return st.just("all") | st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)
    raise AssertionError(f.kind)


@st.composite
def configs(draw) -> RunConfig:
    """Valid configs: each field changed from its default with probability 1/2."""
    changes = {n: draw(value_strategy(n)) for n in FIELDS if draw(st.booleans())}
    try:
        return RunConfig(**changes)
    except ConfigError:
        assume(False)
        raise


@settings(max_examples=150, deadline=None)
@given(configs())
def test_json_round_trip_is_lossless(cfg: RunConfig) -> None:
    text = to_json(cfg)
    assert json.loads(text) == to_dict(cfg)
    back = from_json(text)
    assert back == cfg
    assert to_dict(back) == to_dict(cfg)
    assert from_dict(to_dict(cfg)) == cfg


@settings(max_examples=150, deadline=None)
@given(configs())
def test_query_string_round_trip_is_lossless(cfg: RunConfig) -> None:
    back, problems = parse_query_string(to_query_string(cfg))
    assert problems == []
    assert back == cfg
    full = to_query(cfg, only_changed=False)
    assert set(full) == set(FIELDS)
    back2, problems2 = from_query(full)
    assert problems2 == [] and back2 == cfg
    # only changed fields go into the URL
    assert set(to_query(cfg)) == {n for n in FIELDS if getattr(cfg, n) != getattr(RunConfig(), n)}


def test_query_examples() -> None:
    cfg = RunConfig(norm="none", hidden=(32, 16), momentum=None, affine=False, lr=1e-4)
    q = to_query(cfg)
    assert q == {
        "hidden": "32,16",
        "norm": "none",
        "momentum": "none",
        "affine": "false",
        "lr": "0.0001",
    }
    assert to_query(RunConfig()) == {}
    assert dict(parse_qsl(to_query_string(cfg))) == q
    assert parse_query_string("?" + to_query_string(cfg)) == (cfg, [])


def test_from_json_errors() -> None:
    with pytest.raises(ConfigError, match="not valid JSON"):
        from_json("{lr: 1")
    with pytest.raises(ConfigError, match="object"):
        from_json("[1, 2]")
    with pytest.raises(ConfigError, match="unknown field 'zzz'"):
        from_json('{"zzz": 1}')


def test_parse_query_string_ignores_unknown_keys_and_reports_bad_values() -> None:
    cfg, problems = parse_query_string("page=runs&lr=0.5&norm=bogus&epochs=x&tab=2&hidden=8,8")
    assert cfg.lr == 0.5 and cfg.hidden == (8, 8)
    assert cfg.norm == RunConfig().norm and cfg.epochs == RunConfig().epochs
    assert len(problems) == 2
    assert any(p.startswith("norm=bogus") for p in problems)
    assert any(p.startswith("epochs=x") for p in problems)
    assert not any("page" in p or "tab" in p for p in problems)
    # repeated keys: the last one wins
    assert from_query({"lr": ["0.2", "0.3"]}) == (RunConfig(lr=0.3), [])


def test_parse_query_string_impossible_combination_drops_one_field_only() -> None:
    cfg, problems = parse_query_string("model=cnn&dataset=mnist1d&lr=0.5")
    # of the two named fields, the later one in FIELDS order (model) falls back; lr is kept
    assert cfg == RunConfig(dataset="mnist1d", lr=0.5)
    assert len(problems) == 1 and "cnn" in problems[0] and "mnist1d" in problems[0]
    assert "model=cnn is left out" in problems[0]
    cfg, problems = parse_query_string("norm=group&num_groups=7&activation=tanh")
    assert cfg == RunConfig(norm="group", activation="tanh")
    assert "num_groups=7 is left out" in problems[0]
    assert parse_query_string("") == (RunConfig(), [])


def test_a_link_with_one_out_of_range_value_keeps_every_other_field() -> None:
    """The prepared-link bug: lr=200 used to reset relu and 20 epochs for every field."""
    cfg, problems = parse_query_string("activation=sigmoid&epochs=5&lr=200")
    assert cfg == RunConfig(activation="sigmoid", epochs=5)
    assert len(problems) == 1 and problems[0].startswith("lr=200")
    assert "default lr=0.1 is used instead" in problems[0]
    cfg, problems = parse_query_string("hidden=100,99999&norm=layer&batch_size=0")
    assert cfg == RunConfig(norm="layer")
    assert {p.split("=")[0] for p in problems} == {"hidden", "batch_size"}


def test_parse_assignment_and_values() -> None:
    assert parse_assignment("lr = 0.5") == ("lr", "0.5")
    assert parse_assignment("hidden=8,8") == ("hidden", "8,8")
    with pytest.raises(ConfigError, match="field=value"):
        parse_assignment("lr")
    with pytest.raises(ConfigError, match="unknown field 'foo'"):
        parse_assignment("foo=1")
    assert parse_values("lr", "0.1,0.01") == [0.1, 0.01]
    assert parse_values("hidden", "8,8;16/4") == [(8, 8), (16,), (4,)]
    assert parse_values("momentum", "none,0.5") == [None, 0.5]
    with pytest.raises(ConfigError, match="lr="):
        parse_values("lr", "0.1,abc")
    with pytest.raises(ConfigError):
        parse_values("lr", ",")


# --- grid and presets ------------------------------------------------------------------------


def test_grid_is_the_cartesian_product() -> None:
    base = RunConfig(hidden=(16, 16), epochs=1, batch_size=32)
    out = grid(base, {"norm": ["none", "batch"], "lr": ["0.1", 0.01, 1.0]})
    assert len(out) == 6
    assert [(c.norm, c.lr) for c in out] == [
        ("none", 0.1),
        ("none", 0.01),
        ("none", 1.0),
        ("batch", 0.1),
        ("batch", 0.01),
        ("batch", 1.0),
    ]
    assert all(c.hidden == (16, 16) and c.epochs == 1 for c in out)
    assert grid(base, {}) == [base]
    with pytest.raises(ConfigError):
        grid(base, {"lr": [0.1, -1]})


def test_presets_build_valid_configs() -> None:
    assert "ioffe_fig1" in PRESETS
    for name, p in PRESETS.items():
        assert p.name == name and p.description
        cs = p.configs()
        assert len(cs) == math.prod(len(v) for v in p.vary.values())
        assert all(isinstance(c, RunConfig) for c in cs)
    ioffe = PRESETS["ioffe_fig1"].configs()
    seeded = PRESETS["ioffe_fig1"].seeded([3, 5])
    assert [(c.seed, c.data_seed, c.norm) for c in seeded] == [
        (3, 3, "none"),
        (3, 3, "batch"),
        (5, 5, "none"),
        (5, 5, "batch"),
    ]
    assert [c.replace(seed=0, data_seed=0) for c in seeded[:2]] == ioffe
    assert [c.norm for c in ioffe] == ["none", "batch"]
    for c in ioffe:
        assert c.hidden == (100, 100, 100) and c.activation == "sigmoid"
        assert c.lr == 0.1 and c.batch_size == 60 and c.dataset == "digits" and c.epochs == 20
