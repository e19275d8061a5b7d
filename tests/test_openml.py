"""The OpenML adapter, offline: a real openml-python cache written in tmp_path.

The cache holds what openml-python itself stores after downloading a task: the data set's
description.xml, features.xml and dataset.arff, and the task's task.xml and
datasplits.arff (a 2-fold cross-validation), made from the same tiny synthetic digits as
the `tiny_data_dir` fixture (its 320 training images, then its 80 test images). The
server is pointed at a closed local port, so any network call fails at once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import arff
import numpy as np
import pytest
from click.testing import CliRunner

from mnistexp.cli import cli
from mnistexp.experiment.data import load_dataset
from mnistexp.experiment.record import experiment_fingerprint, read_record

from .conftest import TINY, synthetic_digits
from .contract import PlatformContract, run_here_launcher

openml = pytest.importorskip("openml")

DID, TID = 90554, 93573  # the tiny image data set and its 2-fold task
TABLE_DID, TABLE_TID = 90061, 90059  # a 5-column table (not images) and its task
CLOSED_SERVER = "http://127.0.0.1:9/api/v1/xml"  # nothing listens: connection refused


def _tiny_rows():
    x_train, y_train = synthetic_digits(320, seed=1)  # as conftest.write_idx_dir
    x_test, y_test = synthetic_digits(80, seed=2)
    return np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])


def _features_xml(columns) -> str:
    parts = ['<oml:data_features xmlns:oml="http://openml.org/openml">']
    for index, (name, kind, values, target) in enumerate(columns):
        nominal = "".join(f"<oml:nominal_value>{v}</oml:nominal_value>" for v in values or [])
        parts.append(
            f"<oml:feature><oml:index>{index}</oml:index><oml:name>{name}</oml:name>"
            f"<oml:data_type>{kind}</oml:data_type>{nominal}"
            f"<oml:is_target>{str(target).lower()}</oml:is_target><oml:is_ignore>false</oml:is_ignore>"
            "<oml:is_row_identifier>false</oml:is_row_identifier>"
            "<oml:number_of_missing_values>0</oml:number_of_missing_values></oml:feature>"
        )
    parts.append("</oml:data_features>")
    return "\n".join(parts)


def _write_dataset(cache: Path, did: int, name: str, table: np.ndarray, labels: np.ndarray, columns: list[str]):
    folder = cache / "datasets" / str(did)
    folder.mkdir(parents=True)
    classes = [str(i) for i in range(10)]
    (folder / "description.xml").write_text(
        f'<oml:data_set_description xmlns:oml="http://openml.org/openml"><oml:id>{did}</oml:id>'
        f"<oml:name>{name}</oml:name><oml:version>1</oml:version><oml:description>tiny test data"
        "</oml:description><oml:format>ARFF</oml:format>"
        f"<oml:url>http://127.0.0.1:9/data/download/{did}/{name}.arff</oml:url>"
        "<oml:default_target_attribute>class</oml:default_target_attribute>"
        "<oml:visibility>public</oml:visibility><oml:status>active</oml:status>"
        "</oml:data_set_description>\n"
    )
    spec = [(c, "numeric", None, False) for c in columns] + [("class", "nominal", classes, True)]
    (folder / "features.xml").write_text(_features_xml(spec))
    rows = [[int(v) for v in row] + [str(int(label))] for row, label in zip(table, labels, strict=True)]
    attributes = [(c, "NUMERIC") for c in columns] + [("class", classes)]
    (folder / "dataset.arff").write_text(arff.dumps({"relation": name, "attributes": attributes, "data": rows}))


def _write_task(cache: Path, tid: int, did: int, splits: list[tuple[str, int, int, int]]):
    folder = cache / "tasks" / str(tid)
    folder.mkdir(parents=True)
    (folder / "task.xml").write_text(
        f'<oml:task xmlns:oml="http://openml.org/openml"><oml:task_id>{tid}</oml:task_id>'
        "<oml:task_type_id>1</oml:task_type_id><oml:task_type>Supervised Classification</oml:task_type>"
        f'<oml:input name="source_data"><oml:data_set><oml:data_set_id>{did}</oml:data_set_id>'
        "<oml:target_feature>class</oml:target_feature></oml:data_set></oml:input>"
        '<oml:input name="estimation_procedure"><oml:estimation_procedure><oml:type>crossvalidation</oml:type>'
        f"<oml:data_splits_url>http://127.0.0.1:9/api_splits/get/{tid}/Task_{tid}_splits.arff</oml:data_splits_url>"
        '<oml:parameter name="number_repeats">1</oml:parameter><oml:parameter name="number_folds">2</oml:parameter>'
        '<oml:parameter name="percentage"></oml:parameter><oml:parameter name="stratified_sampling">true</oml:parameter>'
        "</oml:estimation_procedure></oml:input>"
        '<oml:input name="evaluation_measures"><oml:evaluation_measures>'
        "<oml:evaluation_measure>predictive_accuracy</oml:evaluation_measure></oml:evaluation_measures></oml:input>"
        "</oml:task>\n"
    )
    (folder / "datasplits.arff").write_text(arff.dumps({
        "relation": f"task_{tid}_splits",
        "attributes": [("type", ["TRAIN", "TEST"]), ("rowid", "NUMERIC"), ("repeat", "NUMERIC"), ("fold", "NUMERIC")],
        "data": [list(s) for s in splits],
    }))


def _two_fold(n: int, seed: int = 7):
    """A 2-fold CV split as OpenML writes it; returns the ARFF rows and {fold: test row ids}."""
    order = np.random.default_rng(seed).permutation(n)
    halves = {0: np.sort(order[: n // 2]), 1: np.sort(order[n // 2:])}
    rows = []
    for fold, test in halves.items():
        train = halves[1 - fold]
        rows += [("TRAIN", int(r), 0, fold) for r in train] + [("TEST", int(r), 0, fold) for r in test]
    return rows, halves


@pytest.fixture
def oml_cache(tmp_path, monkeypatch):
    """openml-python configured offline, with the tiny task in its cache; returns test splits."""
    monkeypatch.setattr(openml.config, "server", CLOSED_SERVER)
    monkeypatch.setattr(openml.config, "apikey", "")
    monkeypatch.setattr(openml.config, "_root_cache_directory", tmp_path / "openml-cache")
    monkeypatch.setattr(openml.config, "retry_policy", "robot")
    monkeypatch.setattr(openml.config, "connection_n_retries", 1)
    cache = Path(openml.config.get_cache_directory())
    images, labels = _tiny_rows()
    pixels = [f"pixel{i}" for i in range(1, 785)]
    _write_dataset(cache, DID, "mnist_784_tiny", images.reshape(len(images), -1), labels, pixels)
    splits, halves = _two_fold(len(labels))
    _write_task(cache, TID, DID, splits)
    table = np.random.default_rng(3).integers(0, 9, size=(20, 5))
    _write_dataset(cache, TABLE_DID, "table", table, np.arange(20) % 10, [f"x{i}" for i in range(5)])
    _write_task(cache, TABLE_TID, TABLE_DID, _two_fold(20)[0])
    return {"cache": cache, "test_rows": halves, "labels": labels}


def _run(tmp_path, *args, settings=TINY):
    sets = [a for s in settings for a in ("--set", s)]
    result = CliRunner().invoke(cli, ["run", "--platform", "openml", "--results-dir", str(tmp_path / "results"),
                                      "-q", *sets, *args])
    return result


def _only_run_dir(tmp_path) -> Path:
    runs = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    assert len(runs) == 1
    return runs[0]


def test_adapter_module_does_not_import_openml():
    code = "import sys, mnistexp.adapters.openml; print('openml' in sys.modules, 'tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_openml_run_end_to_end(tmp_path, oml_cache):
    result = _run(tmp_path, "--task-id", str(TID))
    assert result.exit_code == 0, result.output
    run_dir = _only_run_dir(tmp_path)
    record = read_record(run_dir)
    assert record["status"] == "completed" and record["platform"] == "openml"
    assert record["data"]["test_split"] == "folds"
    folds = record["folds"]
    assert [(f["repeat"], f["fold"]) for f in folds] == [(0, 0), (0, 1)]
    assert [f["n_test"] for f in folds] == [200, 200]
    accuracies = [f["test_accuracy"] for f in folds]
    assert record["metrics"]["test_accuracy"] == pytest.approx(np.mean(accuracies))
    assert record["metrics"]["test_accuracy_std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert record["metrics"]["test_loss"] == pytest.approx(np.mean([f["test_loss"] for f in folds]))
    assert {row["fold"] for row in record["history"]} == {0, 1}
    info = record["platform_info"]
    assert info["task_id"] == TID and info["dataset_id"] == DID and info["folds_total"] == 2
    assert info["publishable"] is True and "finish_error" not in info
    assert record["artifacts"]["openml_run"] == "openml_run"
    assert "OpenML run" in result.output and "--publish" in result.output

    # The OpenML run folder reads back with openml-python, and matches the record.
    run = openml.runs.OpenMLRun.from_filesystem(run_dir / "openml_run", expect_model=False)
    assert run.task_id == TID and run.flow.name == "mnistexp.keras.Sequential"
    assert json.loads(run.flow.parameters["train__epochs"]) == 1
    assert json.loads(run.flow.parameters["train__batch_size"]) == 32
    assert "keras==" in run.flow.external_version and "tensorflow==" in run.flow.external_version
    assert run.fold_evaluations["predictive_accuracy"][0] == pytest.approx({0: accuracies[0], 1: accuracies[1]})
    header = arff.load((run_dir / "openml_run" / "predictions.arff").open())
    names = [a[0] for a in header["attributes"]]
    assert names[:6] == ["repeat", "fold", "sample", "row_id", "prediction", "correct"]
    assert names[6:] == [f"confidence.{c}" for c in range(10)]
    labels = oml_cache["labels"]
    for fold, expected in zip((0, 1), accuracies, strict=True):
        lines = [line for line in run.data_content if int(line[1]) == fold]
        row_ids = np.array([int(line[3]) for line in lines])
        assert np.array_equal(np.sort(row_ids), oml_cache["test_rows"][fold])
        truth = np.array([int(line[5]) for line in lines])
        assert np.array_equal(truth, labels[row_ids])
        proba = np.array([line[6:] for line in lines], dtype=float)
        assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-4)
        predicted = np.array([int(line[4]) for line in lines])
        assert np.array_equal(predicted, proba.argmax(axis=1))
        assert np.mean(predicted == truth) == pytest.approx(expected)
    confusion = np.loadtxt(run_dir / "confusion_matrix.csv", delimiter=",", skiprows=1, usecols=range(1, 11))
    assert confusion.sum() == 400


def test_data_dir_takes_local_images_and_task_folds(tmp_path, oml_cache, tiny_data_dir):
    result = _run(tmp_path, "--task-id", str(TID), "--folds", "1", "--data-dir", str(tiny_data_dir))
    assert result.exit_code == 0, result.output
    record = read_record(_only_run_dir(tmp_path))
    assert [f["fold"] for f in record["folds"]] == [0]
    assert record["metrics"]["test_accuracy"] == record["folds"][0]["test_accuracy"]
    assert record["metrics"]["test_accuracy_std"] is None
    assert record["platform_info"]["publishable"] is False
    assert "1 of 2 folds" in record["platform_info"]["not_publishable_reason"]
    assert "not publishable" in result.output
    # Same images as the local IDX files -> the same fingerprint as a local run of this config.
    local = load_dataset(tiny_data_dir, verify=True)
    assert record["data"]["checksums"] == local.checksums
    assert record["experiment"]["fingerprint"] == experiment_fingerprint(record["experiment"]["config"], local.checksums)
    run = openml.runs.OpenMLRun.from_filesystem(_only_run_dir(tmp_path) / "openml_run", expect_model=False)
    assert len(run.data_content) == 200 and {int(line[1]) for line in run.data_content} == {0}


def test_openml_rows_checksum_like_local_files(oml_cache, tiny_data_dir, monkeypatch):
    from mnistexp.adapters import openml as oml_adapter
    from mnistexp.experiment.config import load_config
    from mnistexp.experiment.data import DataError
    from mnistexp.paths import default_config_path

    # A data set known to be an official train/test pair is checksummed as those parts.
    monkeypatch.setitem(oml_adapter.OPENML_LAYOUTS, DID, ("mnist", 320))
    config = load_config(default_config_path(), ["data.verify=false"])
    adapter = oml_adapter.OpenMLAdapter(task_id=TID)
    dataset = adapter.load_data(config, None)
    assert dataset.checksums == load_dataset(tiny_data_dir, verify=True).checksums
    assert len(dataset.folds) == 2 and dataset.rows[0].shape == (400, 28, 28)
    # ... and verified against the published MNIST checksums when data.verify is on.
    with pytest.raises(DataError, match="wrong checksum"):
        oml_adapter.OpenMLAdapter(task_id=TID).load_data(load_config(default_config_path(), []), None)


def test_task_not_cached_and_no_network(tmp_path, oml_cache, tiny_data_dir):
    result = _run(tmp_path, "--task-id", "424242")
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot reach") and "424242" in result.output
    assert "Traceback" not in result.output
    result = _run(tmp_path, "--task-id", "424242", "--data-dir", str(tiny_data_dir))
    assert result.exit_code == 1 and "Error: --data-dir still needs OpenML task 424242" in result.output
    assert not any((tmp_path / "results").iterdir())


class _UnknownTask(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the OpenML server's answer for an unknown task id
        body = (b'<oml:error xmlns:oml="http://openml.org/openml"><oml:code>151</oml:code>'
                b"<oml:message>Unknown task</oml:message></oml:error>")
        self.send_response(412)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_unknown_task_id(tmp_path, oml_cache, monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), _UnknownTask)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setattr(openml.config, "server", f"http://127.0.0.1:{server.server_port}/api/v1/xml")
        result = _run(tmp_path, "--task-id", "999999999")
    finally:
        server.shutdown()
    assert result.exit_code == 1
    assert "Error: OpenML task 999999999 does not exist" in result.output and "Unknown task" in result.output


def test_task_without_images(tmp_path, oml_cache):
    result = _run(tmp_path, "--task-id", str(TABLE_TID))
    assert result.exit_code == 1
    assert "Error: OpenML task 90059 (data set 90061 'table') has 5 feature columns" in result.output
    assert "28x28" in result.output


@pytest.mark.parametrize("args, message", [
    (["--publish"], "--publish needs an OpenML API key"),
    (["--publish", "--folds", "1"], "--publish needs an OpenML API key"),
    (["--folds", "3"], "has only 2 fold(s)"),
])
def test_bad_options_fail_before_training(tmp_path, oml_cache, args, message):
    result = _run(tmp_path, "--task-id", str(TID), *args)
    assert result.exit_code == 1 and message in result.output, result.output
    assert not any((tmp_path / "results").iterdir())


def test_publish_refuses_partial_runs(tmp_path, oml_cache, monkeypatch):
    monkeypatch.setattr(openml.config, "apikey", "0" * 32)  # a key is configured (never used: fails first)
    result = _run(tmp_path, "--task-id", str(TID), "--publish", "--folds", "1")
    assert result.exit_code == 1
    assert "OpenML accepts only complete runs; leave out --folds" in result.output
    assert not any((tmp_path / "results").iterdir())


def test_openml_options_belong_to_openml(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--platform", "local", "--folds", "2",
                                      "--results-dir", str(tmp_path)])
    assert result.exit_code != 0 and "--folds applies to --platform openml only" in result.output


def test_flow_is_the_same_for_every_config():
    """OpenML identifies a flow by name + external version; a second config must reuse it."""
    from openml.flows.functions import assert_flows_equal

    from mnistexp.adapters.openml import build_flow
    from mnistexp.experiment.config import load_config
    from mnistexp.paths import default_config_path

    env = {"mnistexp": "0.1.0", "keras": "3.0.0", "tensorflow": "2.21.0"}
    canonical = build_flow(load_config(default_config_path(), []), env)
    quick = build_flow(load_config(default_config_path(), ["train.epochs=1", "data.train_limit=2000"]), env)
    assert canonical.parameters["train__epochs"] == "12" and quick.parameters["train__epochs"] == "1"
    assert_flows_equal(canonical, quick, ignore_parameter_values=True)
    assert canonical.external_version == "mnistexp==0.1.0,keras==3.0.0,tensorflow==2.21.0"


# ---------------------------------------------------------------------- the server's own schemas
# Unmodified copies of the XSDs the OpenML server checks uploads against (see their README).
SCHEMAS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "openml"
RUN_XSD, FLOW_XSD = "openml.run.upload.xsd", "openml.implementation.upload.xsd"


def _schema(name: str):
    etree = pytest.importorskip("lxml.etree")
    if not (SCHEMAS / name).is_file():
        pytest.skip(f"the OpenML server schema {SCHEMAS / name} is not here")
    return etree.XMLSchema(etree.parse(str(SCHEMAS / name)))


def _schema_errors(name: str, xml: str | bytes) -> list[str]:
    """What the server's XSD says about this document ([] when it is accepted)."""
    from lxml import etree

    schema = _schema(name)
    document = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    schema.validate(document)
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


