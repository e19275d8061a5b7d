"""The adapter interface every platform implements: data access, logging, artifacts, finish."""

from __future__ import annotations

from pathlib import Path


class AdapterError(RuntimeError):
    """A platform problem the user can fix (missing SDK, credentials, network); one line."""


class Adapter:
    """Reference behaviour (the local platform); subclasses override what differs.

    Life cycle, driven by mnistexp.runner.run_experiment:
      load_data -> start -> log_epoch (per epoch) -> log_metrics -> log_artifact (per file)
      -> finish (returns platform facts stored in the record's platform_info).
    """

    name = "base"
    description = ""
    # Extra click options for `mnistexp run` (each adapter's own flags); values arrive
    # as keyword arguments to __init__. Options must not need the platform SDK to declare.
    cli_options: list = []

    def __init__(self, **options):
        self.options = options
        self.messages: list[str] = []  # lines the CLI prints after the run (e.g. how to upload)

    # -- data access
    def load_data(self, config: dict, data_dir: str | Path | None):
        """Return an experiment.data.Dataset; default: a local folder or the verified download."""
        from mnistexp.experiment.datacache import load_dataset_cached
        from mnistexp.experiment.download import ensure_dataset

        data_config = config["data"]
        if data_dir is None:
            data_dir = ensure_dataset(data_config["dataset"])
        return load_dataset_cached(
            data_dir,
            dataset=data_config["dataset"],
            verify=data_config["verify"],
            holdout_fraction=data_config["holdout_fraction"],
        )

    # -- logging
    def start(self, run_dir: Path, record: dict) -> None:
        """Called once the run folder exists, before training."""

    def log_epoch(self, epoch: int, row: dict) -> None:
        """Per-epoch metrics (loss, accuracy, val_loss, val_accuracy, epoch_time_s)."""

    def log_metrics(self, metrics: dict, confusion=None) -> None:
        """Final test metrics and the confusion matrix (rows true, columns predicted)."""

    def log_predictions(self, fold: int, test_indices, probabilities) -> None:
        """Class probabilities for the test rows of a fold (fold 0 for a single split)."""

    # -- artifacts
    def log_artifact(self, path: Path, kind: str) -> None:
        """A file the run wrote: kind is model, history, confusion_matrix, plot or record."""

    # -- end
    def finish(self, record: dict) -> dict:
        """The run is over (any status); return facts for record['platform_info']."""
        return {}

    def tags(self) -> dict:
        """Extra string tags for the record."""
        return {}
