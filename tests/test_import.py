"""`mnistexp import PATH`: records from other platforms land in results/, validated, whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnistexp.cli import cli
from mnistexp.experiment.record import SCHEMA_VERSION, read_record, validate_record

CHECKSUM = "ab" * 32


def make_record(run_id: str, platform: str = "kaggle", accuracy: float = 0.98) -> dict:
    record = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "platform": platform,
        "status": "completed",
        "error": None,
        "created_at": "2026-11-21T08:00:00.000Z",
        "finished_at": "2026-11-21T08:05:00.000Z",
        "experiment": {
            "name": "canonical", "fingerprint": "0123456789abcdef", "config_hash": CHECKSUM,
            "config": {"data": {}, "model": {"layers": []}, "train": {"seed": 42, "epochs": 1, "batch_size": 32}},
        },
        "data": {"dataset": "mnist", "checksums": {"train_images": CHECKSUM}, "test_split": "holdout"},
        "seed": 42,
        "metrics": {"test_accuracy": accuracy, "test_loss": 0.1, "epochs_run": 1},
        "history": [{"epoch": 1, "loss": 0.2, "accuracy": 0.9}],
        "timings": {"total_s": 300.0},
        "environment": {"python": "3.11.7"},
        "artifacts": {"history": "history.csv", "submission": "submission.csv"},
        "tags": {"platform": platform},
        "platform_info": {"hardware": {"accelerator": "gpu"}},
    }
    validate_record(record)
    return record


def write_output(folder: Path, record: dict) -> Path:
    """What a kernel leaves: record.json plus the files it lists."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "record.json").write_text(json.dumps(record))
    (folder / "history.csv").write_text("epoch,loss\n1,0.2\n")
    (folder / "submission.csv").write_text("ImageId,Label\n1,7\n")
    return folder


def invoke(*args):
    return CliRunner().invoke(cli, ["import", *map(str, args)])


def test_import_output_folder(tmp_path):
    source = write_output(tmp_path / "download", make_record("20261121T080000000Z-kaggle-aaaaaa"))
    results = tmp_path / "results"
    result = invoke(source, "--results-dir", results)
    assert result.exit_code == 0, result.output
    run_dir = results / "20261121T080000000Z-kaggle-aaaaaa"
    assert read_record(run_dir)["platform"] == "kaggle"
    assert (run_dir / "history.csv").read_text() == "epoch,loss\n1,0.2\n"
    assert (run_dir / "submission.csv").is_file()
    assert result.output.startswith("imported 20261121T080000000Z-kaggle-aaaaaa (kaggle, status completed, "
                                    "test_accuracy=0.9800")
    assert [p.name for p in results.iterdir()] == [run_dir.name]  # no staging folder left


def test_import_a_record_file_and_note_missing_artifacts(tmp_path):
    folder = tmp_path / "dl"
    folder.mkdir()
    (folder / "record.json").write_text(json.dumps(make_record("run-1", "codalab")))
    result = invoke(folder / "record.json", "--results-dir", tmp_path / "results")
    assert result.exit_code == 0, result.output
    assert "artifact files not found next to the record: history.csv, submission.csv" in result.output
    assert (tmp_path / "results" / "run-1" / "record.json").is_file()


def test_import_every_record_below_a_folder(tmp_path):
    write_output(tmp_path / "all" / "a", make_record("run-a", "kaggle"))
    write_output(tmp_path / "all" / "nested" / "b", make_record("run-b", "codalab"))
    result = invoke(tmp_path / "all", "--results-dir", tmp_path / "results")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["run-a", "run-b"]


def test_importing_again_is_a_no_op(tmp_path):
    source = write_output(tmp_path / "dl", make_record("run-1"))
    assert invoke(source, "--results-dir", tmp_path / "r").exit_code == 0
    again = invoke(source, "--results-dir", tmp_path / "r")
    assert again.exit_code == 0 and again.output.startswith("already present run-1")


def test_a_different_run_under_an_existing_id_is_refused(tmp_path):
    assert invoke(write_output(tmp_path / "one", make_record("run-1", accuracy=0.98)),
                  "--results-dir", tmp_path / "r").exit_code == 0
    result = invoke(write_output(tmp_path / "two", make_record("run-1", accuracy=0.50)),
                    "--results-dir", tmp_path / "r")
    assert result.exit_code == 1 and "a different run with id run-1 is already there" in result.output
    assert read_record(tmp_path / "r" / "run-1")["metrics"]["test_accuracy"] == 0.98


@pytest.mark.parametrize("content, message", [
    (json.dumps({"id": "alice/mnistexp-canonical", "title": "mnistexp canonical"}), "not a run record (no schema_version)"),
    ('{"schema_version": 1, "run_id": ', "JSON (line 1"),
    (json.dumps({**make_record("x"), "schema_version": 99}), "newer than this mnistexp reads"),
    (json.dumps({**make_record("x"), "metrics": {"test_accuracy": 1.5, "test_loss": 0.1}}),
     "invalid run record at metrics/test_accuracy"),
])
def test_foreign_or_broken_file_is_one_clear_line(tmp_path, content, message):
    path = tmp_path / "record.json"
    path.write_text(content)
    result = invoke(path, "--results-dir", tmp_path / "results")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {path}") and message in result.output
    assert result.output.strip().count("\n") == 0
    assert not (tmp_path / "results").exists()


def test_one_broken_record_imports_nothing(tmp_path):
    write_output(tmp_path / "all" / "a", make_record("run-a"))
    (tmp_path / "all" / "b").mkdir()
    (tmp_path / "all" / "b" / "record.json").write_text("not json")
    result = invoke(tmp_path / "all", "--results-dir", tmp_path / "results")
    assert result.exit_code == 1 and "b/record.json" in result.output and "JSON" in result.output
    assert not (tmp_path / "results").exists()


