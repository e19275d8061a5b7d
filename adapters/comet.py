"""The Comet platform: the canonical run logged to a Comet experiment (comet_ml SDK).

Online when Comet finds an API key (COMET_API_KEY or its own ~/.comet.config, as
`comet login` writes it): an Experiment in the chosen workspace/project. Offline when no key
is set or --offline is given, or when the server cannot be reached: an OfflineExperiment
whose archive goes into RUN_DIR/comet/, uploaded later with `mnistexp upload RUN_DIR`
(which calls the SDK's own offline upload).

Logging choice: the harness logs everything itself and Comet's auto-logging is switched off
(COMET_DISABLE_AUTO_LOGGING=1 before comet_ml is imported, and every auto_* flag False).
The harness already has each epoch's row exactly as the run record stores it; Comet's Keras
callback would log the same metrics a second time (per batch, under its own step counter)
and needs comet_ml imported before Keras. With auto-logging off the import order does not
matter and Comet shows the same numbers as record.json.

The API key is never written anywhere: not in the record, not in the archive metadata
(Comet leaves it out), and SDK log lines are redacted before they reach comet/comet-sdk.log.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
from pathlib import Path

import click

from .base import Adapter, AdapterError

DEFAULT_PROJECT = "mnistexp"
ARCHIVE_FOLDER = "comet"
SDK_LOG_NAME = "comet-sdk.log"
INSTALL_HINT = "install it with: pip install 'mnistexp[comet]' (or pip install comet-ml)"
KEY_HINT = "set COMET_API_KEY (or run `comet login`)"

# Every automatic collector off: the harness logs what it means to log (see module doc).
# Host details (hostname, IP, user name), the calling script and the git patch stay private;
# the harness logs its own privacy-safe environment summary instead.
EXPERIMENT_FLAGS = dict(
    log_code=False,
    log_graph=False,
    auto_param_logging=False,
    auto_metric_logging=False,
    auto_histogram_weight_logging=False,
    auto_histogram_gradient_logging=False,
    auto_histogram_activation_logging=False,
    auto_histogram_tensorboard_logging=False,
    auto_log_co2=False,
    parse_args=False,
    auto_output_logging=False,
    log_env_details=False,
    log_env_gpu=False,
    log_env_host=False,
    log_env_cpu=False,
    log_env_network=False,
    log_env_disk=False,
    log_git_metadata=False,
    log_git_patch=False,
    display_summary_level=0,
)


def import_sdk():
    """comet_ml with its Keras/TF monkey patching off (harness logging); AdapterError if absent."""
    os.environ["COMET_DISABLE_AUTO_LOGGING"] = "1"
    try:
        return importlib.import_module("comet_ml")
    except ImportError:
        raise AdapterError(f"the comet platform needs the comet_ml package; {INSTALL_HINT}") from None


def find_api_key(sdk) -> str | None:
    """The key Comet itself would use (COMET_API_KEY, .comet.config), or None."""
    from comet_ml.config import get_api_key, get_config

    return get_api_key(None, get_config()) or None


def server_url() -> str:
    from comet_ml.config import get_config
    from comet_ml.config.config_api import get_comet_root_url

    return get_comet_root_url(get_config())


class SdkLog(logging.Filter):
    """Keeps comet_ml's console output out of the user's terminal, redacted, for comet-sdk.log."""

    def __init__(self):
        super().__init__()
        self.lines: list[str] = []
        self.secrets: set[str] = set()
        self.handlers: list[logging.Handler] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.INFO:
            try:
                message = record.getMessage()
            except Exception:  # a malformed SDK log call must not break the run
                message = str(record.msg)
            self.lines.append(f"{record.levelname} {self.redact(message)}")
        return False

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def install(self) -> None:
        if self.handlers:
            return
        self.handlers = list(logging.getLogger("comet_ml").handlers)
        for handler in self.handlers:
            handler.addFilter(self)

    def remove(self) -> None:
        for handler in self.handlers:
            handler.removeFilter(self)
        self.handlers = []

    def last_error(self) -> str | None:
        errors = [line.split(" ", 1)[1] for line in self.lines if line.startswith(("ERROR", "CRITICAL"))]
        return errors[-1].splitlines()[0] if errors else None


def check_key(sdk, api_key: str, log: SdkLog) -> str | None:
    """Ask Comet who owns the key: AdapterError if rejected, the reason if unreachable, else None."""
    import requests
    from comet_ml.exceptions import CometRestApiException, InvalidAPIKey, Unauthorized

    url = server_url()
    try:
        sdk.API(api_key=api_key).get_account_details()
    except (InvalidAPIKey, Unauthorized):
        raise AdapterError(
            f"Comet at {url} rejected the API key; {KEY_HINT} with a valid key from your Comet "
            "account settings, or pass --offline to log to an archive and upload it later"
        ) from None
    except CometRestApiException as exc:
        status = getattr(exc.response, "status_code", None)
        if status in (401, 403):
            raise AdapterError(
                f"Comet at {url} rejected the API key; {KEY_HINT} with a valid key, or pass --offline"
            ) from None
        return f"Comet at {url} answered with an error (HTTP {status})"
    except (requests.RequestException, OSError) as exc:
        return f"cannot reach the Comet server at {url} ({type(exc).__name__})"
    return None


def _flat(prefix: str, value, out: dict) -> dict:
    if isinstance(value, dict):
        for key, item in value.items():
            _flat(f"{prefix}.{key}" if prefix else str(key), item, out)
    else:
        out[prefix] = value
    return out


# What Comet's offline sender accepts (its JSON schemas in comet_ml/schemas/offline-*-msg.schema.json,
# checked on upload; a rejected message is dropped and the whole experiment flagged with an error):
# a parameter value is a number, string, bool or null, or a list of those; a system-info value a
# number or string (a bool is neither); a metric value a number. Anything else is sent as compact
# JSON text, which Comet shows as written and json.loads reads back.
_PRIMITIVE = (str, int, float, bool, type(None))


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def parameter_value(value):
    """A config value as Comet accepts a parameter: structured values (layers) as compact JSON."""
    if isinstance(value, _PRIMITIVE):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, _PRIMITIVE) for v in value):
        return list(value)
    return _json(value)


def comet_parameters(config: dict) -> dict:
    """The resolved config, nested as it is (Comet shows groups), with every leaf a valid value."""
    return {key: comet_parameters(value) if isinstance(value, dict) else parameter_value(value)
            for key, value in config.items()}


def system_info_value(value):
    """A number or a string: bools as "true"/"false" (as record.json spells them), rest as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return value
    return _json(value)


