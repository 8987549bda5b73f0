"""The sidebar form: every RunConfig field as a widget, grouped, with inline validation.

Widgets are generated from `bnviz.config.FIELDS` (kind, allowed values, help), so the form can
never drift from the config. Values live in `st.session_state` under `cfg_<field>` as the text
or native value the widget holds; `read_config` turns them into a RunConfig or a list of
problems, which the page shows before anyone can press Train.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import streamlit as st

from bnviz.config import (
    BATCH_NORMS,
    FIELDS,
    PRESETS,
    ConfigError,
    RunConfig,
    from_dict,
    grid,
    parse_values,
    value_text,
)
from bnviz.data import DATASETS

GROUPS = ("Data", "Network", "Normalization", "Optimization", "Run")
TOY = ("spirals", "circles", "xor", "moons")
COMPARE_NONE = "with vs without normalization"
BASELINE = "cmp_baseline"  # the COMPARE_NONE checkbox: adds norm = (configured, none) to the grid
NO_FIELD = "—"  # a grid row that varies nothing
N_ROWS = 3  # grid rows on the Train page (a loaded preset may bring more)
MAX_RUNS = 16  # runs in one group: the engine stacks them; more make unreadable charts
GRID_FIELDS = tuple(n for n in FIELDS if n != "device")  # a group trains on one device


def key(name: str) -> str:
    return f"cfg_{name}"


def widget_value(name: str, value: Any) -> Any:
    """What the widget for a field holds for a config value."""
    kind = FIELDS[name].kind
    if kind in ("ints", "layers", "optfloat"):
        return value_text(value)
    return value


def row_keys(i: int) -> tuple[str, str]:
    """Session-state keys of grid row i: its field and its values' text."""
    return f"cmp_field_{i}", f"cmp_values_{i}"


def load_into_state(
    cfg: RunConfig, rows: Sequence[tuple[str, str]] = (), baseline: bool = True
) -> None:
    """Put a config and a grid — (field, values text) rows and the with/without-normalization
    checkbox — into the widgets' session state. Call it before the widgets are drawn (or from
    a callback): Streamlit refuses to change a drawn widget's value."""
    s = st.session_state
    for name in FIELDS:
        s[key(name)] = widget_value(name, getattr(cfg, name))
    for k in [k for k in s if isinstance(k, str) and k.startswith(("cmp_field_", "cmp_values_"))]:
        del s[k]
    for i in range(max(N_ROWS, len(rows))):
        name, text = rows[i] if i < len(rows) else (NO_FIELD, "")
        s[row_keys(i)[0]], s[row_keys(i)[1]] = name, text
    s[BASELINE] = baseline


def values_text(name: str, values: Sequence[Any]) -> str:
    """Values as typed in a grid row and the URL: ',' between them, ';' for tuple fields."""
    sep = ";" if FIELDS[name].kind in ("ints", "layers") else ","
    return sep.join(value_text(tuple(v) if isinstance(v, list) else v) for v in values)


def load_grid(base: RunConfig, vary: Mapping[str, Sequence[Any]]) -> None:
    """Put a base config and a grid (as for `config.grid`) into the widgets' session state, so
    Train trains exactly `config.grid(base, vary)` — what "Load preset" does. The
    with/without-normalization checkbox is left on only when `vary` varies norm (where it adds
    nothing). Call it before the Train page's widgets are drawn, or from a callback."""
    bad = [n for n in vary if n not in GRID_FIELDS]
    if bad:
        raise ConfigError(f"cannot vary '{bad[0]}' in the dashboard: fields are {GRID_FIELDS}")
    rows = [(n, values_text(n, vs)) for n, vs in vary.items()]
    load_into_state(base, rows, baseline="norm" in vary)


def _visible(name: str, s: dict) -> bool:
    """Hide fields that do nothing for the current choices (they keep their values)."""
    norm = s.get(key("norm"), "batch")
    if name in ("noise",):
        return s.get(key("dataset")) in TOY
    if name == "ghost_batch_size":
        return norm == "ghost_batch"
    if name == "num_groups":
        return norm == "group"
    if name in ("noise_mean", "noise_std"):
        return norm in ("noisy_batch", "noise_only")
    if name in ("momentum", "track_running_stats"):
        return norm in BATCH_NORMS
    if name in ("placement", "norm_layers", "eps", "affine"):
        return norm != "none"
    return True


