"""OpenML: run the experiment on an OpenML task's folds and produce a genuine OpenML run.

Data and splits come through openml-python (its own cache, OPENML_CACHE_DIR); with
--data-dir the images come from local MNIST files instead (OpenML row order: the training
images, then the test images, as in mnist_784) while the folds still come from the cached
task. One model is trained per fold (experiment.lifecycle.fold_splits). At the end the OpenML run (flow.xml,
description.xml, predictions.arff) is written to <run folder>/openml_run/, and --publish
uploads flow and run.

Nothing here imports openml or TensorFlow at module import time.
"""

from __future__ import annotations

import json
import re
import warnings
from collections import OrderedDict
from pathlib import Path

import click
import numpy as np

from .base import Adapter, AdapterError

DEFAULT_TASK_ID = 3573  # MNIST (data set 554, mnist_784), used by the openml-keras examples
FLOW_NAME = "mnistexp.keras.Sequential"
RUN_FOLDER = "openml_run"
N_PIXELS = 28 * 28

# OpenML data sets whose rows are a known official train/test pair in order: their data is
# checksummed (and verified) as those parts, so the fingerprint equals local runs' on the
# same images. data set id -> (mnistexp data set name, number of training rows first)
OPENML_LAYOUTS = {554: ("mnist", 60000)}

API_KEY_HELP = (
    "sign in at https://www.openml.org, copy the API key from your profile, then run "
    "`openml configure apikey` (it is stored in ~/.config/openml/config); or add "
    "--test-server to publish to test.openml.org with its public test key"
)


def _openml():
    try:
        import openml
    except ImportError:
        raise AdapterError("the OpenML platform needs openml-python: pip install 'mnistexp[openml]'") from None
    return openml


