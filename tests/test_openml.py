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
