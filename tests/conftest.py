"""Shared fixtures: tiny synthetic MNIST-format data that the tests write themselves."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from mnistexp.experiment.data import IDX_NAMES, idx_bytes

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"

# Quick settings for tests that train: one epoch, small batches.
TINY = ["train.epochs=1", "train.batch_size=32"]


def synthetic_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """28x28 uint8 images whose class is a bright bar at a class-specific row: learnable fast."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
    for i, label in enumerate(labels):
        row = 3 + 2 * int(label)
        images[i, row : row + 2, 4:24] = 255
    return images, labels


def write_idx_dir(folder: Path, n_train: int = 320, n_test: int = 80, gz: bool = True, sums: bool = True) -> Path:
    """The four IDX files (+ a SHA256SUMS file, as `sha256sum` writes it) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    x_train, y_train = synthetic_digits(n_train, seed=1)
    x_test, y_test = synthetic_digits(n_test, seed=2)
    arrays = {"train_images": x_train, "train_labels": y_train, "test_images": x_test, "test_labels": y_test}
    lines = []
    for part, array in arrays.items():
        name = IDX_NAMES[part] + (".gz" if gz else "")
        payload = idx_bytes(array)
        data = gzip.compress(payload, mtime=0) if gz else payload
        (folder / name).write_bytes(data)
        lines.append(f"{hashlib.sha256(data).hexdigest()}  {name}")
    if sums:
        (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Downloads and the decoded-data cache go to a temporary folder, never the user's cache."""
    folder = tmp_path_factory.mktemp("cache")
    old = os.environ.get("MNISTEXP_CACHE_DIR")
    os.environ["MNISTEXP_CACHE_DIR"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("MNISTEXP_CACHE_DIR", None)
    else:
        os.environ["MNISTEXP_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> Path:
    """A read-only-by-convention folder of tiny synthetic IDX data (do not modify it)."""
    return write_idx_dir(tmp_path_factory.mktemp("tiny") / "mnist")


@pytest.fixture
def fresh_data_dir(tmp_path) -> Path:
    """A private copy of tiny data that a test may corrupt."""
    return write_idx_dir(tmp_path / "data")


@pytest.fixture
def shared_mnist() -> Path:
    if not (SHARED_MNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST not found at {SHARED_MNIST}")
    return SHARED_MNIST