def test_artifact_names_cannot_escape_the_run_folder(tmp_path):
    record = make_record("run-1")
    record["artifacts"] = {"history": "../../evil.csv"}
    write_output(tmp_path / "dl", record)
    result = invoke(tmp_path / "dl", "--results-dir", tmp_path / "results")
    assert result.exit_code == 1 and "not a plain file name" in result.output
    assert list((tmp_path / "results").iterdir()) == []


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "no such file or folder"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no record.json in this folder or below"),
])
def test_nothing_to_import_says_what_to_pass(tmp_path, make, message):
    result = invoke(make(tmp_path), "--results-dir", tmp_path / "results")
    assert result.exit_code == 1 and message in result.output


# ---------------------------------------------------------------- hostile downloads (issue 13)

SECRET = "kaggle-key-0123456789abcdef-SECRET"


def _all_text_under(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("linked", ["history.csv", "submission.csv"])
def test_a_linked_artifact_is_skipped_with_a_warning_and_never_copied(tmp_path, linked):
    secret = tmp_path / "home" / ".kaggle" / "kaggle.json"
    secret.parent.mkdir(parents=True)
    secret.write_text(json.dumps({"username": "alice", "key": SECRET}))
    source = write_output(tmp_path / "download", make_record("run-link"))
    (source / linked).unlink()
    (source / linked).symlink_to(secret)
    results = tmp_path / "results"
    result = invoke(source, "--results-dir", results)
    assert result.exit_code == 0, result.output
    assert f"Warning: {source / linked} is a symbolic link; skipped" in result.output
    assert not (results / "run-link" / linked).exists()
    assert (results / "run-link" / "record.json").is_file()
    assert SECRET not in _all_text_under(results)


def test_a_link_to_a_file_inside_the_folder_is_skipped_too(tmp_path):
    """Anything that is a link is refused: it could be re-pointed outside between check and copy."""
    source = write_output(tmp_path / "download", make_record("run-inner"))
    (source / "history.csv").unlink()
    (source / "history.csv").symlink_to(source / "submission.csv")
    result = invoke(source, "--results-dir", tmp_path / "results")
    assert result.exit_code == 0 and "history.csv is a symbolic link; skipped" in result.output
    assert sorted(p.name for p in (tmp_path / "results" / "run-inner").iterdir()) == ["record.json", "submission.csv"]


def test_a_linked_record_inside_a_folder_is_not_followed(tmp_path):
    outside = write_output(tmp_path / "elsewhere", make_record("run-outside"))
    source = tmp_path / "download"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "record.json").symlink_to(outside / "record.json")
    (source / "linked-dir").symlink_to(outside, target_is_directory=True)
    result = invoke(source, "--results-dir", tmp_path / "results")
    assert result.exit_code == 1
    assert "no record.json in this folder or below (only links, not followed: " in result.output
    assert "sub/record.json; copy the real files in)" in result.output
    assert not (tmp_path / "results" / "run-outside").exists()


def test_a_fifo_artifact_does_not_hang_the_import(tmp_path):
    import os

    source = write_output(tmp_path / "download", make_record("run-fifo"))
    (source / "history.csv").unlink()
    os.mkfifo(source / "history.csv")
    result = invoke(source, "--results-dir", tmp_path / "results")
    assert result.exit_code == 0 and "history.csv is a link or not a plain file; skipped" in result.output


def test_imported_folders_and_files_get_the_usual_permissions(tmp_path):
    import os
    import stat

    source = write_output(tmp_path / "download", make_record("run-perm"))
    (source / "history.csv").chmod(0o600)
    old = os.umask(0o022)
    try:
        result = invoke(source, "--results-dir", tmp_path / "results")
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "results" / "run-perm"
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o755
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in run_dir.iterdir()} == {
        "record.json": 0o644, "history.csv": 0o644, "submission.csv": 0o644}


def test_import_reads_records_with_the_strict_reader(tmp_path, monkeypatch):
    """One reader for import, compare and diff: what it refuses, import refuses the same way."""
    import mnistexp.importer as importer
    from mnistexp.experiment import record as record_module

    assert importer.read_record is record_module.read_record
    calls = []
    monkeypatch.setattr(importer, "read_record", lambda path: calls.append(path) or record_module.read_record(path))
    source = write_output(tmp_path / "download", make_record("run-strict"))
    assert invoke(source, "--results-dir", tmp_path / "results").exit_code == 0
    assert invoke(source, "--results-dir", tmp_path / "results").exit_code == 0  # again: compares with the strict reader
    assert calls == [source / "record.json", source / "record.json", tmp_path / "results" / "run-strict" / "record.json"]


@pytest.mark.parametrize("text", [
    '{"schema_version": 1, "metrics": {"test_accuracy": NaN}}',
    '{"schema_version": 1, "x": Infinity}',
    '{"schema_version": 1, "x": ' + "[" * 100000 + "]" * 100000 + "}",
])
def test_non_standard_or_deeply_nested_json_is_refused_in_one_line(tmp_path, text):
    path = tmp_path / "record.json"
    record = make_record("run-nan")
    if "NaN" in text:  # a valid record except for one NaN
        text = json.dumps(record).replace('"test_loss": 0.1', '"test_loss": NaN')
    path.write_text(text)
    result = invoke(path, "--results-dir", tmp_path / "results")
    assert result.exit_code == 1 and result.output.startswith(f"Error: {path}")
    assert "Traceback" not in result.output and result.output.strip().count("\n") == 0
    assert not (tmp_path / "results").exists()
