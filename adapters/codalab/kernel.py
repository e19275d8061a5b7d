"""The CodaLab kernel: mnistexp_codalab.py, codalab.json and the exact `cl` command lines.

The codalab CLI cannot share an environment with TensorFlow on Python 3.11, so mnistexp
never imports it: every interaction is one of the `cl` argument lists built here, run as
a subprocess (mnistexp codalab submit / pull) or written to commands.sh for by hand.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from mnistexp.adapters.kaggle.kernel import slugify
from mnistexp.kernels.build import KernelError, render_kernel, write_files

CODE_FILE = "mnistexp_codalab.py"
METADATA_FILE = "codalab.json"
COMMANDS_FILE = "commands.sh"
DEFAULT_OUT = Path("platforms") / "codalab"
CPU_IMAGE = "tensorflow/tensorflow:2.16.1"
GPU_IMAGE = "tensorflow/tensorflow:2.16.1-gpu"

# What CodaLab accepts (cl help run / upload): bundle names, sizes, durations.
NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.\-]*$")
SIZE_RE = re.compile(r"^[0-9]+[kmgt]?$")
TIME_RE = re.compile(r"^[0-9]+[smhd]?$")
IMAGE_RE = re.compile(r"^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$")
UUID_RE = re.compile(r"0x[0-9a-f]{32}")


@dataclass(frozen=True)
class CodalabSettings:
    """Bundle names and the resources `cl run` requests."""

    run_name: str = "mnistexp-canonical"
    data_dependency: str = "mnist"  # the data bundle's name and its mount point in the run
    kernel_bundle: str = CODE_FILE
    docker_image: str = CPU_IMAGE
    cpus: int = 2
    gpus: int = 0
    memory: str = "8g"
    disk: str = "2g"
    time: str = "2h"

    def validate(self) -> CodalabSettings:
        for key in ("run_name", "data_dependency", "kernel_bundle"):
            if not NAME_RE.match(getattr(self, key)):
                raise KernelError(f"CodaLab {key.replace('_', ' ')} {getattr(self, key)!r} must match "
                                  r"^[a-zA-Z_][a-zA-Z0-9_.\-]*$ (letters, digits, _ . -)")
        if not IMAGE_RE.match(self.docker_image):
            raise KernelError(f"docker image {self.docker_image!r} is not a valid image reference, "
                              f"e.g. {CPU_IMAGE}")
        if self.cpus < 1 or self.gpus < 0:
            raise KernelError("request at least 1 CPU and 0 or more GPUs")
        for key in ("memory", "disk"):
            if not SIZE_RE.match(getattr(self, key)):
                raise KernelError(f"CodaLab {key} request {getattr(self, key)!r} must look like 8g, 512m or 2t")
        if not TIME_RE.match(self.time):
            raise KernelError(f"CodaLab time request {self.time!r} must look like 90m, 2h or 1d")
        return self

    def request(self) -> dict:
        return {"docker_image": self.docker_image, "cpus": self.cpus, "gpus": self.gpus,
                "memory": self.memory, "disk": self.disk, "time": self.time}


def default_settings(config: dict, gpus: int = 0, **overrides) -> CodalabSettings:
    name = slugify(f"mnistexp {config.get('name', 'custom')}")[:60] or "mnistexp"
    image = overrides.pop("docker_image", None) or (GPU_IMAGE if gpus else CPU_IMAGE)
    values = {k: v for k, v in overrides.items() if v is not None}
    return CodalabSettings(run_name=name, gpus=gpus, docker_image=image, **values).validate()


def settings_from_metadata(meta: dict) -> CodalabSettings:
    request = meta.get("request", {})
    try:
        return CodalabSettings(
            run_name=meta["run_name"], data_dependency=meta["data_dependency"],
            kernel_bundle=meta["kernel_bundle"], docker_image=request["docker_image"],
            cpus=int(request["cpus"]), gpus=int(request["gpus"]), memory=request["memory"],
            disk=request["disk"], time=request["time"],
        ).validate()
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, KernelError):
            raise
        raise KernelError(f"{METADATA_FILE} is incomplete ({exc}); regenerate it with `mnistexp kernel codalab`") from None


def read_metadata(kernel_dir: str | Path) -> tuple[dict, CodalabSettings]:
    path = Path(kernel_dir) / METADATA_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KernelError(f"{path} not found; generate the kernel first: mnistexp kernel codalab") from None
    except (OSError, ValueError) as exc:
        raise KernelError(f"{path} cannot be read ({exc}); regenerate it with `mnistexp kernel codalab`") from None
    return meta, settings_from_metadata(meta)


# ---------------------------------------------------------------- the cl command lines


def run_command(settings: CodalabSettings) -> str:
    return f"python3 {CODE_FILE}"


def cl_upload_data(data_dir: str, settings: CodalabSettings, worksheet: str | None = None) -> list[str]:
    argv = ["cl", "upload", str(data_dir), "-n", settings.data_dependency,
            "-d", "MNIST files for mnistexp (IDX, npz or CSV)"]
    return argv + (["-w", worksheet] if worksheet else [])


def cl_upload_kernel(kernel_path: str, settings: CodalabSettings, worksheet: str | None = None) -> list[str]:
    argv = ["cl", "upload", str(kernel_path), "-n", settings.kernel_bundle,
            "-d", "mnistexp kernel, generated by mnistexp kernel codalab"]
    return argv + (["-w", worksheet] if worksheet else [])


def cl_run(data_ref: str, kernel_ref: str, settings: CodalabSettings, worksheet: str | None = None) -> list[str]:
    """Mount the data as ./<data_dependency> and the kernel as ./mnistexp_codalab.py, run it."""
    argv = [
        "cl", "run",
        f"{settings.data_dependency}:{data_ref}",
        f"{CODE_FILE}:{kernel_ref}",
        run_command(settings),
        "-n", settings.run_name,
        "-d", "mnistexp canonical experiment (record.json in the bundle)",
        "--request-docker-image", settings.docker_image,
        "--request-cpus", str(settings.cpus),
        "--request-gpus", str(settings.gpus),
        "--request-memory", settings.memory,
        "--request-disk", settings.disk,
        "--request-time", settings.time,
    ]
    return argv + (["-w", worksheet] if worksheet else [])


def cl_state(bundle: str) -> list[str]:
    return ["cl", "info", "-f", "state", bundle]


def cl_download(bundle: str, out_path: str) -> list[str]:
    return ["cl", "download", bundle, "-o", str(out_path)]


def commands_script(settings: CodalabSettings) -> str:
    """commands.sh: the same argument lists as `mnistexp codalab submit`, by bundle name."""
    data_marker, kernel_marker = "@MNIST_DIR@", "@KERNEL@"
    upload_data = shlex.join(cl_upload_data(data_marker, settings)).replace(data_marker, '"$MNIST_DIR"')
    upload_kernel = shlex.join(cl_upload_kernel(kernel_marker, settings)).replace(
        kernel_marker, f'"$(dirname "$0")/{CODE_FILE}"')
    run = shlex.join(cl_run(settings.data_dependency, settings.kernel_bundle, settings))
    return f"""#!/bin/sh
