"""`mnistexp data export` and `data info`: CSV/npz round trips and per-class counts."""

from __future__ import annotations

import numpy as np
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