class OpenMLRecorder:
    """Stands in for the OpenML server below requests (HTTPAdapter.send): every request
    openml-python makes arrives here as the bytes it would send, is recorded, and is answered
    the way the server answers. Like the server, an upload whose description fails the XSD is
    refused (the server's error codes 163 / 203), so a bad file fails publishing loudly."""

    FLOW_ID, RUN_ID = 4321, 98765

    def __init__(self):
        self.requests: list[dict] = []
        self.flows: dict[int, bytes] = {}  # flow id -> flow.xml as the server would serve it
        self.runs: list[int] = []

    def send(self, request, **kwargs):
        import requests

        url = requests.utils.urlparse(request.url)
        call = url.path.split("/api/v1/xml/", 1)[-1].rstrip("/")
        entry = {"method": request.method, "call": call, "parts": self._parts(request)}
        self.requests.append(entry)
        status, body = self._answer(request.method, call, entry["parts"])
        response = requests.Response()
        response.status_code, response._content, response.url = status, body.encode(), request.url
        response.headers["Content-Type"] = "text/xml"
        response.request, response.encoding = request, "utf-8"
        return response

    @staticmethod
    def _parts(request) -> dict:
        """The form fields and files of a POST, decoded from the wire format."""
        import email.parser
        import email.policy
        from urllib.parse import parse_qsl

        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("multipart/form-data"):
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
            return {part.get_param("name", header="content-disposition"):
                    (part.get_filename(), part.get_payload(decode=True)) for part in message.iter_parts()}
        return {key: (None, value.encode()) for key, value in parse_qsl(body.decode())}

    @staticmethod
    def _error(code: int, message: str, detail: str = "") -> tuple[int, str]:
        return 412, (f'<oml:error xmlns:oml="http://openml.org/openml"><oml:code>{code}</oml:code>'
                     f"<oml:message>{message}</oml:message><oml:additional_information>{detail}"
                     "</oml:additional_information></oml:error>")

    def _answer(self, method: str, call: str, parts: dict) -> tuple[int, str]:
        from xml.sax.saxutils import escape

        oml = 'xmlns:oml="http://openml.org/openml"'
        if method == "POST" and call == "flow/exists":
            name, version = parts["name"][1].decode(), parts["external_version"][1].decode()
            known = [fid for fid, xml in self.flows.items()
                     if f"<oml:name>{escape(name)}</oml:name>".encode() in xml
                     and f"<oml:external_version>{escape(version)}</oml:external_version>".encode() in xml]
            fid = known[0] if known else -1
            return 200, (f"<oml:flow_exists {oml}><oml:exists>{str(fid > 0).lower()}</oml:exists>"
                         f"<oml:id>{fid}</oml:id></oml:flow_exists>")
        if method == "POST" and call == "flow":
            errors = _schema_errors(FLOW_XSD, parts["description"][1])
            if errors:
                return self._error(163, "Problem validating uploaded description file", escape("; ".join(errors)))
            fid = self.FLOW_ID + len(self.flows)
            self.flows[fid] = self._as_served(parts["description"][1], fid)
            return 200, f"<oml:upload_flow {oml}><oml:id>{fid}</oml:id></oml:upload_flow>"
        if method == "GET" and call.startswith("flow/") and int(call.split("/")[1]) in self.flows:
            return 200, self.flows[int(call.split("/")[1])].decode()
        if method == "POST" and call == "run":
            errors = _schema_errors(RUN_XSD, parts["description"][1])
            if errors:
                return self._error(203, "Problem validating uploaded description file", escape("; ".join(errors)))
            run_id = self.RUN_ID + len(self.runs)
            self.runs.append(run_id)
            return 200, f"<oml:upload_run {oml}><oml:run_id>{run_id}</oml:run_id></oml:upload_run>"
        return self._error(999, f"the test server does not know {method} {call}")

    @staticmethod
    def _as_served(flow_xml: bytes, fid: int) -> bytes:
        """The uploaded flow with the fields the server adds (id, uploader, version, date)."""
        import xmltodict

        flow = xmltodict.parse(flow_xml)["oml:flow"]
        served = {"@xmlns:oml": flow.pop("@xmlns:oml"), "oml:id": fid, "oml:uploader": 1}
        for key, value in flow.items():
            served[key] = value
            if key in ("oml:class_name", "oml:name") and "oml:version" not in served:
                served["oml:version"] = 1
        served["oml:upload_date"] = "2026-01-01T00:00:00"
        return xmltodict.unparse({"oml:flow": served}).encode()

    def uploads(self, call: str) -> list[dict]:
        return [r["parts"] for r in self.requests if r["method"] == "POST" and r["call"] == call]


