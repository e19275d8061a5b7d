"""`mnistexp evaluate --ensemble`: the mean softmax of several runs, beside each member."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from mnistexp.cli import cli
from tests.conftest import TINY


def _train(data_dir, results_dir, seed):
    args = ["run", "--data-dir", str(data_dir), "--results-dir", str(results_dir), "-q", "--seed", str(seed)]
    for item in TINY:
        args += ["--set", item]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return sorted(p for p in results_dir.iterdir() if p.is_dir())[-1]


@pytest.fixture(scope="module")
def two_runs(tiny_data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("ens")
    return [_train(tiny_data_dir, root / f"r{seed}", seed) for seed in (1, 2)], tiny_data_dir


def test_ensemble_of_two_runs_is_the_mean_of_their_softmax(two_runs, tmp_path):
    import keras

    from mnistexp.experiment.data import load_dataset

    runs, data_dir = two_runs
    result = CliRunner().invoke(cli, ["evaluate", "--ensemble", *map(str, runs), "--data-dir", str(data_dir),
                                      "--results-dir", str(tmp_path), "--name", "pair"])
    assert result.exit_code == 0, result.output
    assert "ensemble of 2" in result.output and "vs the best member" in result.output
    rows = json.loads((tmp_path / "comparisons" / "pair.json").read_text())["models"]
    assert [row["role"] for row in rows] == ["member", "member", "ensemble"]
    # Recompute independently: average the two models' probabilities on the test images.
    data = load_dataset(data_dir)
    x = data.x_test.astype("float32")[..., None] / 255.0
    probs = [keras.models.load_model(run / "model.keras", compile=False).predict(x, verbose=0) for run in runs]
    expected = float(np.mean(np.mean(probs, axis=0).argmax(axis=1) == data.y_test))
    assert rows[2]["test_accuracy"] == pytest.approx(expected)
    assert rows[2]["members"] == [rows[0]["model"], rows[1]["model"]]
    for row, p in zip(rows[:2], probs, strict=True):
        assert row["test_accuracy"] == pytest.approx(float(np.mean(p.argmax(axis=1) == data.y_test)))


def test_ensemble_needs_two_models_and_the_same_test_set(two_runs, tmp_path):
    runs, data_dir = two_runs
    result = CliRunner().invoke(cli, ["evaluate", "--ensemble", str(runs[0]), "--data-dir", str(data_dir),
                                      "--results-dir", str(tmp_path)])
    assert result.exit_code == 1 and "Error: --ensemble needs at least two" in result.output
    record_path = runs[1] / "record.json"
    record = json.loads(record_path.read_text())
    original = record_path.read_text()
    record["experiment"]["config"]["data"]["test_limit"] = 40
    record_path.write_text(json.dumps(record))
    try:
        result = CliRunner().invoke(cli, ["evaluate", "--ensemble", *map(str, runs), "--data-dir", str(data_dir),
                                          "--results-dir", str(tmp_path)])
    finally:
        record_path.write_text(original)
    assert result.exit_code == 1 and "same data.dataset and data.test_limit" in result.output
    assert not (tmp_path / "comparisons").exists()
