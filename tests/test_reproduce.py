"""`mnistexp reproduce RUN`: rerun a record's config and seed; bit-identical / within noise / different."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from mnistexp.cli import cli
from mnistexp.experiment.record import read_record, write_record
from mnistexp.reproduce import (
    BIT_IDENTICAL,
    DIFFERENT,
    WITHIN_NOISE,
    compare_runs,
    first_history_difference,
)

TINY = ["--epochs", "2", "--batch-size", "32", "--seed", "5", "--deterministic", "-q"]


def record(acc=0.9, loss=0.3, history=None, fingerprint="f" * 16, **environment):
    return {"run_id": "r", "experiment": {"fingerprint": fingerprint}, "metrics": {"test_accuracy": acc, "test_loss": loss},
            "history": history or [{"loss": 0.5, "accuracy": 0.8, "epoch_time_s": 1.0}],
            "environment": {"tensorflow": "2.21.0", **environment}, "runtime": {}, "tags": {}, "data": {},
            "timings": {}, "throughput": {}, "platform_info": {}}


@pytest.mark.parametrize("rerun, tolerance, verdict, words", [
    (record(history=[{"loss": 0.5, "accuracy": 0.8, "epoch_time_s": 9.0}]), None, BIT_IDENTICAL, "to the last bit"),
    (record(acc=0.9005, history=[{"loss": 0.5000001, "accuracy": 0.8}]), None, WITHIN_NOISE,
     "epoch 1 loss: 0.5 vs 0.5000001"),
    (record(acc=0.905), None, DIFFERENT, "Δ +0.0050; tolerance ±0.0010 from default tolerance"),
    (record(acc=0.905), 0.01, WITHIN_NOISE, "tolerance ±0.0100 from --tolerance 0.01"),
    (record(fingerprint="0" * 16), None, DIFFERENT, "fingerprint differs"),
])
def test_verdicts(rerun, tolerance, verdict, words):
    result = compare_runs(record(), rerun, tolerance)
    assert result.verdict == verdict
    assert words in result.reason


def test_environment_differences_come_with_the_verdict():
    result = compare_runs(record(), record(tensorflow="2.20.0", numpy="2.4"))
    assert {row["key"]: (row["a"], row["b"]) for row in result.environment} == {
        "environment.tensorflow": ("2.21.0", "2.20.0"), "environment.numpy": (None, "2.4")}


def test_histories_of_different_length_differ():
    assert first_history_difference([{"loss": 1.0}], []) == "the original ran 1 epoch(s), the rerun 0"


@pytest.fixture(scope="module")
def original(tiny_data_dir, tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    result = CliRunner().invoke(cli, ["run", "--data-dir", str(tiny_data_dir), "--results-dir", str(results), *TINY])
    assert result.exit_code == 0, result.output
    (run_dir,) = [p for p in results.iterdir() if p.is_dir()]
    return results, run_dir


@pytest.mark.slow
def test_a_deterministic_run_reproduces_bit_identically(original):
    results, run_dir = original
    result = CliRunner().invoke(cli, ["reproduce", run_dir.name, "--results-dir", str(results), "-q"])
    assert result.exit_code == 0, result.output
    assert "Verdict: bit-identical: the same history (2 epoch(s)) and test metrics to the last bit" in result.output
    assert "with data from the record's data folder" in result.output
    reruns = [read_record(p) for p in results.glob("*/record.json") if p.parent != run_dir]
    assert len(reruns) == 1 and reruns[0]["tags"]["reproduces"] == run_dir.name
    assert reruns[0]["seed"] == 5 and reruns[0]["experiment"]["config"] == read_record(run_dir)["experiment"]["config"]


@pytest.mark.slow
def test_a_changed_result_is_different_and_a_study_spread_is_the_tolerance(original, tmp_path, tiny_data_dir):
    results, run_dir = original
    copy = tmp_path / "results"
    shutil.copytree(run_dir, copy / run_dir.name)
    rec = read_record(copy / run_dir.name)
    rec["metrics"]["test_accuracy"] -= 0.05  # as if the original had scored 5 pp lower
    rec["data"]["source"] = str(tmp_path / "gone")  # its data folder no longer exists: --data-dir is used
    write_record(copy / run_dir.name, rec)
    result = CliRunner().invoke(cli, ["reproduce", run_dir.name, "--results-dir", str(copy), "-q",
                                      "--data-dir", str(tiny_data_dir), "-f", "json"])
    assert result.exit_code == 1, result.output
    verdict = json.loads(result.output)
    assert verdict["verdict"] == "different" and verdict["tolerance"] == 0.001
    assert verdict["delta_accuracy"] == pytest.approx(0.05)
    # The same run as one of a study whose seeds spread widely: within that noise.
    for i, acc in enumerate((0.80, 0.95)):
        other = json.loads(json.dumps(rec))
        other["run_id"] = f"{rec['run_id']}-peer{i}"
        other["metrics"]["test_accuracy"] = acc
        other["tags"]["study"] = "wide"
        (copy / other["run_id"]).mkdir()
        write_record(copy / other["run_id"], other)
    rec["tags"]["study"] = "wide"
    write_record(copy / run_dir.name, rec)
    result = CliRunner().invoke(cli, ["reproduce", run_dir.name, "--results-dir", str(copy), "-q",
                                      "--data-dir", str(tiny_data_dir)])
    assert result.exit_code == 0, result.output
    assert "Verdict: same within seed noise" in result.output and "study wide's spread" in result.output


def test_unknown_or_unfinished_runs_are_one_line(original, tmp_path):
    results, run_dir = original
    result = CliRunner().invoke(cli, ["reproduce", "nope", "--results-dir", str(results)])
    assert result.exit_code == 1 and result.output.startswith("Error: run 'nope' not found")
    shutil.copytree(run_dir, tmp_path / run_dir.name)
    rec = read_record(tmp_path / run_dir.name)
    rec["status"] = "interrupted"
    write_record(tmp_path / run_dir.name, rec)
    result = CliRunner().invoke(cli, ["reproduce", str(tmp_path / run_dir.name), "--results-dir", str(tmp_path)])
    assert result.exit_code == 1 and "ended interrupted: only a completed run" in result.output
    assert len(list(tmp_path.glob("*/record.json"))) == 1  # nothing was rerun
