"""Fetch the four IDX files from the official mirrors into a user cache, verified.

A file becomes a cached file only after its decompressed content matches the published
sha256: bytes arrive in `<name>.part`, an interrupted download resumes from there (HTTP
Range), and a wrong or corrupt download is deleted and the next mirror is tried.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from .data import IDX_NAMES, KNOWN_CHECKSUMS, PARTS, DataError

MIRRORS = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://yann.lecun.com/exdb/mnist/",
    ],
    "fashion-mnist": [
        "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    ],
}

TIMEOUT_S = 30


def cache_root() -> Path:
    env = os.environ.get("MNISTEXP_CACHE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("mnistexp"))


def mirrors_for(dataset: str) -> list[str]:
    """MNISTEXP_MIRRORS (comma-separated base URLs) replaces the built-in list when set."""
    env = os.environ.get("MNISTEXP_MIRRORS")
    if env:
        return [m.strip().rstrip("/") + "/" for m in env.split(",") if m.strip()]
    return list(MIRRORS[dataset])


def ensure_dataset(dataset: str, cache_dir: str | Path | None = None, progress=None) -> Path:
    """Return a folder holding the verified .gz files of `dataset`, downloading what is missing."""
    if dataset not in KNOWN_CHECKSUMS:
        raise DataError(f"no download source for data set '{dataset}'; pass --data-dir")
    folder = Path(cache_dir or cache_root()) / dataset
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cache folder {folder} cannot be created ({exc.strerror}); set MNISTEXP_CACHE_DIR") from None
    for part in PARTS:
        name = IDX_NAMES[part] + ".gz"
        target = folder / name
        expected = KNOWN_CHECKSUMS[dataset][part]
        if target.is_file() and gz_content_sha256(target) == expected:
            continue
        target.unlink(missing_ok=True)
        _download_verified(name, target, expected, mirrors_for(dataset), progress)
    return folder


def gz_content_sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except (OSError, EOFError, zlib.error):  # a damaged cached file: fetch it again
        return None
    return digest.hexdigest()


def _download_verified(name: str, target: Path, expected: str, mirrors: list[str], progress) -> None:
    part_file = target.with_name(target.name + ".part")
    errors = []
    for base in mirrors:
        url = base + name
        try:
            _fetch(url, part_file, progress)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", None) or getattr(exc, "code", None) or exc
            errors.append(f"{url}: {reason}")
            continue  # a partial .part stays for a resume from the same mirror next time
        actual = gz_content_sha256(part_file)
        if actual == expected:
            os.replace(part_file, target)
            return
        part_file.unlink(missing_ok=True)
        errors.append(f"{url}: wrong checksum (expected sha256 {expected}, actual {actual})")
    raise DataError(
        f"could not download {name} from any mirror ({'; '.join(errors)}); "
        "check the network, set MNISTEXP_MIRRORS, or pass --data-dir with local copies"
    )


def _fetch(url: str, part_file: Path, progress) -> None:
    """Download into part_file, resuming a previous partial download from the same URL."""
    offset = part_file.stat().st_size if part_file.exists() else 0
    marker = part_file.with_name(part_file.name + ".url")
    if offset and (not marker.exists() or marker.read_text() != url):
        part_file.unlink()  # partial bytes from another mirror may differ (recompressed copies)
        offset = 0
    marker.write_text(url)
    request = urllib.request.Request(url, headers={"User-Agent": "mnistexp"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        mode = "ab" if offset and response.status == 206 else "wb"
        total = response.headers.get("Content-Length")
        with open(part_file, mode) as f:
            done = offset if mode == "ab" else 0
            for block in iter(lambda: response.read(1 << 16), b""):
                f.write(block)
                done += len(block)
                if progress:
                    progress(url, done, int(total) + (offset if mode == "ab" else 0) if total else None)
    marker.unlink(missing_ok=True)
