"""The comet platform, offline: real comet_ml SDK, no network.

The offline runs write Comet's own archive format (experiment.json + messages.json + the
uploaded files); the tests open it and check it holds what the run record holds. Server
failures are real HTTP failures against 127.0.0.1 (a closed port, or a tiny server that
answers 401 the way Comet does for a bad key), with the SDK's retries turned off so they
are fast.
"""

from __future__ import annotations

import contextlib
import csv
import http.server
import json
import logging
import socket
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import TINY
from tests.contract import PlatformContract, run_here_launcher

pytest.importorskip("comet_ml")

from mnistexp.cli import cli  # noqa: E402
from mnistexp.experiment.record import read_record  # noqa: E402

FAKE_KEY = "ZxQ7hK2mP9wL4vB8nR3tY6uJ1c"  # looks like a Comet key; never valid anywhere
FAST_FAIL = {  # the SDK's own settings: no retries, so an unreachable server fails at once
    "COMET_HTTP_SESSION_RETRY_TOTAL": "0",
    "COMET_GET_OR_ADD_EXPERIMENT_RETRY_TOTAL": "0",
    "COMET_GET_OR_ADD_EXPERIMENT_RETRY_STATUS": "0",
    "COMET_GET_OR_ADD_EXPERIMENT_RETRY_CONNECT": "0",
    "COMET_TIMEOUT_HTTP": "3",
}


def isolate_comet(mp: pytest.MonkeyPatch, home: Path) -> None:
    """No key, no config file: only what a test sets reaches comet_ml."""
    home.mkdir(parents=True, exist_ok=True)
    for name in ("COMET_API_KEY", "COMET_CONFIG", "COMET_INI", "COMET_URL_OVERRIDE", "COMET_WORKSPACE",
                 "COMET_PROJECT_NAME", "COMET_MODE", "COMET_OFFLINE_DIRECTORY"):
        mp.delenv(name, raising=False)
    mp.setenv("HOME", str(home))
    mp.chdir(home)  # Comet also reads ./.comet.config and ./.env
    for name, value in FAST_FAIL.items():
        mp.setenv(name, value)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/clientlib/"


@contextlib.contextmanager
def rejecting_server(accept_key: bool = False):
    """A local HTTP server answering every request like Comet answers an invalid key.

    accept_key: the key check (account details) succeeds, everything else fails with 500,
    like a server that breaks down just as the experiment is created.
    """

    class Handler(http.server.BaseHTTPRequestHandler):
        def _reject(self):
            if accept_key:
                status, reply = (200, {"userName": "u"}) if "account-details" in self.path else (500, {"msg": "down"})
            else:
                status, reply = 401, {"msg": "Invalid API key", "code": 401}
            body = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _reject

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/clientlib/"
    finally:
        server.shutdown()
        server.server_close()


def run_cli(args, data_dir, results_dir, extra=()):
    result = CliRunner().invoke(cli, [
        "run", "--platform", *args, "--data-dir", str(data_dir), "--results-dir", str(results_dir),
        "-q", *[f"--set={item}" for item in (*TINY, *extra)],
    ])
    return result


def only_run_dir(results_dir: Path) -> Path:
    runs = [p for p in results_dir.iterdir() if (p / "record.json").is_file()]
    assert len(runs) == 1, runs
    return runs[0]


def read_archive(path: Path) -> dict:
    """Comet's offline archive: metadata, messages (one JSON per line) and the logged files."""
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    messages = [json.loads(line) for line in files["messages.json"].decode().splitlines() if line.strip()]
    params, metrics, uploads, others = {}, [], [], {}
    for message in messages:
        payload = message["payload"]
        if message["type"] == "parameter_msg":
            param = payload.get("param") or payload.get("params")
            if param["source"] == "manual":
                params[param["paramName"]] = param["paramValue"]
        elif message["type"] == "metric_msg":
            metric = payload["metric"]
            metrics.append((metric["metricName"], metric["step"], metric["epoch"], metric["metricValue"]))
        elif message["type"] == "file_upload":
            extra = payload["additional_params"]
            uploads.append({"type": payload["upload_type"], "name": extra.get("fileName"),
                            "group": extra.get("groupingName"), "data": files[payload["file_path"]]})
        elif message["type"] == "log_other":
            others[payload["key"]] = payload["value"]
    return {"meta": json.loads(files["experiment.json"]), "params": params, "metrics": metrics,
            "uploads": uploads, "others": others, "files": files}


