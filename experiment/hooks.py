"""The platform's side of the run lifecycle (experiment.lifecycle), and how a run can end early.

Standard library only, so a platform module can subclass RunHooks without loading numpy
or TensorFlow (`mnistexp --help` imports every platform's options).
"""

from __future__ import annotations

from pathlib import Path

from mnistexp.experiment.record import RECORD_NAME


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a run; the record was written with status interrupted."""

    def __init__(self, run_dir=None, reason: str = "interrupted by the user (Ctrl-C)"):
        super().__init__(reason)
        self.run_dir = run_dir
        self.reason = reason

    def __str__(self) -> str:
        if self.run_dir is None:
            return self.reason
        return f"{self.reason}; partial record in {Path(self.run_dir) / RECORD_NAME}"


class RunDiverged(ArithmeticError):
    """The loss became NaN or infinite: the run cannot produce a meaningful model."""


class RunHooks:
    """What a platform does at each step of the lifecycle; every hook is optional.

    start(run_dir, record)           the run folder and the first record exist, before training
    log_epoch(epoch, row)            after each epoch: loss, accuracy, val_*, learning_rate, epoch_time_s
                                     (and `fold` for fold runs)
    log_predictions(split, test_indices, probabilities)
                                     class probabilities of a split's test rows (OpenML's predictions)
    log_metrics(metrics, confusion)  final test metrics and the confusion matrix (rows: true class)
    extra_artifacts(model, run_dir)  write more files (a Kaggle submission); return {kind: file name}
    log_artifact(path, kind)         each file the run wrote: model, history, confusion_matrix,
                                     learning_curves_plot, confusion_matrix_plot, and the extras
    finish(record)                   the run is over (any status); returns facts for platform_info
    """

    def start(self, run_dir: Path, record: dict) -> None:
        pass

    def log_epoch(self, epoch: int, row: dict) -> None:
        pass

    def log_predictions(self, split: int, test_indices, probabilities) -> None:
        pass

    def log_metrics(self, metrics: dict, confusion=None) -> None:
        pass

    def extra_artifacts(self, model, run_dir: Path) -> dict:
        return {}

    def log_artifact(self, path: Path, kind: str) -> None:
        pass

    def finish(self, record: dict) -> dict:
        return {}


class RunStorageError(OSError):
    """The run's files could not be written (disk full, folder gone); the record says so."""
