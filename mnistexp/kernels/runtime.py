"""The run inside a platform kernel: the same steps and the same run record as mnistexp.runner.

This module is embedded verbatim into the generated kernels (its project imports are
stripped; the names are defined in the same file there), so it may use only the
experiment modules, the standard library and numpy. It mirrors runner.run_experiment:
load -> record (status running) -> build -> train (record + history.csv after every
epoch) -> evaluate -> artifacts -> record (completed / failed / interrupted).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from mnistexp.artifacts import (
    plot_confusion,
    plot_learning_curves,
    save_model,
    write_confusion_csv,
    write_history_csv,
)
from mnistexp.experiment.data import (
    CLASS_NAMES,
    CSV_PAIRS,
    DataError,
    find_idx_files,
    load_dataset,
    prepare_arrays,
)
from mnistexp.experiment.model import build_model, count_params
from mnistexp.experiment.record import (
    RECORD_NAME,
    SCHEMA_VERSION,
    config_hash,
    cpu_model,
    environment_info,
    experiment_fingerprint,
    new_run_id,
    process_start_time,
    utc_now,
    write_record,
)
from mnistexp.experiment.train import (
    configure_runtime,
    confusion_matrix,
    make_callbacks,
    predict_proba,
    score,
    train_model,
)

# Environment variables a record may quote (platform facts, never credentials).
SAFE_ENV_VARS = ("KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_DOCKER_IMAGE", "CUDA_VERSION")


def find_mnist_dirs(root: Path, max_depth: int = 4) -> list[Path]:
    """Folders under `root` (itself included) that hold MNIST files load_dataset can read."""
    found = []
    root = Path(root)
    if not root.is_dir():
        return found
    for folder, subdirs, files in os.walk(root):
        depth = len(Path(folder).relative_to(root).parts)
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".")) if depth < max_depth else []
        names = set(files)
        path = Path(folder)
        try:
            has_idx = find_idx_files(path) is not None
        except DataError:
            has_idx = False  # some IDX files but not all four: not usable
        has_csv = any(train in names for train, _ in CSV_PAIRS)
        has_npz = any(name.endswith(".npz") for name in names)
        if has_idx or has_csv or has_npz:
            found.append(path)
    return found


def has_labelled_test(folder: Path) -> bool:
    """True unless the folder's data is a train.csv whose test.csv has no label column."""
    try:
        if find_idx_files(folder) is not None:
            return True
    except DataError:
        return False
    if any(folder.glob("*.npz")):
        return True
    for train_name, test_name in CSV_PAIRS:
        if (folder / train_name).is_file():
            return csv_has_labels(folder / test_name)
    return False


def csv_has_labels(path: Path) -> bool:
    """A CSV whose first row has 785 columns (label + 784 pixels); False when absent."""
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline()
    except OSError:
        return False
    return len(first.strip().split(",")) == 785


def gpu_names() -> list[str]:
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


def hardware_info() -> dict:
    """What the kernel saw: CPU, memory, accelerators (for side-by-side platform comparison)."""
    gpus = gpu_names()
    tpu = bool(os.environ.get("TPU_NAME")) or Path("/dev/accel0").exists()
    memory_gb = None
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    memory_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
                    break
    except (OSError, ValueError, IndexError):
        pass
    return {
        "accelerator": "gpu" if gpus else ("tpu" if tpu else "cpu"),
        "gpus": gpus,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gb": memory_gb,
        "env": {name: os.environ[name] for name in SAFE_ENV_VARS if os.environ.get(name)},
    }


def run_kernel(
    config: dict,
    platform: str,
    data_dir: Path,
    out_dir: Path,
    kernel_info: dict,
    platform_info: dict | None = None,
    after_evaluate=None,
    verbose: int = 2,
) -> dict:
    """Train and evaluate `config` on the data in `data_dir`; write the record to `out_dir`.

    `after_evaluate(model, out_dir)` may write more files and returns {kind: file name}
    for the record's artifacts (the Kaggle submission). Returns the final record.
    """
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data_config = config["data"]
    t0 = time.perf_counter()
    dataset = load_dataset(
        data_dir, dataset=data_config["dataset"], verify=data_config["verify"],
        holdout_fraction=data_config["holdout_fraction"],
    )
    arrays = prepare_arrays(dataset, data_config, config["model"]["input_shape"])
    data_load_s = time.perf_counter() - t0

    data_summary = dataset.summary()
    data_summary.update(
        n_train=len(arrays["y_train"]),
        n_val=0 if arrays["y_val"] is None else len(arrays["y_val"]),
        n_test=len(arrays["y_test"]),
    )
    info = {
        "kernel": dict(kernel_info),
        "data_dir": str(data_dir),
        "output_dir": str(out_dir),
        "hardware": hardware_info(),
        **(platform_info or {}),
    }
    if dataset.test_split == "holdout":
        info["test_split_note"] = (
            f"no labelled test set in {data_dir}: the last {data_config['holdout_fraction']:g} of the "
            "labelled rows were held out as the test split"
        )
    record = {
        "schema_version": SCHEMA_VERSION,
        "run_id": new_run_id(platform),
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
        "timings": {"data_load_s": data_load_s},
        "throughput": {"train_images_per_s": None},
        "runtime": {},
        "environment": environment_info(),
        "artifacts": {},
        "tags": {"platform": platform, "kernel": str(kernel_info.get("file", "")),
                 "accelerator": info["hardware"]["accelerator"]},
        "platform_info": info,
    }
    try:
        _train_and_evaluate(config, arrays, dataset, out_dir, record, after_evaluate, verbose, t_start)
    except KeyboardInterrupt:
        _close(record, out_dir, "interrupted", "interrupted by the user", t_start)
        raise
    except Exception as exc:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        _close(record, out_dir, "failed", reason, t_start)
        raise
    return record


