"""Find and read run records under folders: fast, and never stopped by one bad file.

Which files are read (walking folders recursively, hidden folders skipped):
  * every file named record.json;
  * any other *.json whose first 64 KiB mention "schema_version" (records exported by
    `mnistexp import`, Comet/OpenML exports, kernel outputs renamed on download);
  * any file named explicitly on the command line.
Other JSON files (kernel metadata, configs) are ignored silently. A file that was meant
to be a record but cannot be used gives one warning line naming the file and the reason.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from mnistexp.experiment.record import (
    MAX_DEPTH,
    RECORD_NAME,
    SCHEMA_VERSION,
    RecordError,
    check_depth,
    load_schema,
    parse_record_json,
    validate_record,
)

try:  # ~1.5x faster parsing when installed (10,000 records: ~0.3 s); strict JSON like ours
    from orjson import loads as _loads
except ImportError:
    _loads = None

SNIFF_BYTES = 64 * 1024
ALIASES = {"study": "tags.study", "tf": "environment.tensorflow"}
# The demo runs shipped with the repo: left out of `compare results/` so they never mix
# with the user's own runs, read when the folder itself is named.
DEMO_FOLDER = "examples"


@dataclass(slots=True)
class Run:
    path: str
    record: dict


@dataclass
class LoadResult:
    runs: list[Run] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files_seen: int = 0


def _fast_validator():
    """A schema validator compiled once and reused: jsonschema per file costs ~1 ms."""
    schema = load_schema()
    try:
        import fastjsonschema

        check = fastjsonschema.compile(schema)
        errors = (fastjsonschema.JsonSchemaException,)
    except ImportError:
        try:
            import jsonschema
        except ImportError:  # validate_record then checks the essentials itself
            return lambda record: validate_record(record)
        validator = jsonschema.Draft202012Validator(schema)

        def check(record):
            if not validator.is_valid(record):
                raise ValueError("invalid")

        errors = (ValueError,)

    def validate(record):
        try:
            check(record)
        except errors:
            return False
        return True

    return validate


def find_candidates(paths, warnings: list[str], notes: list[str] | None = None,
                    skip_demo: bool = True) -> list[str]:
    """Record files under `paths` (files or folders), in a stable order, without repeats.

    A folder named `examples` met on the way down is left out (and named in `notes`) unless
    `skip_demo` is false; a path given is always read.

    Repeats (overlapping arguments, hard links) are recognised by (device, inode), which
    scandir gives for free; os.path.realpath per file would cost ~0.2 s per 10,000.
    """
    found: list[str] = []
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()

    def add(path: str, dev: int, inode: int) -> None:
        if (dev, inode) not in seen_files:
            seen_files.add((dev, inode))
            found.append(path)

    for given in paths:
        given = os.fspath(given)
        if os.path.isfile(given):
            st = os.stat(given)
            add(given, st.st_dev, st.st_ino)
            continue
        if not os.path.isdir(given):
            warnings.append(f"{given}: no such file or folder; skipped")
            continue
        stack = [given]
        while stack:
            folder = stack.pop()
            try:
                st = os.stat(folder)
                # Symlinked folders are followed once: a loop ends at the second visit.
                if (st.st_dev, st.st_ino) in seen_dirs:
                    continue
                seen_dirs.add((st.st_dev, st.st_ino))
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                warnings.append(f"{folder}: folder cannot be read ({exc.strerror or exc}); skipped")
                continue
            subdirs = []
            for entry in entries:
                name = entry.name
                try:
                    if entry.is_dir():
                        if name == DEMO_FOLDER and skip_demo:
                            if notes is not None:
                                notes.append(f"{entry.path} left out (demo runs); name it to compare them")
                        elif not name.startswith(".") and name != "__pycache__":
                            subdirs.append(entry.path)
                    elif name.endswith(".json") and entry.is_file():
                        if name == RECORD_NAME or _mentions_schema_version(entry.path):
                            if entry.is_symlink():
                                target = entry.stat()
                                add(entry.path, target.st_dev, target.st_ino)
                            else:
                                add(entry.path, st.st_dev, entry.inode())
                except OSError:  # a dangling link or a file vanishing mid-walk
                    continue
            stack.extend(reversed(subdirs))
    return found


def _mentions_schema_version(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return b'"schema_version"' in f.read(SNIFF_BYTES)
    except OSError:
        return True  # let read_one report why it cannot be read


def read_one(path: str, validate) -> dict:
    """One record, or RecordError naming the file and the reason.

    Accepts and refuses exactly what experiment.record.read_record does (diff, import):
    orjson is only a fast path; whatever it refuses goes through the same strict stdlib
    parser, which gives the verdict and the reason.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise RecordError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    record = None
    if _loads is not None:
        try:
            record = _loads(data)
        except (ValueError, RecursionError):
            record = None
        else:
            # orjson nests up to 1024 levels; the depth walk is needed only when the file
            # has that many brackets at all (a real record has a few dozen).
            if data.count(b"[") + data.count(b"{") > MAX_DEPTH:
                check_depth(record, path)
    if record is None:
        record = parse_record_json(data, path)
    if not (isinstance(record, dict) and record.get("schema_version") == SCHEMA_VERSION and validate(record)):
        try:
            validate_record(record, path)  # slow path only for bad files: it names the reason
        except RecursionError:
            raise RecordError(f"{path}: malformed JSON (nested too deeply)") from None
    return record


