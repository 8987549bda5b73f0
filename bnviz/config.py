"""`RunConfig`: the single, frozen description of one training run, its validation and codecs.

The same field names are used by the CLI (`--set field=value`), the JSON records, the URL query
string and the dashboard. Every field declares its default, what values it allows and a one-line
meaning in `FIELDS`, so listings, widgets and error messages are generated from one table.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

DATASETS = (
    "digits",
    "mnist1d",
    "spirals",
    "circles",
    "xor",
    "moons",
    "mnist",
    "fashion_mnist",
    "cifar10",
)
IMAGE_DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10")
MODELS = ("mlp", "cnn")
ACTIVATIONS = ("relu", "sigmoid", "tanh", "gelu", "linear")
NORMS = (
    "none",
    "batch",
    "batch_scratch",
    "ghost_batch",
    "layer",
    "group",
    "instance",
    "noisy_batch",
    "noise_only",
)
# Norms that compute statistics over the batch (and so need ≥ 2 samples and have running stats).
BATCH_NORMS = ("batch", "batch_scratch", "ghost_batch", "noisy_batch")
PLACEMENTS = ("before", "after")
OPTIMIZERS = ("sgd", "momentum", "adam")
INITS = ("default", "kaiming", "xavier", "normal")
DEVICES = ("auto", "cpu", "cuda", "mps")
INPUT_NORMS = ("standardize", "none")  # as data.INPUT_NORMS
TRAIN_ONLY = ("all", "norm", "classifier")  # which parameters the optimizer updates
MEASURES = ("none", "units", "ics", "landscape", "all")  # records.RECORDERS' `measure`
RECORD_BATCH = 60  # record_every counts steps of this many samples (RunConfig.record_steps)
# Training sets larger than this record as often per epoch as one this size (digits' 1,437
# training samples are under it): RunConfig.record_steps scales the interval by n_train / this
PACE_SAMPLES = 1500


class ConfigError(ValueError):
    """A bad field, value or combination; the message names it and says what is allowed."""


@dataclass(frozen=True)
class Field:
    """How one RunConfig field is typed, bounded and explained."""

    name: str
    kind: str  # "choice" | "int" | "float" | "bool" | "ints" | "layers" | "optfloat"
    group: str  # Data | Network | Normalization | Optimization | Run
    help: str
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None

    def allowed(self) -> str:
        """Human description of the allowed values."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "bool":
            return "true or false"
        if self.kind == "ints":
            lo, hi = int(self.low), int(self.high)
            return f"comma-separated integers in [{lo}, {hi}], e.g. 100,100,100"
        if self.kind == "layers":
            return "'all' or comma-separated 1-based hidden-layer indices, e.g. 1,3"
        rng = f"a number in [{self.low:g}, {self.high:g}]"
        if self.kind == "int":
            rng = f"an integer in [{int(self.low)}, {int(self.high)}]"
        if self.kind == "optfloat":
            rng += " or 'none' (cumulative average)"
        return rng


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one run; two equal configs give identical records on the CPU."""

    # Data
    dataset: str = "digits"  # which data set; digits is bundled and offline
    n_samples: int = 0  # samples to generate or keep (0: the data set's default size)
    noise: float = 0.1  # noise level of the 2-D toy data sets
    test_fraction: float = 0.2  # held-out share where a data set has no official split
    data_seed: int = 0  # fixes the train/test split and generated data
    input_norm: str = "standardize"  # features to training mean 0, std 1; none: raw values
    input_scale: float = 1.0  # then multiplies every other feature: inputs on two scales
    # Network
    model: str = "mlp"  # mlp (dense layers) or cnn (3×3 conv layers)
    hidden: tuple[int, ...] = (100, 100, 100)  # widths (mlp) or channels (cnn) of hidden layers
    activation: str = "relu"
    dropout: float = 0.0  # drop probability after each hidden layer's activation
    init: str = "default"  # weight init scheme; default is PyTorch's Linear/Conv init
    init_scale: float = 1.0  # multiplies the scheme's std; for 'normal' it *is* the std
    # Normalization
    norm: str = "batch"
    placement: str = "before"  # normalize the input of the activation (before) or its output
    norm_layers: tuple[int, ...] | str = "all"  # which hidden layers get the norm
    momentum: float | None = 0.1  # PyTorch meaning: running = (1-m)·running + m·batch_stat
    eps: float = 1e-5  # added to the variance before the square root
    affine: bool = True  # learn γ (weight) and β (bias)
    track_running_stats: bool = True  # keep running mean/var for eval; else batch stats in eval
    ghost_batch_size: int = 20  # samples per virtual batch for ghost_batch (divides batch_size)
    num_groups: int = 4  # groups of features/channels for group norm
    noise_mean: float = 0.5  # noisy_batch: per-step shift mean drawn from U(-m, m)
    noise_std: float = 1.0  # noisy_batch: per-step noise std drawn from U(0, s)
    # Optimization
    optimizer: str = "sgd"  # sgd, momentum (SGD with 0.9 heavy-ball momentum) or adam
    lr: float = 0.1  # learning rate
    batch_size: int = 60  # samples per step (the last partial batch of an epoch is dropped)
    weight_decay: float = 0.0  # L2 penalty added to the gradient, as in torch.optim
    train_only: str = "all"  # all, norm (only γ/β: Frankle et al.) or classifier (last layer)
    agc: float = 0.0  # adaptive gradient clipping λ (Brock et al.: unit-wise, not the classifier)
    # Run
    epochs: int = 20
    seed: int = 0  # initial weights, data order, dropout and noise
    record_every: int = 10  # steps of RECORD_BATCH samples between records: 10 = every 600 samples
    measures: str = "none"  # extra records: units, ics, landscape or all (Santurkar et al.)
    device: str = "auto"  # auto: CUDA, else Apple MPS, else CPU

    def __post_init__(self) -> None:
        # Accept text and lists (CLI, URL, JSON) and store canonical typed values.
        for name in FIELDS:
            object.__setattr__(self, name, _parse(name, getattr(self, name)))
        validate(self)

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some fields changed (values may be strings, as from a CLI or URL)."""
        return from_dict({**to_dict(self), **changes})

    def record_steps(self, n_train: int = 0) -> int:
        """Steps between records at this batch size: record_every steps of RECORD_BATCH
        samples, as the nearest whole number of steps (≥ 1), so a run records on a schedule of
        samples seen, not of steps (at batch 2 it would otherwise record 30× as often).

        Paced by the data (`paced`): on a training set of n_train > PACE_SAMPLES samples the
        interval is n_train / PACE_SAMPLES times as many samples, as many records an epoch as
        on PACE_SAMPLES (50,000 CIFAR images: every 20,000 samples, not every 600)."""
        samples = self.record_every * RECORD_BATCH
        if self.paced(n_train):
            samples *= n_train / PACE_SAMPLES
        return max(1, round(samples / self.batch_size))

    @staticmethod
    def paced(n_train: int) -> bool:
        """Whether a training set of n_train samples is paced (see record_steps): its runs
        then also record at every epoch's end, on the whole test set; their other records
        (step 0's too) use a fixed subset of it (recorders.TEST_SUBSET)."""
        return n_train > PACE_SAMPLES

    def norm_on(self, layer: int) -> bool:
        """Whether 1-based hidden layer `layer` is normalized."""
        if self.norm == "none":
            return False
        return self.norm_layers == "all" or layer in self.norm_layers

    def label(self, against: RunConfig | None = None) -> str:
        """Short name: the fields that differ from `against` (or from the defaults)."""
        base = to_dict(against or RunConfig())
        mine = to_dict(self)
        diff = [f"{k}={v}" for k, v in mine.items() if base[k] != v and k != "device"]
        return ", ".join(diff) or "default"


