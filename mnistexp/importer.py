"""Bring run records made elsewhere (Kaggle, CodaLab, another machine) into results/.

A record is validated against the run-record schema before anything is written; each run
lands in results/<run_id>/ (record.json plus the artifact files the record lists), staged
in a hidden folder and renamed into place, so a failed import leaves nothing behind.
Importing the same run again is a no-op; a different run under an existing id is refused.

A downloaded folder is untrusted: symbolic links (and anything else that is not a plain
file inside it) are skipped with a warning, never followed, so a `history.csv` that
points at ~/.kaggle/kaggle.json cannot copy a secret into results/. Records are read with
the one strict reader, experiment.record.read_record, as compare and diff read them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from mnistexp.experiment.record import RECORD_NAME, RecordError, read_record, write_json_atomic

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MAX_SEARCH_DEPTH = 4


@dataclass
class Imported:
    run_id: str
    run_dir: Path
    record: dict
    source: Path
    status: str = "imported"  # or "already present"
    copied: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # files skipped, for `Warning:` lines


def find_records(path: str | Path, warnings: list | None = None) -> list[Path]:
    """The record files PATH names: the file itself, PATH/record.json, or record.json files below.

    A record.json inside the folder that is a symbolic link is skipped (with a line added to
    `warnings`): only a file the user named directly is followed.
    """
    path = Path(path)
    warnings = warnings if warnings is not None else []
    if not path.exists():
        raise RecordError(f"{path}: no such file or folder; pass a record.json or the folder a kernel wrote")
    if path.is_file():
        return [path]
    found = []
    skipped = []
    for folder, subdirs, files in os.walk(path):  # does not descend into linked folders
        depth = len(Path(folder).relative_to(path).parts)
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".")) if depth < MAX_SEARCH_DEPTH else []
        if RECORD_NAME in files:
            candidate = Path(folder) / RECORD_NAME
            if _plain_file(candidate):
                found.append(candidate)
            else:
                skipped.append(candidate)
                warnings.append(f"{candidate} is a link or not a plain file; skipped (not followed)")
        if depth == 0 and found:
            break  # PATH/record.json: PATH is one run's folder
    if not found:
        hint = f" (only links, not followed: {skipped[0]}; copy the real files in)" if skipped else ""
        raise RecordError(f"{path}: no {RECORD_NAME} in this folder or below{hint}; pass a run record or the "
                          "output folder a kernel wrote")
    return sorted(found)


def _plain_file(path: Path) -> bool:
    """A regular file, not a symbolic link (lstat: the link itself is looked at)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _comparable(record: dict) -> dict:
    """The record without what an import adds, to recognise the same run imported twice."""
    copy = json.loads(json.dumps(record))
    copy.get("platform_info", {}).pop("imported", None)
    return copy


def import_records(
    path: str | Path,
    results_dir: str | Path,
    imported_info: dict | None = None,
    extra_files=(),
) -> list[Imported]:
    """Validate every record under PATH, then copy each run into results_dir/<run_id>/.

    `imported_info` (e.g. {"source": "kaggle kernel owner/slug"}) goes to the record's
    platform_info.imported; `extra_files` (logs) are copied into each new run folder.
    """
    results_dir = Path(results_dir)
    plans = []
    seen = {}
    warnings: list[str] = []
    for record_path in find_records(path, warnings):
        record = read_record(record_path)  # schema-checked; a foreign file fails here
        run_id = record["run_id"]
        if not RUN_ID_RE.match(run_id) or run_id in (".", ".."):
            raise RecordError(f"{record_path}: run_id {run_id!r} cannot be a folder name")
        if run_id in seen:
            raise RecordError(f"{record_path}: run {run_id} appears twice (also {seen[run_id]}); import one of them")
        seen[run_id] = record_path
        if imported_info:
            record.setdefault("platform_info", {})["imported"] = dict(imported_info)
        plans.append((record_path, record))

    try:
        results_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RecordError(f"results directory {results_dir} cannot be created ({exc.strerror or exc}); "
                          "pass a writable folder to --results-dir") from None

    done = []
    for record_path, record in plans:
        run_id = record["run_id"]
        target = results_dir / run_id
        source_dir = record_path.parent
        if (target / RECORD_NAME).is_file():
            try:
                existing = read_record(target / RECORD_NAME)
            except RecordError:
                existing = None
            if existing is not None and _comparable(existing) == _comparable(record):
                done.append(Imported(run_id, target, existing, record_path, status="already present"))
                continue
            raise RecordError(f"{target}: a different run with id {run_id} is already there; "
                              "remove that folder first if the new one should replace it")
        if target.exists():
            raise RecordError(f"{target} exists but holds no {RECORD_NAME}; move it away and import again")
        done.append(_copy_run(record, source_dir, target, extra_files, record_path))
    if done and warnings:
        done[0].warnings[:0] = warnings
    return done


