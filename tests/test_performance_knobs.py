"""Each runtime knob (issue: performance) trains the same model to a sane loss on tiny data.

No timing here: speed is measured side by side in benchmarks/bench_train.py.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

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
    ("runtime.jit_compile=false", "jit_compile", False),
    ("runtime.mixed_precision=mixed_bfloat16", "mixed_precision", "mixed_bfloat16"),
    ("runtime.mixed_precision=float32", "mixed_precision", "float32"),
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


def _run(data_dir, results, *sets):
    args = ["run", "--data-dir", str(data_dir), "--results-dir", str(results), "--epochs", "1", "--batch-size", "32",
            "-q"]
    for item in sets:
        args += ["--set", item]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return next(p for p in Path(results).iterdir() if p.is_dir())


def test_auto_settings_are_recorded_as_what_they_resolved_to(tiny_data_dir, tmp_path):
    from mnistexp.experiment.train import choose_precision

    record = read_record(_run(tiny_data_dir, tmp_path))
    runtime = record["runtime"]
    # On a CPU under TensorFlow Keras' "auto" leaves XLA off; the record says so, not "auto".
    assert runtime["jit_compile"] is False
    assert runtime["devices"] == "cpu" and runtime["backend"] == "tensorflow"
    assert runtime["mixed_precision"] == choose_precision("auto", "tensorflow", on_gpu=False)


def test_mixed_precision_keeps_the_output_float32_and_does_not_leak_into_the_next_run(tiny_data_dir, tmp_path):
    import keras

    mixed = _run(tiny_data_dir, tmp_path / "bf16", "runtime.mixed_precision=mixed_bfloat16")
    model = keras.models.load_model(mixed / "model.keras", safe_mode=True, compile=False)
    assert model.layers[0].dtype_policy.compute_dtype == "bfloat16"
    # softmax and the loss in float32, as Keras' mixed-precision guide does
    assert model.layers[-1].dtype_policy.name == "float32"
    assert model.predict(np.zeros((2, 28, 28, 1), np.float32), verbose=0).dtype == np.float32
    _check_run(mixed)

    plain = _run(tiny_data_dir, tmp_path / "fp32", "runtime.mixed_precision=float32")
    model = keras.models.load_model(plain / "model.keras", safe_mode=True, compile=False)
    assert [layer.dtype_policy.name for layer in model.layers] == ["float32"] * len(model.layers)


@pytest.mark.parametrize("requested, backend, on_gpu, flags, onednn, expected", [
    ("auto", "tensorflow", False, {"avx512f", "amx_bf16"}, None, "mixed_bfloat16"),  # AMX: bf16 pays
    ("auto", "tensorflow", False, {"amx_bf16"}, "isa:AVX2", "float32"),  # oneDNN capped below AMX
    ("auto", "tensorflow", False, {"amx_bf16"}, "isa:AVX512_CORE_AMX", "mixed_bfloat16"),
    ("auto", "tensorflow", False, {"avx2", "fma"}, None, "float32"),  # emulated bf16 would be slower
    ("auto", "tensorflow", False, {"amx_bf16"}, "0", "float32"),  # no oneDNN, no AMX kernels
    ("auto", "tensorflow", True, {"amx_bf16"}, None, "float32"),  # the GPU trains, not the host CPU
    ("auto", "jax", False, {"amx_bf16"}, None, "float32"),  # not measured on XLA's CPU runtime
    ("mixed_float16", "tensorflow", False, set(), None, "mixed_float16"),  # an explicit choice is kept
])
def test_auto_precision_is_bf16_only_where_it_was_measured_to_pay(monkeypatch, requested, backend, on_gpu, flags,
                                                                  onednn, expected):
    from mnistexp.experiment import train

    monkeypatch.setattr(train, "cpu_flags", lambda: set(flags))
    for name in ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        monkeypatch.delenv(name, raising=False)
    if onednn and onednn.startswith("isa:"):
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", onednn[4:])
    elif onednn is not None:
        monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", onednn)
    assert train.choose_precision(requested, backend, on_gpu) == expected


def test_another_backend_than_the_loaded_one_is_one_clear_error(tiny_data_dir, tmp_path):
    import keras  # noqa: F401 - Keras on TensorFlow is loaded in this test process

    result = CliRunner().invoke(cli, ["run", "--data-dir", str(tiny_data_dir), "--results-dir", str(tmp_path),
                                      "--epochs", "1", "--set", "runtime.backend=jax", "-q"])
    assert result.exit_code != 0
    assert "runtime.backend" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]


def _python(code: str, **env) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "XLA_FLAGS")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**clean, **env},
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_backend_choice_sets_what_keras_and_xla_read_at_import():
    code = ("import os, sys; from mnistexp.experiment.train import select_backend; "
            "print(select_backend({{}}), select_backend({}), os.environ['KERAS_BACKEND'], "
            "os.environ.get('XLA_FLAGS', ''), 'keras' in sys.modules, sep='|')")
    auto = _python(code.format("{'backend': 'auto'}"))
    assert auto == "tensorflow|tensorflow|tensorflow||False"
    assert _python(code.format("{}"), KERAS_BACKEND="jax").split("|")[:3] == ["jax", "jax", "jax"]
    jax = _python(code.format("{'backend': 'jax', 'deterministic': True}"))
    # the first call (auto) already set KERAS_BACKEND=tensorflow, so the jax request is told apart
    assert jax.startswith("tensorflow|jax|jax|")
    assert "--xla_gpu_deterministic_ops=true" in jax


def test_jax_backend_runs_the_same_experiment(tiny_data_dir, tmp_path):
    pytest.importorskip("jax", reason="jax is a dev dependency; install the project with '.[dev]'")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    proc = subprocess.run(
        [sys.executable, "-m", "mnistexp.cli", "run", "--data-dir", str(tiny_data_dir), "--results-dir",
         str(tmp_path / "jax"), "--epochs", "1", "--batch-size", "32", "-q", "--set", "runtime.backend=jax"],
        capture_output=True, text=True, env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    jax_dir = next((tmp_path / "jax").iterdir())
    record = read_record(jax_dir)
    assert record["runtime"]["backend"] == "jax"
    assert record["runtime"]["jit_compile"] is True  # Keras compiles the JAX train step with XLA
    assert record["runtime"]["intra_op_threads"] is None  # not settable on JAX: not claimed
    assert record["environment"]["jax"]
    tf_record = read_record(_run(tiny_data_dir, tmp_path / "tf"))
    assert record["experiment"]["fingerprint"] == tf_record["experiment"]["fingerprint"]
    _check_run(jax_dir)  # trained to a sane loss, and its model.keras loads under TensorFlow


def test_a_deterministic_run_does_not_leave_determinism_on_for_the_next(tiny_data_dir, tmp_path):
    # TF's op determinism is process-wide and makes Keras drop XLA; a later run must get what it asks.
    first = read_record(_run(tiny_data_dir, tmp_path / "a", "runtime.deterministic=true"))
    assert first["runtime"]["deterministic"] is True
    second = read_record(_run(tiny_data_dir, tmp_path / "b", "runtime.jit_compile=true"))
    assert second["runtime"]["deterministic"] is False
    assert second["runtime"]["jit_compile"] is True


def test_the_run_summary_says_what_the_auto_settings_resolved_to(tiny_data_dir, tmp_path):
    result = CliRunner().invoke(cli, ["run", "--data-dir", str(tiny_data_dir), "--results-dir", str(tmp_path),
                                      "--epochs", "1", "--batch-size", "32",
                                      "--set", "runtime.mixed_precision=mixed_bfloat16"])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "runs on" in line)
    assert "tensorflow on cpu, mixed_bfloat16, XLA off" in line