def _f(name: str, kind: str, group: str, help: str, **kw: Any) -> Field:
    return Field(name, kind, group, help, **kw)


FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        _f("dataset", "choice", "Data", "Which data set to learn", choices=DATASETS),
        _f(
            "n_samples",
            "int",
            "Data",
            "Samples to generate or keep (0 = default size)",
            low=0,
            high=1_000_000,
        ),
        _f("noise", "float", "Data", "Noise of the 2-D toy data sets", low=0.0, high=2.0),
        _f(
            "test_fraction",
            "float",
            "Data",
            "Held-out share (data sets without a test split)",
            low=0.05,
            high=0.9,
        ),
        _f(
            "data_seed",
            "int",
            "Data",
            "Seed of the train/test split and generated data",
            low=0,
            high=2**31 - 1,
        ),
        _f(
            "input_norm",
            "choice",
            "Data",
            "Standardize the input features with training statistics, or feed raw values",
            choices=INPUT_NORMS,
        ),
        _f(
            "input_scale",
            "float",
            "Data",
            "Multiplies every other input feature (after input_norm): two scales, as 0–1 vs "
            "1–1,000",
            low=1e-3,
            high=1e4,
        ),
        _f(
            "model",
            "choice",
            "Network",
            "Dense layers (mlp) or 3×3 convolutions (cnn)",
            choices=MODELS,
        ),
        _f(
            "hidden",
            "ints",
            "Network",
            "Width (mlp) or channels (cnn) of each hidden layer",
            low=1,
            high=4096,
        ),
        _f(
            "activation",
            "choice",
            "Network",
            "Non-linearity; sigmoid/tanh saturate, which BN counters",
            choices=ACTIVATIONS,
        ),
        _f(
            "dropout",
            "float",
            "Network",
            "Drop probability after each hidden activation",
            low=0.0,
            high=0.95,
        ),
        _f("init", "choice", "Network", "Weight initialization scheme", choices=INITS),
        _f(
            "init_scale",
            "float",
            "Network",
            "Multiplies the init std ('normal': the std itself); BN makes nets robust to it",
            low=1e-6,
            high=100.0,
        ),
        _f("norm", "choice", "Normalization", "Which normalization layer", choices=NORMS),
        _f(
            "placement",
            "choice",
            "Normalization",
            "Normalize before the activation (Ioffe & Szegedy) or after it",
            choices=PLACEMENTS,
        ),
        _f("norm_layers", "layers", "Normalization", "Hidden layers that get the norm"),
        _f(
            "momentum",
            "optfloat",
            "Normalization",
            "Running-stat update weight: running = (1−m)·running + m·batch",
            low=0.0,
            high=1.0,
        ),
        _f(
            "eps",
            "float",
            "Normalization",
            "Added to the variance for numerical safety",
            low=0.0,
            high=1.0,
        ),
        _f("affine", "bool", "Normalization", "Learn γ (weight) and β (bias) after normalizing"),
        _f(
            "track_running_stats",
            "bool",
            "Normalization",
            "Keep running mean/var for eval mode (else eval uses batch statistics)",
        ),
        _f(
            "ghost_batch_size",
            "int",
            "Normalization",
            "Ghost BN: samples per virtual batch (must divide batch_size)",
            low=2,
            high=4096,
        ),
        _f(
            "num_groups",
            "int",
            "Normalization",
            "GroupNorm: groups per layer (must divide width)",
            low=1,
            high=4096,
        ),
        _f(
            "noise_mean",
            "float",
            "Normalization",
            "Noisy BN: the noise mean is drawn from U(−m, m) every step",
            low=0.0,
            high=10.0,
        ),
        _f(
            "noise_std",
            "float",
            "Normalization",
            "Noisy BN: the noise std is drawn from U(0, s) every step",
            low=0.0,
            high=10.0,
        ),
        _f(
            "optimizer",
            "choice",
            "Optimization",
            "sgd, momentum (SGD + 0.9 momentum) or adam",
            choices=OPTIMIZERS,
        ),
        _f(
            "lr",
            "float",
            "Optimization",
            "Learning rate; BN tolerates much larger ones",
            low=1e-6,
            high=100.0,
        ),
        _f(
            "batch_size",
            "int",
            "Optimization",
            "Samples per step; BN's statistics get noisy when it is small",
            low=1,
            high=65536,
        ),
        _f(
            "weight_decay",
            "float",
            "Optimization",
            "L2 penalty added to the gradient",
            low=0.0,
            high=1.0,
        ),
        _f(
            "train_only",
            "choice",
            "Optimization",
            "Which parameters train: all, only the norms' γ/β (norm), or only the last layer",
            choices=TRAIN_ONLY,
        ),
        _f(
            "agc",
            "float",
            "Optimization",
            "Adaptive gradient clipping λ: each unit's gradient ≤ λ·‖its weights‖, classifier "
            "excluded (0 = off)",
            low=0.0,
            high=10.0,
        ),
        _f("epochs", "int", "Run", "Passes over the training set", low=1, high=10_000),
        _f(
            "seed",
            "int",
            "Run",
            "Seed of init, data order, dropout and noise",
            low=0,
            high=2**31 - 1,
        ),
        _f(
            "record_every",
            "int",
            "Run",
            "Records (curves) every this many steps of 60 samples, whatever the batch size "
            "(on training sets over 1,500 samples, as many per epoch as on 1,500, and at each "
            "epoch's end); layer probes at most ~100 per run",
            low=1,
            high=100_000,
        ),
        _f(
            "measures",
            "choice",
            "Run",
            "Extra measurements: per-unit distributions, internal covariate shift, the loss "
            "landscape along the gradient (with the 2-D slice at the end), or all",
            choices=MEASURES,
        ),
        _f(
            "device",
            "choice",
            "Run",
            "Where to train (auto: CUDA, then MPS, then CPU)",
            choices=DEVICES,
        ),
    )
}
assert set(FIELDS) == {f.name for f in dataclasses.fields(RunConfig)}
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(RunConfig)}


