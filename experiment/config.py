"""The experiment definition: load config.yaml, apply overrides, validate every key.

A resolved config is a plain nested dict. Every key it may hold is declared in SPEC
with its type, so a typo or a wrong type fails with one line naming the key and what
was expected, before anything is trained.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
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
N_CLASSES = {"mnist": 10, "fashion-mnist": 10}

# The canonical model (config.yaml's model.layers): the default for a config file that
# leaves model.layers out. tests/test_config.py checks that the two never drift apart.
CANONICAL_LAYERS = [
    {"type": "Conv2D", "filters": 32, "kernel_size": 3, "activation": "relu"},
    {"type": "MaxPooling2D", "pool_size": 2},
    {"type": "Conv2D", "filters": 64, "kernel_size": 3, "activation": "relu"},
    {"type": "MaxPooling2D", "pool_size": 2},
    {"type": "Dropout", "rate": 0.25},
    {"type": "Flatten"},
    {"type": "Dense", "units": 128, "activation": "relu"},
    {"type": "Dropout", "rate": 0.5},
    {"type": "Dense", "units": 10, "activation": "softmax"},
]

# Integers go to TensorFlow as int32 (batch sizes, thread counts); anything larger fails
# deep inside Keras with OverflowError, so the bound is checked here.
INT_MAX = 2**31 - 1
SEED_MAX = 2**32 - 1  # numpy and TF seeds are uint32
# Sizes no MNIST model on one machine can have: weights (and each layer's activations for
# one batch, in floats) beyond this are refused before anything is built.
MAX_PARAMS = 2**31
MAX_BATCH_ACTIVATIONS = 2**31

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
    "model.layers": ("layers", CANONICAL_LAYERS),
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
    "runtime.backend": (("auto", "tensorflow", "jax"), "auto"),
    "runtime.mixed_precision": (("auto", "float32", "mixed_bfloat16", "mixed_float16"), "auto"),
    "runtime.deterministic": ("bool", False),
    "runtime.eval_batch_size": ("int", 1024),
    "runtime.jit_compile": ("bool|auto", "auto"),
    "runtime.steps_per_execution": ("int", 8),
    "runtime.intra_op_threads": ("int", 0),
    "runtime.inter_op_threads": ("int", 0),
    "runtime.gc_pause": ("bool", True),
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
    """The SPEC defaults as a nested dict: the canonical experiment, named 'custom'.

    A config file or raw dict is merged onto this, so keys left out keep the canonical
    values (config.yaml); only name, description and expected_test_accuracy, which describe
    the canonical experiment rather than a variant of it, fall back to neutral values.
    """
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
            raise ConfigError(unknown_key_message(key))
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
        raise ConfigError(unknown_key_message(key))
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        raise ConfigError(f"value of '{key}' cannot be read: {text!r}") from None
    return key, value


def unknown_key_message(key: str) -> str:
    """One line for a mistyped key: the closest valid keys, not all of them."""
    close = _closest(key, VALID_KEYS, 0.6)
    if not close:  # 'epochs' typed without its section, or under the wrong one
        leaves = {k.rsplit(".", 1)[-1]: k for k in VALID_KEYS}
        close = [leaves[m] for m in _closest(key.rsplit(".", 1)[-1], list(leaves), 0.75)]
    if close:
        return f"unknown config key '{key}'; did you mean {' or '.join(close)}?"
    sections = sorted({k.split(".", 1)[0] for k in VALID_KEYS if "." in k})
    return (f"unknown config key '{key}'; keys are dotted paths under {', '.join(sections)} "
            "(see config.yaml), e.g. train.epochs")


def _closest(word: str, candidates, cutoff: float) -> list[str]:
    """The best match, plus any as good as it (a tie), at most 3."""
    scored = sorted(((difflib.SequenceMatcher(None, word, c).ratio(), c) for c in candidates), reverse=True)
    scored = [(score, c) for score, c in scored if score >= cutoff]
    return [c for score, c in scored[:3] if score >= scored[0][0] - 0.02] if scored else []


def validate_config(config: dict) -> None:
    for key, (kind, _) in SPEC.items():
        value = get_path(config, key)
        if kind in ("float", "float?") and isinstance(value, str):
            value = _yaml11_float(value)  # PyYAML reads 1e-3 as a string (YAML 1.1)
            _set_path(config, key, value)
        expected = _check_type(kind, value)
        if expected:
            raise ConfigError(f"config key '{key}' must be {expected}, got {_short(value)}")
        limit = SEED_MAX if key == "train.seed" else INT_MAX
        if kind in ("int", "int?") and value is not None and abs(value) > limit:
            raise ConfigError(f"config key '{key}' must be an integer up to {limit}, got {_short(value)}")
        if kind in ("float", "float?") and isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"config key '{key}' must be a finite number, got {value!r}")
        if key in RANGES:
            ok, expected = RANGES[key]
            if not ok(value):
                raise ConfigError(f"config key '{key}' must be {expected}, got {_short(value)}")
        if kind == "float" and isinstance(value, int):
            if abs(value) > 1e300:  # float() of a huge YAML integer raises OverflowError
                raise ConfigError(f"config key '{key}' must be a finite number, got {_short(value)}")
            _set_path(config, key, float(value))
    _check_layers(config["model"]["layers"])
    check_model(config)


def _short(value) -> str:
    """repr of a config value, cut short: a 10**300 or a pasted blob stays one readable line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:40] + f"... ({len(text)} characters)"


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
        "bool|auto": (isinstance(value, bool) or value == "auto", "true, false or auto"),
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


