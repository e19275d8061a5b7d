"""`mnistexp data export` and `data info`: CSV/npz round trips and per-class counts."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from mnistexp.cli import cli
from mnistexp.experiment.data import load_dataset, read_csv


def test_csv_export_round_trips_bit_exactly(tiny_data_dir, tmp_path):
    out = tmp_path / "csv"
    result = CliRunner().invoke(cli, ["data", "export", "--data-dir", str(tiny_data_dir), "--format", "csv",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    original = load_dataset(tiny_data_dir)
    x_train, y_train = read_csv(out / "train.csv")
    x_test, y_test = read_csv(out / "test.csv")
    assert x_train.dtype == np.uint8 and np.array_equal(x_train, original.x_train)
    assert np.array_equal(y_train, original.y_train)
    assert np.array_equal(x_test, original.x_test) and np.array_equal(y_test, original.y_test)
    assert (out / "train.csv").read_text().splitlines()[0].startswith("label,pixel0,")
    # The exported folder is a data folder in its own right, with the same content checksums.
    assert load_dataset(out).checksums == original.checksums
    assert not list(out.glob(".*tmp*"))


def test_npz_export_round_trips(tiny_data_dir, tmp_path):
    result = CliRunner().invoke(cli, ["data", "export", "--data-dir", str(tiny_data_dir), "--format", "npz",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "mnist.npz").is_file()
    again = load_dataset(tmp_path)
    assert again.format == "npz"
    assert again.checksums == load_dataset(tiny_data_dir).checksums


def test_export_refuses_to_overwrite_without_force(tiny_data_dir, tmp_path):
    (tmp_path / "train.csv").write_text("keep me")
    args = ["data", "export", "--data-dir", str(tiny_data_dir), "--format", "csv", "--out", str(tmp_path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "already exists; pass --force" in result.output
    assert (tmp_path / "train.csv").read_text() == "keep me" and not (tmp_path / "test.csv").exists()
    assert CliRunner().invoke(cli, [*args, "--force"]).exit_code == 0
    assert read_csv(tmp_path / "train.csv")[0].shape[1:] == (28, 28)


def test_info_prints_counts_per_class_and_checksums(tiny_data_dir):
    data = load_dataset(tiny_data_dir)
    result = CliRunner().invoke(cli, ["data", "info", "--data-dir", str(tiny_data_dir)])
    assert result.exit_code == 0, result.output
    for label in range(10):
        n_train = int(np.sum(data.y_train == label))
        n_test = int(np.sum(data.y_test == label))
        row = [line for line in result.output.splitlines() if line.strip("│ ").startswith(f"{label} ")]
        assert row and row[0].split("│")[3].strip() == str(n_train) and row[0].split("│")[4].strip() == str(n_test)
    assert data.checksums["train_images"] in result.output
    assert "320" in result.output and "80" in result.output


def test_info_on_a_missing_folder_is_one_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["data", "info", "--data-dir", str(tmp_path / "none")])
    assert result.exit_code == 1 and result.output.startswith("Error: data directory")


# ---------------------------------------------------------------- --force is all or nothing (issue 13)

def _two_sets(tmp_path):
    from tests.conftest import write_idx_dir

    return (load_dataset(write_idx_dir(tmp_path / "a", n_train=60, n_test=20)),
            load_dataset(write_idx_dir(tmp_path / "b", n_train=90, n_test=30)))


def _folder_state(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize("fmt, fail_on", [("csv", 2), ("csv", 1), ("npz", 1)])
def test_interrupted_forced_export_leaves_the_previous_set_whole(tmp_path, monkeypatch, fmt, fail_on):
    from mnistexp.commands.data import export_dataset
    from mnistexp.experiment import data as data_module

    first, second = _two_sets(tmp_path)
    out = tmp_path / "out"
    export_dataset(first, out, fmt)
    (out / "notes.txt").write_text("the user's own file")
    before = _folder_state(out)
    calls = []

    def interrupted(original):
        def wrapper(*args, **kwargs):
            calls.append(1)
            if len(calls) == fail_on:
                raise KeyboardInterrupt
            return original(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(data_module, "write_csv", interrupted(data_module.write_csv))
    monkeypatch.setattr(np, "savez_compressed", interrupted(np.savez_compressed))
    with pytest.raises(KeyboardInterrupt):
        export_dataset(second, out, fmt, force=True)
    assert _folder_state(out) == before
    assert load_dataset(out).checksums == first.checksums  # passes its own SHA256SUMS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "out"]  # no staging left behind


def test_failure_between_the_two_renames_puts_the_old_set_back(tmp_path, monkeypatch):
    import os

    from mnistexp.commands.data import export_dataset
    from mnistexp.experiment.data import DataError

    first, second = _two_sets(tmp_path)
    out = tmp_path / "out"
    export_dataset(first, out, "csv")
    before = _folder_state(out)
    real_rename = os.rename
    calls = []

    def rename(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # old folder moved away; moving the new one in fails
            raise OSError(28, "No space left on device")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(DataError, match=r"out: cannot be written \(No space left on device\); the folder is unchanged"):
        export_dataset(second, out, "csv", force=True)
    assert _folder_state(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "out"]


def test_forced_export_replaces_the_set_keeps_other_files_and_verifies(tmp_path):
    import stat

    first, second = _two_sets(tmp_path)
    out = tmp_path / "out"
    args = ["data", "export", "--format", "csv", "--out", str(out)]
    assert CliRunner().invoke(cli, [*args, "--data-dir", str(tmp_path / "a")]).exit_code == 0
    (out / "notes.txt").write_text("keep")
    link = tmp_path / "link"
    link.symlink_to(out, target_is_directory=True)
    result = CliRunner().invoke(cli, ["data", "export", "--format", "csv", "--out", str(link), "--force",
                                      "--data-dir", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and (out / "notes.txt").read_text() == "keep"
    assert load_dataset(out).checksums == second.checksums
    assert stat.S_IMODE(out.stat().st_mode) & 0o755 == 0o755  # not the 0700 of a temp folder


def test_export_into_the_current_folder_is_refused(tiny_data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["data", "export", "--data-dir", str(tiny_data_dir), "--format", "csv",
                                      "--out", "."])
    assert result.exit_code == 1
    assert "is the current folder or holds it" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []
