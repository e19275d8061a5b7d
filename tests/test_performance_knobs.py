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
    ("runtime.gc_pause=true", "gc_pause", True),
    ("runtime.gc_pause=false", "gc_pause", False),
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
    # the settings outside the config that change kernels are recorded too
    assert record["runtime"]["onednn_opts"] in ("default", "0", "1")
    assert isinstance(record["runtime"]["graph_options"], dict)


def test_thread_settings_apply_in_a_fresh_process(tiny_data_dir, tmp_path):
    # TF fixes its thread pools (and reads TF_ENABLE_ONEDNN_OPTS) at start-up, so these knobs
    # are checked in their own process.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "mnistexp.cli", "run", "--data-dir", str(tiny_data_dir), "--results-dir",
         str(tmp_path), "--epochs", "1", "--batch-size", "32", "-q",
         "--set", "runtime.intra_op_threads=1", "--set", "runtime.inter_op_threads=1"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads(next(tmp_path.glob("*/record.json")).read_text())
    assert (record["runtime"]["intra_op_threads"], record["runtime"]["inter_op_threads"]) == (1, 1)
    assert record["runtime"]["onednn_opts"] == "0"
    assert record["runtime"]["backend"] == "tensorflow"
    _check_run(next(tmp_path.glob("*/record.json")).parent)


@pytest.mark.parametrize("knob, values", [("steps_per_execution", (1, 8)), ("gc_pause", ("false", "true"))])
def test_speed_knob_does_not_change_the_result(tiny_data_dir, tmp_path, knob, values):
    losses = {}
    for value in values:
        out = tmp_path / str(value)
        result = CliRunner().invoke(cli, ["run", "--data-dir", str(tiny_data_dir), "--results-dir", str(out),
                                          "--epochs", "2", "--batch-size", "16", "--deterministic", "-q",
                                          "--set", f"runtime.{knob}={value}"])
        assert result.exit_code == 0, result.output
        record = read_record(next(p for p in out.iterdir() if p.is_dir()))
        losses[value] = ([row["loss"] for row in record["history"]], record["metrics"]["test_loss"])
    assert losses[values[0]] == losses[values[1]]


@pytest.mark.parametrize("fails", [False, True])
def test_gc_pause_gives_the_collector_back(tiny_data_dir, tmp_path, fails):
    import gc

    from mnistexp.experiment.train import train_model

    class Boom(Exception):
        pass

    class Model:
        def fit(self, *args, callbacks, **kwargs):
            assert not gc.isenabled()  # paused while training
            if fails:
                raise Boom

    class Recorder:
        rows = [{"epoch": 1}]

    arrays = {"x_train": np.zeros((4, 28, 28, 1)), "y_train": np.zeros(4)}
    train = {"batch_size": 2, "epochs": 1}
    assert gc.isenabled()
    try:
        assert train_model(Model(), arrays, train, [Recorder()], runtime_config={"gc_pause": True}) == [{"epoch": 1}]
    except Boom:
        assert fails
    assert gc.isenabled()