def _bad(name: str, value: Any, extra: str = "") -> ConfigError:
    f = FIELDS[name]
    try:
        text = _text(value)
    except RecursionError:  # a list nested hundreds deep
        text = "(a nested list)"
    text = text if len(text) <= 60 else f"{text[:40]}… ({len(text)} characters)"
    msg = f"{name}={text} is not allowed: expected {f.allowed()}"
    return ConfigError(msg + (f" ({extra})" if extra else ""))


def _parse(name: str, value: Any) -> Any:
    """Coerce a value (native or text) to the field's type, or raise ConfigError."""
    f = FIELDS[name]
    try:
        if f.kind == "choice":
            v = str(value).strip().lower()
            if v not in f.choices:
                raise _bad(name, value)
            return v
        if f.kind == "bool":
            if isinstance(value, bool):
                return value
            v = str(value).strip().lower()
            if v in ("true", "1", "yes", "on"):
                return True
            if v in ("false", "0", "no", "off"):
                return False
            raise _bad(name, value)
        if f.kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise _bad(name, value)
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        if f.kind in ("float", "optfloat"):
            if f.kind == "optfloat" and (value is None or str(value).strip().lower() == "none"):
                return None
            if isinstance(value, bool):
                raise _bad(name, value)
            v = float(value)
            if not math.isfinite(v):
                raise _bad(name, value)
            return v
        if f.kind in ("ints", "layers"):
            if f.kind == "layers" and str(value).strip().lower() == "all":
                return "all"
            items: Iterable[Any]
            if isinstance(value, str):
                items = [s for s in value.replace(" ", "").split(",") if s != ""]
            else:
                items = value
            out = tuple(int(str(x)) if isinstance(x, str) else int(x) for x in items)
            if not out:
                raise _bad(name, value)
            if any(isinstance(x, float) and not x.is_integer() for x in items):
                raise _bad(name, value)
            return out
    except (TypeError, ValueError, OverflowError) as e:  # int(inf), float(10**400)
        if isinstance(e, ConfigError):
            raise
        raise _bad(name, value) from None
    raise AssertionError(f.kind)