# What each control does to BatchNorm (or how it lets you see BN), one line each: the sidebar's
# help adds it to the field's meaning from RunConfig.
BN_HELP = {
    "dataset": "digits works offline; on images the CNN normalizes per channel",
    "n_samples": "fewer samples: fewer steps per epoch and a wider train–test gap to close",
    "noise": "more noise lowers every run's ceiling, with or without BN",
    "test_fraction": "the test set is scored in eval mode, with BN's running statistics",
    "data_seed": "every run of a group shares the split: with vs without BN is a fair test",
    "input_norm": "none: features on their own scales stretch the error surface; BN after the "
    "first layer undoes the overall scale",
    "input_scale": "try 100: a plain net needs a far smaller lr, BN after the first layer copes",
    "model": "dense layers: BN per feature; conv layers: per channel, over batch and pixels",
    "hidden": "deeper stacks lose scale layer by layer: where BN helps most",
    "activation": "BN before it keeps its input in the range where it is not flat",
    "dropout": "another noise source: compare BN's regularization with dropout's",
    "init": "BN makes training far less sensitive to how the weights are scaled",
    "init_scale": "try 0.1 or 10 with and without BN",
    "norm": "which statistics normalize a layer: batch, layer, group, instance, …",
    "placement": "Ioffe & Szegedy put BN before the non-linearity; many nets put it after",
    "norm_layers": "normalize only some layers to see where BN matters",
    "momentum": "how fast running_mean/var follow the batches; eval mode uses them",
    "eps": "keeps 1/√(var + eps) finite; a large eps barely scales low-variance units",
    "affine": "without γ and β every unit is forced to mean 0, variance 1",
    "track_running_stats": "off: eval normalizes with the test batch's own statistics",
    "ghost_batch_size": "smaller virtual batches: noisier statistics, as in a smaller batch",
    "num_groups": "GroupNorm normalizes within one sample: no dependence on the batch",
    "noise_mean": "Santurkar et al.: shift the distributions BN fixed — does it still train?",
    "noise_std": "Santurkar et al.: rescale the distributions BN fixed — does it still train?",
    "optimizer": "BN's gain is largest with plain SGD; Adam rescales steps itself",
    "lr": "try ×30: without BN the run diverges or stalls at chance; with BN it trains",
    "batch_size": "try 2: BN's statistics get too noisy to train, LayerNorm/GroupNorm do not care",
    "weight_decay": "with BN, weights' scale does not matter, so decay mostly raises the step",
    "train_only": "norm: a random net whose BN γ/β alone train still learns (Frankle et al.)",
    "agc": "Brock et al. train deep nets without BN by clipping each unit's step (try 0.01)",
    "epochs": "longer runs show whether BN only speeds training or also ends higher",
    "seed": "change it to check that an effect is not the luck of one initialization",
    "record_every": "smaller: finer curves and distributions, slower training",
    "measures": "Santurkar et al.'s tests of why BN works: does it reduce the shift, smooth "
    "the landscape?",
    "device": "BN computes the same on CPU and GPU; a GPU is faster for wide nets",
}


def field_help(name: str) -> str:
    """A control's help: the field's meaning, then what it does to BN."""
    f = FIELDS[name]
    text = f"{f.help}. {BN_HELP[name][:1].upper()}{BN_HELP[name][1:]}."
    if f.kind in ("ints", "layers", "optfloat"):
        text += f" Allowed: {f.allowed()}"
    return text


def _widget(name: str) -> None:
    f = FIELDS[name]
    k = key(name)
    label = name
    help_text = field_help(name)
    if f.kind == "choice":
        options = list(f.choices)
        fmt = (lambda d: f"{d} — {DATASETS[d].description[:40]}") if name == "dataset" else str
        st.selectbox(label, options, key=k, help=help_text, format_func=fmt)
    elif f.kind == "bool":
        st.checkbox(label, key=k, help=help_text)
    elif f.kind == "int":
        st.number_input(
            label, min_value=int(f.low), max_value=int(f.high), step=1, key=k, help=help_text
        )
    elif f.kind == "float":
        st.number_input(
            label,
            min_value=float(f.low),
            max_value=float(f.high),
            key=k,
            help=help_text,
            format="%g",
            step=_step(name),
        )
    else:  # ints, layers, optfloat: free text, checked by the config
        st.text_input(label, key=k, help=help_text)