def flat(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        name = f"{prefix}|{key}" if prefix else key
        out.update(flat(value, name) if isinstance(value, dict) else {name: value})
    return out


@pytest.fixture(scope="module")
def offline_run(tiny_data_dir, tmp_path_factory):
    """One 2-epoch comet run without any key: the offline path a new user gets."""
    base = tmp_path_factory.mktemp("comet-offline")
    with pytest.MonkeyPatch.context() as mp:
        isolate_comet(mp, base / "home")
        result = run_cli(["comet"], tiny_data_dir, base / "results", ["train.epochs=2"])
    assert result.exit_code == 0, result.output
    run_dir = only_run_dir(base / "results")
    record = read_record(run_dir)
    archive = run_dir / record["platform_info"]["offline_archive"]
    return {"run_dir": run_dir, "record": record, "output": result.output, "archive": archive,
            "contents": read_archive(archive), "base": base}


def test_help_imports_neither_comet_ml_nor_tensorflow():
    code = ("import sys; from click.testing import CliRunner; from mnistexp.cli import cli; "
            "out = CliRunner().invoke(cli, ['run', '--help']).output; "
            "assert '--comet-project' in out and '--offline' in out, out; "
            "print('comet_ml' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_offline_archive_holds_what_the_record_holds(offline_run):
    record, contents = offline_run["record"], offline_run["contents"]
    run_dir = offline_run["run_dir"]
    assert record["status"] == "completed"
    assert offline_run["archive"].parent == run_dir / "comet"

    # parameters: every leaf of the resolved config, same value; the layer list (a list of
    # dicts, which Comet refuses as a parameter) as compact JSON text
    config_leaves = flat(record["experiment"]["config"])
    for name, value in config_leaves.items():
        logged = contents["params"][name]
        assert (json.loads(logged) if name == "model|layers" else logged) == value, name
    assert contents["params"]["train|epochs"] == 2
    assert " " not in contents["params"]["model|layers"]
    # the optimizer's settings, named as Comet's Keras integration names them, and the parameter count
    assert contents["params"]["Adam_learning_rate"] == pytest.approx(record["experiment"]["config"]["train"]["learning_rate"])
    assert {"Adam_beta_1", "Adam_beta_2", "Adam_epsilon", "Adam_name"} <= set(contents["params"])
    assert contents["others"]["trainable_params"] == record["model"]["params"] > 0

    # per-epoch train/val metrics, one step per epoch, same values as the record
    assert len(record["history"]) == 2
    for row in record["history"]:
        for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
            logged = [v for (n, step, epoch, v) in contents["metrics"] if n == name and step == row["epoch"]]
            assert logged == [pytest.approx(row[name])], (name, row["epoch"])
            assert all(epoch == step for (n, step, epoch, _) in contents["metrics"] if n == name)
        # the epoch's duration, under the record's name and Comet's Keras name
        for name in ("epoch_time_s", "epoch_duration"):
            logged = [v for (n, step, _, v) in contents["metrics"] if n == name and step == row["epoch"]]
            assert logged == [pytest.approx(row["epoch_time_s"])], (name, row["epoch"])
    # final test metrics
    for name in ("test_accuracy", "test_loss"):
        logged = [v for (n, _, _, v) in contents["metrics"] if n == name]
        assert logged == [pytest.approx(record["metrics"][name])]

    # the trained model as a model asset, byte for byte the run's model.keras
    models = [u for u in contents["uploads"] if u["type"] == "model-element"]
    assert [m["name"] for m in models] == ["model.keras"]
    assert models[0]["data"] == (run_dir / "model.keras").read_bytes()

    # Comet's confusion matrix equals confusion_matrix.csv
    matrices = [json.loads(u["data"]) for u in contents["uploads"] if u["type"] == "confusion-matrix"]
    assert len(matrices) == 1
    with open(run_dir / "confusion_matrix.csv", newline="") as f:
        rows = list(csv.reader(f))[1:]
    assert matrices[0]["matrix"] == [[int(v) for v in row[1:]] for row in rows]
    assert sum(map(sum, matrices[0]["matrix"])) == record["data"]["n_test"]

    # learning-curve and confusion PNGs as images; tags and the experiment key
    images = [u["data"] for u in contents["uploads"] if u["type"] == "visualization"]
    assert (run_dir / "learning_curves.png").read_bytes() in images
    fingerprint = record["experiment"]["fingerprint"]
    assert f"fingerprint:{fingerprint}" in contents["meta"]["tags"]
    assert "platform:comet" in contents["meta"]["tags"]
    assert contents["meta"]["offline_id"] == record["platform_info"]["experiment_key"]
    assert contents["others"]["mnistexp.fingerprint"] == fingerprint
    assert contents["others"]["mnistexp.run_id"] == record["run_id"]


def test_offline_run_says_how_to_upload_and_keeps_sdk_noise_out(offline_run):
    output, run_dir, record = offline_run["output"], offline_run["run_dir"], offline_run["record"]
    assert f"mnistexp upload {run_dir}" in output
    assert str(offline_run["archive"]) in output
    assert "COMET" not in output  # the SDK's console lines go to comet/comet-sdk.log
    info = record["platform_info"]
    assert info["comet_mode"] == "offline" and info["offline_reason"] == "no API key"
    assert record["tags"]["comet_mode"] == "offline"
    assert "finish_error" not in info and "comet_errors" not in info


def test_unreachable_server_falls_back_offline_and_key_is_never_written(
        tiny_data_dir, tmp_path, monkeypatch):
    isolate_comet(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("COMET_API_KEY", FAKE_KEY)
    monkeypatch.setenv("COMET_URL_OVERRIDE", closed_port_url())
    result = run_cli(["comet"], tiny_data_dir, tmp_path / "results")
    assert result.exit_code == 0, result.output
    run_dir = only_run_dir(tmp_path / "results")
    record = read_record(run_dir)
    assert record["status"] == "completed" and record["metrics"]["test_accuracy"] is not None
    info = record["platform_info"]
    assert info["comet_mode"] == "offline"
    assert "cannot reach the Comet server" in info["fallback_reason"]
    assert "logged offline instead" in result.output and f"mnistexp upload {run_dir}" in result.output
    assert (run_dir / info["offline_archive"]).is_file()

    # the key is nowhere: not in any file of the run folder, not inside the archive, not printed
    checked = 0
    for path in run_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert FAKE_KEY.encode() not in data, path
            checked += 1
            if path.suffix == ".zip":
                with zipfile.ZipFile(path) as archive:
                    for name in archive.namelist():
                        assert FAKE_KEY.encode() not in archive.read(name), (path, name)
    assert checked >= 8 and (run_dir / "comet" / "comet-sdk.log").is_file()
    assert FAKE_KEY not in result.output


def test_server_failing_at_experiment_creation_falls_back_offline(tiny_data_dir, tmp_path, monkeypatch):
    isolate_comet(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("COMET_API_KEY", FAKE_KEY)
    with rejecting_server(accept_key=True) as url:
        monkeypatch.setenv("COMET_URL_OVERRIDE", url)
        result = run_cli(["comet"], tiny_data_dir, tmp_path / "results")
    assert result.exit_code == 0, result.output
    run_dir = only_run_dir(tmp_path / "results")
    record = read_record(run_dir)
    assert record["status"] == "completed" and record["tags"]["comet_mode"] == "offline"
    assert "status code 500" in record["platform_info"]["fallback_reason"]
    contents = read_archive(run_dir / record["platform_info"]["offline_archive"])
    assert [v for (n, _, _, v) in contents["metrics"] if n == "test_accuracy"] == [
        pytest.approx(record["metrics"]["test_accuracy"])]
    assert FAKE_KEY not in result.output and FAKE_KEY not in (run_dir / "record.json").read_text()


def test_rejected_key_is_one_error_line_before_training(tiny_data_dir, tmp_path, monkeypatch):
    isolate_comet(monkeypatch, tmp_path / "home")
    # the key from Comet's own config file, as `comet login` writes it
    (tmp_path / "home" / ".comet.config").write_text(f"[comet]\napi_key = {FAKE_KEY}\n")
    with rejecting_server() as url:
        monkeypatch.setenv("COMET_URL_OVERRIDE", url)
        result = run_cli(["comet"], tiny_data_dir, tmp_path / "results")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: Comet at http://127.0.0.1:")
    assert "rejected the API key" in lines[0] and "COMET_API_KEY" in lines[0] and "--offline" in lines[0]
    assert FAKE_KEY not in result.output
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_missing_comet_ml_is_one_error_line(tiny_data_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "comet_ml", None)  # what `import comet_ml` sees when absent
    result = run_cli(["comet"], tiny_data_dir, tmp_path / "results")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: the comet platform needs the comet_ml package; "
        "install it with: pip install 'mnistexp[comet]' (or pip install comet-ml)"
    ]
    assert not (tmp_path / "results").exists()


def test_offline_flag_wins_over_a_key(tiny_data_dir, tmp_path, monkeypatch):
    isolate_comet(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("COMET_API_KEY", FAKE_KEY)
    monkeypatch.setenv("COMET_URL_OVERRIDE", closed_port_url())
    result = run_cli(["comet", "--offline", "--comet-project", "digits", "--comet-workspace", "lab"],
                     tiny_data_dir, tmp_path / "results")
    assert result.exit_code == 0, result.output
    record = read_record(only_run_dir(tmp_path / "results"))
    info = record["platform_info"]
    assert info["offline_reason"] == "--offline given" and "fallback_reason" not in info
    meta = read_archive(only_run_dir(tmp_path / "results") / info["offline_archive"])["meta"]
    assert (meta["workspace"], meta["project_name"]) == ("lab", "digits")


def test_upload_errors_are_one_line_and_leave_the_record_alone(offline_run, tmp_path, monkeypatch):
    run_dir = offline_run["run_dir"]
    before = (run_dir / "record.json").read_bytes()
    isolate_comet(monkeypatch, tmp_path / "home")
    runner = CliRunner()

    result = runner.invoke(cli, ["upload", str(run_dir)])
    assert result.exit_code == 1
    assert result.output.strip() == (f"Error: no Comet API key: set COMET_API_KEY (or run `comet login`), "
                                     f"then run `mnistexp upload {run_dir}` again")

    monkeypatch.setenv("COMET_API_KEY", FAKE_KEY)
    monkeypatch.setenv("COMET_URL_OVERRIDE", closed_port_url())
    result = runner.invoke(cli, ["upload", str(run_dir)])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "cannot reach the Comet server" in result.output and str(offline_run["archive"]) in result.output

    with rejecting_server() as url:
        monkeypatch.setenv("COMET_URL_OVERRIDE", url)
        result = runner.invoke(cli, ["upload", str(run_dir)])
    assert result.exit_code == 1 and "rejected the API key" in result.output
    assert FAKE_KEY not in result.output
    assert (run_dir / "record.json").read_bytes() == before


def test_upload_refuses_a_local_run(tiny_data_dir, tmp_path):
    result = run_cli(["local"], tiny_data_dir, tmp_path / "results")
    assert result.exit_code == 0, result.output
    run_dir = only_run_dir(tmp_path / "results")
    result = CliRunner().invoke(cli, ["upload", str(run_dir)])
    assert result.exit_code == 1
    # one line naming the run and its platform (the wording is the upload command's)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {run_dir}") and "local" in lines[0]


def test_local_and_comet_runs_of_one_config_are_one_experiment(offline_run, tiny_data_dir):
    results = offline_run["base"] / "results"
    result = run_cli(["local"], tiny_data_dir, results, ["train.epochs=2"])
    assert result.exit_code == 0, result.output
    records = {}
    for path in results.glob("*/record.json"):
        record = read_record(path)
        records[record["platform"]] = record
    assert set(records) == {"local", "comet"}
    assert records["local"]["experiment"]["fingerprint"] == records["comet"]["experiment"]["fingerprint"]

    if Path(__file__).resolve().parent.parent.joinpath("mnistexp", "commands", "compare.py").is_file():
        out = CliRunner().invoke(cli, ["compare", str(results), "--format", "json"])
        assert out.exit_code == 0, out.output
        report = json.loads(out.output)
        assert report["n_groups"] == 1
        group = report["groups"][0]
        assert group["fingerprint"] == records["comet"]["experiment"]["fingerprint"]
        assert sorted(row["value"] for row in group["rows"]) == ["comet", "local"]


# ---------------------------------------------------------------- Comet's own upload checks
UNREACHABLE = "https://comet.invalid/clientlib/"  # never resolved: the recorder answers first


class CometRecorder:
    """Stands in for Comet's servers below requests (HTTPAdapter.send, under every SDK session):
    each request the SDK makes is recorded, JSON bodies decoded (gzip too, as batches are sent),
    and answered with one reply that carries what any endpoint the uploader calls reads back
    (run id, heartbeat intervals, backend version)."""

    REPLY = {"runId": "run-1", "projectId": "project-1", "experimentKey": "key", "msg": "ok", "code": 200,
             "is_alive_beat_duration_millis": 60000, "gpu_monitor_interval_millis": 60000,
             "cpu_monitor_interval_millis": 60000, "version": "3.50.0", "userName": "tester"}

    def __init__(self):
        self.requests: list[dict] = []

    def send(self, request, **kwargs):
        import gzip

        import requests

        body, payload = request.body, None
        if isinstance(body, str):
            body = body.encode()
        if isinstance(body, bytes):
            if body[:2] == b"\x1f\x8b":
                body = gzip.decompress(body)
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
        path = requests.utils.urlparse(request.url).path
        self.requests.append({"method": request.method, "path": path, "payload": payload})
        response = requests.Response()
        response.status_code, response.url, response.request = 200, request.url, request
        response._content = json.dumps(self.REPLY).encode()
        response.headers["Content-Type"] = "application/json"
        return response

    def to(self, suffix: str) -> list:
        return [r["payload"] for r in self.requests if r["path"].endswith(suffix)]

    def flagged(self) -> list[str]:
        """The errors the uploader reported to the experiment (what Comet shows as its error)."""
        return [p["error"] for p in self.to("/write/experiment/update-status") if p and p.get("error")]


@pytest.fixture
def comet_server(tmp_path, monkeypatch):
    import requests

    isolate_comet(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("COMET_URL_OVERRIDE", UNREACHABLE)
    recorder = CometRecorder()
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send",
                        lambda adapter, request, **kwargs: recorder.send(request))
    return recorder


class Warnings(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def strict_upload(archive: Path) -> list[str]:
    """comet_ml's offline sender (the code behind `comet upload`) over an archive, with its
    strict message checks on; returns the warnings it logged."""
    import shutil

    import comet_ml.offline as offline

    caught = Warnings()
    logger = logging.getLogger("comet_ml")
    logger.addHandler(caught)
    folder = offline.unzip_offline_archive(str(archive))
    try:
        sender = offline.OfflineSender(api_key=FAKE_KEY, offline_dir=folder, raise_validation_error_for_tests=True)
        sender.send()
        sender.close()
    finally:
        logger.removeHandler(caught)
        shutil.rmtree(folder, ignore_errors=True)
    return caught.lines


# What the adapter used to write (issue 14): a list of dicts as a parameter, bools as system info.
OLD_STYLE_MESSAGES = [
    {"type": "parameter_msg", "payload": {"local_timestamp": 1, "message_id": 900, "params": {
        "paramName": "model|layers", "paramValue": [{"type": "Dense", "units": 10}], "source": "manual",
        "step": None}}},
    {"type": "system_info", "payload": {"message_id": 901, "system_info": {"key": "runtime.deterministic",
                                                                          "value": False}}},
]


def with_messages(archive: Path, dest: Path, extra: list[dict]) -> Path:
    """A copy of an offline archive with more lines in its messages.json."""
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(dest, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "messages.json":
                data = data.rstrip(b"\n") + b"\n" + b"".join(json.dumps(m).encode() + b"\n" for m in extra)
            target.writestr(name, data)
    return dest


def test_comets_own_sender_accepts_every_message_of_a_real_archive(offline_run, comet_server):
    record = offline_run["record"]
    warnings = strict_upload(offline_run["archive"])
    assert [w for w in warnings if "Error processing line" in w or "nvalid" in w] == []
    assert comet_server.flagged() == []

    # ... and what reached the (recorded) server is what the run logged
    params = {p["parameterName"]: p["parameterValue"]
              for batch in comet_server.to("/batch/logger/experiment/parameter") for p in batch["values"]}
    config = record["experiment"]["config"]
    assert json.loads(params["model|layers"]) == config["model"]["layers"]
    assert params["train|learning_rate"] == config["train"]["learning_rate"]
    assert params["Adam_learning_rate"] == pytest.approx(config["train"]["learning_rate"])
    system = {i["key"]: i["value"] for p in comet_server.to("/write/experiment/system-details")
              for i in p["logAdditionalSystemInfoList"]}
    assert system["runtime.deterministic"] in ("true", "false")
    assert system["runtime.jit_compile"] in ("true", "false")
    assert system["keras"] == record["environment"]["keras"]
    others = {p["key"]: p["value"] for p in comet_server.to("/write/experiment/log-other")}
    assert others["trainable_params"] == record["model"]["params"]
    assert others["mnistexp.fingerprint"] == record["experiment"]["fingerprint"]
    metrics = [m["metricName"] for batch in comet_server.to("/batch/logger/experiment/metric")
               for m in batch["values"]]
    assert metrics.count("epoch_duration") == 2 and metrics.count("val_accuracy") == 2


def test_comets_own_sender_still_rejects_old_style_messages(offline_run, comet_server, tmp_path):
    """The check above can fail: the messages the adapter used to write are rejected."""
    archive = with_messages(offline_run["archive"], tmp_path / "old.zip", OLD_STYLE_MESSAGES)
    warnings = strict_upload(archive)
    assert len([w for w in warnings if w.startswith("Error processing line")]) == 2
    assert len(comet_server.flagged()) == 2
    assert all("Unexpected error detected while processing messages" in e for e in comet_server.flagged())


def _run_copy(offline_run, tmp_path) -> Path:
    import shutil

    return Path(shutil.copytree(offline_run["run_dir"], tmp_path / "run"))


def test_upload_sends_a_clean_archive_and_records_it(offline_run, comet_server, tmp_path, monkeypatch):
    run_dir = _run_copy(offline_run, tmp_path)
    monkeypatch.setenv("COMET_API_KEY", FAKE_KEY)
    result = CliRunner().invoke(cli, ["upload", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"uploaded {offline_run['archive'].name} to Comet")
    assert comet_server.flagged() == [] and comet_server.to("/logger/add/run")
    info = read_record(run_dir)["platform_info"]
    assert info["uploaded_at"] and "upload_rejected" not in info
    assert FAKE_KEY not in (run_dir / "record.json").read_text()


def test_upload_of_rejected_messages_is_a_failure_naming_them(offline_run, comet_server, tmp_path, monkeypatch):
    run_dir = _run_copy(offline_run, tmp_path)
    archive = run_dir / read_record(run_dir)["platform_info"]["offline_archive"]
    with_messages(offline_run["archive"], archive, OLD_STYLE_MESSAGES)
    monkeypatch.setenv("COMET_API_KEY", FAKE_KEY)
    result = CliRunner().invoke(cli, ["upload", str(run_dir)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: Comet rejected 2 message(s) of {archive.name}")
    assert "parameter model|layers" in lines[0] and "system info runtime.deterministic" in lines[0]
    assert "Traceback" not in result.output and FAKE_KEY not in result.output
    assert len(comet_server.flagged()) == 2  # what Comet would show on the experiment
    info = read_record(run_dir)["platform_info"]
    assert info["upload_rejected"] == ["parameter model|layers", "system info runtime.deterministic"]


@pytest.mark.parametrize("value", [
    [{"type": "Conv2D", "kernel_size": [3, 3]}], [[28, 28], [1]], [{"a": {"b": None}}], (1, 2), True, None,
    float("1e-5"), "text", ["a", 1, None],
])
def test_any_config_value_is_one_comet_accepts(value, comet_server, tmp_path):
    """Values other configs may hold, logged as the adapter logs them, pass the strict sender."""
    from mnistexp.adapters.comet import (
        EXPERIMENT_FLAGS,
        comet_parameters,
        import_sdk,
        metric_value,
        system_info_value,
    )

    sdk = import_sdk()
    experiment = sdk.OfflineExperiment(project_name="p", offline_directory=str(tmp_path), **EXPERIMENT_FLAGS)
    experiment.log_parameters(comet_parameters({"section": {"key": value}}))
    experiment.log_system_info("key", system_info_value(value))
    experiment.log_others({"key": system_info_value(value)})
    if metric_value(value):
        experiment.log_metrics({"key": value}, step=1)
    experiment.end()
    archive = next(tmp_path.glob("*.zip"))
    warnings = strict_upload(archive)
    assert [w for w in warnings if "Error processing line" in w] == [] and comet_server.flagged() == []
    sent = {p["parameterName"]: p["parameterValue"]
            for batch in comet_server.to("/batch/logger/experiment/parameter") for p in batch["values"]}
    logged = sent["section|key"]
    assert (json.loads(logged) if isinstance(logged, str) and value != "text" else logged) == (
        list(value) if isinstance(value, tuple) else value)


class TestCometContract(PlatformContract):
    """`run --platform comet --offline` in a subprocess: the offline archive path, with a planted
    COMET_API_KEY in the environment that must reach no file."""

    platform = "comet"

    @pytest.fixture
    def sdk_modules(self):
        return ["comet_ml"]

    @pytest.fixture
    def launch(self, tmp_path, tiny_data_dir):
        home = tmp_path / "home"
        home.mkdir()
        return run_here_launcher(self.platform, tmp_path, tiny_data_dir, "--offline",
                                 env={"HOME": str(home), **FAST_FAIL}, cwd=home)
