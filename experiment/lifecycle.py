"""The one run lifecycle, for every platform: record -> build -> train -> evaluate -> artifacts -> close.

    record (status running) -> per split: build, train (record + history.csv after every
    epoch), evaluate -> artifacts -> record (completed / failed / interrupted)

The local runner, OpenML's folds, the generated Kaggle/CodaLab kernels and BEAT's
algorithm all go through this module; platforms plug in through `RunHooks` (their
logging and artifact upload) and a split strategy (`single_split`, `fold_splits`).

Platform-free and embeddable: the kernel generator copies this file verbatim into the
kernels, so it imports only the experiment modules, the standard library and numpy.

Faults are handled here once: Ctrl-C and SIGTERM end the run `interrupted`, a diverging
loss (NaN/Inf) ends it `failed` with a readable reason, any other error `failed`; each
leaves a valid record. While running, `process.heartbeat_at` is refreshed at least every
HEARTBEAT_SECONDS, so a record left `running` by a killed process is recognisable.
"""

from __future__ import annotations

import gc
import math
import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mnistexp.experiment.artifacts import (
    plot_confusion,
    plot_learning_curves,
    save_model,
    write_confusion_csv,
    write_history_csv,
)
from mnistexp.experiment.data import CLASS_NAMES, prepare_arrays
from mnistexp.experiment.hooks import RunDiverged, RunHooks, RunInterrupted, RunStorageError
from mnistexp.experiment.model import build_model, count_params
from mnistexp.experiment.record import (
    SCHEMA_VERSION,
    config_hash,
    environment_info,
    experiment_fingerprint,
    process_start_time,
    utc_now,
    write_record,
)
from mnistexp.experiment.train import (
    configure_runtime,
    confusion_matrix,
    gpu_names,
    make_callbacks,
    predict_proba,
    score,
    train_model,
)

HEARTBEAT_SECONDS = float(os.environ.get("MNISTEXP_HEARTBEAT_S", "30"))


@dataclass(frozen=True)
class Split:
    """One train/test split to run: a plain Dataset, and for folds where its test rows came from."""

    dataset: object
    index: int = 0
    fold: int | None = None  # the task's fold number (None: the data set's own train/test split)
    repeat: int = 0
    test_indices: np.ndarray | None = None


@dataclass(frozen=True)
class Fold:
    """A task's fold: row indices (into dataset.rows) of its training and test rows."""

    repeat: int
    fold: int
    train: np.ndarray
    test: np.ndarray


def single_split(dataset) -> list[Split]:
    """The data set's own train/test split (the usual run)."""
    return [Split(dataset)]


def fold_splits(dataset, folds) -> list[Split]:
    """One split per Fold, each trained from the same seed; `dataset.rows` holds (images, labels)
    in the order the folds' row indices refer to (OpenML's row ids)."""
    images, labels = dataset.rows
    if not folds:
        raise ValueError("the task has no folds to run")
    return [
        Split(
            replace(dataset, x_train=images[f.train], y_train=labels[f.train],
                    x_test=images[f.test], y_test=labels[f.test]),
            index=i, fold=f.fold, repeat=f.repeat, test_indices=np.asarray(f.test),
        )
        for i, f in enumerate(folds)
    ]


def new_record(config: dict, platform: str, dataset, arrays: dict | None, run_id: str, tags: dict | None = None,
               platform_info: dict | None = None, project_dir=None) -> dict:
    """The record every platform starts from (status running), before anything is trained."""
    data_summary = dataset.summary()
    if arrays is not None:  # None: the platform prepares the arrays itself and fills these in (BEAT)
        data_summary.update(
            n_train=len(arrays["y_train"]),
            n_val=0 if arrays["y_val"] is None else len(arrays["y_val"]),
            n_test=len(arrays["y_test"]),
        )
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "platform": platform,
        "status": "running",
        "error": None,
        "created_at": utc_now(),
        "finished_at": None,
        "experiment": {
            "name": config.get("name", "custom"),
            "fingerprint": experiment_fingerprint(config, dataset.checksums),
            "config_hash": config_hash(config),
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
        "environment": environment_info(project_dir=project_dir),
        "artifacts": {},
        "tags": {k: str(v) for k, v in {"platform": platform, **(tags or {})}.items()},
        "platform_info": dict(platform_info or {}),
    }