def validate(cfg: RunConfig) -> None:
    """Raise ConfigError for any out-of-range field or impossible combination."""
    for name, f in FIELDS.items():
        v = getattr(cfg, name)
        vals = v if isinstance(v, tuple) else (v,)
        numbers = [x for x in vals if isinstance(x, (int, float)) and not isinstance(x, bool)]
        if f.low is not None and any(not (f.low <= x <= f.high) for x in numbers):  # type: ignore[operator]
            raise _bad(name, v)
    n_hidden = len(cfg.hidden)
    if len(cfg.hidden) > 16:
        raise ConfigError(f"hidden={_text(cfg.hidden)} has {n_hidden} layers: at most 16 allowed")
    if cfg.norm_layers != "all":
        bad = [i for i in cfg.norm_layers if not 1 <= i <= n_hidden]  # type: ignore[union-attr]
        if bad:
            raise ConfigError(
                f"norm_layers={_text(cfg.norm_layers)} names layer {bad[0]}, but the net has "
                f"hidden layers 1..{n_hidden} (hidden={_text(cfg.hidden)})"
            )
    if cfg.model == "cnn" and cfg.dataset not in IMAGE_DATASETS:
        raise ConfigError(
            f"model=cnn needs image data, but dataset={cfg.dataset} is not an image data set "
            f"(use one of {', '.join(IMAGE_DATASETS)}, or model=mlp)"
        )
    if cfg.norm == "instance" and cfg.model != "cnn":
        raise ConfigError(
            "norm=instance normalizes each channel of one image over its pixels and needs "
            "model=cnn (with a dense layer each 'instance' would be a single number)"
        )
    if cfg.norm == "group":
        for w in cfg.hidden:
            if w % cfg.num_groups:
                raise ConfigError(
                    f"num_groups={cfg.num_groups} must divide every hidden width, but "
                    f"{w} (hidden={_text(cfg.hidden)}) is not divisible by it"
                )
    if cfg.norm in BATCH_NORMS and cfg.batch_size < 2:
        raise ConfigError(
            f"norm={cfg.norm} in training needs batch_size ≥ 2: with one sample the batch "
            "variance is 0 (PyTorch: 'Expected more than 1 value per channel when training'); "
            "use norm=layer/group/none or a larger batch_size"
        )
    if cfg.train_only == "norm" and (cfg.norm == "none" or not cfg.affine):
        raise ConfigError(
            f"train_only=norm trains only the norms' γ and β, but norm={cfg.norm}"
            + (" has none" if cfg.norm == "none" else " has affine=false")
            + ": use a norm with affine=true, or train_only=all"
        )
    if cfg.norm == "ghost_batch":
        g = cfg.ghost_batch_size
        if g > cfg.batch_size or cfg.batch_size % g:
            raise ConfigError(
                f"ghost_batch_size={g} must divide batch_size={cfg.batch_size} "
                "(each step is split into equal virtual batches)"
            )


