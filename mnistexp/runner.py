"""Run one experiment through one adapter and leave a complete run record.

config -> data (adapter) -> model -> train -> evaluate -> artifacts -> record.
The record is written atomically at the start (status running), after every epoch's
history, and at the end, so a crash or Ctrl-C leaves a valid record of what was done.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mnistexp.experiment import record as rec
from mnistexp.experiment.record import RECORD_NAME, utc_now, write_record

PROJECT_DIR = Path(__file__).resolve().parent.parent


class RunError(RuntimeError):
    """A run that could not start or finish; one line for the user."""


class RunInterrupted(RuntimeError):
    """Ctrl-C during the run; the record was written with status interrupted."""

    def __init__(self, run_dir: Path):
        super().__init__(f"interrupted; partial record in {run_dir / RECORD_NAME}")
        self.run_dir = run_dir


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
    external = getattr(adapter, "run_external", None)
    if external is not None:  # the platform trains in its own executor (BEAT) and writes the record
        return external(config, results_dir, data_dir, verbose=verbose, tags=tags)
    from mnistexp.experiment.data import prepare_arrays

    t_start = time.perf_counter()
    results_dir = Path(results_dir)
    check_writable(results_dir)

    t0 = time.perf_counter()
    dataset = adapter.load_data(config, data_dir)
    if getattr(dataset, "folds", None) is not None:  # fixed splits (OpenML tasks): mnistexp.folds
        from mnistexp.folds import run_folds

        return run_folds(config, adapter, dataset, results_dir, verbose, tags, t_start, time.perf_counter() - t0)
    arrays = prepare_arrays(dataset, config["data"], config["model"]["input_shape"])
    timings = {"data_load_s": time.perf_counter() - t0}

    run_id = rec.new_run_id(adapter.name)
    run_dir = results_dir / run_id
    run_dir.mkdir()
    record = _initial_record(config, adapter, dataset, arrays, run_id, tags)
    record["timings"] = timings

    try:
        _train_and_evaluate(config, adapter, arrays, dataset, run_dir, record, verbose, t_start,
                            extra_callbacks)
    except KeyboardInterrupt:
        _close(record, adapter, run_dir, "interrupted", "interrupted by the user (Ctrl-C)", t_start)
        raise RunInterrupted(run_dir) from None
    except Exception as exc:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        _close(record, adapter, run_dir, "failed", reason, t_start)
        raise
    return RunResult(run_dir, record)


def _initial_record(config, adapter, dataset, arrays, run_id, tags) -> dict:
    data_summary = dataset.summary()
    data_summary.update(
        n_train=len(arrays["y_train"]),
        n_val=0 if arrays["y_val"] is None else len(arrays["y_val"]),
        n_test=len(arrays["y_test"]),
    )
    all_tags = {"platform": adapter.name, **adapter.tags(), **(tags or {})}
    return {
        "schema_version": rec.SCHEMA_VERSION,
        "run_id": run_id,
        "platform": adapter.name,
        "status": "running",
        "error": None,
        "created_at": utc_now(),
        "finished_at": None,
        "experiment": {
            "name": config.get("name", "custom"),
            "fingerprint": rec.experiment_fingerprint(config, dataset.checksums),
            "config_hash": rec.config_hash(config),
            "config": config,
            "expected_test_accuracy": config.get("expected_test_accuracy"),
        },
        "data": data_summary,
        "seed": config["train"]["seed"],
        "metrics": {"test_accuracy": None, "test_loss": None, "epochs_run": 0},
        "history": [],
        "timings": {},
        "throughput": {"train_images_per_s": None},
        "runtime": {},
        "environment": rec.environment_info(project_dir=PROJECT_DIR),
        "artifacts": {},
        "tags": {k: str(v) for k, v in all_tags.items()},
        "platform_info": {},
    }


def _train_and_evaluate(config, adapter, arrays, dataset, run_dir, record, verbose, t_start,
                        extra_callbacks=None):
    from mnistexp import artifacts
    from mnistexp.experiment import model as model_lib
    from mnistexp.experiment import train as train_lib

    t0 = time.perf_counter()
    record["runtime"] = train_lib.configure_runtime(config["train"]["seed"], config["runtime"])
    record["environment"]["gpus"] = _gpu_names()
    keras_model = model_lib.build_model(config["model"], config["train"], config["runtime"])
    record["model"] = {"params": model_lib.count_params(keras_model)}
    record["timings"]["build_s"] = time.perf_counter() - t0
    write_record(run_dir, record)
    adapter.start(run_dir, record)

    def on_epoch_end(epoch, row):
        record["history"].append(row)
        record["metrics"]["epochs_run"] = epoch
        artifacts.write_history_csv(run_dir / "history.csv", record["history"])
        write_record(run_dir, record)
        adapter.log_epoch(epoch, row)

    callbacks = train_lib.make_callbacks(config["train"], on_epoch_end, arrays["y_val"] is not None)
    callbacks += list(extra_callbacks or ())
    t0 = time.perf_counter()
    train_lib.train_model(keras_model, arrays, config["train"], callbacks, verbose=verbose,
                          validation_batch_size=config["runtime"]["eval_batch_size"])
    train_s = time.perf_counter() - t0
    record["timings"]["train_s"] = train_s
    first_step = callbacks[0].first_step_time
    if first_step is not None:
        # from the start of the process, imports included: what a user waits for
        record["timings"]["time_to_first_step_s"] = first_step - rec.process_start_time()
    epoch_times = [row["epoch_time_s"] for row in record["history"]]
    if epoch_times:
        # Per-epoch wall time includes the validation pass, as a user's stopwatch would.
        record["throughput"]["train_images_per_s"] = len(arrays["y_train"]) * len(epoch_times) / sum(epoch_times)

    t0 = time.perf_counter()
    eval_batch = config["runtime"]["eval_batch_size"]
    probabilities = train_lib.predict_proba(keras_model, arrays["x_test"], eval_batch)
    scores = train_lib.score(probabilities, arrays["y_test"])
    predicted = probabilities.argmax(axis=1)
    confusion = train_lib.confusion_matrix(arrays["y_test"], predicted, probabilities.shape[1])
    record["timings"]["evaluate_s"] = time.perf_counter() - t0
    last = record["history"][-1] if record["history"] else {}
    record["metrics"].update(
        test_accuracy=scores["accuracy"],
        test_loss=scores["loss"],
        final_val_accuracy=last.get("val_accuracy"),
        final_val_loss=last.get("val_loss"),
    )
    adapter.log_predictions(0, None, probabilities)
    adapter.log_metrics(dict(record["metrics"]), confusion)

    files = artifacts.write_run_artifacts(run_dir, keras_model, record, confusion, dataset.name)
    record["artifacts"] = {kind: path.name for kind, path in files.items()}
    for kind, path in files.items():
        adapter.log_artifact(path, kind)
    _close(record, adapter, run_dir, "completed", None, t_start)


def _close(record, adapter, run_dir, status, error, t_start) -> None:
    """Final status, timings and platform facts; the record is rewritten atomically."""
    record["status"] = status
    record["error"] = error
    record["finished_at"] = utc_now()
    record["timings"]["total_s"] = time.perf_counter() - t_start
    try:
        info = adapter.finish(record) or {}
    except KeyboardInterrupt:
        info = {"finish_error": "interrupted while finishing"}
    except Exception as exc:  # the training result must survive a platform failure
        info = {"finish_error": f"{type(exc).__name__}: {exc}"}
    record["platform_info"].update(info)
    write_record(run_dir, record)


def _gpu_names() -> list[str]:
    if "tensorflow" not in sys.modules:
        return []
    import tensorflow as tf

    names = []
    for device in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(device)
            names.append(details.get("device_name", device.name))
        except (RuntimeError, ValueError):
            names.append(device.name)
    return names


def project_dir() -> Path:
    return PROJECT_DIR


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