class RecordWriter:
    """Every write of a run's record.json: atomic, with the process heartbeat refreshed."""

    def __init__(self, run_dir: Path, record: dict):
        self.run_dir = Path(run_dir)
        self.record = record
        self.last_write = 0.0
        record["process"] = {
            "pid": os.getpid(),
            "host": record["environment"].get("hostname_sha256", ""),
            "heartbeat_at": utc_now(),
            "heartbeat_interval_s": HEARTBEAT_SECONDS,
        }

    def write(self) -> None:
        self.record["process"]["heartbeat_at"] = utc_now()
        write_record(self.run_dir, self.record)
        self.last_write = time.monotonic()

    def beat(self) -> None:
        """Called often (every few training steps); writes only when a heartbeat is due."""
        if time.monotonic() - self.last_write >= HEARTBEAT_SECONDS:
            self.write()


class StopSignals:
    """Ctrl-C (SIGINT) and SIGTERM end the run `interrupted`, in the main thread only.

    The handler raises RunInterrupted and also remembers the request. Python drops (and prints
    with a traceback) an exception raised while it runs a garbage collection, its callbacks or
    a __del__ (JAX, which Keras imports when it is installed, registers such a callback); so
    during a collection the handler only remembers, and the run checks the request between
    training steps and before it completes.
    """

    requested: str | None = None
    in_gc: bool = False

    def __enter__(self):
        StopSignals.requested = None
        StopSignals.in_gc = False
        self.previous = {}
        self.gc_marks = []
        if threading.current_thread() is threading.main_thread():
            reasons = {signal.SIGTERM: "terminated (SIGTERM)"}
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not ignored (nohup, `&`)
                reasons[signal.SIGINT] = "interrupted by the user (Ctrl-C)"

            def handler(signum, frame):
                StopSignals.requested = reasons[signum]
                if not StopSignals.in_gc:
                    raise RunInterrupted(reason=reasons[signum])

            for signum in reasons:
                self.previous[signum] = signal.signal(signum, handler)
            # First at "start", last at "stop": the window covers every other callback too.
            self.gc_marks = [_gc_mark("start", True), _gc_mark("stop", False)]
            gc.callbacks.insert(0, self.gc_marks[0])
            gc.callbacks.append(self.gc_marks[1])
        return self

    def __exit__(self, *exc):
        for signum, previous in self.previous.items():
            signal.signal(signum, previous)
        for mark in self.gc_marks:
            if mark in gc.callbacks:
                gc.callbacks.remove(mark)
        StopSignals.requested = None
        StopSignals.in_gc = False
        return False

    @staticmethod
    def check() -> None:
        """Raise RunInterrupted if a stop was requested and its exception got lost."""
        if StopSignals.requested:
            raise RunInterrupted(reason=StopSignals.requested)


@contextmanager
def _global_policy_kept():
    """The run sets Keras' global dtype policy (runtime.mixed_precision); put back the previous
    one afterwards, so code that runs next in this process (a test, `show` after `run` in a
    notebook) does not build or load models in the run's precision."""
    import keras

    previous = keras.mixed_precision.global_policy()
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _gc_mark(phase: str, value: bool):
    def mark(current, info):
        if current == phase:
            StopSignals.in_gc = value

    return mark


def _liveness_callback(writer: RecordWriter):
    """A Keras callback: heartbeat between steps, and stop at the first non-finite loss."""
    import keras

    class _Liveness(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                raise RunDiverged(
                    f"the training loss became {float(loss)} in epoch {self.epoch} (step {batch + 1}): "
                    "the run diverged; lower train.learning_rate or check the data scaling"
                )
            StopSignals.check()
            writer.beat()

    return _Liveness()


def _finite_row(row: dict, epoch: int) -> None:
    for key, value in row.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise RunDiverged(f"{key} became {value} after epoch {epoch}: the run diverged; "
                              "lower train.learning_rate or check the data scaling")


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, RunDiverged):
        return f"diverged: {text}"
    return f"{type(exc).__name__}: {text}"


