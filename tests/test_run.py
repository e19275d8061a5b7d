"""`mnistexp run` end to end on tiny data: the run folder, the record, and every bad input."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnistexp.cli import cli
from mnistexp.experiment.record import read_record
from tests.conftest import TINY

RUN_FILES = {"record.json", "history.csv", "model.keras", "confusion_matrix.csv",
             "learning_curves.png", "confusion_matrix.png"}


def run_cli(*args, overrides=TINY):
    argv = ["run", *args]
    for item in overrides:
        argv += ["--set", item]
    return CliRunner().invoke(cli, argv)


def run_dirs(results: Path) -> list[Path]:
    return sorted(p for p in results.iterdir() if p.is_dir()) if results.exists() else []


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith((".tmp", ".part")) or ".tmp." in p.name]


@pytest.fixture(scope="module")
def tiny_run(tiny_data_dir, tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    result = run_cli("--data-dir", str(tiny_data_dir), "--results-dir", str(results), "--epochs", "2",
                     "--seed", "7", "--tag", "purpose=test")
    assert result.exit_code == 0, result.output
    (run_dir,) = run_dirs(results)
    return result, run_dir


def test_run_writes_a_complete_valid_record(tiny_run):
    result, run_dir = tiny_run
    assert RUN_FILES <= {p.name for p in run_dir.iterdir()}
    assert not leftovers(run_dir)
    record = read_record(run_dir)  # validates against the JSON Schema
    assert record["status"] == "completed" and record["platform"] == "local"
    assert record["seed"] == 7 and record["experiment"]["config"]["train"]["epochs"] == 2
    assert record["metrics"]["epochs_run"] == 2 and len(record["history"]) == 2
    assert 0.0 <= record["metrics"]["test_accuracy"] <= 1.0 and record["metrics"]["test_loss"] > 0
    assert record["data"]["n_train"] == 288 and record["data"]["n_val"] == 32 and record["data"]["n_test"] == 80
    assert set(record["data"]["checksums"]) == {"train_images", "train_labels", "test_images", "test_labels"}
    for key in ("data_load_s", "build_s", "train_s", "evaluate_s", "total_s"):
        assert record["timings"][key] >= 0
    assert record["throughput"]["train_images_per_s"] > 0
    env = record["environment"]
    assert env["tensorflow"] and env["keras"] and env["numpy"] and env["cpu_count"]
    assert record["tags"] == {"platform": "local", "purpose": "test"}
    assert record["run_id"] == run_dir.name and "test accuracy" in result.output


def test_history_and_confusion_files_agree_with_the_record(tiny_run):
    _, run_dir = tiny_run
    record = read_record(run_dir)
    rows = list(csv.DictReader((run_dir / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[-1]["val_accuracy"]) == pytest.approx(record["history"][-1]["val_accuracy"])
    matrix = list(csv.reader((run_dir / "confusion_matrix.csv").open()))
    counts = [[int(v) for v in row[1:]] for row in matrix[1:]]
    assert sum(map(sum, counts)) == record["data"]["n_test"]
    correct = sum(counts[i][i] for i in range(10))
    assert correct / record["data"]["n_test"] == pytest.approx(record["metrics"]["test_accuracy"])


def test_plots_are_real_pngs(tiny_run):
    import matplotlib.image

    _, run_dir = tiny_run
    for name in ("learning_curves.png", "confusion_matrix.png"):
        image = matplotlib.image.imread(run_dir / name)
        assert image.shape[0] > 200 and image.shape[1] > 200


def test_no_secret_or_environment_variable_reaches_any_run_file(tiny_data_dir, tmp_path, monkeypatch):
    secrets = {"COMET_API_KEY": "cometkey-abcdef0123456789", "KAGGLE_KEY": "kagglekey-0123456789abcdef",
               "MY_TOKEN": "token-fedcba9876543210"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    result = run_cli("--data-dir", str(tiny_data_dir), "--results-dir", str(tmp_path), "-q")
    assert result.exit_code == 0, result.output
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "record.json" for p in files)
    for path in files:
        data = path.read_bytes()
        for name, value in secrets.items():
            assert value.encode() not in data, f"{name} leaked into {path.name}"
            assert name.encode() not in data, f"{name} (an environment dump?) in {path.name}"


def test_evaluate_rescoring_matches_the_record(tiny_run, tiny_data_dir, tmp_path):
    _, run_dir = tiny_run
    result = CliRunner().invoke(cli, ["evaluate", str(run_dir), str(run_dir / "model.keras"),
                                      "--name", "same", "--data-dir", str(tiny_data_dir),
                                      "--results-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "comparisons" / "same.json").read_text())
    accuracy = read_record(run_dir)["metrics"]["test_accuracy"]
    assert [m["test_accuracy"] for m in report["models"]] == [pytest.approx(accuracy)] * 2


def test_deterministic_runs_are_bit_identical(tiny_data_dir, tmp_path):
    histories = []
    for name in ("a", "b"):
        result = run_cli("--data-dir", str(tiny_data_dir), "--results-dir", str(tmp_path / name),
                         "--deterministic", "-q")
        assert result.exit_code == 0, result.output
        record = read_record(run_dirs(tmp_path / name)[0])
        assert record["runtime"]["deterministic"] is True
        histories.append(([{k: v for k, v in row.items() if k != "epoch_time_s"} for row in record["history"]],
                          record["metrics"]["test_loss"]))
    assert histories[0] == histories[1]


# ---------------------------------------------------------------- bad input


def assert_one_line_error(result, *fragments):
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    "overrides, fragments",
    [
        (["train.epoch=1"], ["unknown config key 'train.epoch'", "train.epochs"]),
        (["train.epochs=two"], ["config key 'train.epochs' must be an integer"]),
        (["train.batch_size=-1"], ["config key 'train.batch_size' must be a positive integer"]),
    ],
)
def test_bad_config_fails_before_anything_is_written(tiny_data_dir, tmp_path, overrides, fragments):
    result = run_cli("--data-dir", str(tiny_data_dir), "--results-dir", str(tmp_path / "r"), overrides=overrides)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "r").exists()


def test_bad_layer_argument_is_one_line(tiny_data_dir, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("model:\n  layers:\n    - {type: Flatten}\n    - {type: Dense, unitz: 10}\n")
    result = run_cli("--config", str(config), "--data-dir", str(tiny_data_dir), "--results-dir", str(tmp_path / "r"))
    assert_one_line_error(result, "model.layers[1]", "Dense")


def test_missing_data_dir(tmp_path):
    result = run_cli("--data-dir", str(tmp_path / "nowhere"), "--results-dir", str(tmp_path / "r"))
    assert_one_line_error(result, "nowhere", "does not exist", "--data-dir")
    assert run_dirs(tmp_path / "r") == []


def test_truncated_idx(fresh_data_dir, tmp_path):
    path = fresh_data_dir / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-10])
    (fresh_data_dir / "SHA256SUMS").unlink()
    result = run_cli("--data-dir", str(fresh_data_dir), "--results-dir", str(tmp_path / "r"),
                     overrides=[*TINY, "data.verify=false"])
    assert_one_line_error(result, "train-labels-idx1-ubyte.gz", "truncated")
    assert run_dirs(tmp_path / "r") == []


def test_wrong_checksum(fresh_data_dir, tmp_path):
    path = fresh_data_dir / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes() + b"\0")
    result = run_cli("--data-dir", str(fresh_data_dir), "--results-dir", str(tmp_path / "r"))
    assert_one_line_error(result, "t10k-images-idx3-ubyte.gz", "expected sha256", "actual")


def test_unwritable_results_dir(tiny_data_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_cli("--data-dir", str(tiny_data_dir), "--results-dir", str(blocker / "results"))
    assert_one_line_error(result, "not writable", "--results-dir")
    assert blocker.read_text() == "not a folder"


def test_ctrl_c_mid_run_leaves_an_interrupted_record(tiny_data_dir, tmp_path):
    results = tmp_path / "r"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mnistexp.cli", "run", "--data-dir", str(tiny_data_dir), "--results-dir",
         str(results), "--epochs", "200", "--batch-size", "8", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        # A shell's background job starts with SIGINT ignored, and Python keeps it so: give the
        # run a terminal's default, as when a user presses Ctrl-C.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    history = None
    while time.time() < deadline:
        found = list(results.glob("*/history.csv")) if results.exists() else []
        if found and len(found[0].read_text().splitlines()) >= 2:
            history = found[0]
            break
        time.sleep(0.2)
    assert history is not None, "no epoch finished"
    time.sleep(0.3)  # now mid-epoch
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Interrupted" in err and "Traceback" not in err
    record = read_record(history.parent)
    assert record["status"] == "interrupted"
    assert 1 <= record["metrics"]["epochs_run"] < 200
    assert len(record["history"]) == record["metrics"]["epochs_run"]
    assert not leftovers(results)


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"]])
def test_help_is_fast_and_imports_no_tensorflow(args):
    code = (
        "import sys\nfrom mnistexp.cli import cli\n"
        f"try:\n    cli({args!r})\nexcept SystemExit:\n    pass\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'\n"
    )
    best = min(_timed([sys.executable, "-c", code]) for _ in range(3))
    assert best < 1.0


def _timed(argv) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "Usage:" in proc.stdout
    return time.perf_counter() - start


@pytest.mark.realdata
def test_one_epoch_on_real_mnist_reaches_97_percent(shared_mnist, tmp_path):
    result = run_cli("--data-dir", str(shared_mnist), "--results-dir", str(tmp_path), "--epochs", "1", "-q",
                     overrides=[])
    assert result.exit_code == 0, result.output
    record = read_record(run_dirs(tmp_path)[0])
    assert record["data"]["checksums"]["train_images"].startswith("ba891046")
    assert record["metrics"]["test_accuracy"] >= 0.97