def _step(name: str) -> float:
    return {
        "lr": 0.01,
        "init_scale": 0.1,
        "dropout": 0.05,
        "eps": 1e-5,
        "noise": 0.05,
        "test_fraction": 0.05,
        "weight_decay": 1e-4,
    }.get(name, 0.1)


def sidebar_form() -> None:
    """Draw the grouped widgets in the sidebar."""
    s = st.session_state
    for group in GROUPS:
        names = [n for n, f in FIELDS.items() if f.group == group and _visible(n, s)]
        with st.sidebar.expander(
            group, expanded=group in ("Network", "Normalization", "Optimization")
        ):
            for name in names:
                _widget(name)


def read_config() -> tuple[RunConfig | None, list[str]]:
    """The config the widgets describe, or the problems that stop it being one."""
    values = {n: st.session_state.get(key(n)) for n in FIELDS}
    values = {n: v for n, v in values.items() if v is not None}
    try:
        return from_dict(values), []
    except ConfigError as e:
        return None, [str(e)]


def _rows() -> list[tuple[str, str]]:
    """The grid rows in the session state: (field or NO_FIELD, values text)."""
    s, out, i = st.session_state, [], 0
    while i < N_ROWS or row_keys(i)[0] in s:
        f, v = row_keys(i)
        out.append((s.get(f, NO_FIELD), s.get(v, "")))
        i += 1
    return out


def _grid(norm: str) -> tuple[dict[str, list[Any]], list[str]]:
    """The grid the rows and the checkbox describe (first row slowest; the baseline's norm
    first of all), and the problems of the rows that do not parse."""
    vary: dict[str, list[Any]] = {}
    problems: list[str] = []
    for name, text in _rows():
        if name == NO_FIELD:
            continue
        if name in vary:
            problems.append(f"{name} is varied in two rows: list all its values in one")
        elif not text.strip():
            problems.append(f"give the values of {name} to compare, e.g. {_example(name)}")
        else:
            try:
                vary[name] = parse_values(name, text)
            except ConfigError as e:
                problems.append(str(e))
    if st.session_state.get(BASELINE, True) and "norm" not in vary:
        vary = {"norm": [norm, "none" if norm != "none" else "batch"], **vary}
    return vary, problems


def grid_state() -> dict[str, list[Any]]:
    """The current grid as a vary mapping for `config.grid` (the checkbox's norm included);
    rows that do not parse are left out (`group_configs` reports them)."""
    cfg, _ = read_config()
    norm = cfg.norm if cfg else st.session_state.get(key("norm"), RunConfig.norm)
    return _grid(norm)[0]


def group_configs(cfg: RunConfig) -> tuple[list[RunConfig], list[str]]:
    """The configs of the group to train (`config.grid` of the configured net over the grid
    rows, first row varying slowest), or problems."""
    vary, problems = _grid(cfg.norm)
    if problems:
        return [], problems
    n = math.prod(len(v) for v in vary.values())
    if n > MAX_RUNS:
        return [], [f"{n} runs ({_shape(vary)}) is too many for one group: at most {MAX_RUNS}"]
    try:
        return grid(cfg, vary), []
    except ConfigError as e:
        return [], [str(e)]


def _shape(vary: Mapping[str, Sequence[Any]]) -> str:
    return " × ".join(f"{n} ({len(v)})" for n, v in vary.items())


CUSTOM = "(your own settings)"  # the preset box when what is loaded is no preset


@cache
def _preset_configs(name: str) -> tuple[RunConfig, ...]:
    return tuple(PRESETS[name].configs())


def loaded_preset(cfg: RunConfig | None) -> str:
    """The preset whose runs the form would train now, else CUSTOM."""
    configs = tuple(group_configs(cfg)[0]) if cfg is not None else ()
    return next((n for n in PRESETS if configs and _preset_configs(n) == configs), CUSTOM)


def _load_preset() -> None:
    name = st.session_state["cmp_preset"]
    if name in PRESETS:
        p = PRESETS[name]
        load_grid(from_dict(p.base), p.vary)


