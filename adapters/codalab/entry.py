"""Entry point of the CodaLab kernel (embedded into platforms/codalab/mnistexp_codalab.py).

CodaLab mounts each dependency of a run bundle in the run's working directory under its
key (`cl run mnist:<bundle> ...` gives ./mnist/); the bundle's result is whatever the run
leaves in that directory. So the kernel reads MNIST from ./<data dependency> and writes
record.json, history.csv, the model and plots next to it. MNISTEXP_CODALAB_WORKDIR and
MNISTEXP_CODALAB_DATA redirect the two (for tests and for running the file elsewhere).
"""

from __future__ import annotations

import os
from pathlib import Path

from mnistexp.experiment.data import DataError
from mnistexp.kernels.runtime import find_mnist_dirs, kernel_exit_status, run_kernel


def find_codalab_data(workdir: Path, dependency: str) -> Path:
    """The dependency folder (or the one folder inside it) that holds the MNIST files."""
    override = os.environ.get("MNISTEXP_CODALAB_DATA")
    root = Path(override) if override else workdir / dependency
    if not root.is_dir():
        raise DataError(
            f"{root}: no data dependency folder; run the bundle with the MNIST bundle mounted as "
            f"'{dependency}' (cl run {dependency}:<mnist-bundle> ..., see platforms/codalab/commands.sh)"
        )
    folders = find_mnist_dirs(root, max_depth=2)
    if not folders:
        raise DataError(
            f"{root}: no MNIST files in the '{dependency}' dependency; upload the folder with the four "
            "IDX files (or mnist.npz, or train.csv/test.csv) as that bundle"
        )
    return folders[0]


def main(config: dict, kernel_info: dict) -> int:
    workdir = Path(os.environ.get("MNISTEXP_CODALAB_WORKDIR") or os.getcwd())
    dependency = str(kernel_info.get("data_dependency", "mnist"))

    def run():
        data_dir = find_codalab_data(workdir, dependency)
        print(f"mnistexp: training on {data_dir}")
        platform_info = {"data_dependency": dependency, "requested": kernel_info.get("request", {})}
        return run_kernel(config, "codalab", data_dir, workdir, kernel_info, platform_info), workdir

    return kernel_exit_status(run)