@pytest.fixture
def oml_server(oml_cache, monkeypatch):
    """The recorder in place of the network (the configured server stays the closed local port,
    never reached), and an API key (a fake one: nothing leaves)."""
    import requests

    recorder = OpenMLRecorder()
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send",
                        lambda adapter, request, **kwargs: recorder.send(request))
    monkeypatch.setattr(openml.config, "apikey", "0123456789abcdef0123456789abcdef")
    return recorder


def _with_flow_id(description_xml: str, flow_id: int) -> str:
    """description.xml as written locally has an empty flow_id: the flow's id is only known once
    the flow is published, and openml-python fills it in then (publish_saved_run does)."""
    empty = "<oml:flow_id></oml:flow_id>"
    assert description_xml.count(empty) == 1
    return description_xml.replace(empty, f"<oml:flow_id>{flow_id}</oml:flow_id>")


@pytest.mark.parametrize("args, settings, folds", [
    ([], TINY, "2 of 2 folds"),
    # a partial run, and an experiment name with characters no OpenML tag may hold
    (["--folds", "1"], [*TINY, "name='Études: v2; (draft)'"], "1 of 2 folds"),
])
def test_written_run_folder_passes_the_server_schemas(tmp_path, oml_cache, args, settings, folds):
    result = _run(tmp_path, "--task-id", str(TID), *args, settings=settings)
    assert result.exit_code == 0, result.output
    run_dir = _only_run_dir(tmp_path)
    folder = run_dir / "openml_run"
    assert _schema_errors(FLOW_XSD, (folder / "flow.xml").read_bytes()) == []
    description = (folder / "description.xml").read_text()
    assert _schema_errors(RUN_XSD, _with_flow_id(description, 1)) == []
    # the human text lives in setup_string and URL-safe tags, not in run_details
    run = openml.runs.OpenMLRun.from_filesystem(folder, expect_model=False)
    record = read_record(run_dir)
    assert run.run_details is None
    assert record["run_id"] in run.setup_string and folds in run.setup_string
    assert f"mnistexp-fingerprint-{record['experiment']['fingerprint']}" in run.tags
    assert run.tags[0] == "mnistexp" and len(run.tags) == 3


