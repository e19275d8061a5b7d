"""Train and evaluate: seeded Keras fit with per-epoch logging, numpy metrics on the test set."""

from __future__ import annotations

import gc
import importlib.util
import os
import sys
import time

import numpy as np

from .config import ConfigError

# Keras backends a run may use. PyTorch was measured and left out (issue 16: 4-5x more CPU
# per image than TensorFlow on these CPUs, eager or with torch.compile).
BACKENDS = ("tensorflow", "jax")


def choose_backend(requested: str = "auto") -> str:
    """The Keras backend for `runtime.backend`: `auto` is KERAS_BACKEND if set, else the first
    of BACKENDS installed here. Once Keras is imported its backend is fixed for the process."""
    if "keras" in sys.modules:
        import keras

        loaded = keras.backend.backend()
        if requested not in ("auto", loaded):
            raise ConfigError(f"config key 'runtime.backend' is {requested}, but Keras already runs on {loaded} "
                              "in this process; run it in a new process or set runtime.backend=auto")
        return loaded
    if requested == "auto":
        named = os.environ.get("KERAS_BACKEND", "")
        if named in BACKENDS:
            return named
        for name in BACKENDS:
            if importlib.util.find_spec(name) is not None:
                return name
        raise ConfigError("no Keras backend is installed here; pip install tensorflow (or jax)")
    if importlib.util.find_spec(requested) is None:
        raise ConfigError(f"config key 'runtime.backend' is {requested}, which is not installed here; "
                          f"pip install {requested} or set runtime.backend=auto")
    return requested


def select_backend(runtime_config: dict) -> str:
    """Choose the backend and set what it reads at import; call before Keras is first imported."""
    backend = choose_backend(runtime_config.get("backend", "auto"))
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = backend
        if backend == "jax":
            flags = os.environ.get("XLA_FLAGS", "").split()
            if runtime_config.get("deterministic"):
                flags.append("--xla_gpu_deterministic_ops=true")
            if flags:
                os.environ["XLA_FLAGS"] = " ".join(dict.fromkeys(flags))
    return backend


def configure_runtime(seed: int, runtime_config: dict) -> dict:
    """Seeds, determinism, threads and numeric precision; call before the model is built.

    Returns the runtime settings that are actually in effect, for the run record.
    """
    import keras

    backend = keras.backend.backend()
    deterministic = bool(runtime_config.get("deterministic", False))
    threads = _configure_tensorflow(runtime_config, deterministic) if backend == "tensorflow" else _jax_threads()
    keras.utils.set_random_seed(seed)
    gpus = gpu_names()
    precision = choose_precision(runtime_config.get("mixed_precision", "auto"), backend, bool(gpus))
    # Global in Keras: set every time, so a second run in one process does not inherit it.
    keras.mixed_precision.set_global_policy(precision)
    return {
        "backend": backend,
        "deterministic": deterministic,
        # "auto" until the model is compiled; the lifecycle records what Keras resolved it to.
        "jit_compile": runtime_config.get("jit_compile", "auto"),
        "mixed_precision": precision,
        "eval_batch_size": int(runtime_config.get("eval_batch_size", 1024)),
        "steps_per_execution": int(runtime_config.get("steps_per_execution", 1)),
        "gc_pause": bool(runtime_config.get("gc_pause", False)),
        **threads,
        "devices": "gpu" if gpus else "cpu",
    }


def choose_precision(requested: str, backend: str = "tensorflow", on_gpu: bool = False) -> str:
    """The Keras dtype policy for `runtime.mixed_precision`.

    `auto` is bfloat16 compute (float32 weights, float32 output layer) on a CPU with AMX-BF16
    under TensorFlow's oneDNN kernels: about 2x the images/s of float32 there, same accuracy.
    Everywhere else float32: CPUs without AMX have no fast bfloat16 kernels, and on a GPU (H200,
    JAX) its faster steps did not pay back its longer XLA compilation within a 12-epoch run
    (benchmarks/README.md).
    """
    if requested != "auto":
        return requested
    if (not on_gpu and backend == "tensorflow" and _onednn_setting() not in ("0", "false")
            and "amx_bf16" in cpu_flags() and _onednn_may_use_amx()):
        return "mixed_bfloat16"
    return "float32"


def _onednn_may_use_amx() -> bool:
    """False when oneDNN's ISA is capped below AMX (ONEDNN_MAX_CPU_ISA=AVX2, say): TF then finds
    no bfloat16 convolution kernel at all (seen: "could not create a primitive descriptor")."""
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").strip().upper()
    return cap in ("", "ALL", "DEFAULT") or "AMX" in cap


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _configure_tensorflow(runtime_config: dict, deterministic: bool) -> dict:
    import tensorflow as tf

    intra = int(runtime_config.get("intra_op_threads", 0))
    inter = int(runtime_config.get("inter_op_threads", 0))
    try:
        if intra:
            tf.config.threading.set_intra_op_parallelism_threads(intra)
        if inter:
            tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:
        pass  # TF already initialised in this process (e.g. a second run in one test session)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    else:
        # A deterministic run earlier in this process (tests, a notebook, in-process trials)
        # leaves TF's determinism on, which also makes Keras drop XLA; turn it off again.
        from tensorflow.python.framework import config as tf_framework_config

        if tf_framework_config.is_op_determinism_enabled():
            tf_framework_config.disable_op_determinism()
    return {
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        # Speed settings fixed outside the config, which change kernels but not the model:
        # oneDNN on/off is read by TF at import (unset = TF's default, on for x86 CPUs), and
        # any grappler option set in this process (empty = TF's defaults).
        "onednn_opts": _onednn_setting(),
        "graph_options": {k: v for k, v in tf.config.optimizer.get_experimental_options().items()
                          if isinstance(v, bool | int | float | str)},
    }


