"""Fold-wise training: one fresh model per fold of a fixed set of splits (OpenML tasks).

run_experiment (mnistexp.runner) hands over here when the adapter's Dataset carries
`folds`. A fold-carrying Dataset has two extra attributes:

  rows   (images, labels): every labelled row, uint8 (N, 28, 28) and (N,), in the order
         the split indices refer to (OpenML's row ids);
  folds  list of Fold(repeat, fold, train, test): row indices of each split to run.

Each fold is trained from the same seed with the config's validation split carved from
the end of its training rows, then scored on its test rows. The record gets one `folds`
entry per fold, history rows tagged with `fold`, the summed confusion matrix, and
metrics.test_accuracy / test_loss as the mean over folds (test_accuracy_std: the sample
standard deviation over folds, null for a single fold).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Fold:
    repeat: int
    fold: int
    train: np.ndarray  # row indices
    test: np.ndarray


def fold_dataset(dataset, fold: Fold):
    """A plain train/test Dataset for one fold (what prepare_arrays expects)."""
    images, labels = dataset.rows
    return replace(
        dataset,
        x_train=images[fold.train], y_train=labels[fold.train],
        x_test=images[fold.test], y_test=labels[fold.test],
    )


def fold_summary(scores: list[dict]) -> dict:
    """Mean accuracy and loss over folds, and the sample std of accuracy (None for one fold)."""
    acc = np.array([s["test_accuracy"] for s in scores], dtype=np.float64)
    loss = np.array([s["test_loss"] for s in scores], dtype=np.float64)
    return {
        "test_accuracy": float(acc.mean()),
        "test_loss": float(loss.mean()),
        "test_accuracy_std": float(acc.std(ddof=1)) if len(acc) > 1 else None,
    }


def run_folds(config, adapter, dataset, results_dir: Path, verbose: int, tags, t_start: float,
              data_load_s: float):
    """The fold loop; returns a runner.RunResult like run_experiment does."""
    from mnistexp import runner
    from mnistexp.experiment import record as rec
    from mnistexp.experiment.data import prepare_arrays

    folds = list(dataset.folds)
    if not folds:
        raise runner.RunError("the task has no folds to run")
    # Prepare the first fold up front: bad limits or an empty fold fail before the run folder exists.
    first = prepare_arrays(fold_dataset(dataset, folds[0]), config["data"], config["model"]["input_shape"])

    run_id = rec.new_run_id(adapter.name)
    run_dir = Path(results_dir) / run_id
    run_dir.mkdir()
    record = runner._initial_record(config, adapter, dataset, first, run_id, tags)
    record["data"]["test_split"] = "folds"
    record["timings"] = {"data_load_s": data_load_s}
    record["folds"] = []
    try:
        _train_folds(config, adapter, dataset, folds, first, run_dir, record, verbose, t_start)
    except KeyboardInterrupt:
        runner._close(record, adapter, run_dir, "interrupted", "interrupted by the user (Ctrl-C)", t_start)
        raise runner.RunInterrupted(run_dir) from None
    except Exception as exc:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        runner._close(record, adapter, run_dir, "failed", reason, t_start)
        raise
    return runner.RunResult(run_dir, record)


def _train_folds(config, adapter, dataset, folds, first, run_dir, record, verbose, t_start):
    from mnistexp import artifacts, runner
    from mnistexp.experiment import model as model_lib
    from mnistexp.experiment import train as train_lib
    from mnistexp.experiment.data import CLASS_NAMES, prepare_arrays
    from mnistexp.experiment.record import write_record

    n_classes = int(config["model"]["layers"][-1].get("units", 10))
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    eval_batch = config["runtime"]["eval_batch_size"]
    timings = record["timings"]
    timings.update(build_s=0.0, train_s=0.0, evaluate_s=0.0)
    trained_images = 0
    epoch_seconds = 0.0
    keras_model = None
    adapter_started = False

    for index, fold in enumerate(folds):
        arrays = first if index == 0 else prepare_arrays(
            fold_dataset(dataset, fold), config["data"], config["model"]["input_shape"])
        t0 = time.perf_counter()
        # Same seed for every fold: folds differ only in their data.
        record["runtime"] = train_lib.configure_runtime(config["train"]["seed"], config["runtime"])
        keras_model = model_lib.build_model(config["model"], config["train"], config["runtime"])
        timings["build_s"] += time.perf_counter() - t0
        if not adapter_started:
            record["environment"]["gpus"] = runner._gpu_names()
            record["model"] = {"params": model_lib.count_params(keras_model)}
            write_record(run_dir, record)
            adapter.start(run_dir, record)
            adapter_started = True

        def on_epoch_end(epoch, row, index=index):
            row = {"fold": index, **row}
            record["history"].append(row)
            record["metrics"]["epochs_run"] = epoch
            artifacts.write_history_csv(run_dir / "history.csv", record["history"])
            write_record(run_dir, record)
            adapter.log_epoch(epoch, row)

        callbacks = train_lib.make_callbacks(config["train"], on_epoch_end, arrays["y_val"] is not None)
        t0 = time.perf_counter()
        train_lib.train_model(keras_model, arrays, config["train"], callbacks, verbose=verbose)
        timings["train_s"] += time.perf_counter() - t0
        fold_rows = [r for r in record["history"] if r["fold"] == index]
        trained_images += len(arrays["y_train"]) * len(fold_rows)
        epoch_seconds += sum(r["epoch_time_s"] for r in fold_rows)

        t0 = time.perf_counter()
        probabilities = train_lib.predict_proba(keras_model, arrays["x_test"], eval_batch)
        scores = train_lib.score(probabilities, arrays["y_test"])
        confusion += train_lib.confusion_matrix(arrays["y_test"], probabilities.argmax(axis=1), n_classes)
        timings["evaluate_s"] += time.perf_counter() - t0
        record["folds"].append({
            "fold": fold.fold, "repeat": fold.repeat,
            "n_train": int(len(arrays["y_train"])), "n_test": int(len(arrays["y_test"])),
            "test_accuracy": scores["accuracy"], "test_loss": scores["loss"],
        })
        test_rows = fold.test[: len(arrays["y_test"])]  # data.test_limit keeps the first rows
        adapter.log_predictions(index, test_rows, probabilities)
        record["metrics"].update(fold_summary(record["folds"]))
        write_record(run_dir, record)

    if epoch_seconds:
        record["throughput"]["train_images_per_s"] = trained_images / epoch_seconds
    last = record["history"][-1] if record["history"] else {}
    record["metrics"].update(final_val_accuracy=last.get("val_accuracy"), final_val_loss=last.get("val_loss"))
    adapter.log_metrics(dict(record["metrics"]), confusion)

    names = CLASS_NAMES.get(dataset.name, [str(i) for i in range(n_classes)])
    if len(names) != n_classes:
        names = [str(i) for i in range(n_classes)]
    title = f"{record['experiment']['name']} on {record['platform']} ({record['run_id']})"
    files = {
        "model": run_dir / "model.keras",  # the last fold's model
        "history": run_dir / "history.csv",
        "confusion_matrix": run_dir / "confusion_matrix.csv",
        "learning_curves_plot": run_dir / "learning_curves.png",
        "confusion_matrix_plot": run_dir / "confusion_matrix.png",
    }
    artifacts.save_model(files["model"], keras_model)
    artifacts.write_history_csv(files["history"], record["history"])
    artifacts.write_confusion_csv(files["confusion_matrix"], confusion, names)
    first_fold = [r for r in record["history"] if r["fold"] == 0]
    artifacts.plot_learning_curves(files["learning_curves_plot"], first_fold, f"{title}, fold 1 of {len(folds)}")
    artifacts.plot_confusion(files["confusion_matrix_plot"], confusion, names, f"{title}, all {len(folds)} folds")
    record["artifacts"] = {kind: path.name for kind, path in files.items()}
    for kind, path in files.items():
        adapter.log_artifact(path, kind)
    runner._close(record, adapter, run_dir, "completed", None, t_start)