class OpenMLAdapter(Adapter):
    name = "openml"
    description = "an OpenML task's folds; writes an OpenML run, --publish uploads it"
    cli_options = [
        click.Option(["--task-id"], type=click.IntRange(min=1), default=None,
                     help=f"OpenML task to run (openml only) [default: {DEFAULT_TASK_ID}, MNIST].",
                     metavar="ID"),
        click.Option(["--folds"], type=click.IntRange(min=1), default=None, metavar="K",
                     help="Run only the first K folds of the task (quick look; not publishable)."),
        click.Option(["--publish"], is_flag=True, default=False,
                     help="Upload the flow and run to OpenML (needs an API key, see README)."),
        click.Option(["--test-server"], is_flag=True, default=False,
                     help="Use test.openml.org for task, data and publishing (openml only)."),
    ]

    def __init__(self, task_id=None, folds=None, publish=False, test_server=False, **options):
        super().__init__(**options)
        self.task_id = int(task_id or DEFAULT_TASK_ID)
        self.max_folds = folds
        self.publish = bool(publish)
        self.test_server = bool(test_server)
        self._saved_config = None
        self._task = None
        self._folds = []
        self._labels = None
        self._predictions = {}
        self._run_dir = None
        self._info = {}

    def tags(self) -> dict:
        return {"openml_task": str(self.task_id)}

    def preflight(self, config, data_dir):
        """SDK, publishing key and publishable config, before any data is fetched."""
        super().preflight(config, data_dir)
        openml = _openml()
        if self.publish:
            self._use_server(openml)
            try:
                if not openml.config.apikey:
                    raise AdapterError(f"--publish needs an OpenML API key and none is configured: {API_KEY_HELP}")
            finally:
                self._restore_server(openml)
            if config["data"].get("test_limit"):
                raise AdapterError("--publish needs predictions for every test row; remove data.test_limit")
        too_long = oversized_parameters(config)
        if self.publish and too_long:
            raise AdapterError(
                f"--publish: OpenML accepts parameter values of at most {MAX_VALUE} characters and "
                f"{', '.join(too_long)} is longer; shorten the config (fewer or simpler layers)")

    def splits(self, dataset):
        """The task's folds, one model each (from the same seed)."""
        from mnistexp.experiment.lifecycle import fold_splits

        return fold_splits(dataset, dataset.folds)

    # ------------------------------------------------------------------ data
    def load_data(self, config, data_dir):
        openml = _openml()
        self._use_server(openml)
        try:
            return self._load(openml, config, data_dir)
        except BaseException:
            self._restore_server(openml)
            raise

    def _load(self, openml, config, data_dir):
        from mnistexp.experiment.lifecycle import Fold

        too_long = oversized_parameters(config)  # with --publish, preflight refused these already
        task = self._fetch(openml, lambda: openml.tasks.get_task(
            self.task_id, download_splits=True, download_data=False, download_qualities=False),
            data_dir)
        from openml.tasks import TaskType

        if task.task_type_id != TaskType.SUPERVISED_CLASSIFICATION:
            raise AdapterError(
                f"OpenML task {self.task_id} is a '{task.task_type}' task; mnistexp runs supervised "
                f"classification tasks (MNIST: task {DEFAULT_TASK_ID})")
        oml_data = self._fetch(openml, lambda: openml.datasets.get_dataset(task.dataset_id), data_dir)
        where = f"OpenML task {self.task_id} (data set {task.dataset_id} '{oml_data.name}')"
        self._check_images(task, oml_data, where)
        class_labels = list(task.class_labels or [])
        self._check_classes(class_labels, config, where)

        split = task.split or task.download_split()
        all_folds = [
            Fold(repeat, fold, *(np.asarray(a, dtype=np.int64) for a in split.get(repeat, fold, 0)))
            for repeat in sorted(split.split) for fold in sorted(split.split[repeat])
        ]
        if self.max_folds is not None and self.max_folds > len(all_folds):
            raise AdapterError(
                f"--folds {self.max_folds}: {where} has only {len(all_folds)} fold(s); "
                f"pass --folds {len(all_folds)} or less")
        folds = all_folds[: self.max_folds] if self.max_folds else all_folds
        partial = len(folds) < len(all_folds)
        if self.publish and partial:
            raise AdapterError(
                f"--folds {self.max_folds} runs {len(folds)} of the task's {len(all_folds)} folds, "
                "and OpenML accepts only complete runs; leave out --folds to publish")
        first = all_folds[0]
        n_rows = len(np.union1d(first.train, first.test))

        if data_dir is not None:
            dataset = self._local_rows(config, data_dir, n_rows, task, where)
        else:
            dataset = self._openml_rows(config, oml_data, task, n_rows, where, data_dir)
        images, labels = dataset.rows
        top = max(int(f.train.max(initial=0)) for f in all_folds)
        top = max(top, max(int(f.test.max(initial=0)) for f in all_folds))
        if top >= len(labels):
            raise AdapterError(f"{where}: split row id {top} is beyond the {len(labels)} rows of the data")

        dataset.folds = folds
        dataset.test_split = "folds"
        self._task, self._folds, self._labels = task, folds, labels
        procedure = task.estimation_procedure or {}
        self._info = {
            "server": openml.config.server,
            "task_id": self.task_id,
            "task_url": openml.tasks.OpenMLTask.url_for_id(self.task_id),
            "dataset_id": int(task.dataset_id),
            "dataset_name": oml_data.name,
            "estimation_procedure": procedure.get("type"),
            "repeats": len(split.split),
            "folds_total": len(all_folds),
            "folds_run": len(folds),
            "class_labels": class_labels,
            "publishable": not partial and not config["data"].get("test_limit") and not too_long,
        }
        if partial:
            self._info["not_publishable_reason"] = f"--folds {len(folds)}: {len(folds)} of {len(all_folds)} folds run"
        elif config["data"].get("test_limit"):
            self._info["not_publishable_reason"] = "data.test_limit: not every test row was predicted"
        elif too_long:
            self._info["not_publishable_reason"] = (
                f"OpenML accepts parameter values of at most {MAX_VALUE} characters: {', '.join(too_long)}")
        return dataset

    def _fetch(self, openml, call, data_dir):
        """Call openml-python; turn its network and server failures into one-line errors."""
        import requests
        import urllib3
        from openml.exceptions import OpenMLServerException

        server = openml.config.get_server_base_url()
        try:
            return call()
        except OpenMLServerException as exc:
            if exc.code in (151, 111):  # unknown task / unknown data set
                where = "test.openml.org (task ids differ from www.openml.org)" if self.test_server else server
                raise AdapterError(
                    f"OpenML task {self.task_id} does not exist on {where}: {exc.message}; "
                    f"look up task ids at {server}/search?type=task (MNIST: {DEFAULT_TASK_ID})") from None
            raise AdapterError(f"OpenML server {server} refused task {self.task_id}: {exc.message} (code {exc.code})") from None
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
            cache = openml.config.get_cache_directory()
            detail = type(exc).__name__
            if data_dir is not None:
                raise AdapterError(
                    f"--data-dir still needs OpenML task {self.task_id}'s splits and metadata, and they are "
                    f"not in the OpenML cache {cache} while {server} cannot be reached ({detail}); run once "
                    "with a network connection to cache the task, or use --platform local") from None
            raise AdapterError(
                f"cannot reach {server} ({detail}) and OpenML task {self.task_id} is not in the OpenML "
                f"cache {cache}; connect once to fill the cache (or set OPENML_CACHE_DIR to a filled one)") from None

    @staticmethod
    def _check_images(task, oml_data, where):
        def names(value):
            if not value:
                return []
            return [value] if isinstance(value, str) else list(value)

        excluded = {task.target_name, *names(oml_data.ignore_attribute), *names(oml_data.row_id_attribute)}
        columns = [f for f in oml_data.features.values() if f.name not in excluded]
        numeric = sum(1 for f in columns if f.data_type == "numeric")
        if len(columns) != N_PIXELS or numeric != N_PIXELS:
            raise AdapterError(
                f"{where} has {len(columns)} feature columns ({numeric} numeric); mnistexp needs "
                f"{N_PIXELS} numeric pixel columns, one 28x28 image per row")

    @staticmethod
    def _check_classes(class_labels, config, where):
        digits = [str(i) for i in range(len(class_labels))]
        if not class_labels or sorted(class_labels, key=lambda s: (len(s), s)) != digits:
            raise AdapterError(f"{where}: class labels {class_labels[:12]} are not the digits 0..N-1 "
                               "that mnistexp's models predict")
        units = config["model"]["layers"][-1].get("units")
        if units != len(class_labels):
            raise AdapterError(f"{where} has {len(class_labels)} classes but the model's last layer has "
                               f"{units} units; set the last Dense layer's units to {len(class_labels)}")

    def _local_rows(self, config, data_dir, n_rows, task, where):
        """--data-dir: local MNIST files in OpenML row order (training images, then test images)."""
        from mnistexp.experiment.data import load_dataset

        data_config = config["data"]
        layout = OPENML_LAYOUTS.get(int(task.dataset_id))
        if layout and layout[0] != data_config["dataset"]:
            raise AdapterError(f"{where} is {layout[0]} but data.dataset is {data_config['dataset']}; "
                               f"set --dataset {layout[0]}")
        dataset = load_dataset(data_dir, dataset=data_config["dataset"], verify=data_config["verify"],
                               holdout_fraction=data_config["holdout_fraction"])
        if dataset.test_split != "official":
            raise AdapterError(f"{data_dir}: has no labelled test images; --data-dir with an OpenML task needs "
                               "the training and test files (OpenML rows = training images, then test images)")
        images = np.concatenate([dataset.x_train, dataset.x_test])
        labels = np.concatenate([dataset.y_train, dataset.y_test])
        if len(labels) != n_rows:
            raise AdapterError(
                f"{data_dir}: holds {len(labels)} images but {where} splits {n_rows} rows; --data-dir must "
                "hold the same images as the OpenML data set (mnist_784: the 60,000 training images, then "
                "the 10,000 test images)")
        dataset.rows = (images, labels)
        dataset.source = f"{dataset.source} (rows in the order of OpenML task {self.task_id})"
        return dataset

    def _openml_rows(self, config, oml_data, task, n_rows, where, data_dir):
        """Download (or read from OpenML's cache) the 784 pixel columns and reshape them to 28x28."""
        from mnistexp.experiment.data import DataError, Dataset, dataset_checksums, verify_known

        openml = _openml()
        frame, target, _, _ = self._fetch(
            openml, lambda: oml_data.get_data(target=task.target_name, dataset_format="dataframe"), data_dir)
        pixels = frame.to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.all(np.isfinite(pixels)) or pixels.min() < 0 or pixels.max() > 255 or np.any(pixels % 1):
            raise AdapterError(f"{where}: pixel values must be integers 0..255 without missing values")
        if target.isna().any():
            raise AdapterError(f"{where}: some rows have no class label")
        images = pixels.astype(np.uint8).reshape(-1, 28, 28)
        labels = target.astype(str).astype(int).to_numpy().astype(np.uint8)
        if len(labels) != n_rows:
            raise AdapterError(f"{where}: the data has {len(labels)} rows but the task splits {n_rows}")

        data_config = config["data"]
        layout = OPENML_LAYOUTS.get(int(task.dataset_id))
        fmt = "openml-parquet" if oml_data.parquet_file else "openml-arff"
        source = f"openml task {self.task_id}, data set {task.dataset_id} ({oml_data.name} v{oml_data.version})"
        if layout and layout[1] < len(labels):
            name, n_train = layout
            if name != data_config["dataset"]:
                raise AdapterError(f"{where} is {name} but data.dataset is {data_config['dataset']}; "
                                   f"set --dataset {name}")
            dataset = Dataset(name, images[:n_train], labels[:n_train], images[n_train:], labels[n_train:],
                              source=source, format=fmt, test_split="folds")
            dataset.checksums = dataset_checksums(dataset)
            if data_config["verify"]:
                try:
                    verify_known(name, dataset.checksums, {})
                except DataError as exc:
                    raise DataError(f"{where}: {exc}") from None
        else:
            from mnistexp.experiment.data import content_sha256

            empty = images[:0]
            dataset = Dataset(oml_data.name, images, labels, empty, labels[:0], source=source, format=fmt,
                              test_split="folds",
                              checksums={"images": content_sha256(images), "labels": content_sha256(labels)})
        dataset.rows = (images, labels)
        return dataset

    def _use_server(self, openml):
        if self.test_server and self._saved_config is None:
            self._saved_config = (openml.config.server, openml.config.apikey)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                openml.config.start_using_configuration_for_example()

    def _restore_server(self, openml):
        if self._saved_config is not None:
            openml.config.server, openml.config.apikey = self._saved_config
            openml.config.ConfigurationForExamples._start_last_called = False
            self._saved_config = None

    # ------------------------------------------------------------------ logging
    def start(self, run_dir, record):
        self._run_dir = Path(run_dir)

    def log_predictions(self, fold, test_indices, probabilities):
        self._predictions[fold] = (np.asarray(test_indices), np.asarray(probabilities, dtype=np.float64))

    def finish(self, record):
        openml = _openml()
        info = dict(self._info)
        try:
            if record["status"] != "completed" or self._run_dir is None:
                return info
            run, flow = self._build_run(openml, record)
            folder = self._run_dir / RUN_FOLDER
            run.to_filesystem(folder, store_model=False)
            record["artifacts"]["openml_run"] = RUN_FOLDER
            info.update(openml_run_dir=RUN_FOLDER, flow_name=flow.name,
                        flow_external_version=flow.external_version)
            self.messages.append(f"OpenML run (flow.xml, description.xml, predictions.arff): {folder}")
            if not info.get("publishable"):
                self.messages.append(f"not publishable: {info.get('not_publishable_reason')}")
            elif self.publish:
                info.update(self._publish(openml, run, flow, folder))
            else:
                self.messages.append("publish it with --publish (see README: OpenML)")
            return info
        finally:
            self._restore_server(openml)

    def _publish(self, openml, run, flow, folder) -> dict:
        try:
            run_id, url, flow_id = publish_run(run, flow)
        except Exception as exc:  # the local run stays; say how to retry
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.messages.append(
                f"publishing failed ({reason}); the run is kept in {folder}: publish it later with "
                f"`python -c \"from mnistexp.adapters.openml import publish_saved_run; "
                f"print(publish_saved_run('{folder}'{', test_server=True' if self.test_server else ''}))\"`")
            return {"publish_error": reason}
        self.messages.append(f"published to OpenML: {url}")
        return {"openml_run_id": run_id, "openml_run_url": url, "flow_id": flow_id}

    def _build_run(self, openml, record):
        from openml.runs.functions import format_prediction

        task = self._task
        flow = build_flow(record["experiment"]["config"], record["environment"])
        rows = []
        for index, fold in enumerate(self._folds):
            test_rows, probabilities = self._predictions[index]
            predicted = probabilities.argmax(axis=1)
            for row_id, p, guess in zip(test_rows, probabilities, predicted, strict=True):
                proba = {str(c): float(p[c]) for c in range(p.shape[0])}
                rows.append(format_prediction(
                    task, fold.repeat, fold.fold, int(row_id), str(int(guess)),
                    str(int(self._labels[row_id])), proba=proba))
        fold_scores = OrderedDict()
        for entry in record["folds"]:
            fold_scores.setdefault(entry["repeat"], OrderedDict())[entry["fold"]] = entry["test_accuracy"]
        run = openml.runs.OpenMLRun(
            task_id=self.task_id, flow_id=None, dataset_id=int(task.dataset_id),
            data_content=rows, model=record["experiment"]["config"]["model"],
            fold_evaluations={"predictive_accuracy": fold_scores},
            parameter_settings=[{"oml:name": k, "oml:value": v} for k, v in flow.parameters.items()],
            # No run_details: the server's schema allows only [A-Za-z0-9_-.,():] there (no spaces),
            # and openml-python's own runs never set it. As openml-python does, the human text goes
            # into setup_string (any ASCII) and the tags (a URL-safe subset; see run_tags).
            tags=run_tags(record), task=task, flow=flow, flow_name=flow.name,
            task_type=task.task_type, task_evaluation_measure="predictive_accuracy",
            description_text=f"mnistexp run {record['run_id']} (fingerprint {record['experiment']['fingerprint']})",
            setup_string=setup_string(record, self.task_id, len(self._folds), self._info.get("folds_total")),
        )
        return run, flow


