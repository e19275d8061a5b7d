"""The experiment definition: load config.yaml, apply overrides, validate every key.

A resolved config is a plain nested dict. Every key it may hold is declared in SPEC
with its type, so a typo or a wrong type fails with one line naming the key and what
was expected, before anything is trained.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message is one line for the user."""


# Layer types a config may use (Keras class names). Checked here, without importing Keras,
# so a typo fails in milliseconds; the layer's own arguments are checked by Keras at build.
LAYER_TYPES = (
    "Activation", "AveragePooling2D", "BatchNormalization", "Conv2D", "Dense",
    "DepthwiseConv2D", "Dropout", "Flatten", "GaussianNoise", "GlobalAveragePooling2D",
    "GlobalMaxPooling2D", "LayerNormalization", "LeakyReLU", "MaxPooling2D", "ReLU",
    "RandomRotation", "RandomTranslation", "RandomZoom", "Reshape", "SeparableConv2D",
    "SpatialDropout2D",
)

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "nadam", "adagrad", "adadelta")
DATASETS = ("mnist", "fashion-mnist")

# key -> (type, default). Types: int, float, bool, str, 'int?' (int or null),
# 'float?', 'str?', 'shape' (list of ints), 'layers', or a tuple of allowed strings.
SPEC: dict[str, tuple] = {
    "name": ("str", "custom"),
    "description": ("str", ""),
    "expected_test_accuracy": ("float?", None),
    "data.dataset": (DATASETS, "mnist"),
    "data.normalize": ("bool", True),
    "data.train_limit": ("int?", None),
    "data.test_limit": ("int?", None),
    "data.validation_split": ("float", 0.1),
    "data.holdout_fraction": ("float", 0.1),
    "data.verify": ("bool", True),
    "model.input_shape": ("shape", [28, 28, 1]),
    "model.layers": ("layers", None),
    "train.optimizer": (OPTIMIZERS, "adam"),
    "train.learning_rate": ("float", 0.001),
    "train.momentum": ("float", 0.0),
    "train.loss": (("sparse_categorical_crossentropy",), "sparse_categorical_crossentropy"),
    "train.batch_size": ("int", 128),
    "train.epochs": ("int", 12),
    "train.seed": ("int", 42),
    "train.shuffle": ("bool", True),
    "train.early_stopping.enabled": ("bool", False),
    "train.early_stopping.monitor": (("val_loss", "val_accuracy", "loss", "accuracy"), "val_loss"),
    "train.early_stopping.patience": ("int", 3),
    "train.early_stopping.min_delta": ("float", 0.0),
    "train.early_stopping.restore_best_weights": ("bool", True),
    "train.lr_decay.enabled": ("bool", False),
    "train.lr_decay.monitor": (("val_loss", "val_accuracy", "loss", "accuracy"), "val_loss"),
    "train.lr_decay.factor": ("float", 0.5),
    "train.lr_decay.patience": ("int", 2),
    "train.lr_decay.min_lr": ("float", 1e-5),
    "runtime.deterministic": ("bool", False),
    "runtime.eval_batch_size": ("int", 1024),
    "runtime.jit_compile": ("bool", False),
    "runtime.steps_per_execution": ("int", 8),
    "runtime.intra_op_threads": ("int", 0),
    "runtime.inter_op_threads": ("int", 0),
}

# Value ranges checked after the types: key -> (predicate, what is expected).
RANGES = {
    "data.train_limit": (lambda v: v is None or v > 0, "a positive integer or null"),
    "data.test_limit": (lambda v: v is None or v > 0, "a positive integer or null"),
    "data.validation_split": (lambda v: 0.0 <= v < 1.0, "a fraction in [0, 1)"),
    "data.holdout_fraction": (lambda v: 0.0 < v < 1.0, "a fraction in (0, 1)"),
    "train.learning_rate": (lambda v: v > 0, "a positive number"),
    "train.batch_size": (lambda v: v > 0, "a positive integer"),
    "train.epochs": (lambda v: v > 0, "a positive integer"),
    "train.seed": (lambda v: v >= 0, "a non-negative integer"),
    "train.lr_decay.factor": (lambda v: 0.0 < v < 1.0, "a factor in (0, 1)"),
    "runtime.eval_batch_size": (lambda v: v > 0, "a positive integer"),
    "runtime.steps_per_execution": (lambda v: v > 0, "a positive integer"),
    "runtime.intra_op_threads": (lambda v: v >= 0, "0 (default) or a thread count"),
    "runtime.inter_op_threads": (lambda v: v >= 0, "0 (default) or a thread count"),
}

VALID_KEYS = tuple(SPEC)


