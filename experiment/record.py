"""The run record: one versioned JSON document per run, the same on every platform.

Standard library only (jsonschema is used when installed), so `compare` and the
generated platform kernels can use it without TensorFlow.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform as _platform
import secrets
import subprocess
import tempfile
from pathlib import Path

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("run_record.schema.json")
RECORD_NAME = "record.json"
STATUSES = ("completed", "failed", "interrupted", "running")

# Config keys that do not change what is learned from which data: they are stored in the
# record but left out of the experiment fingerprint, so repeated seeds and faster runtime
# settings of the same experiment group together.
NON_EXPERIMENT_KEYS = ("name", "description", "expected_test_accuracy", "runtime")
NON_EXPERIMENT_SUBKEYS = (("train", "seed"), ("data", "verify"))


class RecordError(ValueError):
    """A run record that cannot be read or is not valid; one line naming the file and why."""


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def process_start_time() -> float:
    """Wall-clock time this process started (Linux /proc; else now), so imports count too."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/self/stat", encoding="ascii") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat", encoding="ascii") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return boot + start_ticks / ticks
    except (OSError, ValueError, StopIteration):
        import time

        return time.time()


def new_run_id(platform: str) -> str:
    """Sortable by start time, unique: 20261121T081512123Z-local-3fa9c2."""
    now = _dt.datetime.now(_dt.timezone.utc)
    return f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z-{platform}-{secrets.token_hex(3)}"


def canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def config_hash(config: dict) -> str:
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()


def experiment_part(config: dict) -> dict:
    """The part of a resolved config that defines the experiment (what the fingerprint hashes)."""
    part = {k: v for k, v in config.items() if k not in NON_EXPERIMENT_KEYS}
    for section, key in NON_EXPERIMENT_SUBKEYS:
        if section in part:
            part[section] = {k: v for k, v in part[section].items() if k != key}
    return part


def experiment_fingerprint(config: dict, data_checksums: dict) -> str:
    """Same config (seed and runtime aside) on the same data content -> same fingerprint."""
    payload = {"config": experiment_part(config), "data": dict(sorted(data_checksums.items()))}
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- environment


def environment_info(gpus: list | None = None, project_dir: str | Path | None = None) -> dict:
    """Versions, OS and hardware; no environment variables, no user names, hostname hashed."""
    from importlib import metadata

    def version(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    return {
        "python": _platform.python_version(),
        "tensorflow": version("tensorflow") or version("tensorflow-cpu"),
        "keras": version("keras"),
        "jax": version("jax"),
        "numpy": version("numpy"),
        "mnistexp": version("mnistexp"),
        "os": f"{_platform.system()} {_platform.release()}",
        "machine": _platform.machine(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpus": list(gpus or []),
        "git_commit": git_commit(project_dir),
        "hostname_sha256": hashlib.sha256(_platform.node().encode()).hexdigest()[:12],
    }


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return _platform.processor() or _platform.machine()


def git_commit(project_dir: str | Path | None) -> str | None:
    if project_dir is None:
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(project_dir), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 else None


# ---------------------------------------------------------------- files


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write to a temp file in the same folder, fsync, then rename over the target."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json_atomic(path: str | Path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def validate_record(record: dict, where: str = "run record") -> None:
    """Raise RecordError unless `record` is a valid run record of this schema version."""
    if not isinstance(record, dict):
        raise RecordError(f"{where}: not a run record (a JSON object is expected)")
    version = record.get("schema_version")
    if version is None:
        raise RecordError(f"{where}: not a run record (no schema_version)")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise RecordError(
            f"{where}: run record schema version {version!r} is newer than this mnistexp reads "
            f"(up to {SCHEMA_VERSION}); upgrade mnistexp"
        )
    try:
        import jsonschema
    except ImportError:  # a platform image without jsonschema: check the essentials only
        missing = [k for k in load_schema()["required"] if k not in record]
        if missing:
            raise RecordError(f"{where}: invalid run record: missing {', '.join(missing)}") from None
        return
    validator = jsonschema.Draft202012Validator(load_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(record))
    if error is not None:
        path = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise RecordError(f"{where}: invalid run record at {path}: {error.message}")


def write_record(run_dir: str | Path, record: dict) -> Path:
    validate_record(record, str(Path(run_dir) / RECORD_NAME))
    path = Path(run_dir) / RECORD_NAME
    write_json_atomic(path, record)
    return path


# Records are a few levels deep; anything deeper is not a record, and would crash code
# that walks it recursively (flattening for diff, json.dumps) with a RecursionError.
MAX_DEPTH = 64


def _reject_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text):
    value = float(text)
    if value in (float("inf"), float("-inf")):  # 1e400: json.loads would return inf
        raise ValueError(f"{text} is out of range")
    return value


def nesting_depth(value, limit: int = MAX_DEPTH) -> int:
    """Levels of nested lists/dicts (a scalar is 0, [] is 1), counted without recursion;
    stops counting past `limit`."""
    depth = 0
    level = [value] if isinstance(value, (dict, list)) else []
    while level and depth <= limit:
        depth += 1
        level = [v for item in level for v in (item.values() if isinstance(item, dict) else item)
                 if isinstance(v, (dict, list))]
    return depth


def parse_record_json(data: bytes, where: str):
    """Strict JSON, the one reading every command shares (compare, diff, import, kernels).

    Refused with RecordError naming `where`: text that is not UTF-8, malformed or truncated
    JSON, NaN/Infinity (and numbers too big for a float), nesting deeper than MAX_DEPTH.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RecordError(f"{where}: not UTF-8 text") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        # At the end, or a string never closed: the file was cut short (an interrupted copy).
        cut = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        what = "truncated" if cut else "malformed"
        raise RecordError(f"{where}: {what} JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise RecordError(f"{where}: malformed JSON (nested more than {MAX_DEPTH} levels deep)") from None
    except ValueError as exc:
        raise RecordError(f"{where}: malformed JSON ({exc})") from None
    check_depth(value, where)
    return value


def check_depth(value, where: str) -> None:
    if nesting_depth(value) > MAX_DEPTH:
        raise RecordError(f"{where}: malformed JSON (nested more than {MAX_DEPTH} levels deep)")


def read_record(path: str | Path) -> dict:
    """Read and validate record.json (or the record.json inside a run folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / RECORD_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RecordError(f"{path}: no run record here") from None
    except OSError as exc:
        raise RecordError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    record = parse_record_json(data, str(path))
    try:
        validate_record(record, str(path))
    except RecursionError:  # belt and braces: the depth check above should make this unreachable
        raise RecordError(f"{path}: malformed JSON (nested too deeply)") from None
    return record