# ---------------------------------------------------------------------- flow and publishing


def _flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}__{key}" if prefix else key, item, out)
    else:
        out[prefix] = value


# Limits of the server's upload schemas (openml.run.upload.xsd, openml.implementation.upload.xsd):
# a tag is 1..128 of [A-Za-z0-9_.-]; a parameter value and the setup string are at most 2048
# Basic Latin (ASCII) characters.
TAG_CHARS = re.compile(r"[^A-Za-z0-9_.\-]+")
MAX_TAG = 128
MAX_VALUE = 2048


def _tag(text: str) -> str:
    return TAG_CHARS.sub("-", text).strip("-")[:MAX_TAG] or "x"


def run_tags(record: dict) -> list[str]:
    """The run's tags: mnistexp, its fingerprint (runs of one experiment share it) and name."""
    experiment = record["experiment"]
    return ["mnistexp", _tag(f"mnistexp-fingerprint-{experiment['fingerprint']}"),
            _tag(f"mnistexp-experiment-{experiment['name']}")]


def _ascii(text: str, limit: int) -> str:
    return text.encode("ascii", "replace").decode("ascii")[:limit]


def setup_string(record: dict, task_id: int, folds_run: int, folds_total) -> str:
    """How the run was made, in words: the command line, then run id, fingerprint, seed, folds."""
    return _ascii(
        f"mnistexp run --platform openml --task-id {task_id} --seed {record['seed']} "
        f"(mnistexp run {record['run_id']}, fingerprint {record['experiment']['fingerprint']}, "
        f"{folds_run} of {folds_total} folds)", MAX_VALUE)