def _copy_run(record: dict, source_dir: Path, target: Path, extra_files, record_path: Path) -> Imported:
    result = Imported(record["run_id"], target, record, record_path)
    staging = Path(tempfile.mkdtemp(prefix=f".import-{record['run_id']}-", dir=target.parent))
    try:
        for kind, name in sorted((record.get("artifacts") or {}).items()):
            if Path(name).name != name or name in (".", "..", RECORD_NAME):
                raise RecordError(f"{record_path}: artifact {kind} {name!r} is not a plain file name")
            src = source_dir / name
            if not os.path.lexists(src):
                result.missing.append(name)
            elif _copy_plain_file(src, staging / name, result):
                result.copied.append(name)
        for extra in extra_files:
            extra = Path(extra)
            if os.path.lexists(extra) and not (staging / extra.name).exists() and extra.name != RECORD_NAME:
                if _copy_plain_file(extra, staging / extra.name, result):
                    result.copied.append(extra.name)
        write_json_atomic(staging / RECORD_NAME, record)
        # mkdtemp makes the folder 0700; an imported run is as readable as one run here
        os.chmod(staging, 0o777 & ~_umask())
        os.replace(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise RecordError(f"cannot import {record_path} into {target} ({exc.strerror or exc})") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result


def _copy_plain_file(src: Path, dst: Path, result: Imported) -> bool:
    """Copy src if it is a regular file and not a link; else add a warning and return False.

    The file is opened with O_NOFOLLOW and checked on the open descriptor, so a link swapped
    in after the check is not followed either. The copy gets the usual mode (0644 under the
    default umask), not the downloaded file's.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(src, flags)
    except OSError:
        if os.path.islink(src):
            result.warnings.append(f"{src} is a symbolic link; skipped (links are not followed on import)")
            return False
        raise
    with os.fdopen(fd, "rb") as source:
        info = os.fstat(source.fileno())
        if os.path.islink(src) or not stat.S_ISREG(info.st_mode):
            result.warnings.append(f"{src} is a link or not a plain file; skipped")
            return False
        with open(dst, "xb") as out:
            shutil.copyfileobj(source, out)
    os.chmod(dst, 0o666 & ~_umask())
    os.utime(dst, ns=(info.st_atime_ns, info.st_mtime_ns))
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def describe(item: Imported) -> str:
    """One line for the user: what was imported from where, with its headline numbers."""
    record = item.record
    accuracy = record.get("metrics", {}).get("test_accuracy")
    facts = [record.get("platform", "?"), f"status {record.get('status')}"]
    if accuracy is not None:
        facts.append(f"test_accuracy={accuracy:.4f}")
    facts.append(f"fingerprint {record['experiment']['fingerprint']}")
    line = f"{item.status} {item.run_id} ({', '.join(facts)}) -> {item.run_dir}"
    if item.missing:
        line += f"\n  note: artifact files not found next to the record: {', '.join(item.missing)}"
    return line