def run_lifecycle(config: dict, splits: list, run_dir, record: dict, hooks: RunHooks | None = None,
                  verbose: int = 1, extra_callbacks=None, first_arrays: dict | None = None,
                  t_start: float | None = None) -> dict:
    """Run every split of `splits` and leave a complete record in `run_dir`; returns the record.

    `record` comes from new_record. The first split's model is built before the run folder
    is created, so a model that cannot be built leaves nothing behind. On Ctrl-C/SIGTERM the
    record is closed `interrupted` and RunInterrupted (with the run folder) is raised; on any
    other error it is closed `failed` and the error re-raised.
    """
    hooks = hooks or RunHooks()
    t_start = time.perf_counter() if t_start is None else t_start
    run_dir = Path(run_dir)
    data_config, input_shape = config["data"], config["model"]["input_shape"]
    folds = len(splits) > 1 or splits[0].fold is not None
    with StopSignals(), _global_policy_kept():
        t0 = time.perf_counter()
        arrays = first_arrays or prepare_arrays(splits[0].dataset, data_config, input_shape)
        record["runtime"] = configure_runtime(config["train"]["seed"], config["runtime"])
        record["environment"]["gpus"] = gpu_names()
        model = build_model(config["model"], config["train"], config["runtime"])
        record["runtime"]["jit_compile"] = bool(model.jit_compile)  # what Keras made of "auto"
        record["timings"]["build_s"] = time.perf_counter() - t0
        record["model"] = {"params": count_params(model)}
        if folds:
            record["data"]["test_split"] = "folds"
            record["folds"] = []
        run_dir.mkdir(parents=True, exist_ok=True)
        writer = RecordWriter(run_dir, record)
        try:
            writer.write()
            hooks.start(run_dir, record)
            _run_splits(config, splits, run_dir, record, hooks, writer, verbose, extra_callbacks,
                        arrays, model, folds)
            StopSignals.check()  # a stop that came during a garbage collection after the last step
            _close(record, hooks, writer, "completed", None, t_start)
        except KeyboardInterrupt as exc:
            reason = exc.reason if isinstance(exc, RunInterrupted) else "interrupted by the user (Ctrl-C)"
            _close(record, hooks, writer, "interrupted", reason, t_start)
            raise RunInterrupted(run_dir, reason) from None
        except Exception as exc:
            _close(record, hooks, writer, "failed", _reason(exc), t_start)
            raise
    return record


def _run_splits(config, splits, run_dir, record, hooks, writer, verbose, extra_callbacks, arrays, model, folds):
    data_config, input_shape = config["data"], config["model"]["input_shape"]
    eval_batch = config["runtime"]["eval_batch_size"]
    timings = record["timings"]
    timings.update(train_s=0.0, evaluate_s=0.0)
    confusion = None
    trained_images, epoch_seconds = 0, 0.0
    for split in splits:
        if split.index > 0:
            t0 = time.perf_counter()
            arrays = prepare_arrays(split.dataset, data_config, input_shape)
            # Same seed for every fold: folds differ only in their data.
            record["runtime"] = configure_runtime(config["train"]["seed"], config["runtime"])
            model = build_model(config["model"], config["train"], config["runtime"])
            record["runtime"]["jit_compile"] = bool(model.jit_compile)
            timings["build_s"] += time.perf_counter() - t0

        def on_epoch_end(epoch, row, split=split):
            _finite_row(row, epoch)
            if folds:
                row = {"fold": split.index, **row}
            record["history"].append(row)
            record["metrics"]["epochs_run"] = epoch
            write_history_csv(run_dir / "history.csv", record["history"])
            writer.write()
            hooks.log_epoch(epoch, row)

        callbacks = make_callbacks(config["train"], on_epoch_end, arrays["y_val"] is not None)
        callbacks += [_liveness_callback(writer), *(extra_callbacks or ())]
        t0 = time.perf_counter()
        train_model(model, arrays, config["train"], callbacks, verbose=verbose, validation_batch_size=eval_batch,
                    runtime_config=config["runtime"])
        timings["train_s"] += time.perf_counter() - t0
        first_step = callbacks[0].first_step_time
        if first_step is not None and "time_to_first_step_s" not in timings:
            # from the start of the process, imports included: what a user waits for
            timings["time_to_first_step_s"] = first_step - process_start_time()
        rows = callbacks[0].rows
        trained_images += len(arrays["y_train"]) * len(rows)
        epoch_seconds += sum(r["epoch_time_s"] for r in rows)

        t0 = time.perf_counter()
        probabilities = predict_proba(model, arrays["x_test"], eval_batch)
        scores = score(probabilities, arrays["y_test"])
        if not (math.isfinite(scores["loss"]) and np.isfinite(probabilities).all()):
            raise RunDiverged("the model predicts NaN/Inf on the test set: the run diverged; "
                              "lower train.learning_rate or check the data scaling")
        split_confusion = confusion_matrix(arrays["y_test"], probabilities.argmax(axis=1), probabilities.shape[1])
        confusion = split_confusion if confusion is None else confusion + split_confusion
        timings["evaluate_s"] += time.perf_counter() - t0
        test_rows = None if split.test_indices is None else split.test_indices[: len(arrays["y_test"])]
        hooks.log_predictions(split.index, test_rows, probabilities)
        if folds:
            record["folds"].append({
                "fold": split.fold, "repeat": split.repeat,
                "n_train": int(len(arrays["y_train"])), "n_test": int(len(arrays["y_test"])),
                "test_accuracy": scores["accuracy"], "test_loss": scores["loss"],
            })
            record["metrics"].update(fold_summary(record["folds"]))
        else:
            record["metrics"].update(test_accuracy=scores["accuracy"], test_loss=scores["loss"])
        writer.write()

    if epoch_seconds:
        # Per-epoch wall time includes the validation pass, as a user's stopwatch would.
        record["throughput"]["train_images_per_s"] = trained_images / epoch_seconds
    last = record["history"][-1] if record["history"] else {}
    record["metrics"].update(final_val_accuracy=last.get("val_accuracy"), final_val_loss=last.get("val_loss"))
    hooks.log_metrics(dict(record["metrics"]), confusion)
    try:
        files = _write_artifacts(run_dir, model, record, confusion, folds, len(splits))
    except OSError as exc:
        raise RunStorageError(f"cannot write the run's files to {run_dir} ({exc.strerror or exc}); free disk "
                              "space or pass another --results-dir") from None
    files.update({kind: run_dir / name for kind, name in (hooks.extra_artifacts(model, run_dir) or {}).items()})
    record["artifacts"] = {kind: path.name for kind, path in files.items()}
    for kind, path in files.items():
        hooks.log_artifact(path, kind)


