"""Run one experiment through one platform adapter and leave a complete run record.

The steps of a run live once, in experiment.lifecycle; this module only does what is
particular to running *here*: check the results folder, the platform's pre-flight
(before TensorFlow is imported, so bad input is reported at once), load the data through
the adapter, and hand the adapter to the lifecycle as its hooks. A platform that trains in
its own executor (BEAT) declares `trains_here = False` and runs the whole thing itself.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mnistexp.experiment.hooks import RunInterrupted  # noqa: F401  (re-exported for callers)

PROJECT_DIR = Path(__file__).resolve().parent.parent


class RunError(RuntimeError):
    """A run that could not start or finish; one line for the user."""


@dataclass
class RunResult:
    run_dir: Path
    record: dict


def check_writable(results_dir: Path) -> None:
    """Fail before any training when results cannot be written there."""
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=results_dir, prefix=".probe-"):
            pass
    except OSError as exc:
        raise RunError(
            f"results directory {results_dir} is not writable ({exc.strerror or exc}); "
            "pass a writable folder to --results-dir"
        ) from None


def run_experiment(
    config: dict,
    adapter,
    results_dir: str | Path = "results",
    data_dir: str | Path | None = None,
    verbose: int = 1,
    tags: dict | None = None,
    extra_callbacks: list | None = None,
) -> RunResult:
    """extra_callbacks: Keras callbacks appended to the run's own (e.g. Optuna pruning)."""
    t_start = time.perf_counter()
    results_dir = Path(results_dir)
    check_writable(results_dir)
    adapter.preflight(config, data_dir)
    if not adapter.trains_here:
        run_dir, record = adapter.run_elsewhere(config, results_dir, data_dir, verbose=verbose, tags=tags)
        return RunResult(Path(run_dir), record)

    from mnistexp.tfenv import import_keras_quietly

    import_keras_quietly(config["runtime"])
    from mnistexp.experiment import lifecycle
    from mnistexp.experiment.data import prepare_arrays
    from mnistexp.experiment.record import new_run_id

    t0 = time.perf_counter()
    dataset = adapter.load_data(config, data_dir)
    splits = adapter.splits(dataset)
    arrays = prepare_arrays(splits[0].dataset, config["data"], config["model"]["input_shape"])
    run_id = new_run_id(adapter.name)
    record = lifecycle.new_record(config, adapter.name, dataset, arrays, run_id, {**adapter.tags(), **(tags or {})},
                                  project_dir=PROJECT_DIR)
    record["timings"]["data_load_s"] = time.perf_counter() - t0
    run_dir = results_dir / run_id
    lifecycle.run_lifecycle(config, splits, run_dir, record, adapter, verbose=verbose,
                            extra_callbacks=extra_callbacks, first_arrays=arrays, t_start=t_start)
    return RunResult(run_dir, record)
