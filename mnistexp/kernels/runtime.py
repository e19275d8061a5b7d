"""The run inside a platform kernel: find the data there, then the one run lifecycle.

This module is embedded verbatim into the generated kernels (its project imports are
stripped; the names are defined in the same file there), so it may use only the
experiment modules, the standard library and numpy. The run itself is
experiment.lifecycle.run_lifecycle, the same code the local runner uses.
"""

from __future__ import annotations

import os
import sys
import time
from importlib import metadata
from pathlib import Path

from mnistexp.experiment.config import ConfigError
from mnistexp.experiment.data import (
    CSV_PAIRS,
    DataError,
    find_idx_files,
    load_dataset,
    prepare_arrays,
)
from mnistexp.experiment.hooks import RunDiverged, RunInterrupted
from mnistexp.experiment.lifecycle import (
    RunHooks,
    gpu_names,
    new_record,
    run_lifecycle,
    single_split,
)
from mnistexp.experiment.record import RECORD_NAME, RecordError, cpu_model, new_run_id

# Environment variables every kernel's record may quote (facts, never credentials); a platform's
# entry adds its own (run_kernel's safe_env).
SAFE_ENV_VARS = ("CUDA_VERSION",)


# Keras 3 is the first Keras the experiment code runs on (TensorFlow 2.16 ships it).
MIN_KERAS = (3, 0)


def check_keras_version() -> None:
    """Stop at once, with one line naming the versions, on a platform image with Keras 2.

    Reads the installed versions without importing them (TensorFlow's import is slow and noisy).
    """
    def installed(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    keras_version = installed("keras")
    tf_version = installed("tensorflow") or installed("tensorflow-cpu") or "not installed"
    found = tuple(int(p) for p in (keras_version or "0").split(".")[:2] if p.isdigit())
    if found < MIN_KERAS:
        raise ConfigError(
            f"this kernel needs Keras 3 (TensorFlow 2.16 or newer); the platform has Keras "
            f"{keras_version or 'not installed'} and TensorFlow {tf_version}: pick a newer image (Kaggle: "
            "Settings > Environment 'Always use latest environment'; CodaLab: --docker-image "
            "tensorflow/tensorflow:2.16.1 or newer)"
        )


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


def hardware_info(safe_env=()) -> dict:
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
        "env": {name: os.environ[name] for name in (*SAFE_ENV_VARS, *safe_env) if os.environ.get(name)},
    }


class KernelHooks(RunHooks):
    """A kernel's platform hooks: only `extra_artifacts` (e.g. the Kaggle submission)."""

    def __init__(self, after_evaluate=None):
        self.after_evaluate = after_evaluate

    def start(self, run_dir, record):
        # TensorFlow is loaded now: the GPUs it sees decide the accelerator.
        hardware = record["platform_info"]["hardware"]
        hardware["gpus"] = record["environment"].get("gpus", [])
        if hardware["gpus"]:
            hardware["accelerator"] = record["tags"]["accelerator"] = "gpu"

    def extra_artifacts(self, model, run_dir):
        return (self.after_evaluate(model, run_dir) or {}) if self.after_evaluate else {}


def run_kernel(
    config: dict,
    platform: str,
    data_dir: Path,
    out_dir: Path,
    kernel_info: dict,
    platform_info: dict | None = None,
    after_evaluate=None,
    verbose: int = 2,
    safe_env=(),
) -> dict:
    """Train and evaluate `config` on the data in `data_dir` through the one run lifecycle;
    the record and files go to `out_dir`.

    `after_evaluate(model, out_dir)` may write more files and returns {kind: file name}
    for the record's artifacts (the Kaggle submission). Returns the final record.
    """
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    data_config = config["data"]
    t0 = time.perf_counter()
    dataset = load_dataset(
        data_dir, dataset=data_config["dataset"], verify=data_config["verify"],
        holdout_fraction=data_config["holdout_fraction"],
    )
    arrays = prepare_arrays(dataset, data_config, config["model"]["input_shape"])
    info = {
        "kernel": dict(kernel_info),
        "data_dir": str(data_dir),
        "output_dir": str(out_dir),
        "hardware": hardware_info(safe_env),
        **(platform_info or {}),
    }
    if dataset.test_split == "holdout":
        info["test_split_note"] = (
            f"no labelled test set in {data_dir}: the last {data_config['holdout_fraction']:g} of the "
            "labelled rows were held out as the test split"
        )
    tags = {"kernel": str(kernel_info.get("file", "")), "accelerator": info["hardware"]["accelerator"]}
    record = new_record(config, platform, dataset, arrays, new_run_id(platform), tags, info)
    record["timings"]["data_load_s"] = time.perf_counter() - t0
    return run_lifecycle(config, single_split(dataset), out_dir, record, KernelHooks(after_evaluate),
                         verbose=verbose, first_arrays=arrays, t_start=t_start)


def kernel_exit_status(run) -> int:
    """Run a kernel's `run()` (returns the final record and its folder) and turn the outcome into
    the process's exit status: one `Error:` line for bad input or a diverged run, 130 when stopped
    (the record says `interrupted`), else the summary line and 0."""
    try:
        check_keras_version()
        record, out_dir = run()
    except (ConfigError, DataError, RecordError, RunDiverged) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except RunInterrupted as exc:
        print(f"Stopped: {exc}", file=sys.stderr)
        return 130
    print(summary_line(record, out_dir))
    return 0


def summary_line(record: dict, out_dir: Path) -> str:
    metrics = record["metrics"]
    return (
        f"{record['run_id']}: test_accuracy={metrics['test_accuracy']:.4f} test_loss={metrics['test_loss']:.4f} "
        f"fingerprint={record['experiment']['fingerprint']} record={Path(out_dir) / RECORD_NAME}"
    )