def _jax_threads() -> dict:
    """JAX has no thread-count setting (XLA's old single-thread flags are ignored by its current
    CPU runtime: measured 1.9-2.0 CPU seconds per second with and without them), so the
    thread keys do not apply: recorded as null, whatever the config asked."""
    return {"intra_op_threads": None, "inter_op_threads": None}


def gpu_names() -> list[str]:
    """The GPUs the Keras backend sees (none before Keras is imported)."""
    if "keras" not in sys.modules:
        return []
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    import tensorflow as tf

    names = []
    for device in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(device)
            names.append(details.get("device_name", device.name))
        except (RuntimeError, ValueError):
            names.append(device.name)
    return names


def _onednn_setting() -> str:
    """TF_ENABLE_ONEDNN_OPTS as TF reads it; only these words reach the record, never free text."""
    value = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    if value is None:
        return "default"
    return value.strip().lower() if value.strip().lower() in ("0", "1", "true", "false") else "other"


def make_callbacks(train_config: dict, on_epoch_end=None, has_validation: bool = True) -> list:
    """The config's early stopping and LR decay, plus a per-epoch recorder."""
    import keras

    callbacks = [EpochRecorder(on_epoch_end)]
    for key, factory in (("early_stopping", _early_stopping), ("lr_decay", _lr_decay)):
        spec = train_config.get(key) or {}
        if spec.get("enabled"):
            monitor = spec["monitor"]
            if monitor.startswith("val_") and not has_validation:
                monitor = monitor[4:]  # no validation split: watch the training metric instead
            callbacks.append(factory(keras, spec, monitor))
    return callbacks


def _early_stopping(keras, spec, monitor):
    return keras.callbacks.EarlyStopping(
        monitor=monitor, patience=spec["patience"], min_delta=spec["min_delta"],
        restore_best_weights=spec["restore_best_weights"],
    )


def _lr_decay(keras, spec, monitor):
    return keras.callbacks.ReduceLROnPlateau(
        monitor=monitor, factor=spec["factor"], patience=spec["patience"], min_lr=spec["min_lr"],
    )


def _recorder_base():
    import keras

    return keras.callbacks.Callback


class EpochRecorder:
    """Collects per-epoch metrics and wall time; calls `on_epoch_end(epoch, row)` after each.

    Built lazily as a keras Callback subclass so importing this module stays TF-free.
    """

    def __new__(cls, on_epoch_end=None):
        base = _recorder_base()

        class _Recorder(base):
            def __init__(self):
                super().__init__()
                self.rows: list[dict] = []
                self._start = 0.0
                self.first_step_time: float | None = None

            def on_epoch_begin(self, epoch, logs=None):
                self._start = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                if self.first_step_time is None:
                    self.first_step_time = time.time()

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                row = {"epoch": epoch + 1, "epoch_time_s": time.perf_counter() - self._start}
                for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
                    if key in logs:
                        row[key] = float(logs[key])
                lr = getattr(getattr(self.model, "optimizer", None), "learning_rate", None)
                if lr is not None:
                    row["learning_rate"] = float(np.asarray(lr))
                self.rows.append(row)
                if on_epoch_end is not None:
                    on_epoch_end(epoch + 1, row)

        return _Recorder()


def train_model(model, arrays: dict, train_config: dict, callbacks: list, verbose: int = 1,
                validation_batch_size: int | None = None, runtime_config: dict | None = None):
    """model.fit with the config's batch size, epochs and shuffling; returns the recorder rows."""
    validation = None
    if arrays.get("x_val") is not None and len(arrays["x_val"]):
        validation = (arrays["x_val"], arrays["y_val"])
    gc_pause = bool((runtime_config or {}).get("gc_pause", False))
    with _gc_paused(gc_pause):
        model.fit(
            arrays["x_train"],
            arrays["y_train"],
            batch_size=train_config["batch_size"],
            epochs=train_config["epochs"],
            shuffle=train_config.get("shuffle", True),
            validation_data=validation,
            validation_batch_size=validation_batch_size,
            callbacks=[*callbacks, _EpochCollect()] if gc_pause else callbacks,
            verbose=verbose,
        )
    return callbacks[0].rows


class _gc_paused:
    """Python's cyclic garbage collector off while fit runs (issue 16: 8 % of a steady epoch in
    perf, scanning TF/Keras objects that live to the end anyway); it only frees memory, so the
    math is untouched. Re-enabled however fit ends; one full collection per epoch (below)
    keeps cyclic garbage from growing over a long run."""

    def __init__(self, active: bool):
        self.active = active and gc.isenabled()

    def __enter__(self):
        if self.active:
            gc.collect()
            gc.disable()
        return self

    def __exit__(self, *exc):
        if self.active:
            gc.enable()
        return False


def _EpochCollect():  # noqa: N802 - a class built lazily, like EpochRecorder
    import keras

    class _Collect(keras.callbacks.Callback):
        # At the start of the next epoch, after EpochRecorder has started its clock (it comes
        # first in the list), so the collection's time counts in the recorded epoch times.
        def on_epoch_begin(self, epoch, logs=None):
            if epoch:
                gc.collect()

    return _Collect()


def predict_proba(model, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    return np.asarray(model.predict(images, batch_size=batch_size, verbose=0), dtype=np.float64)


def score(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy and sparse categorical cross-entropy, computed as Keras does (eps-clipped)."""
    labels = np.asarray(labels).astype(np.int64)
    eps = 1e-7
    p = np.clip(probabilities[np.arange(len(labels)), labels], eps, 1.0 - eps)
    return {
        "accuracy": float(np.mean(np.argmax(probabilities, axis=1) == labels)),
        "loss": float(np.mean(-np.log(p))),
    }


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return matrix