# ---------------------------------------------------------------- model sizes and shapes
#
# A small, Keras-free shape calculator for the layer types above (channels last, Keras
# defaults), so that a model that cannot fit MNIST (10 outputs) or any machine is refused
# in milliseconds, before a run folder exists. Whatever it cannot work out (an argument it
# does not know, a layer Keras would reject anyway) it leaves to Keras at build time.

_SHAPE_KEEPING = {
    "Activation", "Dropout", "GaussianNoise", "LeakyReLU", "ReLU", "RandomRotation",
    "RandomTranslation", "RandomZoom", "SpatialDropout2D",
}
# Arguments that must be positive integers (or lists of them) when present.
_POSITIVE_INT_ARGS = ("units", "filters", "kernel_size", "pool_size", "strides", "depth_multiplier",
                      "dilation_rate")


class _Unknown(Exception):
    """The calculator cannot follow this layer; Keras will judge it at build time."""


def _pair(value) -> tuple[int, int]:
    values = list(value) if isinstance(value, list | tuple) else [value, value]
    if len(values) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise _Unknown
    return values[0], values[1]


def _check_layer_args(index: int, spec: dict) -> None:
    for arg in _POSITIVE_INT_ARGS:
        value = spec.get(arg)
        if value is None:  # absent, or Keras' own "use the default" (strides: null)
            continue
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= INT_MAX
                                for v in items):
            raise ConfigError(f"config key 'model.layers[{index}].{arg}' ({spec['type']}) must be a positive "
                              f"integer up to {INT_MAX}, got {_short(value)}")


