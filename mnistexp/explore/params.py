"""The search space: the --param grammar, the grid, Optuna suggestions, and applying a point to a config."""

from __future__ import annotations

import copy
import itertools
import json

from mnistexp.experiment.config import SPEC, ConfigError, parse_override, resolve_config

from .layers import transform_layers

SAMPLERS = ("grid", "random", "tpe")
METRICS = ("val_accuracy", "test_accuracy")
METRIC_KEYS = {"val_accuracy": "final_val_accuracy", "test_accuracy": "test_accuracy"}  # in record.metrics

# Parameters that have no config key of their own: each is a documented transformation of
# model.layers (or of train.lr_decay.*), applied in this order.
DERIVED = {
    "model.conv_blocks": "number of conv blocks: N copies of [first Conv2D, first pooling layer] "
                         "(filters doubling per block), then the layers that followed the last pooling",
    "model.conv_filters": "filters of the first Conv2D; every conv layer is scaled by the same factor",
    "model.kernel_size": "kernel_size of every Conv2D",
    "model.pool_size": "pool_size of every pooling layer",
    "model.dense_layers": "number of hidden Dense layers after Flatten (copies of the first one, "
                          "each with its Dropout)",
    "model.dense_units": "units of every hidden Dense layer after Flatten",
    "model.dropout": "rate of every Dropout layer",
    "train.decay": "0 = no LR decay; f in (0, 1) = ReduceLROnPlateau enabled with factor f",
}

# The original system's comma-list flags: (long flag, short flag, parameter).
GRID_FLAGS = (
    ("rate", "r", "train.learning_rate"),
    ("batch", "b", "train.batch_size"),
    ("layers", "l", "model.dense_layers"),
    ("conv", "c", "model.conv_filters"),
    ("opt", "o", "train.optimizer"),
    ("dropout", "d", "model.dropout"),
    ("epochs", "e", "train.epochs"),
    ("dense", "z", "model.dense_units"),
    ("kernel", "k", "model.kernel_size"),
    ("pool", "p", "model.pool_size"),
    ("decay", "y", "train.decay"),
    ("mom", "m", "train.momentum"),
    ("convlayers", "v", "model.conv_blocks"),
)


class ExploreError(ConfigError):
    """A search that cannot start; one line for the user."""


class ExploreInterrupted(RuntimeError):
    """Ctrl-C: the study is saved and resumes with the same command."""


def parse_param(item: str) -> tuple[str, dict]:
    """`KEY=v1,v2` (choices), `KEY=float:LOW:HIGH[:log]` or `KEY=int:LOW:HIGH[:log]`."""
    import yaml

    if "=" not in item:
        raise ExploreError(f"--param '{item}' must look like KEY=v1,v2 or KEY=float:LOW:HIGH[:log]")
    key, text = (part.strip() for part in item.split("=", 1))
    check_param_name(key)
    kind = text.split(":", 1)[0]
    if kind in ("float", "int") and ":" in text:
        parts = text.split(":")
        if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] != "log"):
            raise ExploreError(f"--param {key}: range must be {kind}:LOW:HIGH or {kind}:LOW:HIGH:log, got {text!r}")
        try:
            low, high = (float(p) if kind == "float" else int(p) for p in parts[1:3])
        except ValueError:
            raise ExploreError(f"--param {key}: bounds of {text!r} must be {kind} numbers") from None
        log = len(parts) == 4
        if not low < high or (log and low <= 0):
            raise ExploreError(f"--param {key}: need LOW < HIGH (and LOW > 0 for log), got {text!r}")
        return key, {"type": kind, "low": low, "high": high, "log": log}
    values = []
    for raw in text.split(","):
        if not raw.strip():
            raise ExploreError(f"--param {key}: empty value in {text!r}")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ExploreError(f"--param {key}: value {raw!r} cannot be read") from None
        if not (value is None or isinstance(value, (str, int, float, bool))):
            raise ExploreError(f"--param {key}: value {raw!r} must be a number, string or boolean")
        values.append(value)
    if len(set(map(repr, values))) != len(values):
        raise ExploreError(f"--param {key}: repeated value in {text!r}")
    return key, {"type": "choice", "values": values}


def check_param_name(key: str) -> None:
    if key in DERIVED:
        return
    if key not in SPEC or key in ("model.layers", "model.input_shape", "name", "description"):
        searchable = [k for k in SPEC if k.startswith(("data.", "train.", "runtime."))] + list(DERIVED)
        raise ExploreError(f"cannot search '{key}'; searchable keys: {', '.join(searchable)}")


def grid_points(space: dict) -> list[dict]:
    names = sorted(space)
    for name in names:
        if space[name]["type"] != "choice":
            raise ExploreError(f"--sampler grid needs a list of values for {name}, not a range; "
                               "use random or tpe for ranges")
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(space[n]["values"] for n in names))]


def suggest(trial, space: dict) -> dict:
    params = {}
    for name in sorted(space):
        dist = space[name]
        if dist["type"] == "choice":
            params[name] = trial.suggest_categorical(name, dist["values"])
        elif dist["type"] == "int":
            params[name] = trial.suggest_int(name, dist["low"], dist["high"], log=dist["log"])
        else:
            params[name] = trial.suggest_float(name, dist["low"], dist["high"], log=dist["log"])
    return params


def apply_params(base: dict, params: dict) -> dict:
    """The base config with the trial's parameters applied and validated (ConfigError if not)."""
    config = copy.deepcopy(base)
    overrides = []
    for key, value in params.items():
        if key not in DERIVED:
            overrides.append(f"{key}={json.dumps(value)}")
            parse_override(overrides[-1])
    layers = config["model"]["layers"]
    for key in DERIVED:
        if key in params:
            value = params[key]
            if key == "train.decay":
                if not isinstance(value, (int, float)) or not 0 <= value < 1:
                    raise ConfigError(f"train.decay must be 0 (off) or a factor in (0, 1), got {value!r}")
                config["train"]["lr_decay"]["enabled"] = value > 0
                if value > 0:
                    config["train"]["lr_decay"]["factor"] = float(value)
            else:
                layers = transform_layers(key, layers, value)
    config["model"]["layers"] = layers
    return resolve_config(config, overrides)