def compare_form(cfg: RunConfig | None, box: Any = None) -> None:
    """What the group compares: a preset, or a grid of up to 3 fields, with or without the
    same net without normalization. `box`: the container to draw in (the sidebar's Compare
    section on the Train page), one (field, values) row per varied field."""
    box = box or st.container()
    # The box names what is loaded — a preset, or your own settings once a field differs —
    # and picking a preset loads it: it showed one preset while another was loaded.
    st.session_state["cmp_preset"] = loaded_preset(cfg)
    box.selectbox(
        "preset",
        [CUSTOM, *PRESETS],
        key="cmp_preset",
        format_func=lambda n: n if n == CUSTOM else f"{n} — {PRESETS[n].description}",
        on_change=_load_preset,
        help="A stored comparison (also `python -m bnviz train --preset NAME`): picking it "
        "sets every field and the grid below",
    )
    rows = _rows()
    for i, (name, _) in enumerate(rows):
        f, v = row_keys(i)
        c1, c2 = box.columns(2)
        c1.selectbox(
            f"vary field {i + 1}",
            (NO_FIELD, *GRID_FIELDS),
            key=f,
            help="Every combination of the varied fields trains, the first field varying "
            "slowest (like repeated --vary on the CLI)",
        )
        c2.text_input(
            "values",
            key=v,
            placeholder=f"e.g. {_example(name)}" if name != NO_FIELD else "",
            disabled=name == NO_FIELD,
            help="Comma-separated, ';' between tuples (hidden: 100,100;50,50). One run per "
            "value (per combination); the rest of the config is shared",
        )
    varies_norm = any(name == "norm" for name, _ in rows)
    box.checkbox(
        COMPARE_NONE,
        key=BASELINE,
        disabled=varies_norm,
        help="Adds norm = (the configured norm, none) to the grid: every run also trains "
        "without normalization, so the baseline is never lost",
    )
    vary, _ = _grid(cfg.norm if cfg else "batch")
    n = math.prod(len(v) for v in vary.values())
    note = " — norm is varied above, so the checkbox adds nothing" if varies_norm else ""
    box.caption(f"{n} run{'s' * (n != 1)}: {_shape(vary) or 'the configured net'}{note}")


def _example(name: str) -> str:
    return {
        "batch_size": "2,8,32,128",
        "lr": "0.01,0.1,1",
        "hidden": "100,100;50,50,50",
        "norm": "batch,layer,group",
    }.get(name, value_text(getattr(RunConfig(), name)))


def compare_query() -> dict[str, str | list[str]]:
    """The grid as URL parameters: one `vary=field:values` per row, `baseline=0` when off."""
    out: dict[str, str | list[str]] = {}
    parts = [f"{name}:{text.strip()}" for name, text in _rows() if name != NO_FIELD]
    if parts:
        out["vary"] = parts
    if not st.session_state.get(BASELINE, True):
        out["baseline"] = "0"
    return out


def grid_from_params(
    vary: Sequence[str], values: str | None = None, baseline: str | None = None
) -> tuple[list[tuple[str, str]], bool, list[str]]:
    """Grid rows and the checkbox from the URL's `vary` (repeated `field:values`), and the
    problems, one per bad part (the rest is kept). An old link (`vary=field&values=...`)
    loads as one row, without the baseline, as it trained then."""
    rows: list[tuple[str, str]] = []
    problems: list[str] = []
    old = values is not None and all(":" not in p for p in vary)
    for part in vary:
        name, text = part.split(":", 1) if ":" in part else (part, values or "")
        name = name.strip()
        if name not in GRID_FIELDS:
            problems.append(f"vary={name} is not a field that can vary: the rest is kept")
        elif any(name == r[0] for r in rows):
            problems.append(f"vary={name} is given twice: the first one is kept")
        else:
            try:
                if text.strip():
                    parse_values(name, text)
                rows.append((name, text.strip()))
            except ConfigError as e:
                problems.append(f"vary={part} is left out: {e}")
    on = not old
    if baseline is not None:
        b = baseline.strip().lower()
        if b in ("0", "1", "false", "true"):
            on = b in ("1", "true")
        else:
            problems.append(f"baseline={baseline} should be 0 or 1: {'1' if on else '0'} is used")
    return rows, on, problems