def _conv_out(size: int, kernel: int, stride: int, padding: str, dilation: int = 1) -> int:
    if padding == "same":
        return -(-size // stride)
    if padding != "valid":
        raise _Unknown
    return (size - dilation * (kernel - 1) - 1) // stride + 1


def _layer_output(spec: dict, shape: tuple, index: int) -> tuple[tuple, int]:
    """(output shape without the batch axis, number of weights) of one layer."""
    kind = spec["type"]
    if kind in _SHAPE_KEEPING:
        return shape, 0
    if kind == "Flatten":
        return (math.prod(shape),), 0
    if kind == "Dense":
        units = spec.get("units")
        if not isinstance(units, int):
            raise _Unknown
        bias = units if spec.get("use_bias", True) else 0
        return shape[:-1] + (units,), shape[-1] * units + bias
    if kind == "Reshape":
        target = spec.get("target_shape")
        if not isinstance(target, list | tuple) or not all(isinstance(v, int) for v in target):
            raise _Unknown
        target = tuple(target)
        if -1 in target:
            known = math.prod(v for v in target if v != -1)
            target = tuple(math.prod(shape) // known if v == -1 else v for v in target) if known else target
        if math.prod(target) != math.prod(shape):
            raise ConfigError(f"config key 'model.layers[{index}]' (Reshape) cannot reshape {_dims(shape)} "
                              f"({math.prod(shape)} values) to {_dims(target)}")
        return target, 0
    if kind in ("BatchNormalization", "LayerNormalization"):
        return shape, (4 if kind == "BatchNormalization" else 2) * shape[-1]
    if kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        if len(shape) != 3:
            raise _Unknown
        return ((1, 1, shape[2]) if spec.get("keepdims") else (shape[2],)), 0
    if len(shape) != 3 or spec.get("data_format") not in (None, "channels_last"):
        raise _Unknown
    height, width, channels = shape
    padding = spec.get("padding", "valid")
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        pool = _pair(spec.get("pool_size", 2))
        strides = _pair(spec.get("strides") or pool)
        out = (_conv_out(height, pool[0], strides[0], padding), _conv_out(width, pool[1], strides[1], padding))
        return _spatial(out, channels, shape, spec, index), 0
    if kind in ("Conv2D", "SeparableConv2D", "DepthwiseConv2D"):
        if "kernel_size" not in spec or (kind != "DepthwiseConv2D" and not isinstance(spec.get("filters"), int)):
            raise _Unknown
        kernel = _pair(spec["kernel_size"])
        strides = _pair(spec.get("strides", 1))
        dilation = _pair(spec.get("dilation_rate", 1))
        out = (_conv_out(height, kernel[0], strides[0], padding, dilation[0]),
               _conv_out(width, kernel[1], strides[1], padding, dilation[1]))
        bias = spec.get("use_bias", True)
        multiplier = spec.get("depth_multiplier", 1)
        window = kernel[0] * kernel[1]
        if kind == "Conv2D":
            filters = spec["filters"]
            weights = window * channels * filters + (filters if bias else 0)
        elif kind == "SeparableConv2D":
            filters = spec["filters"]
            weights = window * channels * multiplier + channels * multiplier * filters + (filters if bias else 0)
        else:
            filters = channels * multiplier
            weights = window * channels * multiplier + (filters if bias else 0)
        return _spatial(out, filters, shape, spec, index), weights
    raise _Unknown


def _spatial(out: tuple, channels: int, before: tuple, spec: dict, index: int) -> tuple:
    if out[0] < 1 or out[1] < 1:
        raise ConfigError(
            f"config key 'model.layers[{index}]' ({spec['type']}) would shrink the {_dims(before[:2])} "
            "feature maps to nothing; remove a pooling or convolution layer, or use padding: same"
        )
    return (out[0], out[1], channels)


def _dims(shape) -> str:
    return "x".join(str(v) for v in shape)


def layer_shapes(model_config: dict) -> list[tuple[tuple, int]] | None:
    """[(output shape, weights)] per layer, or None when some layer cannot be followed.

    Raises ConfigError for a layer argument of the wrong kind or a shape that cannot work.
    """
    shape = tuple(model_config["input_shape"])
    rows = []
    for index, spec in enumerate(model_config["layers"]):
        _check_layer_args(index, spec)
        try:
            shape, weights = _layer_output(spec, shape, index)
        except _Unknown:
            return None
        rows.append((shape, weights))
    return rows


def estimate_params(model_config: dict) -> int | None:
    """The model's weight count (trainable or not), as Keras counts it; None if unknown."""
    rows = layer_shapes(model_config)
    return None if rows is None else sum(weights for _, weights in rows)


def check_model(config: dict) -> None:
    """Refuse a model that cannot classify this data set or cannot fit a machine, up front."""
    model = config["model"]
    rows = layer_shapes(model)
    if rows is None:
        return
    dataset = config["data"]["dataset"]
    n_classes = N_CLASSES.get(dataset, 10)
    last = len(rows) - 1
    output = rows[-1][0]
    if len(output) != 1:
        raise ConfigError(
            f"config key 'model.layers' ends with output shape {_dims(output)} per image; a classifier "
            f"must end with {n_classes} values, e.g. Flatten then {{type: Dense, units: {n_classes}, "
            "activation: softmax}"
        )
    if output[0] != n_classes:
        units_at = max((i for i, spec in enumerate(model["layers"]) if "units" in spec), default=last)
        raise ConfigError(
            f"config key 'model.layers[{units_at}].units' must be {n_classes}, the number of {dataset} "
            f"classes (the model outputs {output[0]} values per image)"
        )
    batch = max(config["train"]["batch_size"], config.get("runtime", {}).get("eval_batch_size", 0))
    for index, (shape, weights) in enumerate(rows):
        if weights > MAX_PARAMS:
            raise ConfigError(
                f"config key 'model.layers[{index}]' ({model['layers'][index]['type']}) has {weights:,} "
                f"weights, more than {MAX_PARAMS:,}; make it smaller (fewer units or filters)"
            )
        values = math.prod(shape) * batch
        if values > MAX_BATCH_ACTIVATIONS:
            raise ConfigError(
                f"config key 'model.layers[{index}]' ({model['layers'][index]['type']}) outputs "
                f"{_dims(shape)} values per image, {values:,} for a batch of {batch}, more than "
                f"{MAX_BATCH_ACTIVATIONS:,}; use fewer filters or units, or a smaller train.batch_size "
                "/ runtime.eval_batch_size"
            )
    total = sum(weights for _, weights in rows)
    if total > MAX_PARAMS:
        raise ConfigError(f"config key 'model.layers' describes {total:,} weights, more than {MAX_PARAMS:,}; "
                          "make the model smaller")


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