def _train_and_evaluate(config, arrays, dataset, out_dir, record, after_evaluate, verbose, t_start):
    t0 = time.perf_counter()
    record["runtime"] = configure_runtime(config["train"]["seed"], config["runtime"])
    gpus = gpu_names()
    record["environment"]["gpus"] = gpus
    record["platform_info"]["hardware"]["gpus"] = gpus
    record["platform_info"]["hardware"]["accelerator"] = "gpu" if gpus else \
        record["platform_info"]["hardware"]["accelerator"]
    record["tags"]["accelerator"] = record["platform_info"]["hardware"]["accelerator"]
    keras_model = build_model(config["model"], config["train"], config["runtime"])
    record["model"] = {"params": count_params(keras_model)}
    record["timings"]["build_s"] = time.perf_counter() - t0
    write_record(out_dir, record)

    def on_epoch_end(epoch, row):
        record["history"].append(row)
        record["metrics"]["epochs_run"] = epoch
        write_history_csv(out_dir / "history.csv", record["history"])
        write_record(out_dir, record)

    callbacks = make_callbacks(config["train"], on_epoch_end, arrays["y_val"] is not None)
    t0 = time.perf_counter()
    train_model(keras_model, arrays, config["train"], callbacks, verbose=verbose,
                validation_batch_size=config["runtime"]["eval_batch_size"])
    record["timings"]["train_s"] = time.perf_counter() - t0
    first_step = callbacks[0].first_step_time
    if first_step is not None:
        # from the start of the process, imports included: what a user waits for
        record["timings"]["time_to_first_step_s"] = first_step - process_start_time()
    epoch_times = [row["epoch_time_s"] for row in record["history"]]
    if epoch_times:
        record["throughput"]["train_images_per_s"] = len(arrays["y_train"]) * len(epoch_times) / sum(epoch_times)

    t0 = time.perf_counter()
    probabilities = predict_proba(keras_model, arrays["x_test"], config["runtime"]["eval_batch_size"])
    scores = score(probabilities, arrays["y_test"])
    confusion = confusion_matrix(arrays["y_test"], probabilities.argmax(axis=1), probabilities.shape[1])
    record["timings"]["evaluate_s"] = time.perf_counter() - t0
    last = record["history"][-1] if record["history"] else {}
    record["metrics"].update(
        test_accuracy=scores["accuracy"], test_loss=scores["loss"],
        final_val_accuracy=last.get("val_accuracy"), final_val_loss=last.get("val_loss"),
    )

    names = CLASS_NAMES.get(dataset.name, [str(i) for i in range(len(confusion))])
    save_model(out_dir / "model.keras", keras_model)
    write_history_csv(out_dir / "history.csv", record["history"])
    write_confusion_csv(out_dir / "confusion_matrix.csv", confusion, names)
    artifacts = {"model": "model.keras", "history": "history.csv", "confusion_matrix": "confusion_matrix.csv"}
    title = f"{record['experiment']['name']} on {record['platform']} ({record['run_id']})"
    try:
        plot_learning_curves(out_dir / "learning_curves.png", record["history"], title)
        plot_confusion(out_dir / "confusion_matrix.png", confusion, names, title)
        artifacts.update(learning_curves_plot="learning_curves.png", confusion_matrix_plot="confusion_matrix.png")
    except ImportError:
        record["platform_info"]["plots"] = "skipped: matplotlib is not installed in this image"
    if after_evaluate is not None:
        artifacts.update(after_evaluate(keras_model, out_dir) or {})
    record["artifacts"] = artifacts
    _close(record, out_dir, "completed", None, t_start)


def _close(record, out_dir, status, error, t_start) -> None:
    record["status"] = status
    record["error"] = error
    record["finished_at"] = utc_now()
    record["timings"]["total_s"] = time.perf_counter() - t_start
    write_record(out_dir, record)


def summary_line(record: dict, out_dir: Path) -> str:
    metrics = record["metrics"]
    return (
        f"{record['run_id']}: test_accuracy={metrics['test_accuracy']:.4f} test_loss={metrics['test_loss']:.4f} "
        f"fingerprint={record['experiment']['fingerprint']} record={Path(out_dir) / RECORD_NAME}"
    )