def load_runs(paths) -> LoadResult:
    result = LoadResult()
    validate = _fast_validator()
    files = find_candidates(paths, result.warnings, result.notes)
    result.files_seen = len(files)
    seen_ids: dict[str, str] = {}
    for path in files:
        try:
            record = read_one(path, validate)
        except RecordError as exc:
            result.warnings.append(f"{exc}; skipped")
            continue
        run_id = record["run_id"]
        if run_id in seen_ids:
            # Copies of one run (e.g. a kernel output downloaded twice) must not count as seeds.
            result.warnings.append(f"{path}: duplicate of run {run_id} in {seen_ids[run_id]}; counted once")
            continue
        seen_ids[run_id] = path
        result.runs.append(Run(path, record))
    return result


def resolve_field(path: str) -> str:
    return ALIASES.get(path, path)


@lru_cache(maxsize=256)
def _parts(path: str) -> tuple[str, ...]:
    return tuple(resolve_field(path).split("."))


def get_field(record: dict, path: str):
    """A value by dotted path (`tags.study`, `environment.tensorflow`); config keys such as
    `train.batch_size` are looked up in experiment.config when the record has no such field."""
    parts = _parts(path)
    if len(parts) == 1 and parts[0] in record:  # the common case (platform, seed): no loop
        return record[parts[0]]
    for root in (record, record.get("experiment", {}).get("config", {})):
        value = root
        for part in parts:
            if isinstance(value, dict) and part in value:
                value = value[part]
            else:
                break
        else:
            return value
    return None


def field_text(value) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def find_run(ref: str, results_dir: str | Path) -> Path:
    """A run by folder, record file, or run id (or a unique prefix/suffix) under results_dir."""
    path = Path(ref)
    if path.is_dir() and (path / RECORD_NAME).is_file():
        return path / RECORD_NAME
    if path.is_file():
        return path
    root = Path(results_dir)
    matches = []
    if root.is_dir():
        # Run ids are unique: looking one up in the demo folder too mixes nothing.
        for candidate in find_candidates([root], [], skip_demo=False):
            parent = Path(candidate).parent.name
            if parent == ref or Path(candidate).stem == ref:
                return Path(candidate)
            if ref in parent and Path(candidate).name == RECORD_NAME:
                matches.append(Path(candidate))
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        names = ", ".join(m.parent.name for m in matches[:4])
        raise RecordError(f"run '{ref}' is ambiguous in {root}: {names}; give more of the run id")
    raise RecordError(f"run '{ref}' not found (not a run folder, a record file, or a run id in {root})")


# ---------------------------------------------------------------- liveness (issue 12)

STALE_MIN_S = 5 * 60  # a heartbeat older than max(this, 3 intervals) means the writer is gone
NO_PROCESS_STALE_S = 24 * 3600  # records from before heartbeats: "running" for a day means dead


def this_host() -> str:
    """This machine's environment.hostname_sha256, computed as experiment.record does."""
    import hashlib
    import platform

    return hashlib.sha256(platform.node().encode()).hexdigest()[:12]


def _parse_time(text):
    import datetime as dt

    if not isinstance(text, str):
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def _pid_gone(pid) -> bool:
    if type(pid) is not int or pid <= 0:  # 0 and negatives address process groups, not a process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it exists, under another user
        return False
    return False


def liveness(record: dict, now=None, host: str | None = None) -> tuple[str, str | None]:
    """(status to show, why) — a `running` record whose writer is gone is `abandoned`.

    Abandoned when the heartbeat is older than max(5 min, 3 x heartbeat_interval_s); or
    when it was written on this machine and its pid no longer exists; or, for a record
    without `process`, when created_at is more than a day old. `now`: an aware datetime.
    """
    import datetime as dt

    status = record.get("status")
    if status != "running":
        return status, None
    now = now or dt.datetime.now(dt.timezone.utc)
    process = record.get("process")
    if isinstance(process, dict):
        interval = process.get("heartbeat_interval_s")
        limit = max(STALE_MIN_S, 3 * interval) if type(interval) in (int, float) and interval > 0 else STALE_MIN_S
        beat = _parse_time(process.get("heartbeat_at"))
        if beat is not None:
            age = (now - beat).total_seconds()
            if age > limit:
                return "abandoned", f"last heartbeat {_age_text(age)} ago (limit {_age_text(limit)})"
        if process.get("host") == (host or this_host()) and _pid_gone(process.get("pid")):
            return "abandoned", f"process {process.get('pid')} on this machine no longer exists"
        if beat is not None:
            return status, None
    created = _parse_time(record.get("created_at"))
    if created is not None:
        age = (now - created).total_seconds()
        if age > NO_PROCESS_STALE_S:
            return "abandoned", f"started {_age_text(age)} ago with no heartbeat"
    return status, None


def effective_status(record: dict, now=None, host: str | None = None) -> str:
    return liveness(record, now, host)[0]


def _age_text(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"