def oversized_parameters(config: dict) -> list[str]:
    """Flow parameters whose value OpenML's schema refuses (longer than 2048 characters)."""
    return [f"{key} ({len(value)} characters)" for key, value in flow_parameters(config).items()
            if len(value) > MAX_VALUE]


def flow_parameters(config: dict) -> OrderedDict:
    """The experiment's hyperparameters (resolved config, runtime aside) as flow parameters."""
    from mnistexp.experiment.record import experiment_part

    flat: dict = {}
    _flatten("", experiment_part(config), flat)
    flat["train__seed"] = config["train"]["seed"]
    return OrderedDict((key, json.dumps(flat[key], sort_keys=True)) for key in sorted(flat))


def build_flow(config: dict, environment: dict):
    """An OpenMLFlow describing the Keras model: name, versions, dependencies, parameters."""
    from openml.flows import OpenMLFlow

    versions = {name: environment.get(name) or "unknown" for name in ("mnistexp", "keras", "tensorflow")}
    parameters = flow_parameters(config)
    # Values are JSON text; the data type stays "json" so flows of any config compare equal.
    meta = OrderedDict((key, OrderedDict(description="config key " + key.replace("__", "."), data_type="json"))
                       for key in parameters)
    return OpenMLFlow(
        name=FLOW_NAME,
        # Name, external version, dependencies and description identify the flow on the server:
        # none of them depends on the config (its values are the flow's parameters).
        description=(
            "A Keras Sequential model built and trained by mnistexp from an experiment config: "
            "model__layers lists the layers, train__* the optimiser and schedule, data__* the "
            "preprocessing (pixels scaled to 0..1, the last data__validation_split of each fold's "
            "training rows held out for validation)."
        ),
        model=None,
        components=OrderedDict(),
        parameters=parameters,
        parameters_meta_info=meta,
        external_version=",".join(f"{k}=={v}" for k, v in versions.items()),
        tags=["mnistexp", "keras", "tensorflow"],
        language="English",
        dependencies="\n".join(f"{k}=={v}" for k, v in versions.items()),
        class_name="keras.Sequential",
        custom_name="mnistexp CNN",
    )