def test_publish_sends_only_what_the_server_schemas_accept(tmp_path, oml_server):
    from mnistexp.adapters.openml import publish_saved_run

    # 1. `run --publish`: flow and run go to the (recorded) server at the end of the run.
    result = _run(tmp_path, "--task-id", str(TID), "--publish")
    assert result.exit_code == 0, result.output
    run_dir = _only_run_dir(tmp_path)
    info = read_record(run_dir)["platform_info"]
    assert "publish_error" not in info, info
    assert info["flow_id"] == OpenMLRecorder.FLOW_ID and info["openml_run_id"] == OpenMLRecorder.RUN_ID
    assert "published to OpenML" in result.output

    # 2. publish_saved_run on the saved folder: the flow exists now, so only the run is sent.
    url = publish_saved_run(run_dir / "openml_run")
    assert url.endswith(f"/r/{OpenMLRecorder.RUN_ID + 1}")

    flows, runs = oml_server.uploads("flow"), oml_server.uploads("run")
    assert len(flows) == 1 and len(runs) == 2
    assert [r["call"] for r in oml_server.requests] == [
        "flow/exists", "flow", f"flow/{OpenMLRecorder.FLOW_ID}", "run", "flow/exists", "run"]
    # exactly the bytes that went out: each description passes the server's schema
    assert _schema_errors(FLOW_XSD, flows[0]["description"][1]) == []
    assert b"<oml:name>mnistexp.keras.Sequential</oml:name>" in flows[0]["description"][1]
    for sent in runs:
        assert sent["description"][0] == "description.xml"
        assert _schema_errors(RUN_XSD, sent["description"][1]) == []
        assert f"<oml:flow_id>{OpenMLRecorder.FLOW_ID}</oml:flow_id>".encode() in sent["description"][1]
        assert b"run_details" not in sent["description"][1]
        assert sent["predictions"][0] == "predictions.arff"
        assert len(arff.loads(sent["predictions"][1].decode())["data"]) == 400
    assert runs[0]["description"][1] == runs[1]["description"][1]


