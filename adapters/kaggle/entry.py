"""Entry point of the Kaggle kernel (embedded into platforms/kaggle/mnistexp_kaggle.py).

Two modes, fixed when the kernel is generated (KERNEL_INFO["mode"]):

* "mnist" (default): the official MNIST split from an attached public MNIST data set
  (IDX files or Keras' mnist.npz under /kaggle/input), verified by the published
  checksums, so the record has the same experiment fingerprint as a local run.
* "competition": the digit-recognizer competition's train.csv (42,000 labelled rows, the
  last data.holdout_fraction held out as the test split) plus a submission.csv for its
  unlabelled test.csv: a different experiment, and the record says so.

Writes record.json, history.csv, the model and plots to /kaggle/working/.
MNISTEXP_KAGGLE_INPUT and MNISTEXP_KAGGLE_WORKING redirect the two folders (for tests and
for running the file elsewhere).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mnistexp.experiment.data import DataError, Dataset, prepare_arrays, read_csv
from mnistexp.experiment.record import write_text_atomic
from mnistexp.experiment.train import predict_proba
from mnistexp.kernels.runtime import (
    csv_has_labels,
    find_mnist_dirs,
    has_labelled_test,
    kernel_exit_status,
    run_kernel,
)

KAGGLE_INPUT = "/kaggle/input"
KAGGLE_WORKING = "/kaggle/working"
COMPETITION = "digit-recognizer"
# The public MNIST copy the kernel attaches by default (the four IDX files, official split).
KERNEL_DEFAULT_DATASET = "hojjatk/mnist-dataset"
# Kaggle's environment facts the record may quote (never its secrets such as KAGGLE_KEY).
KAGGLE_FACTS = ("KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_DOCKER_IMAGE")


def find_kaggle_data(input_root: Path, mode: str = "mnist") -> tuple[Path, Path | None]:
    """(folder with the labelled training data, the competition's unlabelled test.csv or None)."""
    folders = find_mnist_dirs(input_root, max_depth=5)
    official = [f for f in folders if has_labelled_test(f)]
    if mode == "mnist":
        if not official:
            raise DataError(
                f"{input_root}: no MNIST data set with the official test split is attached; add one as input "
                f"(default: {KERNEL_DEFAULT_DATASET}, IDX files or mnist.npz), or generate the kernel with "
                f"--competition {COMPETITION} for the competition's data (a different experiment)"
            )
        return sorted(official, key=str)[0], None
    for folder in sorted(folders, key=lambda f: (f.name != COMPETITION, str(f))):
        test_csv = folder / "test.csv"
        if (folder / "train.csv").is_file() and test_csv.is_file() and not csv_has_labels(test_csv):
            return folder, test_csv
    raise DataError(f"{input_root}: the '{COMPETITION}' competition data (train.csv, test.csv) is not attached; "
                    "join the competition and add it as input")


def write_submission(model, images: np.ndarray, config: dict, path: Path) -> int:
    """Predict the competition's test images; write ImageId,Label (ImageId from 1)."""
    n = len(images)
    blank = np.zeros(n, dtype=np.uint8)
    # The same preprocessing as training (scaling and reshape of prepare_arrays).
    holder = Dataset(name=config["data"]["dataset"], x_train=images, y_train=blank, x_test=images, y_test=blank)
    inputs = prepare_arrays(holder, {"normalize": config["data"]["normalize"]}, config["model"]["input_shape"])
    labels = predict_proba(model, inputs["x_test"], config["runtime"]["eval_batch_size"]).argmax(axis=1)
    lines = ["ImageId,Label"] + [f"{i + 1},{int(label)}" for i, label in enumerate(labels)]
    write_text_atomic(path, "\n".join(lines) + "\n")
    return n


def main(config: dict, kernel_info: dict) -> int:
    input_root = Path(os.environ.get("MNISTEXP_KAGGLE_INPUT") or KAGGLE_INPUT)
    working = Path(os.environ.get("MNISTEXP_KAGGLE_WORKING") or KAGGLE_WORKING)
    mode = kernel_info.get("mode", "mnist")

    def run():
        data_dir, competition_test = find_kaggle_data(input_root, mode)
        print(f"mnistexp: training on {data_dir}" + (f"; submission for {competition_test}" if competition_test else ""))
        test_images = read_csv(competition_test)[0] if competition_test else None

        def after_evaluate(model, out_dir):
            if test_images is None:
                return {}
            count = write_submission(model, test_images, config, Path(out_dir) / "submission.csv")
            print(f"mnistexp: wrote submission.csv ({count} predictions)")
            return {"submission": "submission.csv"}

        platform_info = {
            "input_root": str(input_root),
            "mode": mode,
            "competition": COMPETITION if competition_test else None,
            "competition_test": str(competition_test) if competition_test else None,
        }
        if mode == "competition":
            platform_info["experiment_note"] = (
                f"trained and tested on the {COMPETITION} competition's train.csv (its own holdout split), "
                "not the official MNIST split: a different experiment from local MNIST runs"
            )
        record = run_kernel(config, "kaggle", data_dir, working, kernel_info, platform_info, after_evaluate,
                            safe_env=KAGGLE_FACTS)
        return record, working

    return kernel_exit_status(run)
