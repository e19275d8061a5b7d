"""The exceptions that reach the user as one clear line (no traceback) from the CLI."""

from __future__ import annotations

from mnistexp.adapters.base import AdapterError
from mnistexp.experiment.config import ConfigError
from mnistexp.experiment.data import DataError
from mnistexp.experiment.hooks import RunDiverged, RunStorageError
from mnistexp.experiment.record import RecordError

USER_ERRORS = (ConfigError, DataError, RecordError, AdapterError, RunDiverged, RunStorageError)


def user_errors() -> tuple:
    """All user-facing error classes, including the runner's (imported lazily)."""
    from mnistexp.runner import RunError

    return USER_ERRORS + (RunError,)
