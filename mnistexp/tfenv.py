"""Import Keras and its backend without their start-up chatter on the terminal.

TF 2.21 writes absl INFO lines (oneDNN notice, "could not find cuda drivers") to file
descriptor 2 while it is imported, before TF_CPP_MIN_LOG_LEVEL takes effect; JAX warns
about missing accelerators the same way. The CLI imports them once with fd 2 pointed at
/dev/null; Python exceptions still propagate. Set MNISTEXP_TF_VERBOSE=1 to see everything.
"""

from __future__ import annotations

import os
import sys


def import_keras_quietly(runtime_config: dict | None = None) -> str:
    """Choose the Keras backend (`runtime.backend`), import Keras on it; returns its name."""
    from mnistexp.experiment.train import select_backend

    backend = select_backend(runtime_config or {})
    if "keras" in sys.modules:
        return backend
    if os.environ.get("MNISTEXP_TF_VERBOSE") == "1":
        import keras  # noqa: F401

        return backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras  # noqa: F401

        if backend == "tensorflow":
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return backend