def publish_run(run, flow) -> tuple[int, str, int]:
    """Publish (or reuse) the flow, then the run with its parameter settings; (run id, URL, flow id)."""
    flow.publish()
    run.flow_id = flow.flow_id
    run.parameter_settings = [
        {"oml:name": key, "oml:value": value, "oml:component": flow.flow_id}
        for key, value in flow.parameters.items()
    ]
    run.publish()
    return int(run.run_id), run.openml_url, int(flow.flow_id)


def publish_saved_run(folder: str | Path, test_server: bool = False) -> str:
    """Publish an OpenML run folder written by an earlier `mnistexp run --platform openml`."""
    openml = _openml()
    if test_server:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            openml.config.start_using_configuration_for_example()
    if not openml.config.apikey:
        raise AdapterError(f"publishing needs an OpenML API key and none is configured: {API_KEY_HELP}")
    run = openml.runs.OpenMLRun.from_filesystem(folder, expect_model=False)
    if run.run_details is not None:
        # Folders written before issue 14 hold their text in run_details, which the server's
        # schema refuses (spaces, ';'): send it as the setup string instead, as runs do now.
        run.setup_string = run.setup_string or _ascii(run.run_details, MAX_VALUE)
        run.run_details = None
    _, url, _ = publish_run(run, run.flow)
    return url


INSTALL_HINT = "pip install 'mnistexp[openml]' (openml-python)"
ADAPTER = OpenMLAdapter
