"""The mlflow platform: real mlflow SDK, real tracking stores (sqlite in tmp_path), no network.

Runs go through the CLI into a private sqlite store; the tests then read that store back
with MLflow's own API (mlflow.search_runs, MlflowClient) as a user would in `mlflow ui`.
Server failures are real HTTP failures against 127.0.0.1 (a closed port, a tiny server that
answers 401 or an HTML 404), with MLflow's retries off so they are fast.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import TINY
from tests.contract import DIVERGING, Launch, PlatformContract, run_argv

mlflow = pytest.importorskip("mlflow")

from mnistexp.adapters import mlflow as platform  # noqa: E402
from mnistexp.cli import cli  # noqa: E402
from mnistexp.experiment.record import read_record, validate_record  # noqa: E402

PASSWORD = "planted-mlflow-password-2e6f1"
TOKEN = "planted-mlflow-token-a91c7"
EPOCH_METRICS = {"loss", "accuracy", "val_loss", "val_accuracy", "epoch_time_s", "learning_rate"}


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A private sqlite store; the MLflow environment cleared, credentials planted, cwd in tmp."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID",
                 "MLFLOW_TRACKING_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", TOKEN)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.chdir(tmp_path)  # MLflow's default store (./mlflow.db) would land here, never in the repo
    return f"sqlite:///{(tmp_path / 'store' / 'mlflow.db').as_posix()}"


def run_cli(data_dir, results, *args):
    argv = ["run", "--platform", "mlflow", "--data-dir", str(data_dir), "--results-dir", str(results), "-q"]
    for item in TINY:
        argv += ["--set", item]
    return CliRunner().invoke(cli, [*argv, *args])


def only_record(results: Path) -> dict:
    records = sorted(results.glob("*/record.json"))
    assert len(records) == 1, records
    record = read_record(records[0])
    validate_record(record)
    return record


def mlflow_run(uri: str, record: dict):
    client = mlflow.MlflowClient(tracking_uri=uri)
    return client, client.get_run(record["platform_info"]["mlflow_run_id"])


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


# ---------------------------------------------------------------- end to end


def test_completed_run_is_in_mlflow(store, tiny_data_dir, tmp_path):
    results = tmp_path / "results"
    result = run_cli(tiny_data_dir, results, "--mlflow-tracking-uri", store, "--mlflow-experiment", "digits",
                     "--set", "train.epochs=2", "--tag", "owner=team-a")
    assert result.exit_code == 0, result.output
    record = only_record(results)
    assert record["status"] == "completed"
    info = record["platform_info"]
    assert info["tracking_uri"] == store and info["mlflow_status"] == "FINISHED"
    assert f"mlflow ui --backend-store-uri {store}" in result.output

    # What a user finds with MLflow's own search: one finished run in the named experiment.
    mlflow.set_tracking_uri(store)
    try:
        runs = mlflow.search_runs(experiment_names=["digits"], output_format="list")
    finally:
        mlflow.set_tracking_uri(None)
    assert [r.info.run_id for r in runs] == [info["mlflow_run_id"]]
    run = runs[0]
    assert run.info.status == "FINISHED" and run.info.experiment_id == info["mlflow_experiment_id"]
    assert run.info.run_name == record["run_id"]

    config = record["experiment"]["config"]
    params = run.data.params
    assert params["train.epochs"] == "2" and params["train.batch_size"] == "32"
    assert params["data.verify"] == json.dumps(config["data"]["verify"])
    assert json.loads(params["model.layers"]) == config["model"]["layers"]
    assert set(params) == set(platform.flatten(config))

    tags = run.data.tags
    assert tags["mnistexp.fingerprint"] == record["experiment"]["fingerprint"]
    assert tags["mnistexp.run_id"] == record["run_id"]
    assert tags["mnistexp.platform"] == "mlflow"
    assert tags["mnistexp.experiment"] == record["experiment"]["name"]
    assert tags["mnistexp.status"] == "completed"
    assert tags["owner"] == "team-a"

    client = mlflow.MlflowClient(tracking_uri=store)
    for name in EPOCH_METRICS:
        history = client.get_metric_history(run.info.run_id, name)
        assert [m.step for m in history] == [1, 2], name
        assert [m.value for m in history] == pytest.approx([row[name] for row in record["history"]]), name
    assert run.data.metrics["test_accuracy"] == pytest.approx(record["metrics"]["test_accuracy"])
    assert run.data.metrics["test_loss"] == pytest.approx(record["metrics"]["test_loss"])
    assert run.data.metrics["train_images_per_s"] == pytest.approx(record["throughput"]["train_images_per_s"])

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model.keras", "history.csv", "confusion_matrix.csv", "learning_curves.png",
            "confusion_matrix.png", "record.json"} <= artifacts
    logged = json.loads(Path(mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="record.json", tracking_uri=store,
        dst_path=str(tmp_path / "download"))).read_text())
    assert logged["run_id"] == record["run_id"] and logged["status"] == "completed"
    assert logged["platform_info"]["mlflow_run_id"] == run.info.run_id
    # Files stay beside the database, not in the folder the run started from.
    assert (tmp_path / "store" / "mlruns" / "digits" / run.info.run_id / "artifacts" / "model.keras").is_file()

    everything = files_under(tmp_path)
    leaked = [str(p) for p in everything if PASSWORD.encode() in p.read_bytes() or TOKEN.encode() in p.read_bytes()]
    assert not leaked


def test_diverging_run_is_failed_in_mlflow(store, tiny_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)  # the environment's store, no option
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    results = tmp_path / "results"
    result = run_cli(tiny_data_dir, results, *[x for item in DIVERGING for x in ("--set", item)])
    assert result.exit_code != 0
    assert "diverged" in result.output and "Traceback" not in result.output
    record = only_record(results)
    assert record["status"] == "failed" and record["error"].startswith("diverged:")
    assert record["platform_info"]["mlflow_experiment"] == "from-env"
    client, run = mlflow_run(store, record)
    assert run.info.status == "FAILED"
    assert client.get_experiment(run.info.experiment_id).name == "from-env"
    assert run.data.tags["mnistexp.status"] == "failed"
    assert run.data.tags["mnistexp.error"] == record["error"]
    assert "record.json" in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_interrupted_run_is_killed_in_mlflow(store, tiny_data_dir, tmp_path, monkeypatch):
    logged = platform.MlflowAdapter.log_epoch

    def ctrl_c_after_epoch_1(self, epoch, row):
        logged(self, epoch, row)
        raise KeyboardInterrupt

    monkeypatch.setattr(platform.MlflowAdapter, "log_epoch", ctrl_c_after_epoch_1)
    results = tmp_path / "results"
    result = run_cli(tiny_data_dir, results, "--mlflow-tracking-uri", store, "--set", "train.epochs=3")
    assert result.exit_code == 130, result.output
    record = only_record(results)
    assert record["status"] == "interrupted" and record["metrics"]["epochs_run"] == 1
    client, run = mlflow_run(store, record)
    assert run.info.status == "KILLED"
    assert client.get_experiment(run.info.experiment_id).name == platform.DEFAULT_EXPERIMENT
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [1]
    # The partial history is there to look at, next to the record.
    assert {"history.csv", "record.json"} <= {a.path for a in client.list_artifacts(run.info.run_id)}


def test_store_lost_during_the_run_does_not_stop_the_training(store, tiny_data_dir, tmp_path, monkeypatch):
    def lost(self, run_id, *args, **kwargs):
        raise ConnectionError(f"connection to http://me:{PASSWORD}@tracking.example refused")

    monkeypatch.setattr(mlflow.MlflowClient, "log_batch", lost)
    results = tmp_path / "results"
    result = run_cli(tiny_data_dir, results, "--mlflow-tracking-uri", store, "--set", "train.epochs=3")
    assert result.exit_code == 0, result.output
    record = only_record(results)
    assert record["status"] == "completed" and record["metrics"]["epochs_run"] == 3
    errors = record["platform_info"]["mlflow_errors"]
    assert errors[0].startswith("log_batch: ConnectionError") and "me:***@" in errors[0]
    assert errors[-1] == "stopped logging to MLflow after these errors"
    assert "logging call(s) failed" in result.output and PASSWORD not in result.output
    # The run itself was still closed in MLflow (set_terminated is tried whatever failed before).
    client, run = mlflow_run(store, record)
    assert run.info.status == "FINISHED"
    assert not run.data.metrics


# ---------------------------------------------------------------- pre-flight: one line, nothing written


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def http_server(status: int, body: bytes, content_type: str):
    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def refused(tiny_data_dir, tmp_path, uri: str, *args) -> str:
    results = tmp_path / "results"
    result = run_cli(tiny_data_dir, results, "--mlflow-tracking-uri", uri, *args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert not list(results.glob("*/record.json"))
    assert PASSWORD not in result.output and TOKEN not in result.output
    return lines[0]


@pytest.mark.parametrize("make_uri, expected", [
    (lambda tmp: "sqlite://", "in-memory"),
    (lambda tmp: "sqlite:///:memory:", "in-memory"),
    (lambda tmp: f"sqlite:///{tmp / 'a-file' / 'mlflow.db'}", "is not a folder"),
    (lambda tmp: f"sqlite:///{tmp / 'notes.txt'}", "not an SQLite database"),
    (lambda tmp: f"sqlite:///{tmp}", "is a folder"),
    (lambda tmp: f"file://{tmp / 'a-file'}", "is a file"),
    (lambda tmp: "foo://bar", "unsupported scheme"),
    (lambda tmp: f"http://someone:{PASSWORD}@127.0.0.1:{closed_port()}", "cannot reach"),
])
def test_bad_store_is_one_line_before_anything_is_written(store, tiny_data_dir, tmp_path, make_uri, expected):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "notes.txt").write_text("not a database")
    line = refused(tiny_data_dir, tmp_path, make_uri(tmp_path))
    assert expected in line and "--mlflow-tracking-uri" in line, line
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()


@pytest.mark.skipif(not hasattr(mlflow.environment_variables, "MLFLOW_ALLOW_FILE_STORE"),
                    reason="this MLflow still opens file stores without asking")
def test_file_store_refused_by_mlflow_3(store, tiny_data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    line = refused(tiny_data_dir, tmp_path, (tmp_path / "fs").as_uri())
    assert "no longer opens file stores" in line and "MLFLOW_ALLOW_FILE_STORE=true" in line
    assert not (tmp_path / "fs").exists()


def test_server_that_rejects_the_credentials(store, tiny_data_dir, tmp_path):
    with http_server(401, b'{"error_code": "UNAUTHENTICATED", "message": "bad credentials"}',
                     "application/json") as url:
        line = refused(tiny_data_dir, tmp_path, url.replace("http://", f"http://me:{PASSWORD}@"))
    assert "rejected the credentials" in line and "MLFLOW_TRACKING_PASSWORD" in line
    assert "me:***@" in line


def test_web_server_that_is_not_mlflow(store, tiny_data_dir, tmp_path):
    with http_server(404, b"<html>not here</html>", "text/html") as url:
        line = refused(tiny_data_dir, tmp_path, url)
    assert "did not answer as an MLflow tracking server" in line


def test_deleted_experiment(store, tiny_data_dir, tmp_path):
    client = mlflow.MlflowClient(tracking_uri=store)
    client.delete_experiment(client.create_experiment("gone"))
    line = refused(tiny_data_dir, tmp_path, store, "--mlflow-experiment", "gone")
    assert "'gone'" in line and "deleted" in line and "mlflow experiments restore" in line


def test_missing_sdk_is_one_line(store, tiny_data_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "mlflow", None)
    line = refused(tiny_data_dir, tmp_path, store)
    assert "pip install 'mnistexp[mlflow]'" in line


# ---------------------------------------------------------------- values and secrets


@pytest.mark.parametrize("uri, shown", [
    ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("https://alice:s3cr3t@mlflow.example.com/base", "https://alice:***@mlflow.example.com/base"),
    ("https://ghp_tokenvalue@mlflow.example.com", "https://***@mlflow.example.com"),
    ("postgresql://u:pw@db:5432/mlflow?sslmode=require&password=x",
     "postgresql://u:***@db:5432/mlflow?sslmode=require&password=***"),
])
def test_tracking_uri_is_redacted(uri, shown):
    assert platform.redact_uri(uri) == shown
    assert platform.redact(f"failed at {uri}/api", uri) == f"failed at {shown}/api"


def test_params_are_text_mlflow_accepts():
    params = platform.mlflow_params({
        "train": {"epochs": 3, "learning_rate": 0.001, "shuffle": True},
        "data": {"train_limit": None},
        "model": {"layers": [{"type": "Dense", "units": 10}], "input_shape": [28, 28, 1]},
        "note": "x" * 7000,
    })
    assert params["train.epochs"] == "3" and params["train.shuffle"] == "true"
    assert params["data.train_limit"] == "null"
    assert params["model.layers"] == '[{"type":"Dense","units":10}]'
    assert params["model.input_shape"] == "[28,28,1]"
    assert len(params["note"]) == platform.MAX_PARAM_VALUE and params["note"].endswith("record.json)")


def test_help_lists_the_options_without_importing_mlflow():
    import subprocess
    import sys

    code = ("import sys\nfrom click.testing import CliRunner\nfrom mnistexp.cli import cli\n"
            "out = CliRunner().invoke(cli, ['run', '--help']).output\n"
            "assert '--mlflow-tracking-uri' in out and '--mlflow-experiment' in out, out\n"
            "assert 'mlflow' not in sys.modules and 'tensorflow' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------- the platform contract


class TestMlflowContract(PlatformContract):
    platform = "mlflow"

    @pytest.fixture
    def sdk_modules(self):
        return ["mlflow"]

    @pytest.fixture
    def launch(self, tmp_path, tiny_data_dir):
        count = iter(range(1000))

        def make(overrides, data_dir=tiny_data_dir):
            folder = tmp_path / f"launch-{next(count)}"
            folder.mkdir()
            uri = f"sqlite:///{(folder / 'mlflow.db').as_posix()}"
            argv = run_argv(self.platform, data_dir, folder / "results", overrides, "--mlflow-tracking-uri", uri)
            # cwd: anything MLflow writes by default lands in the test's folder, not the repo
            return Launch(argv, folder / "results", cwd=folder)

        return make