def metric_value(value) -> bool:
    """Whether a history value is a metric Comet takes: a finite number, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def optimizer_parameters(train_config: dict) -> dict:
    """The optimizer's settings as Comet's Keras integration names them (Adam_learning_rate, ...):
    the same optimizer the model is compiled with (experiment.model.make_optimizer)."""
    from mnistexp.experiment.model import make_optimizer

    optimizer = make_optimizer(train_config)
    name = type(optimizer).__name__
    return {f"{name}_{key}": parameter_value(value) for key, value in optimizer.get_config().items()}


class CometAdapter(Adapter):
    name = "comet"
    description = "Comet (comet.com): online with COMET_API_KEY, else an offline archive to upload later"
    cli_options = [
        click.Option(["--offline"], is_flag=True, default=False,
                     help="Log to an offline archive in the run folder instead of the platform's "
                          "server (comet: upload later with `mnistexp upload RUN_DIR`)."),
        click.Option(["--comet-project"], default=None, metavar="NAME",
                     help=f"Comet project [default: COMET_PROJECT_NAME, else {DEFAULT_PROJECT}]."),
        click.Option(["--comet-workspace"], default=None, metavar="NAME",
                     help="Comet workspace [default: COMET_WORKSPACE, else your default workspace]."),
    ]

    def __init__(self, offline: bool = False, comet_project: str | None = None,
                 comet_workspace: str | None = None, **options):
        super().__init__(offline=offline, comet_project=comet_project,
                         comet_workspace=comet_workspace, **options)
        # Imported here, before the runner imports TensorFlow, and with auto-logging off.
        self.sdk = import_sdk()
        from comet_ml.config import get_config

        config = get_config()
        self.project = comet_project or config["comet.project_name"] or DEFAULT_PROJECT
        self.workspace = comet_workspace or config["comet.workspace"] or None
        self.log = SdkLog()
        self.log.install()
        self.api_key = None if offline else find_api_key(self.sdk)
        if self.api_key:
            self.log.secrets.add(self.api_key)
        self.mode = "online" if self.api_key else "offline"
        self.offline_reason = "--offline given" if offline else (None if self.api_key else "no API key")
        self.fallback_reason: str | None = None
        self.experiment = None
        self.run_dir: Path | None = None
        self.class_names: list[str] | None = None
        self.errors: list[str] = []

    # -- before anything is loaded: the data folder, then the key (a rejected key stops here)
    def preflight(self, config: dict, data_dir) -> None:
        try:
            super().preflight(config, data_dir)
            if self.mode == "online":
                reason = check_key(self.sdk, self.api_key, self.log)
                if reason:
                    self._fall_back(reason)
        except BaseException:  # no run folder yet and finish() will not be called
            self.log.remove()
            raise

    def load_data(self, config: dict, data_dir):
        from mnistexp.experiment.data import CLASS_NAMES

        try:
            dataset = super().load_data(config, data_dir)
        except BaseException:  # no run folder yet and finish() will not be called
            self.log.remove()
            raise
        self.class_names = CLASS_NAMES.get(dataset.name)
        return dataset

    def tags(self) -> dict:
        return {"comet_mode": self.mode}

    # -- logging
    def start(self, run_dir: Path, record: dict) -> None:
        self.run_dir = Path(run_dir)
        archive_dir = self.run_dir / ARCHIVE_FOLDER
        archive_dir.mkdir(exist_ok=True)
        if self.mode == "online":
            self.experiment = self._online(archive_dir)
            if self.experiment is None:
                record["tags"]["comet_mode"] = "offline"
        if self.experiment is None:
            try:
                self.experiment = self.sdk.OfflineExperiment(
                    project_name=self.project, workspace=self.workspace,
                    offline_directory=str(archive_dir), **EXPERIMENT_FLAGS,
                )
            except Exception as exc:
                raise AdapterError(f"could not start a Comet offline experiment in {archive_dir}: "
                                   f"{self.log.redact(str(exc))}") from None
        experiment = record["experiment"]
        self._call("set_name", record["run_id"])
        self._call("add_tags", self._tags(record))
        # The resolved config as Comet parameters (nested keys shown as groups in Comet; the
        # layer list as one compact JSON text, model|layers).
        self._call("log_parameters", comet_parameters(experiment["config"]))
        # What Comet's Keras integration logs and the harness's own logging would otherwise miss:
        # the optimizer's settings (parameters) and the parameter count (other, trainable_params).
        try:
            optimizer = optimizer_parameters(experiment["config"]["train"])
        except Exception as exc:  # never stop the training for a logging detail
            self.errors.append(f"optimizer settings: {type(exc).__name__}: {exc}")
        else:
            self._call("log_parameters", optimizer)
        others = {
            "mnistexp.run_id": record["run_id"],
            "mnistexp.fingerprint": experiment["fingerprint"],
            "mnistexp.config_hash": experiment["config_hash"],
            "mnistexp.experiment": experiment["name"],
            "mnistexp.seed": record["seed"],
            "mnistexp.dataset": record["data"].get("dataset"),
            "trainable_params": (record.get("model") or {}).get("params"),
        }
        self._call("log_others", {k: system_info_value(v) for k, v in others.items() if v is not None})
        environment = _flat("", {**record["environment"], "runtime": record.get("runtime", {})}, {})
        for key, value in environment.items():
            if value is not None:
                self._call("log_system_info", key, system_info_value(value))

    def log_epoch(self, epoch: int, row: dict) -> None:
        metrics = {k: v for k, v in row.items() if k not in ("epoch", "fold") and metric_value(v)}
        if "epoch_time_s" in metrics:
            # Comet's Keras integration name for the same number (its charts know it).
            metrics["epoch_duration"] = metrics["epoch_time_s"]
        self._call("log_metrics", metrics, step=epoch, epoch=epoch)

    def log_metrics(self, metrics: dict, confusion=None) -> None:
        epochs = metrics.get("epochs_run") or None
        final = {k: metrics[k] for k in ("test_accuracy", "test_loss") if metric_value(metrics.get(k))}
        self._call("log_metrics", final, step=epochs, epoch=epochs)
        if confusion is not None:
            labels = self.class_names or [str(i) for i in range(len(confusion))]
            self._call("log_confusion_matrix", matrix=[[int(v) for v in row] for row in confusion],
                       labels=labels, title="Test set confusion matrix",
                       file_name="confusion-matrix.json", step=epochs, epoch=epochs)

    def log_artifact(self, path: Path, kind: str) -> None:
        path = Path(path)
        if kind == "model":
            self._call("log_model", "mnistexp-cnn", str(path), file_name=path.name)
        elif path.suffix == ".png":
            self._call("log_image", str(path), name=path.name)
        else:
            self._call("log_asset", str(path), file_name=path.name)

    # -- end
    def finish(self, record: dict) -> dict:
        try:
            return self._finish(record)
        finally:
            self.log.remove()
            self._write_sdk_log()

    def _finish(self, record: dict) -> dict:
        info = {"comet_mode": self.mode, "workspace": self.workspace, "project": self.project}
        if self.fallback_reason:
            info["fallback_reason"] = self.fallback_reason
        elif self.offline_reason:
            info["offline_reason"] = self.offline_reason
        experiment = self.experiment
        if experiment is None:  # the run stopped before start()
            return info
        info["experiment_key"] = experiment.get_key()
        if record["status"] != "completed":
            ended = {"mnistexp.status": record["status"], "mnistexp.error": record["error"]}
            self._call("log_others", {k: system_info_value(v) for k, v in ended.items() if v is not None})
        # The run record as the harness wrote it (platform facts aside), next to the metrics.
        self._call("log_asset_data", json.dumps(record, indent=2), name="mnistexp-record.json")
        try:
            experiment.end()
        except Exception as exc:
            self.errors.append(f"end: {self.log.redact(f'{type(exc).__name__}: {exc}')}")

        archive = None
        if self.mode == "offline":
            archive = Path(experiment.offline_directory) / f"{info['experiment_key']}.zip"
        else:
            info["url"] = experiment.url
            # The SDK streams to a local archive when the connection drops mid-run.
            fallback = getattr(getattr(experiment, "streamer", None), "offline_archive_file", None)
            if fallback and Path(fallback).is_file():
                archive = Path(fallback)
                info["comet_mode"] = "online, fell back to offline"
                self.fallback_reason = "the connection to Comet dropped during the run"
                info["fallback_reason"] = self.fallback_reason
        if archive is not None:
            if not archive.is_file():
                self.errors.append(f"the offline archive {archive} was not written; see {SDK_LOG_NAME}")
            else:
                info["offline_archive"] = self._relative(archive)
                info["upload_command"] = f"mnistexp upload {self.run_dir}"
                if self.fallback_reason:
                    self.messages.append(f"Comet: {self.fallback_reason}; logged offline instead.")
                self.messages.append(f"Comet offline archive: {archive}")
                self.messages.append(f"Upload it later with: mnistexp upload {self.run_dir}")
        else:
            self.messages.append(f"Comet experiment: {info['url']}")
        if self.errors:
            info["comet_errors"] = self.errors[:20]
            self.messages.append(f"Comet: {len(self.errors)} logging call(s) failed; see "
                                 f"platform_info.comet_errors in the record")
        return info

    # -- helpers
    def _online(self, archive_dir: Path):
        """An online Experiment, or None after falling back (server lost since the key check)."""
        from comet_ml.exceptions import InvalidAPIKey

        try:
            experiment = self.sdk.Experiment(
                api_key=self.api_key, project_name=self.project, workspace=self.workspace,
                offline_directory=str(archive_dir), **EXPERIMENT_FLAGS,
            )
        except InvalidAPIKey:
            self._fall_back("Comet rejected the API key when creating the experiment")
            return None
        except Exception as exc:
            self._fall_back(self.log.redact(f"could not create the Comet experiment ({type(exc).__name__})"))
            return None
        if not experiment.alive:
            reason = self.log.last_error() or "the Comet server did not accept the experiment"
            try:
                experiment.end()
            except Exception:
                pass
            self._fall_back(self.log.redact(reason))
            return None
        return experiment

    def _fall_back(self, reason: str) -> None:
        self.mode = "offline"
        self.fallback_reason = reason

    def _tags(self, record: dict) -> list[str]:
        experiment = record["experiment"]
        tags = ["mnistexp", f"platform:{record['platform']}", f"fingerprint:{experiment['fingerprint']}",
                f"experiment:{experiment['name']}"]
        tags += [f"{k}:{v}" for k, v in record["tags"].items() if k not in ("platform", "comet_mode")]
        return tags

    def _call(self, method: str, *args, **kwargs) -> None:
        """One SDK logging call; a failure is noted, never allowed to stop the training."""
        try:
            getattr(self.experiment, method)(*args, **kwargs)
        except Exception as exc:
            self.errors.append(self.log.redact(f"{method}: {type(exc).__name__}: {exc}"))

    def _relative(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.run_dir.resolve()))
        except ValueError:
            return str(path)

    def _write_sdk_log(self) -> None:
        if self.run_dir is None or not self.log.lines:
            return
        from mnistexp.experiment.record import write_text_atomic

        folder = self.run_dir / ARCHIVE_FOLDER
        try:
            folder.mkdir(exist_ok=True)
            write_text_atomic(folder / SDK_LOG_NAME, "\n".join(self.log.lines) + "\n")
        except OSError:
            pass


# ---------------------------------------------------------------- mnistexp upload


def upload_run(run_dir: str | Path, force: bool = False, workspace: str | None = None,
               project: str | None = None) -> list[str]:
    """Send a comet run's offline archive with the SDK's own upload; update its record.

    Returns the lines to print. AdapterError / RecordError for anything the user must fix.
    """
    from mnistexp.experiment.record import read_record, utc_now, write_record

    run_dir = Path(run_dir)
    record = read_record(run_dir)
    if record["platform"] != "comet":
        raise AdapterError(f"{run_dir} is a {record['platform']} run; only comet runs "
                           "(mnistexp run --platform comet) have a Comet archive to upload")
    info = record.get("platform_info", {})
    archive = _archive_of(run_dir, info)
    if info.get("uploaded_at") and not force:
        where = info.get("url") or "Comet"
        return [f"already uploaded to {where} at {info['uploaded_at']}; pass --force to upload again"]

    sdk = import_sdk()
    log = SdkLog()
    log.install()
    try:
        api_key = find_api_key(sdk)
        if not api_key:
            raise AdapterError(f"no Comet API key: {KEY_HINT}, then run `mnistexp upload {run_dir}` again")
        log.secrets.add(api_key)
        reason = check_key(sdk, api_key, log)
        if reason:
            raise AdapterError(f"{reason}; check the network (or COMET_URL_OVERRIDE) and run "
                               f"`mnistexp upload {run_dir}` again; the archive stays in {archive}")
        try:
            ok, rejected = send_archive(archive, api_key, force=force, workspace=workspace, project=project)
        except Exception as exc:
            raise AdapterError(f"uploading {archive} failed: {log.redact(f'{type(exc).__name__}: {exc}')}") from None
        if not ok:
            detail = log.last_error() or "see the Comet SDK output"
            raise AdapterError(f"uploading {archive} failed: {detail}")
        url = _experiment_url(sdk, api_key, info.get("experiment_key"))
    finally:
        log.remove()

    info.update(uploaded_at=utc_now(), upload_workspace=workspace or info.get("workspace"),
                upload_project=project or info.get("project"))
    if url:
        info["url"] = url
    if rejected:
        info["upload_rejected"] = rejected
    else:
        info.pop("upload_rejected", None)
    record["platform_info"] = info
    write_record(run_dir, record)
    if rejected:
        # The experiment exists on Comet, but without these items and marked with Comet's
        # "Unexpected error detected while processing messages": that is not a success.
        raise AdapterError(
            f"Comet rejected {len(rejected)} message(s) of {archive.name} and marked the experiment with "
            f"an error: {', '.join(rejected)}; the rest was uploaded" + (f" ({url})" if url else "")
            + "; run the experiment again with this mnistexp to get a clean archive")
    return [f"uploaded {archive.name} to Comet" + (f": {url}" if url else "")]


def _describe(message) -> str:
    """A rejected offline message in words: which parameter, metric, other, system info or file."""
    payload = message if isinstance(message, dict) else {}
    param = payload.get("param") or payload.get("params")
    if isinstance(param, dict):
        return f"parameter {param.get('paramName')}"
    if isinstance(payload.get("metric"), dict):
        return f"metric {payload['metric'].get('metricName')}"
    if isinstance(payload.get("system_info"), dict):
        return f"system info {payload['system_info'].get('key')}"
    if "file_path" in payload:
        return f"file {(payload.get('additional_params') or {}).get('fileName') or payload['file_path']}"
    if "key" in payload:
        return f"other {payload['key']}"
    return "message with " + ",".join(sorted(map(str, payload))) if payload else "a message"


def send_archive(archive: Path, api_key: str, force: bool = False, workspace: str | None = None,
                 project: str | None = None) -> tuple[bool, list[str]]:
    """The SDK's own offline upload (comet_ml.offline.upload_single_offline_experiment, the code
    behind `comet upload`), noting every message Comet's checks reject: (uploaded, rejected items).

    The SDK only logs a warning for a rejected message and still reports success; its sender is
    swapped, for this call, for a subclass that notes what it rejects and each error it reports
    to the experiment. Everything else (unzip, handshake, batching, file upload) is the SDK's.
    """
    import comet_ml.offline as offline

    rejected: list[str] = []
    reported: list[str] = []

    class CheckedSender(offline.OfflineSender):
        def _validate_msg(self, message, *args, **kwargs):
            valid = False  # strict mode (raise_validation_error_for_tests) raises instead of False
            try:
                valid = super()._validate_msg(message, *args, **kwargs)
            finally:
                if not valid:
                    rejected.append(_describe(message))
            return valid

        def _report_experiment_error(self, message):
            reported.append(str(message))
            super()._report_experiment_error(message)

    original = offline.OfflineSender
    offline.OfflineSender = CheckedSender
    try:
        ok = offline.upload_single_offline_experiment(
            offline_archive_path=str(archive), api_key=api_key, force_upload=force,
            display_level="debug", override_workspace=workspace, override_project_name=project,
        )
    finally:
        offline.OfflineSender = original
    # Errors reported without a rejected message behind them (a batch the server refused, a
    # line the SDK could not process) count too; one reported error per rejection otherwise.
    unexplained = len(reported) - len(rejected)
    if unexplained > 0:
        rejected.append(f"{unexplained} other message(s) ({reported[-1].splitlines()[0]})")
    return bool(ok), rejected


def _archive_of(run_dir: Path, info: dict) -> Path:
    named = info.get("offline_archive")
    if named:
        path = Path(named) if Path(named).is_absolute() else run_dir / named
        if path.is_file():
            return path
    found = sorted((run_dir / ARCHIVE_FOLDER).glob("*.zip"))
    if found:
        return found[-1]
    if info.get("url"):
        raise AdapterError(f"{run_dir} was logged online ({info['url']}); there is nothing to upload")
    raise AdapterError(f"no Comet offline archive in {run_dir / ARCHIVE_FOLDER}; "
                       "run `mnistexp run --platform comet --offline` to make one")


def _experiment_url(sdk, api_key: str, key: str | None) -> str | None:
    if not key:
        return None
    try:
        return sdk.API(api_key=api_key).get_experiment_by_key(key).url
    except Exception:
        return None


# ---------------------------------------------------------------- the platform's commands
@click.group("comet")
def COMMAND():  # noqa: N802  (the registry's name)
    """Comet: upload offline runs (`mnistexp comet upload RUN_DIR`, also `mnistexp upload RUN_DIR`)."""


@COMMAND.command("upload")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--force", is_flag=True, help="Upload again even if the record says it was uploaded.")
@click.option("--comet-workspace", default=None, metavar="NAME",
              help="Upload into this workspace instead of the one the run was logged for.")
@click.option("--comet-project", default=None, metavar="NAME",
              help="Upload into this project instead of the one the run was logged for.")
def upload_command(run_dir, force, comet_workspace, comet_project):
    """Upload the Comet offline archive of RUN_DIR (a `--platform comet` run).

    Uses the SDK's own offline upload and the key Comet finds (COMET_API_KEY or
    ~/.comet.config from `comet login`); the experiment URL is added to the run record.
    """
    for line in upload_run(run_dir, force=force, workspace=comet_workspace, project=comet_project):
        click.echo(line)


ADAPTER = CometAdapter
