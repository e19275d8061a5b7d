"""The interface of a run-here platform: pre-flight, data access, logging, artifact upload, finish.

An adapter is the platform's side of the one run lifecycle (experiment.lifecycle): the
runner calls `preflight` and `load_data`, then the lifecycle calls the logging hooks in
this order:

    preflight -> load_data -> splits -> start -> log_epoch (per epoch) -> log_predictions
    (per split) -> log_metrics -> extra_artifacts -> log_artifact (per file) -> finish

`log_artifact` kinds: model, history, confusion_matrix, learning_curves_plot,
confusion_matrix_plot, plus whatever `extra_artifacts` returned. `finish` runs for every
status (completed, failed, interrupted) and returns facts for record['platform_info'].
"""

from __future__ import annotations

from pathlib import Path

from mnistexp.experiment.hooks import RunHooks


class AdapterError(RuntimeError):
    """A platform problem the user can fix (missing SDK, credentials, network); one line."""


class Adapter(RunHooks):
    """Reference behaviour (the local platform); subclasses override what differs."""

    name = "base"
    description = ""
    # Extra click options for `mnistexp run` (the platform's own flags); values arrive as
    # keyword arguments to __init__. Declaring them must not need the platform SDK.
    cli_options: list = []
    # False for a platform that trains in its own executor: it implements run_elsewhere.
    trains_here = True

    def __init__(self, **options):
        self.options = options
        self.messages: list[str] = []  # lines the CLI prints after the run (e.g. how to upload)

    # -- before anything is loaded or written
    def preflight(self, config: dict, data_dir: str | Path | None) -> None:
        """Cheap checks (SDK installed, credentials, data folder) before TensorFlow is imported
        and before any data is loaded; raise AdapterError / DataError with one line. The
        default checks a given --data-dir."""
        if data_dir is not None:
            from mnistexp.experiment.data import check_data_dir

            check_data_dir(data_dir, config["data"]["dataset"], verify=config["data"]["verify"])

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

    def splits(self, dataset) -> list:
        """The train/test splits to run (experiment.lifecycle.single_split or fold_splits)."""
        from mnistexp.experiment.lifecycle import single_split

        return single_split(dataset)

    def tags(self) -> dict:
        """Extra string tags for the record."""
        return {}

    # -- a platform with its own executor (trains_here = False)
    def run_elsewhere(self, config: dict, results_dir: Path, data_dir, verbose: int = 1,
                      tags: dict | None = None) -> tuple[Path, dict]:
        """Run the whole experiment on the platform; return (run folder, final record)."""
        raise NotImplementedError(f"platform {self.name} trains here; run_elsewhere is not used")
