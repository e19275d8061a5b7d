"""Robustness of reading records: bad files are skipped with one warning line, never fatal."""

from __future__ import annotations

import json
import os

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
