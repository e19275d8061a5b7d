"""Build and compile the Keras model that a config's `model.layers` list describes."""

from __future__ import annotations

from .config import ConfigError


def build_model(model_config: dict, train_config: dict, runtime_config: dict | None = None):
    """A compiled keras.Sequential model: one Keras layer per entry of `model.layers`."""
    import keras

    runtime_config = runtime_config or {}
    layers = [keras.Input(shape=tuple(model_config["input_shape"]))]
    mixed = keras.mixed_precision.global_policy().compute_dtype != "float32"
    last = len(model_config["layers"]) - 1
    for index, spec in enumerate(model_config["layers"]):
        kwargs = {k: v for k, v in spec.items() if k != "type"}
        if mixed and index == last and "dtype" not in kwargs:
            # Mixed precision keeps the output layer (softmax, then the loss) in float32, as
            # Keras' mixed-precision guide does: bf16 probabilities would round the loss.
            kwargs["dtype"] = "float32"
        layer_class = getattr(keras.layers, spec["type"])
        try:
            layers.append(layer_class(**kwargs))
        except (TypeError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"config key 'model.layers[{index}]' ({spec['type']}) is invalid: {reason}") from None
    try:
        model = keras.Sequential(layers, name=_model_name(model_config))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config key 'model.layers' does not form a valid model: {_first_line(exc)}") from None
    except Exception as exc:
        # What config.check_model cannot foresee (the machine's free memory): a weight tensor
        # that does not fit is a config problem, told in one line, not a TensorFlow traceback.
        if isinstance(exc, MemoryError | OverflowError) or type(exc).__name__ == "ResourceExhaustedError":
            raise ConfigError(
                f"config key 'model.layers' describes a model too large for this machine's memory "
                f"({type(exc).__name__}); use fewer units or filters"
            ) from None
        raise
    model.compile(
        optimizer=make_optimizer(train_config),
        loss=train_config["loss"],
        metrics=["accuracy"],
        # "auto" is Keras' rule: XLA on a GPU (and always on JAX), not on a TF CPU.
        jit_compile=runtime_config.get("jit_compile", "auto"),
        # Several batches per call into the compiled train function: less Python per step.
        steps_per_execution=int(runtime_config.get("steps_per_execution", 1)),
    )
    return model


def make_optimizer(train_config: dict):
    import keras

    name = train_config["optimizer"]
    kwargs = {"learning_rate": train_config["learning_rate"]}
    if name in ("sgd", "rmsprop") and train_config.get("momentum"):
        kwargs["momentum"] = train_config["momentum"]
    classes = {
        "adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
        "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop,
        "nadam": keras.optimizers.Nadam, "adagrad": keras.optimizers.Adagrad,
        "adadelta": keras.optimizers.Adadelta,
    }
    return classes[name](**kwargs)


def count_params(model) -> int:
    return int(model.count_params())


def _model_name(model_config: dict) -> str:
    return "mnistexp_model"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
