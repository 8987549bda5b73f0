"""The sidebar form: every RunConfig field as a widget, grouped, with inline validation.

Widgets are generated from `bnviz.config.FIELDS` (kind, allowed values, help), so the form can
never drift from the config. Values live in `st.session_state` under `cfg_<field>` as the text
or native value the widget holds; `read_config` turns them into a RunConfig or a list of
problems, which the page shows before anyone can press Train.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from bnviz.config import (
    BATCH_NORMS,
    FIELDS,
    ConfigError,
    RunConfig,
    from_dict,
    parse_values,
    value_text,
)
from bnviz.data import DATASETS

GROUPS = ("Data", "Network", "Normalization", "Optimization", "Run")
TOY = ("spirals", "circles", "xor", "moons")
COMPARE_NONE = "with vs without normalization"
COMPARE_FIELD = "vary one field"


def key(name: str) -> str:
    return f"cfg_{name}"


def widget_value(name: str, value: Any) -> Any:
    """What the widget for a field holds for a config value."""
    kind = FIELDS[name].kind
    if kind in ("ints", "layers", "optfloat"):
        return value_text(value)
    return value


def load_into_state(cfg: RunConfig, compare: dict[str, str] | None = None) -> None:
    """Put a config (and the compare choice) into the widgets' session state."""
    for name in FIELDS:
        st.session_state[key(name)] = widget_value(name, getattr(cfg, name))
    compare = compare or {}
    st.session_state["cmp_mode"] = COMPARE_FIELD if compare.get("vary") in FIELDS else COMPARE_NONE
    st.session_state["cmp_field"] = compare.get("vary") if compare.get("vary") in FIELDS else "lr"
    st.session_state["cmp_values"] = compare.get("values", "")


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
        return norm == "noisy_batch"
    if name in ("momentum", "track_running_stats"):
        return norm in BATCH_NORMS
    if name in ("placement", "norm_layers", "eps", "affine"):
        return norm != "none"
    return True


# What each control does to BatchNorm (or how it lets you see BN), one line each: the sidebar's
# help adds it to the field's meaning from RunConfig.
BN_HELP = {
    "dataset": "digits works offline; on images the CNN normalizes per channel",
    "n_samples": "fewer samples: fewer steps per epoch, and BN's noise regularizes more",
    "noise": "harder toy problems show BN's effect on the decision boundary",
    "test_fraction": "the test set is scored in eval mode, with BN's running statistics",
    "data_seed": "every run of a group shares the split: with vs without BN is a fair test",
    "model": "dense layers: BN per feature; conv layers: per channel, over batch and pixels",
    "hidden": "deeper stacks lose scale layer by layer: where BN helps most",
    "activation": "BN before it keeps its input in the range where it is not flat",
    "dropout": "another noise source: compare BN's regularization with dropout's",
    "init": "BN makes training nearly insensitive to how the weights are scaled",
    "init_scale": "try 0.1 or 10 with and without BN",
    "norm": "which statistics normalize a layer: batch, layer, group, instance, …",
    "placement": "Ioffe & Szegedy put BN before the non-linearity; many nets put it after",
    "norm_layers": "normalize only some layers to see where BN matters",
    "momentum": "how fast running_mean/var follow the batches; eval mode uses them",
    "eps": "keeps 1/√(var + eps) finite; a large eps barely scales low-variance units",
    "affine": "without γ and β every unit is forced to mean 0, variance 1",
    "track_running_stats": "off: eval normalizes with the test batch's own statistics",
    "ghost_batch_size": "smaller virtual batches: noisier statistics, more regularization",
    "num_groups": "GroupNorm normalizes within one sample: no dependence on the batch",
    "noise_mean": "Santurkar et al.: shift the distributions BN fixed — does it still train?",
    "noise_std": "Santurkar et al.: rescale the distributions BN fixed — does it still train?",
    "optimizer": "BN's gain is largest with plain SGD; Adam rescales steps itself",
    "lr": "try ×10 or ×30: without BN the run diverges first",
    "batch_size": "try 2 … 8: BN's statistics get noisy, LayerNorm/GroupNorm do not care",
    "weight_decay": "with BN, weights' scale does not matter, so decay mostly raises the step",
    "epochs": "longer runs show whether BN only speeds training or also ends higher",
    "seed": "change it to check that an effect is not the luck of one initialization",
    "record_every": "smaller: finer curves and distributions, slower training",
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


def compare_form(cfg: RunConfig | None) -> None:
    """How the configured net is compared: against no normalization, or over a field."""
    st.radio(
        "Compare",
        (COMPARE_NONE, COMPARE_FIELD),
        key="cmp_mode",
        horizontal=True,
        help="With vs without normalization: the same net twice, once with norm=none. "
        "Runs in one group train in lockstep so the curves grow together",
    )
    if st.session_state["cmp_mode"] == COMPARE_FIELD:
        c1, c2 = st.columns([1, 2])
        c1.selectbox(
            "field",
            [n for n in FIELDS if n != "device"],
            key="cmp_field",
            help="What differs between the runs, e.g. batch_size for BN's small-batch trouble",
        )
        c2.text_input(
            "values (comma-separated; ';' between tuples like hidden)",
            key="cmp_values",
            placeholder="e.g. 2,8,32,128",
            help="One run per value, all trained together; the rest of the config is shared",
        )


def group_configs(cfg: RunConfig) -> tuple[list[RunConfig], list[str]]:
    """The configs of the group to train, or problems."""
    if st.session_state.get("cmp_mode", COMPARE_NONE) == COMPARE_NONE:
        other = cfg.replace(norm="none") if cfg.norm != "none" else cfg.replace(norm="batch")
        return [cfg, other], []
    name = st.session_state.get("cmp_field", "lr")
    text = st.session_state.get("cmp_values", "")
    if not text.strip():
        return [], [f"give the values of {name} to compare, e.g. {_example(name)}"]
    try:
        values = parse_values(name, text)
        configs = [cfg.replace(**{name: v}) for v in values]
    except ConfigError as e:
        return [], [str(e)]
    if len(configs) > 12:
        return [], [f"{len(configs)} runs is too many for one group: at most 12"]
    return configs, []


def _example(name: str) -> str:
    return {
        "batch_size": "2,8,32,128",
        "lr": "0.01,0.1,1",
        "hidden": "100,100;50,50,50",
        "norm": "batch,layer,group",
    }.get(name, value_text(getattr(RunConfig(), name)))


def compare_query() -> dict[str, str]:
    """The compare choice as URL parameters."""
    if st.session_state.get("cmp_mode") == COMPARE_FIELD:
        return {
            "vary": st.session_state.get("cmp_field", ""),
            "values": st.session_state.get("cmp_values", ""),
        }
    return {}