def fold_summary(scores: list[dict]) -> dict:
    """Mean accuracy and loss over folds, and the sample std of accuracy (None for one fold)."""
    acc = np.array([s["test_accuracy"] for s in scores], dtype=np.float64)
    loss = np.array([s["test_loss"] for s in scores], dtype=np.float64)
    return {
        "test_accuracy": float(acc.mean()),
        "test_loss": float(loss.mean()),
        "test_accuracy_std": float(acc.std(ddof=1)) if len(acc) > 1 else None,
    }


def _write_artifacts(run_dir: Path, model, record: dict, confusion, folds: bool, n_splits: int) -> dict:
    """model.keras (the last split's model), history.csv, confusion_matrix.csv and the two plots."""
    n_classes = len(confusion)
    names = CLASS_NAMES.get(record["data"]["dataset"], [str(i) for i in range(n_classes)])
    if len(names) != n_classes:
        names = [str(i) for i in range(n_classes)]
    files = {
        "model": run_dir / "model.keras",
        "history": run_dir / "history.csv",
        "confusion_matrix": run_dir / "confusion_matrix.csv",
    }
    save_model(files["model"], model)
    write_history_csv(files["history"], record["history"])
    write_confusion_csv(files["confusion_matrix"], confusion, names)
    title = f"{record['experiment']['name']} on {record['platform']} ({record['run_id']})"
    curves = [r for r in record["history"] if r.get("fold", 0) == 0]
    try:
        plot_learning_curves(run_dir / "learning_curves.png", curves,
                             f"{title}, fold 1 of {n_splits}" if folds else title)
        plot_confusion(run_dir / "confusion_matrix.png", confusion, names,
                       f"{title}, all {n_splits} folds" if folds else title)
    except ImportError:  # a platform image without matplotlib: the run itself is still complete
        record["platform_info"]["plots"] = "skipped: matplotlib is not installed here"
        return files
    files["learning_curves_plot"] = run_dir / "learning_curves.png"
    files["confusion_matrix_plot"] = run_dir / "confusion_matrix.png"
    return files


def _close(record: dict, hooks: RunHooks, writer: RecordWriter, status: str, error, t_start: float) -> None:
    """Final status, timings and platform facts; the record is rewritten atomically."""
    record["status"] = status
    record["error"] = error
    record["finished_at"] = utc_now()
    record["timings"]["total_s"] = time.perf_counter() - t_start
    try:
        info = hooks.finish(record) or {}
    except KeyboardInterrupt:
        info = {"finish_error": "interrupted while finishing"}
    except Exception as exc:  # the training result must survive a platform failure
        info = {"finish_error": f"{type(exc).__name__}: {exc}"}
    record["platform_info"].update(info)
    _drop_non_finite(record)
    writer.write()


def _drop_non_finite(record: dict) -> None:
    """NaN/Inf cannot be written as JSON: a failed run's partial values become null."""
    for section in ("metrics", "throughput"):
        for key, value in list(record.get(section, {}).items()):
            if isinstance(value, float) and not math.isfinite(value):
                record[section][key] = None
    for row in record.get("history", []):
        for key, value in list(row.items()):
            if isinstance(value, float) and not math.isfinite(value):
                del row[key]
