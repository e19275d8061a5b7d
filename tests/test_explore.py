"""`mnistexp explore`: Optuna search, grid shorthand flags, interrupt/resume, --jobs."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

from mnistexp.cli import cli
from mnistexp.experiment.config import ConfigError, load_config
from mnistexp.explore import apply_params, parse_param
from mnistexp.paths import default_config_path

GRID = ["-r", "0.001,0.01", "-b", "32,64", "-e", "1", "--no-pruning"]


def _layers(config):
    return [(layer["type"], layer.get("filters") or layer.get("units") or layer.get("rate")) for layer in
            config["model"]["layers"]]


@pytest.fixture(scope="module")
def canonical():
    return load_config(default_config_path())


def test_shorthand_flags_reshape_the_layers_as_documented(canonical):
    blocks = apply_params(canonical, {"model.conv_blocks": 3})
    assert [f for t, f in _layers(blocks) if t == "Conv2D"] == [32, 64, 128]
    assert [t for t, _ in _layers(blocks)][:6] == ["Conv2D", "MaxPooling2D"] * 3
    assert apply_params(canonical, {"model.conv_blocks": 2})["model"]["layers"] == canonical["model"]["layers"]
    assert [f for t, f in _layers(apply_params(canonical, {"model.conv_filters": 16})) if t == "Conv2D"] == [16, 32]
    two = _layers(apply_params(canonical, {"model.dense_layers": 2, "model.dense_units": 64}))
    assert two[two.index(("Flatten", None)):] == [("Flatten", None), ("Dense", 64), ("Dropout", 0.5),
                                                 ("Dense", 64), ("Dropout", 0.5), ("Dense", 10)]
    none = _layers(apply_params(canonical, {"model.dense_layers": 0}))
    assert none[-2:] == [("Flatten", None), ("Dense", 10)]
    shaped = apply_params(canonical, {"model.kernel_size": 5, "model.pool_size": 3, "model.dropout": 0.3})
    assert {layer["kernel_size"] for layer in shaped["model"]["layers"] if layer["type"] == "Conv2D"} == {5}
    assert {layer["pool_size"] for layer in shaped["model"]["layers"] if layer["type"] == "MaxPooling2D"} == {3}
    assert {layer["rate"] for layer in shaped["model"]["layers"] if layer["type"] == "Dropout"} == {0.3}
    assert apply_params(canonical, {"train.decay": 0.5})["train"]["lr_decay"] == {**canonical["train"]["lr_decay"],
                                                                                   "enabled": True, "factor": 0.5}
    assert apply_params(canonical, {"train.decay": 0})["train"]["lr_decay"]["enabled"] is False
    assert apply_params(canonical, {"train.learning_rate": 0.01})["train"]["learning_rate"] == 0.01


def test_param_specs_and_bad_input():
    assert parse_param("train.batch_size=32,64") == ("train.batch_size", {"type": "choice", "values": [32, 64]})
    assert parse_param("train.learning_rate=float:1e-4:1e-2:log")[1] == {
        "type": "float", "low": 1e-4, "high": 1e-2, "log": True}
    with pytest.raises(ConfigError, match="cannot search 'train.batchsize'"):
        parse_param("train.batchsize=32")
    with pytest.raises(ConfigError, match="LOW < HIGH"):
        parse_param("train.epochs=int:5:2")
    with pytest.raises(ConfigError, match="train.optimizer"):
        apply_params(load_config(default_config_path()), {"train.optimizer": "adamm"})


def test_cli_errors_are_one_line_and_write_nothing(tmp_path):
    result = CliRunner().invoke(cli, ["explore", "--results-dir", str(tmp_path), "--param", "train.nope=1,2"])
    assert result.exit_code == 1 and result.output.startswith("Error: cannot search 'train.nope'")
    result = CliRunner().invoke(cli, ["explore", "--results-dir", str(tmp_path), "--sampler", "grid",
                                      "--param", "train.learning_rate=float:0.001:0.1"])
    assert result.exit_code == 1 and "needs a list of values" in result.output
    result = CliRunner().invoke(cli, ["explore", "--results-dir", str(tmp_path), "--study", "missing"])
    assert result.exit_code == 1 and "study 'missing' does not exist" in result.output
    result = CliRunner().invoke(cli, ["explore", "--results-dir", str(tmp_path), "-o", "adam,sgdd"])
    assert result.exit_code == 1 and "train.optimizer" in result.output
    assert not any(tmp_path.rglob("record.json"))


def _records(study_dir):
    return [json.loads(p.read_text()) for p in sorted((study_dir / "runs").glob("*/record.json"))]


def _params(record):
    train = record["experiment"]["config"]["train"]
    return (train["learning_rate"], train["batch_size"])


def _explore(args, data_dir, results_dir):
    return CliRunner().invoke(cli, ["explore", *args, "--data-dir", str(data_dir), "--results-dir", str(results_dir)])


class _Interrupt:
    """A Keras callback that presses Ctrl-C after the first training batch."""

    def __new__(cls):
        import keras

        class Interrupt(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                raise KeyboardInterrupt

        return Interrupt()


@pytest.mark.slow
def test_grid_is_interrupted_and_resumes_without_repeating(tiny_data_dir, tmp_path, monkeypatch):
    import mnistexp.runner as runner

    real = runner.run_experiment
    calls = []

    def third_is_interrupted(*args, extra_callbacks=None, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            extra_callbacks = [*(extra_callbacks or []), _Interrupt()]
        return real(*args, extra_callbacks=extra_callbacks, **kwargs)

    monkeypatch.setattr(runner, "run_experiment", third_is_interrupted)
    result = _explore(["--study", "grid", *GRID], tiny_data_dir, tmp_path)
    assert result.exit_code == 130, result.output
    assert "run the same command again to resume" in result.output
    study_dir = tmp_path / "grid"
    records = _records(study_dir)
    assert sorted(r["status"] for r in records) == ["completed", "completed", "interrupted"]
    assert all(r["tags"]["study"] == "grid" for r in records)
    finished = {_params(r) for r in records if r["status"] == "completed"}

    monkeypatch.setattr(runner, "run_experiment", real)
    calls.clear()
    result = _explore(["--study", "grid", *GRID], tiny_data_dir, tmp_path)
    assert result.exit_code == 0, result.output
    records = _records(study_dir)
    completed = [_params(r) for r in records if r["status"] == "completed"]
    assert len(completed) == 4 and set(completed) == {(lr, b) for lr in (0.001, 0.01) for b in (32, 64)}
    assert len(records) == 5  # 2 before, the interrupted one, its retry, the last point: nothing repeated
    assert finished <= set(completed)
    with sqlite3.connect(study_dir / "study.db") as db:
        states = sorted(state for (state,) in db.execute("select state from trials"))
    assert states == ["COMPLETE"] * 4 + ["FAIL"]
    summary = json.loads((study_dir / "summary.json").read_text())
    assert summary["trials"]["complete"] == 4 and summary["best_trial"]["run_dir"]
    assert (study_dir / "optimization_history.png").stat().st_size > 1000
    # Nothing left to do: a third invocation (resume by name only) runs no trial.
    result = CliRunner().invoke(cli, ["explore", "--study", "grid", "--results-dir", str(tmp_path),
                                      "--data-dir", str(tiny_data_dir)])
    assert result.exit_code == 0 and "0 trial(s) to run" in result.output
    assert len(_records(study_dir)) == 5
    result = _explore(["--study", "grid", "-r", "0.1,0.2"], tiny_data_dir, tmp_path)
    assert result.exit_code == 1 and "exists with another search" in result.output


@pytest.mark.slow
def test_jobs_2_runs_the_same_grid_in_two_processes(tiny_data_dir, tmp_path):
    result = _explore(["--study", "par", *GRID, "--jobs", "2"], tiny_data_dir, tmp_path)
    assert result.exit_code == 0, result.output
    assert "in 2 process(es)" in result.output
    records = _records(tmp_path / "par")
    assert sorted(_params(r) for r in records) == sorted((lr, b) for lr in (0.001, 0.01) for b in (32, 64))
    assert all(r["status"] == "completed" and r["tags"]["study"] == "par" for r in records)
    assert all(r["experiment"]["config"]["runtime"]["intra_op_threads"] >= 1 for r in records)  # cores / jobs
    summary = json.loads((tmp_path / "par" / "summary.json").read_text())
    assert summary["trials"]["complete"] == 4


class _AlwaysPrune:
    """An Optuna trial whose pruner always says stop."""

    def __init__(self):
        self.reported = []

    def report(self, value, step):
        self.reported.append((step, value))

    def should_prune(self):
        return True


@pytest.mark.parametrize("epochs, pruned_at", [(1, None), (3, 1)])
def test_a_trial_that_finished_its_last_epoch_is_never_pruned(epochs, pruned_at):
    from mnistexp.explore import pruning_callback

    class Model:
        stop_training = False

    trial = _AlwaysPrune()
    callback = pruning_callback(trial, "val_accuracy")
    callback.set_params({"epochs": epochs})
    callback.set_model(Model())
    callback.on_epoch_end(0, {"val_accuracy": 0.5})
    assert trial.reported == [(1, 0.5)]
    assert callback.pruned_at == pruned_at
    assert callback.model.stop_training is (pruned_at is not None)


@pytest.mark.slow
def test_trials_run_through_the_chosen_platform(tiny_data_dir, tmp_path):
    """--platform mlflow: every trial is logged by the MLflow adapter (no hard-coded local runs)."""
    pytest.importorskip("mlflow")
    store = tmp_path / "mlflow.db"
    result = _explore(["--study", "onmlflow", "--platform", "mlflow", "--mlflow-tracking-uri", f"sqlite:///{store}",
                       "-r", "0.001", "-e", "1", "--no-pruning"], tiny_data_dir, tmp_path)
    assert result.exit_code == 0, result.output
    assert "on mlflow" in result.output
    (record,) = _records(tmp_path / "onmlflow")
    assert record["platform"] == "mlflow" and record["status"] == "completed"
    assert store.stat().st_size > 0


def test_platform_options_belong_to_their_platform(tmp_path):
    result = CliRunner().invoke(cli, ["explore", "--results-dir", str(tmp_path), "--offline", "-r", "0.1"])
    assert result.exit_code == 2 and "--offline applies to --platform comet only" in result.output