def _text(v: Any) -> str:
    """A field value as the text used on the CLI and in URLs."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, tuple):
        return ",".join(str(x) for x in v)
    if isinstance(v, float):
        return repr(v)
    return str(v)


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    """Every field, JSON-compatible (tuples become lists)."""
    out = {}
    for name in FIELDS:
        v = getattr(cfg, name)
        out[name] = list(v) if isinstance(v, tuple) else v
    return out


def from_dict(d: Mapping[str, Any], *, strict: bool = True) -> RunConfig:
    """Build a RunConfig from native or text values; unknown keys raise unless strict=False."""
    unknown = [k for k in d if k not in FIELDS]
    if unknown and strict:
        raise ConfigError(f"unknown field '{unknown[0]}': known fields are {', '.join(FIELDS)}")
    kwargs = {k: _parse(k, v) for k, v in d.items() if k in FIELDS}
    return RunConfig(**kwargs)


def to_json(cfg: RunConfig) -> str:
    return json.dumps(to_dict(cfg), sort_keys=False)


def from_json(text: str) -> RunConfig:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"config is not valid JSON: {e.msg} at line {e.lineno}") from None
    if not isinstance(data, dict):
        raise ConfigError("config JSON must be an object of field: value")
    return from_dict(data)


def to_query(cfg: RunConfig, *, only_changed: bool = True) -> dict[str, str]:
    """URL query parameters (strings); by default only fields that differ from the defaults."""
    default = RunConfig()
    return {
        name: _text(getattr(cfg, name))
        for name in FIELDS
        if not only_changed or getattr(cfg, name) != getattr(default, name)
    }


def to_query_string(cfg: RunConfig) -> str:
    return urlencode(to_query(cfg))


def from_query(params: Mapping[str, str | list[str]]) -> tuple[RunConfig, list[str]]:
    """Config from URL query params, plus a problem list; each field is taken on its own.

    Unknown keys are ignored (other pages put their own keys in the URL). A bad or
    out-of-range value is reported and only that field keeps its default; every other field
    keeps the link's value. An out-of-range value or an impossible combination is reported
    and, of the fields its message names, the one given last in `FIELDS` order goes back to
    its default (the more specific setting, e.g. num_groups rather than norm), until the rest
    is a valid config.
    Each problem says which default is used instead.
    """
    good: dict[str, Any] = {}
    problems: list[str] = []
    for k, v in params.items():
        if k not in FIELDS:
            continue
        v = v[-1] if isinstance(v, list) else v
        try:
            good[k] = _parse(k, v)  # an out-of-range value is left out by the loop below
        except ConfigError as e:
            problems.append(f"{e}. The default {k}={_text(_DEFAULTS[k])} is used instead")
    while True:
        try:
            return from_dict(good), problems
        except ConfigError as e:
            named = [k for k in good if f"{k}=" in str(e)] or list(good)
            drop = max(named, key=list(FIELDS).index)
            problems.append(
                f"{e}. The link's {drop}={_text(good.pop(drop))} is left out: the default "
                f"{drop}={_text(_DEFAULTS[drop])} is used instead"
            )


def parse_query_string(qs: str) -> tuple[RunConfig, list[str]]:
    return from_query(dict(parse_qsl(qs.lstrip("?"), keep_blank_values=True)))


def parse_assignment(text: str) -> tuple[str, str]:
    """Split 'field=value' as given to --set, checking the field name."""
    if "=" not in text:
        raise ConfigError(f"'{text}' should look like field=value")
    k, v = text.split("=", 1)
    k = k.strip()
    if k not in FIELDS:
        raise ConfigError(f"unknown field '{k}': known fields are {', '.join(FIELDS)}")
    return k, v.strip()


def parse_values(name: str, text: str) -> list[Any]:
    """Values for --vary FIELD=V1,V2 (tuple fields use ';' or '/' between values)."""
    if name not in FIELDS:
        raise ConfigError(f"unknown field '{name}': known fields are {', '.join(FIELDS)}")
    sep = ";" if FIELDS[name].kind in ("ints", "layers") else ","
    parts = [p for p in text.replace("/", ";").split(sep)] if sep == ";" else text.split(",")
    vals = [_parse(name, p) for p in parts if p.strip() != ""]
    if not vals:
        raise _bad(name, text)
    return vals


def grid(base: RunConfig, vary: Mapping[str, list[Any]]) -> list[RunConfig]:
    """Every combination of the varied fields over `base` (first field varies slowest)."""
    configs = [base]
    for name, values in vary.items():
        configs = [c.replace(**{name: v}) for c in configs for v in values]
    return configs


@dataclass(frozen=True)
class Preset:
    """A stored comparison: a base config and the fields varied over it."""

    name: str
    description: str
    base: dict[str, Any] = field(default_factory=dict)
    vary: dict[str, list[Any]] = field(default_factory=dict)

    def configs(self) -> list[RunConfig]:
        return grid(
            from_dict(self.base), {k: [_parse(k, v) for v in vs] for k, vs in self.vary.items()}
        )

    def seeded(self, seeds: Iterable[int]) -> list[RunConfig]:
        """The grid once per seed, seed-major: each copy has seed = data_seed = s (initial
        weights, data order and the train/test split all change with the seed, so a lesson's
        verdict over seeds is not the verdict of one split)."""
        grid_ = self.configs()
        return [c.replace(seed=s, data_seed=s) for s in seeds for c in grid_]


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "ioffe_fig1",
            "Ioffe & Szegedy 2015 Fig. 1 at small scale: 3×100 sigmoid MLP on digits, SGD 0.1, "
            "batch 60, with and without BN before each sigmoid",
            base=dict(
                dataset="digits",
                hidden="100,100,100",
                activation="sigmoid",
                optimizer="sgd",
                lr=0.1,
                batch_size=60,
                epochs=20,
            ),
            vary={"norm": ["none", "batch"]},
        ),
        Preset(
            "sigmoid_plateau",
            "ioffe_fig1 trained 7.5× longer (150 epochs, 3,450 steps): the plain sigmoid net "
            "leaves its plateau, long after the BN net",
            base=dict(
                dataset="digits",
                hidden="100,100,100",
                activation="sigmoid",
                optimizer="sgd",
                lr=0.1,
                batch_size=60,
                epochs=150,
                record_every=20,  # every 20 steps: 173 records, the plateau's exit to ±20 steps
            ),
            vary={"norm": ["none", "batch"]},
        ),
        Preset(
            "default",
            "The dashboard's default: the default config with and without BN",
            vary={"norm": ["batch", "none"]},
        ),
        # The lessons: each preset shows one claim about BN on digits (checks.py tests it).
        Preset(
            "faster",
            "BN trains faster: a 3×100 ReLU MLP, SGD 0.1, with and without BN; steps to 90 % "
            "and 95 % test accuracy, and where both end after 20 epochs",
            base=dict(dataset="digits", activation="relu", lr=0.1, epochs=20, record_every=5),
            vary={"norm": ["none", "batch"]},
        ),
        Preset(
            "saturation",
            "A large init (normal, std 1) saturates plain sigmoid/tanh units; BN keeps them "
            "in the linear range",
            base=dict(dataset="digits", init="normal", init_scale=1.0, lr=0.1, epochs=20),
            vary={"activation": ["sigmoid", "tanh"], "norm": ["none", "batch"]},
        ),
        Preset(
            "lr_ladder",
            "Learning rates from 0.1 to 3 (30×) with and without BN: the plain ReLU net breaks "
            "first",
            base=dict(dataset="digits", activation="relu", epochs=5),
            vary={"lr": [0.1, 0.2, 0.5, 1.0, 2.0, 3.0], "norm": ["none", "batch"]},
        ),
        Preset(
            "init_scale",
            "Initial weights scaled from 0.1× to 10× with and without BN: BN trains at every scale",
            base=dict(dataset="digits", activation="relu", lr=0.1, epochs=5),
            vary={"init_scale": [0.1, 0.3, 1.0, 3.0, 10.0], "norm": ["none", "batch"]},
        ),
        Preset(
            "batch_size",
            "Batch sizes 2 to 64 with BatchNorm, LayerNorm and GroupNorm: only BN depends on "
            "the batch",
            base=dict(dataset="digits", activation="relu", lr=0.1, epochs=2),
            vary={"batch_size": [2, 8, 32, 64], "norm": ["batch", "layer", "group"]},
        ),
        Preset(
            "placement",
            "BN before or after the activation, for ReLU and sigmoid: little difference",
            base=dict(dataset="digits", norm="batch", lr=0.1, epochs=10),
            vary={"activation": ["relu", "sigmoid"], "placement": ["before", "after"]},
        ),
        Preset(
            "regularization",
            "300 training samples, batch 10: train–test gaps without BN, with BN, with dropout "
            "0.5 and with both (train accuracy is measured in training mode)",
            base=dict(
                dataset="digits",
                n_samples=300,
                activation="relu",
                lr=0.05,
                batch_size=10,
                epochs=60,
                record_every=5,  # 5 steps of 60 samples: one record per epoch of 300
            ),
            vary={"norm": ["none", "batch"], "dropout": [0.0, 0.5]},
        ),
        Preset(
            "feature_scaling",
            "Every other input feature ×1,000 (inputs on two scales, as 0–1 vs 1–1,000) or not, "
            "with and without BN: at lr 0.1 the plain net diverges on the stretched inputs "
            "(×100 left it at 82.8 % instead at one seed of five)",
            base=dict(dataset="digits", activation="relu", lr=0.1, epochs=5),
            vary={"input_scale": [1.0, 1000.0], "norm": ["none", "batch"]},
        ),
        # Why does BN work? (Santurkar et al. 2018 and after): the measures of config.measures.
        Preset(
            "noisy_bn",
            "Santurkar et al.'s noisy BN: after each BN, noise whose mean and scale change "
            "every step; next to no norm, plain BN and the same noise without BN "
            "(per-unit distributions recorded)",
            base=dict(dataset="digits", activation="relu", lr=0.1, epochs=5, measures="units"),
            vary={"norm": ["none", "batch", "noisy_batch", "noise_only"]},
        ),
        Preset(
            "ics",
            "Internal covariate shift per layer (Santurkar et al.'s ‖G − G′‖ and cos), with "
            "and without BN at the same learning rate, on standardized and on raw (0–16) inputs",
            base=dict(dataset="digits", activation="relu", lr=0.1, epochs=20, measures="ics"),
            vary={"input_norm": ["standardize", "none"], "norm": ["none", "batch"]},
        ),
        Preset(
            "landscape",
            "The loss landscape along the gradient (loss and gradient bands, β-smoothness) and "
            "a 2-D slice at the end, with and without BN at the same learning rate, on "
            "standardized and on raw (0–16) inputs",
            base=dict(dataset="digits", activation="relu", lr=0.1, epochs=20, measures="landscape"),
            vary={"input_norm": ["standardize", "none"], "norm": ["none", "batch"]},
        ),
        Preset(
            "gamma_beta_only",
            "A random 8×64 BN net trained three ways at lr 1: every parameter, only the norms' "
            "γ and β (Frankle et al. 2021: 1,024 numbers), only the last layer (650 numbers)",
            base=dict(
                dataset="digits",
                hidden=",".join(["64"] * 8),
                activation="relu",
                norm="batch",
                lr=1.0,
                epochs=20,
            ),
            vary={"train_only": ["all", "norm", "classifier"]},
        ),
        Preset(
            "gamma_beta_init",
            "BN nets (ReLU and sigmoid, SGD 0.1, 20 epochs): γ starts at 1 and β at 0; what "
            "training makes of them, layer by layer",
            base=dict(dataset="digits", norm="batch", lr=0.1, epochs=20),
            vary={"activation": ["relu", "sigmoid"]},
        ),
        Preset(
            "no_norm",
            "16 ReLU layers × 64 at lr 0.3, without and with BN: PyTorch's default init or "
            "Kaiming's, with and without adaptive gradient clipping (λ 0.01, Brock et al. 2021)",
            base=dict(
                dataset="digits",
                hidden=",".join(["64"] * 16),
                activation="relu",
                lr=0.3,
                epochs=10,
            ),
            vary={"norm": ["none", "batch"], "init": ["default", "kaiming"], "agc": [0.0, 0.01]},
        ),
        Preset(
            "bn_gradients",
            "4 and 16 ReLU layers × 64 with Kaiming init, without and with BN: each layer's "
            "gradient norm at the first step (BN's gradients grow towards the input with depth)",
            base=dict(dataset="digits", activation="relu", init="kaiming", lr=0.1, epochs=3),
            vary={"hidden": ["64," * 3 + "64", "64," * 15 + "64"], "norm": ["none", "batch"]},
        ),
    )
}


value_text = _text  # public name: a value as written on the CLI and in URLs
