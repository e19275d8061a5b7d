"""BEAT: the generated prefix, its validation by beat.core, and a run with BEAT's executor.

The BEAT tests need the BEAT virtualenv (.venv-beat/ or $MNISTEXP_BEAT; README "BEAT",
CI creates it); without it they are skipped with the reason.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnistexp.adapters.beat import prefix as beat_prefix
from mnistexp.adapters.beat.run import BeatError, find_beat, validate_prefix
from mnistexp.cli import cli
from mnistexp.experiment.config import load_config
from mnistexp.experiment.record import read_record

from .conftest import REPO, TINY
from .contract import PlatformContract, run_here_launcher

PLATFORM_DIR = REPO / "platforms" / "beat"
KINDS = {"dataformat", "protocoltemplate", "database", "library", "algorithm", "toolchain", "experiment"}


@pytest.fixture(scope="module")
def beat() -> Path:
    try:
        return find_beat()
    except BeatError as exc:
        pytest.skip(f"BEAT virtualenv absent ({exc})")


def _files(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_committed_prefix_matches_config_and_experiment_code():
    files = beat_prefix.build_files(load_config(REPO / "config.yaml"))
    assert beat_prefix.stale_files(PLATFORM_DIR, files) == [], "run `mnistexp kernel beat` and commit platforms/beat"
    # The view reads IDX with the same code as local runs; the libraries are experiment/ itself.
    view = (PLATFORM_DIR / "databases/mnist/1.py").read_text()
    assert beat_prefix.idx_reader_source() in view
    model_lib = (PLATFORM_DIR / "libraries/mnistexp/experiment_model/1.py").read_text()
    assert "def build_model(" in model_lib and "from .config" not in model_lib


def test_generation_is_deterministic_and_check_detects_drift(tmp_path):
    runner = CliRunner()
    out = tmp_path / "beat"
    first = runner.invoke(cli, ["kernel", "beat", "--out", str(out)])
    assert first.exit_code == 0, first.output
    before = _files(out)
    assert runner.invoke(cli, ["kernel", "beat", "--out", str(out)]).exit_code == 0
    assert _files(out) == before
    assert runner.invoke(cli, ["kernel", "beat", "--out", str(out), "--check"]).exit_code == 0

    # a config change reaches the experiment's parameter, and --check reports the stale folder
    changed = runner.invoke(cli, ["kernel", "beat", "--out", str(out), "--check", "--set", "train.epochs=3"])
    assert changed.exit_code == 1
    assert changed.output.startswith(f"Error: {out} is out of date (2 files")
    runner.invoke(cli, ["kernel", "beat", "--out", str(out), "--set", "train.epochs=3"])
    experiment = json.loads((out / "experiments/mnistexp/mnistexp/mnist_cnn/1/canonical.json").read_text())
    assert json.loads(experiment["blocks"]["training"]["parameters"]["config"])["train"]["epochs"] == 3


def test_run_without_beat_is_one_clear_error(tmp_path, tiny_data_dir, monkeypatch):
    monkeypatch.setenv("MNISTEXP_BEAT", str(tmp_path / "nowhere" / "beat"))
    results = tmp_path / "results"
    out = CliRunner().invoke(cli, ["run", "--platform", "beat", "--data-dir", str(tiny_data_dir),
                                   "--results-dir", str(results), "-q", *sum([["--set", s] for s in TINY], [])])
    assert out.exit_code == 1
    assert out.output.startswith("Error: no BEAT executable at MNISTEXP_BEAT=")
    assert "Traceback" not in out.output
    assert not results.exists() or not any(results.iterdir())


def test_beat_core_validates_every_declaration(beat, tmp_path):
    report = validate_prefix(beat, PLATFORM_DIR)
    assert {item["kind"] for item in report} == KINDS
    assert len(report) == len(list(PLATFORM_DIR.rglob("*.json")))
    assert [item for item in report if item["errors"]] == []

    # the validation has teeth: a toolchain wired to a block that does not exist is refused
    broken = tmp_path / "prefix"
    shutil.copytree(PLATFORM_DIR, broken)
    toolchain = broken / "toolchains/mnistexp/mnist_cnn/1.json"
    data = json.loads(toolchain.read_text())
    data["connections"][0]["to"] = "no_such_block.image"
    toolchain.write_text(json.dumps(data))
    bad = {item["name"] for item in validate_prefix(beat, broken) if item["errors"]}
    assert "mnistexp/mnist_cnn/1" in bad


def test_beat_run_gives_a_record_with_the_local_fingerprint(beat, tmp_path, tiny_data_dir):
    from mnistexp.adapters.local import LocalAdapter
    from mnistexp.runner import run_experiment

    results = tmp_path / "results"
    args = ["run", "--platform", "beat", "--data-dir", str(tiny_data_dir), "--results-dir", str(results), "-q"]
    out = CliRunner().invoke(cli, args + sum([["--set", s] for s in TINY], []))
    assert out.exit_code == 0, out.output
    (run_dir,) = list(results.iterdir())
    record = read_record(run_dir)  # validates against the schema
    assert record["platform"] == "beat" and record["status"] == "completed"
    assert 0.0 <= record["metrics"]["test_accuracy"] <= 1.0 and record["metrics"]["test_loss"] > 0
    assert record["metrics"]["epochs_run"] == 1 and len(record["history"]) == 1
    assert (record["data"]["n_train"], record["data"]["n_val"], record["data"]["n_test"]) == (288, 32, 80)
    assert (run_dir / "history.csv").is_file() and (run_dir / "confusion_matrix.csv").is_file()
    assert "Running `mnistexp/cnn_train/1'" in (run_dir / "beat.log").read_text()

    config = load_config(REPO / "config.yaml", TINY)
    local = run_experiment(config, LocalAdapter(), tmp_path / "local", tiny_data_dir, verbose=0)
    assert record["experiment"]["fingerprint"] == local.record["experiment"]["fingerprint"]
    assert record["data"]["checksums"] == local.record["data"]["checksums"]
    assert record["experiment"]["config_hash"] == local.record["experiment"]["config_hash"]


def test_failing_beat_run_leaves_a_failed_record_and_one_error_line(beat, tmp_path, tiny_data_dir):
    results = tmp_path / "results"
    # a layer argument that passes config validation but that Keras refuses inside BEAT
    bad_layer = "model.layers=[{type: Flatten}, {type: Dense, units: 10, activation: no_such_fn}]"
    args = ["run", "--platform", "beat", "--data-dir", str(tiny_data_dir), "--results-dir", str(results),
            "-q", "--set", bad_layer, *sum([["--set", s] for s in TINY], [])]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 1
    assert out.output.startswith("Error: BEAT experiment failed") and "Traceback" not in out.output
    (run_dir,) = list(results.iterdir())
    record = read_record(run_dir)
    assert record["status"] == "failed" and record["error"].startswith("BeatError")


class TestBeatContract(PlatformContract):
    """`mnistexp run --platform beat`: BEAT's own executor, driven from the BEAT virtualenv."""

    platform = "beat"

    @pytest.fixture
    def launch(self, beat, tmp_path, tiny_data_dir):
        return run_here_launcher(self.platform, tmp_path, tiny_data_dir)

    def training(self, run):
        """BEAT reports epochs only at the end: its log shows when the training block runs."""
        logs = list(run.out_dir.glob("*/beat.log"))
        return bool(logs) and "cnn_train" in logs[0].read_text(errors="replace")
