"""Each runtime knob (issue: performance) trains the same model to a sane loss on tiny data.

No timing here: speed is measured side by side in benchmarks/bench_train.py.
"""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from mnistexp.cli import cli
from mnistexp.experiment.record import read_record

KNOBS = [
    ("runtime.steps_per_execution=1", "steps_per_execution", 1),
    ("runtime.steps_per_execution=8", "steps_per_execution", 8),
    ("runtime.jit_compile=true", "jit_compile", True),
    ("runtime.eval_batch_size=16", "eval_batch_size", 16),
]


def _check_run(run_dir):
    import keras

    record = read_record(run_dir)
    assert record["status"] == "completed"
    losses = [row["loss"] for row in record["history"]]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < math.log(10) + 0.5  # not diverged: at most a little above chance level
    model = keras.models.load_model(run_dir / "model.keras", safe_mode=True, compile=False)
    assert model.predict(np.zeros((3, 28, 28, 1), np.float32), verbose=0).shape == (3, 10)
    return record


@pytest.mark.parametrize("override, key, value", KNOBS)
def test_knob_trains_and_is_recorded(tiny_data_dir, tmp_path, override, key, value):
    result = CliRunner().invoke(cli, ["run", "--data-dir", str(tiny_data_dir), "--results-dir", str(tmp_path),
                                      "--epochs", "2", "--batch-size", "32", "--set", override, "-q"])
    assert result.exit_code == 0, result.output
    record = _check_run(next(p for p in tmp_path.iterdir() if p.is_dir()))
    assert record["runtime"][key] == value


def test_thread_settings_apply_in_a_fresh_process(tiny_data_dir, tmp_path):
    # TF fixes its thread pools at start-up, so this knob is checked in its own process.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-m", "mnistexp.cli", "run", "--data-dir", str(tiny_data_dir), "--results-dir",
         str(tmp_path), "--epochs", "1", "--batch-size", "32", "-q",
         "--set", "runtime.intra_op_threads=1", "--set", "runtime.inter_op_threads=1"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads(next(tmp_path.glob("*/record.json")).read_text())
    assert (record["runtime"]["intra_op_threads"], record["runtime"]["inter_op_threads"]) == (1, 1)
    _check_run(next(tmp_path.glob("*/record.json")).parent)


def test_steps_per_execution_does_not_change_the_result(tiny_data_dir, tmp_path):
    losses = {}
    for spe in (1, 8):
        out = tmp_path / str(spe)
        result = CliRunner().invoke(cli, ["run", "--data-dir", str(tiny_data_dir), "--results-dir", str(out),
                                          "--epochs", "2", "--batch-size", "16", "--deterministic", "-q",
                                          "--set", f"runtime.steps_per_execution={spe}"])
        assert result.exit_code == 0, result.output
        record = read_record(next(p for p in out.iterdir() if p.is_dir()))
        losses[spe] = ([row["loss"] for row in record["history"]], record["metrics"]["test_loss"])
    assert losses[1] == losses[8]