def default_config() -> dict:
    """The SPEC defaults as a nested dict (model.layers left empty)."""
    config: dict = {}
    for key, (_, default) in SPEC.items():
        _set_path(config, key, copy.deepcopy(default))
    return config


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> dict:
    """Read a YAML config, apply `key=value` overrides, validate, return the resolved dict."""
    import yaml

    raw: dict = {}
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"config file {path} not found; pass an existing file to --config") from None
        except OSError as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark else ""
            raise ConfigError(f"config file {path} is not valid YAML{where}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config file {path} must hold a mapping of keys, not {type(raw).__name__}")
    return resolve_config(raw, overrides)


def resolve_config(raw: dict, overrides: list[str] = ()) -> dict:
    """Merge `raw` over the defaults, apply overrides, validate; raise ConfigError on any problem."""
    flat = _flatten(raw)
    for key in flat:
        if key not in SPEC:
            raise ConfigError(f"unknown config key '{key}'; valid keys: {', '.join(VALID_KEYS)}")
    for item in overrides:
        key, value = parse_override(item)
        flat[key] = value
    config = default_config()
    for key, value in flat.items():
        _set_path(config, key, value)
    validate_config(config)
    return config


def parse_override(item: str) -> tuple[str, object]:
    """`train.epochs=3` -> ('train.epochs', 3); the value is read as YAML (3, 0.5, null, [..])."""
    import yaml

    if "=" not in item:
        raise ConfigError(f"override '{item}' must look like KEY=VALUE, e.g. train.epochs=3")
    key, text = item.split("=", 1)
    key = key.strip()
    if key not in SPEC:
        raise ConfigError(f"unknown config key '{key}'; valid keys: {', '.join(VALID_KEYS)}")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        raise ConfigError(f"value of '{key}' cannot be read: {text!r}") from None
    return key, value


def validate_config(config: dict) -> None:
    for key, (kind, _) in SPEC.items():
        value = get_path(config, key)
        if kind in ("float", "float?") and isinstance(value, str):
            value = _yaml11_float(value)  # PyYAML reads 1e-3 as a string (YAML 1.1)
            _set_path(config, key, value)
        expected = _check_type(kind, value)
        if expected:
            raise ConfigError(f"config key '{key}' must be {expected}, got {value!r}")
        if key in RANGES:
            ok, expected = RANGES[key]
            if not ok(value):
                raise ConfigError(f"config key '{key}' must be {expected}, got {value!r}")
        if kind == "float" and isinstance(value, int):
            _set_path(config, key, float(value))
    _check_layers(config["model"]["layers"])


def _yaml11_float(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def _check_type(kind, value) -> str | None:
    """Return what was expected when `value` does not fit `kind`, else None."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    is_num = is_int or isinstance(value, float)
    if isinstance(kind, tuple):
        return None if value in kind else "one of " + ", ".join(kind)
    checks = {
        "str": (isinstance(value, str), "a string"),
        "str?": (value is None or isinstance(value, str), "a string or null"),
        "int": (is_int, "an integer"),
        "int?": (value is None or is_int, "an integer or null"),
        "float": (is_num, "a number"),
        "float?": (value is None or is_num, "a number or null"),
        "bool": (isinstance(value, bool), "true or false"),
        "shape": (
            isinstance(value, list) and len(value) in (2, 3)
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value),
            "a list of 2 or 3 positive integers, e.g. [28, 28, 1]",
        ),
        "layers": (isinstance(value, list) and len(value) > 0, "a non-empty list of layers"),
    }
    ok, expected = checks[kind]
    return None if ok else expected


def _check_layers(layers: list) -> None:
    for index, layer in enumerate(layers):
        key = f"model.layers[{index}]"
        if not isinstance(layer, dict) or "type" not in layer:
            raise ConfigError(f"config key '{key}' must be a mapping with a 'type', e.g. {{type: Dense, units: 10}}")
        if layer["type"] not in LAYER_TYPES:
            raise ConfigError(
                f"config key '{key}.type' must be one of {', '.join(LAYER_TYPES)}, got {layer['type']!r}"
            )
        for arg in layer:
            if not isinstance(arg, str):
                raise ConfigError(f"config key '{key}' has a non-string argument name {arg!r}")


def get_path(config: dict, key: str):
    node = config
    for part in key.split("."):
        node = node[part]
    return node


def _set_path(config: dict, key: str, value) -> None:
    parts = key.split(".")
    node = config
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _flatten(raw: dict, prefix: str = "") -> dict:
    """Nested mapping -> {'a.b.c': value}; stops at keys SPEC declares as leaves."""
    flat = {}
    for key, value in raw.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path not in SPEC:
            if not value:
                raise ConfigError(f"config key '{path}' is empty; remove it or give it keys")
            flat.update(_flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def config_to_json(config: dict) -> str:
    """Canonical JSON (sorted keys, no spaces): the form that is hashed and embedded in kernels."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))
