"""Decoded data kept as uncompressed .npy in the user cache, so a repeated run skips the
gzip decoding and checksum pass (about a second for MNIST on two cores).

The cache key covers each source file's path, size, modification time and inode, and the
loading options; a changed file misses the cache and is read (and verified) afresh.
Set MNISTEXP_DATA_CACHE=0 to bypass it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .data import Dataset, load_dataset

ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def _key(data_dir: Path, options: dict) -> str | None:
    try:
        files = sorted(p for p in data_dir.iterdir() if p.is_file())
    except OSError:
        return None
    stats = [(p.name, p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_ino) for p in files]
    payload = json.dumps({"dir": str(data_dir.resolve()), "files": stats, "options": options}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def load_dataset_cached(data_dir, dataset="mnist", verify=True, holdout_fraction=0.1, cache_dir=None) -> Dataset:
    data_dir = Path(data_dir)
    options = {"dataset": dataset, "verify": verify, "holdout_fraction": holdout_fraction, "version": 1}
    key = _key(data_dir, options) if data_dir.is_dir() and os.environ.get("MNISTEXP_DATA_CACHE") != "0" else None
    if key is None:
        return load_dataset(data_dir, dataset, verify, holdout_fraction)
    if cache_dir is None:
        from .download import cache_root

        cache_dir = cache_root()
    folder = Path(cache_dir) / "decoded" / key
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            arrays = {name: np.load(folder / f"{name}.npy", allow_pickle=False) for name in ARRAYS}
            return Dataset(**meta, **arrays)
        except (OSError, ValueError, TypeError):
            pass  # a damaged cache entry is rebuilt below
    data = load_dataset(data_dir, dataset, verify, holdout_fraction)
    _store(folder, data)
    return data


def _store(folder: Path, data: Dataset) -> None:
    """Write into a temp folder, then rename: a cache entry is complete or absent."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
    except OSError:
        return  # no writable cache: run uncached
    try:
        for name in ARRAYS:
            np.save(tmp / f"{name}.npy", getattr(data, name), allow_pickle=False)
        meta = {k: getattr(data, k) for k in ("name", "source", "format", "test_split", "checksums")}
        (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        os.replace(tmp, folder)
    except OSError:
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