# Generated by `mnistexp kernel codalab`: the exact CodaLab commands that run {CODE_FILE}.
# Install and log in to the CodaLab CLI first (README, "Run on CodaLab"), then:
#   sh platforms/codalab/{COMMANDS_FILE} /path/to/mnist    # folder with the MNIST files
# `mnistexp codalab submit --data-dir /path/to/mnist` runs the same commands (by uuid)
# and prints the run bundle; when it is ready: mnistexp codalab pull <run bundle>.
set -eu
MNIST_DIR="${{1:?usage: sh {COMMANDS_FILE} /path/to/mnist-folder}}"
{upload_data}
{upload_kernel}
{run}
# When the run is ready:
#   {shlex.join(cl_state(settings.run_name))}
#   mnistexp codalab pull {settings.run_name}
"""


def kernel_source(config: dict, settings: CodalabSettings) -> str:
    info = {
        "platform": "codalab",
        "file": CODE_FILE,
        "run_name": settings.run_name,
        "data_dependency": settings.data_dependency,
        "request": settings.request(),
    }
    doc = f"""mnistexp on CodaLab: the '{config.get('name', 'custom')}' experiment as one self-contained script.

Run it as a CodaLab run bundle with the MNIST folder mounted as ./{settings.data_dependency}
(platforms/codalab/{COMMANDS_FILE} has the exact `cl upload` / `cl run` lines, and
`mnistexp codalab submit` runs them). It writes record.json, history.csv, model.keras and
plots into the bundle; bring the run home with `mnistexp codalab pull <bundle>`."""
    return render_kernel(config, "mnistexp.adapters.codalab.entry", info, doc)


def generate_codalab(config: dict, out_dir: str | Path = DEFAULT_OUT,
                     settings: CodalabSettings | None = None) -> list[Path]:
    """Write mnistexp_codalab.py, codalab.json and commands.sh to out_dir; return their paths."""
    settings = (settings or default_settings(config)).validate()
    meta = {
        "kernel": CODE_FILE,
        "run_name": settings.run_name,
        "data_dependency": settings.data_dependency,
        "kernel_bundle": settings.kernel_bundle,
        "command": run_command(settings),
        "request": settings.request(),
    }
    files = {
        CODE_FILE: kernel_source(config, settings),
        METADATA_FILE: json.dumps(meta, indent=2) + "\n",
        COMMANDS_FILE: commands_script(settings),
    }
    return write_files(out_dir, files)


