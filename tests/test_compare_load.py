"""Robustness of reading records: bad files are skipped with one warning line, never fatal."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from mnistexp.commands.compare import command as compare
from mnistexp.compare import load
from mnistexp.compare.synthetic import make_record, write_run


def _run(*args):
    return CliRunner().invoke(compare, [str(a) for a in args], catch_exceptions=False)


def _warnings(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Warning: ")]


@pytest.fixture
def good(tmp_path):
    root = tmp_path / "results"
    for seed, acc in ((1, 0.99), (2, 0.98)):
        write_run(root, make_record("local", seed=seed, test_accuracy=acc))
    return root


def _bad(root, name: str, payload: bytes | str):
    folder = root / name
    folder.mkdir(parents=True)
    path = folder / "record.json"
    path.write_bytes(payload.encode() if isinstance(payload, str) else payload)
    return path


BAD_FILES = {
    "malformed": ("{'schema_version': 1}", "malformed JSON"),
    "truncated": (json.dumps(make_record(seed=9), indent=2)[:500], "truncated JSON"),
    "foreign": (json.dumps({"kernel": "mnist", "id": 3}), "not a run record (no schema_version)"),
    "future": (json.dumps(dict(make_record(seed=9), schema_version=99)), "schema version 99 is newer"),
    "invalid": (json.dumps({k: v for k, v in make_record(seed=9).items() if k != "metrics"}),
                "invalid run record at (top level): 'metrics' is a required property"),
    "not-utf8": (b"\xff\xfe{}", "not UTF-8 text"),
    "nan": (json.dumps(make_record(seed=9)).replace('"test_loss": 0.03', '"test_loss": NaN'), "JSON"),
    "array": ("[1, 2, 3]", "not a run record"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_is_skipped_with_one_warning_naming_it(good, case):
    payload, reason = BAD_FILES[case]
    path = _bad(good, case, payload)
    out = _run(good, "--format", "json")
    assert out.exit_code == 0, out.output
    warnings = _warnings(out.output)
    assert len(warnings) == 1, out.output
    assert str(path) in warnings[0] and reason in warnings[0] and warnings[0].endswith("skipped")
    data = json.loads(out.output[out.output.index("{"):])
    assert data["n_runs"] == 2 and data["warnings"] == [warnings[0][len("Warning: "):]]


def test_nothing_readable_exits_non_zero(tmp_path):
    _bad(tmp_path, "broken", "{")
    out = _run(tmp_path)
    assert out.exit_code == 1
    assert "truncated JSON" in out.output and "Error: no readable run records under" in out.output
    assert _run(tmp_path / "missing").exit_code == 1


def test_other_json_is_ignored_but_exports_with_schema_version_are_read(good):
    (good / "kernel-metadata.json").write_text(json.dumps({"id": "user/mnist"}))
    export = make_record("comet", seed=5, test_accuracy=0.97)
    (good / "comet-export.json").write_text(json.dumps(export))
    out = _run(good, "--format", "json")
    assert _warnings(out.output) == []
    data = json.loads(out.output)
    assert data["n_runs"] == 3
    assert {r["value"] for r in data["groups"][0]["rows"]} == {"comet", "local"}


def test_explicit_files_and_overlapping_arguments_count_once(good):
    one = next(good.glob("*/record.json"))
    data = json.loads(_run(good, one, good, "--format", "json").output)
    assert data["n_runs"] == 2


def test_copies_of_one_run_count_once_with_a_warning(good, tmp_path):
    copy_dir = tmp_path / "downloaded" / "again"
    copy_dir.mkdir(parents=True)
    original = next(good.glob("*/record.json"))
    (copy_dir / "record.json").write_bytes(original.read_bytes())
    out = _run(good, tmp_path / "downloaded")
    warnings = _warnings(out.output)
    assert len(warnings) == 1 and "duplicate of run" in warnings[0] and "counted once" in warnings[0]
    assert "2 runs" in out.output


def test_symlink_loop_does_not_hang(good):
    os.symlink(good, good / "loop")
    os.symlink(good / "loop", good / "loop2")
    result = load.load_runs([good])
    assert len(result.runs) == 2 and result.warnings == []


def test_unreadable_folder_is_skipped_with_a_warning(good, monkeypatch):
    locked = good / "locked"
    locked.mkdir()
    real_scandir = os.scandir

    def scandir(path):  # chmod 000 does not stop root, so refuse the way the OS would
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(load.os, "scandir", scandir)
    out = _run(good)
    assert out.exit_code == 0
    assert _warnings(out.output) == [f"Warning: {locked}: folder cannot be read (Permission denied); skipped"]
    assert "2 runs" in out.output


def test_unreadable_file_is_skipped_with_a_warning(good, monkeypatch):
    target = str(next(good.glob("*/record.json")))
    real_open = open

    def fake_open(path, *args, **kwargs):
        if os.fspath(path) == target:
            raise PermissionError(13, "Permission denied", target)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    result = load.load_runs([good])
    assert len(result.runs) == 1
    assert result.warnings == [f"{target}: cannot be read (Permission denied); skipped"]


# ---------------------------------------------------------------- one strict reader (compare = diff = import)

RECORD_TEXT = json.dumps(make_record(seed=9))
STRICT_CASES = {
    "nan": (RECORD_TEXT.replace('"test_loss": 0.03', '"test_loss": NaN'), "malformed JSON (NaN is not a number"),
    "infinity": (RECORD_TEXT.replace('"test_loss": 0.03', '"test_loss": -Infinity'), "-Infinity is not a number"),
    "huge": (RECORD_TEXT.replace('"test_loss": 0.03', '"test_loss": 1e400'), "1e400 is out of range"),
    "deep": ("[" * 100_000 + "]" * 100_000, "nested more than 64 levels deep"),
    "deep-inside": (RECORD_TEXT.replace('"tags": {', '"tags": {"x": ' + "[" * 70 + "]" * 70 + ', '),
                    "nested more than 64 levels deep"),
    "deep-orjson": (RECORD_TEXT.replace('"tags": {', '"tags": {"x": ' + "[" * 1000 + "]" * 1000 + ', '),
                    "nested more than 64 levels deep"),
    "invalid": (RECORD_TEXT.replace('"status": "completed"', '"status": "done"'), "invalid run record at status"),
    "truncated": (RECORD_TEXT[:300], "truncated JSON"),
    "bom": ("\ufeff" + RECORD_TEXT, "malformed JSON"),
}


@pytest.mark.parametrize("fast", [True, False], ids=["orjson", "stdlib"])
@pytest.mark.parametrize("case", sorted(STRICT_CASES))
def test_compare_skips_exactly_what_read_record_refuses(tmp_path, monkeypatch, case, fast):
    from mnistexp.experiment.record import RecordError, read_record

    if not fast:
        monkeypatch.setattr(load, "_loads", None)
    elif load._loads is None:
        pytest.skip("orjson is not installed")
    payload, reason = STRICT_CASES[case]
    path = _bad(tmp_path, case, payload)
    with pytest.raises(RecordError) as refused:
        read_record(path)
    result = load.load_runs([tmp_path])
    assert result.runs == []
    assert result.warnings == [f"{refused.value}; skipped"]
    assert reason in str(refused.value) and str(refused.value).startswith(f"{path}: ")


def test_a_record_both_readers_accept(tmp_path, monkeypatch):
    from mnistexp.experiment.record import read_record

    # A lone surrogate escape and a 30-digit integer: orjson refuses both, the stdlib reads
    # them, so compare falls back and reads the record as diff/import do.
    text = RECORD_TEXT.replace('"tags": {', '"tags": {"odd": "\\ud800", ').replace(
        '"platform_info": {}', '"platform_info": {"big": 123456789012345678901234567890}')
    path = _bad(tmp_path, "odd", text)
    assert read_record(path)["platform_info"]["big"] == 123456789012345678901234567890
    assert [r.record["tags"]["odd"] for r in load.load_runs([tmp_path]).runs] == ["\ud800"]


# ---------------------------------------------------------------- abandoned (issue 12)

NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


def _at(**ago) -> str:
    return (NOW - datetime.timedelta(**ago)).isoformat().replace("+00:00", "Z")


def _running(process=None, created_at=None):
    return make_record(seed=1, test_accuracy=None, status="running", process=process,
                       created_at=created_at or _at(minutes=30))


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize("beat_ago, interval, expected", [
    ({"minutes": 4}, 10, "running"),      # limit max(5 min, 30 s) = 5 min
    ({"minutes": 6}, 10, "abandoned"),
    ({"minutes": 8}, 200, "running"),     # limit max(5 min, 3 x 200 s) = 10 min
    ({"minutes": 11}, 200, "abandoned"),
    ({"minutes": 4}, None, "running"),    # no interval recorded: 5 min
    ({"minutes": 6}, None, "abandoned"),
])
def test_stale_heartbeat_means_abandoned(beat_ago, interval, expected):
    process = {"pid": os.getpid(), "host": "elsewhere000", "heartbeat_at": _at(**beat_ago)}
    if interval is not None:
        process["heartbeat_interval_s"] = interval
    assert load.effective_status(_running(process), now=NOW) == expected


def test_gone_pid_on_this_host_means_abandoned_but_not_on_another_host():
    pid = _dead_pid()
    fresh = _at(seconds=10)
    here = {"pid": pid, "host": load.this_host(), "heartbeat_at": fresh, "heartbeat_interval_s": 30}
    status, why = load.liveness(_running(here), now=NOW)
    assert status == "abandoned" and why == f"process {pid} on this machine no longer exists"
    assert load.effective_status(_running(dict(here, pid=os.getpid())), now=NOW) == "running"
    assert load.effective_status(_running(dict(here, host="elsewhere000")), now=NOW) == "running"


def test_this_host_is_the_hash_records_carry():
    from mnistexp.experiment.record import environment_info

    assert load.this_host() == environment_info()["hostname_sha256"]


@pytest.mark.parametrize("created_ago, expected", [({"hours": 23}, "running"), ({"hours": 25}, "abandoned")])
def test_without_process_a_day_old_running_record_is_abandoned(created_ago, expected):
    assert load.effective_status(_running(created_at=_at(**created_ago)), now=NOW) == expected


@pytest.mark.parametrize("status", ["completed", "failed", "interrupted"])
def test_finished_statuses_are_kept(status):
    record = make_record(seed=1, status=status, created_at=_at(days=400))
    assert load.effective_status(record, now=NOW) == status


def test_compare_and_diff_show_abandoned(tmp_path):
    from mnistexp.commands.diff import command as diff

    gone = _running({"pid": 1, "host": "elsewhere000", "heartbeat_at": "2020-01-01T00:00:00Z"})
    gone["run_id"] = "20200101T000000000Z-local-gone01"
    path = write_run(tmp_path, gone)
    done = write_run(tmp_path, make_record(seed=2))
    out = _run(tmp_path, "--format", "json")
    runs = json.loads(out.output)["groups"][0]["runs"]
    assert {r["run_id"][-6:]: r["status"] for r in runs} == {"gone01": "abandoned", "000002": "completed"}
    table = CliRunner().invoke(diff, [str(path.parent), str(done.parent)]).output
    row = next(line for line in table.splitlines() if "│   status " in line)
    assert "abandoned" in row and "completed" in row
    assert "recorded as running" in table