def _as_written_before_issue_14(folder: Path) -> str:
    """Turn a run folder's description into what the adapter used to write: the text in
    run_details (which the server's schema refuses), no setup_string."""
    import re

    description = folder / "description.xml"
    old_details = "mnistexp run 20260101T000000000Z-openml-abcdef; 2 of 2 folds"
    text = re.sub(r"\s*<oml:setup_string>.*?</oml:setup_string>", "", description.read_text(), flags=re.S)
    text = text.replace("<oml:parameter_setting>", f"<oml:run_details>{old_details}</oml:run_details>"
                        "<oml:parameter_setting>", 1)
    description.write_text(text)
    return old_details


def test_old_run_folders_are_refused_as_is_and_published_by_publish_saved_run(tmp_path, oml_server):
    from mnistexp.adapters.openml import publish_run, publish_saved_run

    result = _run(tmp_path, "--task-id", str(TID))
    assert result.exit_code == 0, result.output
    folder = _only_run_dir(tmp_path) / "openml_run"
    old_details = _as_written_before_issue_14(folder)

    # The schema check can fail: openml-python sending the old description as it is is refused,
    # as the server refused it (issue 14).
    run = openml.runs.OpenMLRun.from_filesystem(folder, expect_model=False)
    assert run.run_details == old_details and run.setup_string is None
    with pytest.raises(openml.exceptions.OpenMLServerException, match="Problem validating"):
        publish_run(run, run.flow)
    assert len(oml_server.uploads("run")) == 1 and oml_server.runs == []

    # publish_saved_run moves the text into setup_string, and the server accepts the run.
    url = publish_saved_run(folder)
    assert url.endswith(f"/r/{OpenMLRecorder.RUN_ID}")
    sent = oml_server.uploads("run")[-1]["description"][1]
    assert _schema_errors(RUN_XSD, sent) == [] and b"run_details" not in sent
    assert f"<oml:setup_string>{old_details}</oml:setup_string>".encode() in sent


