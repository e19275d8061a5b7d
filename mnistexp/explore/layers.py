"""Model-layer surgery for the derived search parameters (model.conv_blocks, model.dense_layers, ...).

Each derived parameter is a documented transformation of the config's model.layers list
(see params.DERIVED); the result is validated afterwards like any config.
"""

from __future__ import annotations

import copy

from mnistexp.experiment.config import ConfigError

CONV_TYPES = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D")
POOL_TYPES = ("MaxPooling2D", "AveragePooling2D")


def _positive_int(key, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{key} must be a non-negative integer, got {value!r}")
    return value


def _split(layers):
    """(layers before Flatten, Flatten and after); a model without Flatten is all head."""
    for i, layer in enumerate(layers):
        if layer["type"] in ("Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D"):
            return layers[:i], layers[i:]
    return layers, []


def transform_layers(key: str, layers: list, value) -> list:
    """A copy of `layers` with the derived parameter `key` set to `value`."""
    layers = copy.deepcopy(layers)
    head, tail = _split(layers)
    if key == "model.conv_blocks":
        return _conv_blocks(key, head, tail, value)
    if key == "model.conv_filters":
        n = _positive_int(key, value)
        convs = [layer for layer in head if layer["type"] in CONV_TYPES and "filters" in layer]
        if not convs or n == 0:
            raise ConfigError("model.conv_filters needs a positive value and a Conv2D layer before Flatten")
        scale = n / int(convs[0]["filters"])
        for layer in convs:
            layer["filters"] = max(1, int(round(int(layer["filters"]) * scale)))
        return head + tail
    if key in ("model.kernel_size", "model.pool_size"):
        n = _positive_int(key, value)
        types, arg = (CONV_TYPES, "kernel_size") if key == "model.kernel_size" else (POOL_TYPES, "pool_size")
        for layer in layers:
            if layer["type"] in types:
                layer[arg] = n
        return layers
    if key == "model.dropout":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ConfigError(f"model.dropout must be a rate in [0, 1), got {value!r}")
        for layer in layers:
            if layer["type"] in ("Dropout", "SpatialDropout2D"):
                layer["rate"] = float(value)
        return layers
    return _dense(key, head, tail, value)


def _conv_blocks(key, head, tail, value):
    n = _positive_int(key, value)
    convs = [i for i, layer in enumerate(head) if layer["type"] in CONV_TYPES]
    pools = [i for i, layer in enumerate(head) if layer["type"] in POOL_TYPES]
    if not convs:
        raise ConfigError("model.conv_blocks needs a config with a Conv2D layer before Flatten")
    conv = head[convs[0]]
    pool = head[pools[0]] if pools else None
    end = (pools[-1] if pools else convs[-1]) + 1
    blocks = []
    for i in range(n):
        layer = dict(conv)
        if "filters" in layer:
            layer["filters"] = int(conv["filters"]) * 2**i
        blocks += [layer] + ([dict(pool)] if pool else [])
    return head[: convs[0]] + blocks + head[end:] + tail


def _dense(key, head, tail, value):
    """Dense layers after Flatten: tail = [Flatten, hidden..., output Dense (+ anything after)]."""
    if not tail:
        raise ConfigError(f"{key} needs a config with a Flatten layer")
    dense = [i for i, layer in enumerate(tail) if layer["type"] == "Dense"]
    if not dense:
        raise ConfigError(f"{key} needs a config with an output Dense layer after Flatten")
    out = dense[-1]
    hidden = tail[1:out]
    n = _positive_int(key, value)
    if key == "model.dense_units":
        for layer in hidden:
            if layer["type"] == "Dense":
                layer["units"] = n
        return head + tail
    first = [i for i, layer in enumerate(hidden) if layer["type"] == "Dense"]  # model.dense_layers
    if first:
        start = first[0]
        stop = first[1] if len(first) > 1 else len(hidden)
        template = hidden[start:stop]
    else:
        template = [{"type": "Dense", "units": 128, "activation": "relu"}]
    return head + tail[:1] + [dict(layer) for _ in range(n) for layer in template] + tail[out:]