def test_too_long_parameter_is_refused_before_publishing(tmp_path, oml_server):
    # a valid model (Flatten, 60 small Dense layers, the classifier) whose layer list is > 2048 characters
    layers = ",".join(["{type: Flatten}", *["{type: Dense, units: 10, activation: relu}"] * 60,
                       "{type: Dense, units: 10, activation: softmax}"])
    result = _run(tmp_path, "--task-id", str(TID), "--publish", settings=[*TINY, f"model.layers=[{layers}]"])
    assert result.exit_code == 1
    assert "Error: --publish: OpenML accepts parameter values of at most 2048 characters" in result.output
    assert "model__layers" in result.output and "Traceback" not in result.output
    assert oml_server.requests == [] and not any((tmp_path / "results").iterdir())


class TestOpenMLContract(PlatformContract):
    """`run --platform openml` in a subprocess, offline: the tiny 2-fold task from a prepared
    OpenML cache (openml-python's own config file points at it and at a closed server)."""

    platform = "openml"

    @pytest.fixture
    def sdk_modules(self):
        return ["openml"]

    @pytest.fixture
    def launch(self, tmp_path, tiny_data_dir, oml_cache):
        config_home = tmp_path / "xdg"
        (config_home / "openml").mkdir(parents=True)
        (config_home / "openml" / "config").write_text(
            f"server={CLOSED_SERVER}\napikey=\ncachedir={tmp_path / 'openml-cache'}\n"
            "retry_policy=robot\nconnection_n_retries=1\n")
        env = {"XDG_CONFIG_HOME": str(config_home), "OPENML_CACHE_DIR": str(tmp_path / "openml-cache")}
        return run_here_launcher(self.platform, tmp_path, tiny_data_dir, "--task-id", str(TID), env=env)
