"""The MLflow platform: the canonical run logged to an MLflow tracking store (mlflow SDK).

Which store: --mlflow-tracking-uri, else MLFLOW_TRACKING_URI, else MLflow's own default
(`mlflow.get_tracking_uri()`: sqlite:///mlflow.db in the current folder, or ./mlruns when
that folder already holds an old file store), so `mlflow ui` started in the same folder
shows the run. Which experiment: --mlflow-experiment, else MLFLOW_EXPERIMENT_NAME, else
"mnistexp"; created when missing.

One MLflow run per mnistexp run, through MlflowClient (not the fluent mlflow.start_run):
no process-global active run, so runs in one process (explore trials) never mix. MLflow's
autologging stays off; the harness logs each epoch's row exactly as record.json stores it.

    params     the resolved config, flattened (train.epochs, model.layers as compact JSON)
    metrics    per epoch with step=epoch; test and summary metrics at step=epochs_run
    artifacts  model.keras, history.csv, confusion_matrix.csv, the plots, record.json
    tags       mnistexp.run_id / fingerprint / platform / experiment ...; mlflow.runName = run id
    status     completed -> FINISHED, failed -> FAILED, interrupted -> KILLED

Credentials stay where MLflow reads them (MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN, the
URI): the record gets the URI with any password replaced by ***, and every MLflow error
text is redacted the same way before it is shown or stored.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import click

from .base import Adapter, AdapterError

DEFAULT_EXPERIMENT = "mnistexp"
INSTALL_HINT = "install it with: pip install 'mnistexp[mlflow]' (or pip install mlflow)"
URI_HINT = "pass a valid --mlflow-tracking-uri (or MLFLOW_TRACKING_URI), e.g. sqlite:///mlflow.db"
# Our record statuses as MLflow's RunStatus names.
STATUS = {"completed": "FINISHED", "failed": "FAILED", "interrupted": "KILLED", "running": "RUNNING"}
# Environment values that must never reach a record, a log line or an MLflow tag.
SECRET_ENV = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "AWS_SECRET_ACCESS_KEY",
              "AWS_SESSION_TOKEN", "AZURE_STORAGE_ACCESS_KEY", "AZURE_STORAGE_CONNECTION_STRING",
              "DATABRICKS_TOKEN", "DATABRICKS_CLIENT_SECRET")
_SECRET_QUERY = re.compile(r"pass|pwd|secret|token|key|sig|credential|auth", re.IGNORECASE)
# MLflow's limits (mlflow.utils.validation): checked here so a long value is shortened,
# not rejected with the whole batch.
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_BATCH = 100  # params or tags per log_batch call
# After this many failed logging calls the run stops talking to MLflow: each call against a
# lost server waits through MLflow's retries, and the training must not stall on them.
MAX_ERRORS = 3
# The pre-flight check of a server answers within seconds, not after MLflow's 7 retries.
PREFLIGHT_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def import_sdk():
    """The mlflow package; AdapterError with the install hint when it is missing."""
    try:
        import mlflow
    except ImportError:
        raise AdapterError(f"the mlflow platform needs the mlflow package; {INSTALL_HINT}") from None
    # "Creating initial MLflow database tables..." on every new mlflow.db: not the user's concern.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return mlflow


# ---------------------------------------------------------------- tracking URIs and secrets


def redact_uri(uri: str) -> str:
    """The URI with a password (user:PASSWORD@host), a bare user-info token (TOKEN@host) and
    secret-looking query values (?password=, ?token=) replaced by ***."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "***"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}" if ":" in userinfo else f"***@{host}"
    query = parts.query
    if query:
        query = "&".join(f"{k}=***" if _SECRET_QUERY.search(k) else f"{k}={v}"
                         for k, v in parse_qsl(query, keep_blank_values=True))
    if (netloc, query) == (parts.netloc, parts.query):
        return uri
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def secrets_in(uri: str | None) -> list[str]:
    """The strings to hide from any text: the URI's password and query secrets, and the
    credential environment variables MLflow and its artifact stores read."""
    found = [os.environ.get(name) for name in SECRET_ENV]
    if uri:
        try:
            parts = urlsplit(uri)
            if parts.password:
                found += [parts.password, unquote(parts.password)]
            elif parts.username:
                found += [parts.username, unquote(parts.username)]
            found += [v for k, v in parse_qsl(parts.query) if _SECRET_QUERY.search(k)]
        except ValueError:
            pass
    # Longest first, so a secret that contains another is replaced whole.
    return sorted({s for s in found if s and len(s) >= 3}, key=len, reverse=True)


def redact(text: str, uri: str | None) -> str:
    if uri:
        text = text.replace(uri, redact_uri(uri))
    for secret in secrets_in(uri):
        text = text.replace(secret, "***")
    return text


def local_store_path(uri: str) -> tuple[str, Path | None]:
    """("sqlite" | "file" | "memory" | "remote", the local database file or store folder)."""
    if uri.startswith("sqlite:"):
        rest = uri[len("sqlite:"):]
        if rest in ("", "//", "///", "///:memory:") or not rest.startswith("///"):
            return "memory", None
        return "sqlite", Path(unquote(rest[3:].split("?", 1)[0]))
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return "file", Path(unquote(parts.path))
    if parts.scheme == "" or re.fullmatch(r"[A-Za-z]", parts.scheme):  # a path, or C:\... on Windows
        return "file", Path(uri)
    return "remote", None


def resolve_tracking_uri(mlflow, option: str | None) -> str:
    """The option, else MLflow's own choice (MLFLOW_TRACKING_URI, else its default), with a
    local database or folder made absolute: the record names a store that can be found again."""
    uri = (option or "").strip() or mlflow.get_tracking_uri()
    kind, path = local_store_path(uri)
    if kind in ("sqlite", "file"):
        # abspath, not resolve(): "a/../b" is collapsed as MLflow and SQLite read it, even
        # where folder a does not exist yet.
        absolute = Path(os.path.abspath(path))
        if absolute != path:
            query = uri.split("?", 1)[1] if kind == "sqlite" and "?" in uri else ""
            uri = (f"sqlite:///{absolute.as_posix()}" + (f"?{query}" if query else "")
                   if kind == "sqlite" else absolute.as_uri())
    return uri


def check_writable_place(path: Path, what: str) -> None:
    """The nearest existing folder at or above `path` can take new files (MLflow creates the
    missing folders below it); AdapterError naming `what` otherwise."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise AdapterError(f"{what}: {existing} is not a folder; {URI_HINT}")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".mnistexp-probe-"):
            pass
    except OSError as exc:
        raise AdapterError(f"{what}: cannot write in {existing} ({exc.strerror or exc}); {URI_HINT}") from None


def check_local_store(kind: str, path: Path) -> bool:
    """A sqlite database or file store MLflow can create or open here; True if it exists."""
    if kind == "sqlite":
        if path.is_dir():
            raise AdapterError(f"the MLflow database {path} is a folder; {URI_HINT}")
        if path.is_file():
            with open(path, "rb") as handle:
                header = handle.read(16)
            if header and header != b"SQLite format 3\x00":
                raise AdapterError(f"{path} is not an SQLite database; {URI_HINT}")
            check_writable_place(path.parent, f"the MLflow database {path}")
            return bool(header)
        check_writable_place(path.parent, f"the MLflow database {path}")
        return False
    if path.exists() and not path.is_dir():
        raise AdapterError(f"the MLflow store {path} is a file, not a folder; {URI_HINT}")
    check_writable_place(path, f"the MLflow store {path}")
    return path.is_dir() and any(path.iterdir())


@contextlib.contextmanager
def environment(**values: str):
    """Environment variables set for the duration of a few MLflow calls (MLflow reads them
    on each call), then put back as they were."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def quick_http():
    """MLflow's HTTP client without its long retries, unless the user set them lower."""
    def lower(name, value):
        current = os.environ.get(name, "")
        return current if current.isdigit() and int(current) < int(value) else value

    return environment(**{name: lower(name, value) for name, value in PREFLIGHT_HTTP.items()})


def describe_store_error(exc: Exception, uri: str) -> str:
    """One line: why the store at `uri` cannot be used, with the fix."""
    where = redact_uri(uri)
    text = redact(str(exc), uri).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    code = str(getattr(exc, "error_code", ""))
    if "maintenance mode" in text:  # MLflow 3: file stores only with MLFLOW_ALLOW_FILE_STORE=true
        return (f"this MLflow no longer opens file stores such as {where} by default; use a database "
                "(--mlflow-tracking-uri sqlite:///mlflow.db; `mlflow migrate-filestore` moves old runs "
                "into one) or set MLFLOW_ALLOW_FILE_STORE=true")
    if isinstance(exc, ImportError):
        return (f"the MLflow tracking URI {where} needs the Python package '{exc.name}', which is not "
                f"installed; pip install it or {URI_HINT}")
    if code in ("UNAUTHENTICATED", "PERMISSION_DENIED") or re.search(r"\b40[13]\b", text):
        return (f"the MLflow server at {where} rejected the credentials; set MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) for it")
    if "Connection" in text or "Max retries" in text or "timed out" in text.lower():
        return f"cannot reach the MLflow tracking server at {where}; start it or {URI_HINT}"
    if re.search(r"error code \d+", text):
        return f"{where} did not answer as an MLflow tracking server ({text[:200]}); {URI_HINT}"
    if "unsupported URI" in text or "Could not find a registered" in text or "scheme" in text.lower():
        return f"MLflow cannot use the tracking URI {where} (unsupported scheme); {URI_HINT}"
    return f"cannot use the MLflow tracking store {where}: {text[:300]}; {URI_HINT}"


# ---------------------------------------------------------------- values as MLflow takes them


def flatten(config: dict, prefix: str = "") -> dict:
    """Nested config -> {"train.epochs": 1, "model.layers": [...], ...}."""
    out = {}
    for key, value in config.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def param_value(value) -> str:
    """A config value as MLflow stores a param (text): strings as they are, everything else as
    compact JSON (true, null, [..]: json.loads reads it back), within MLflow's length limit."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
    return shorten(text, MAX_PARAM_VALUE)


def shorten(text: str, limit: int) -> str:
    marker = " ...(shortened; full value in record.json)"
    return text if len(text) <= limit else text[: limit - len(marker)] + marker


def param_key(key: str) -> str:
    """MLflow keys allow letters, digits, _ - . / and spaces."""
    return re.sub(r"[^\w\-./ ]", "_", key)[:250]


def mlflow_params(config: dict) -> dict[str, str]:
    return {param_key(k): param_value(v) for k, v in flatten(config).items()}


def is_metric(value) -> bool:
    """A finite number, not a bool (MLflow would store True as 1.0)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def finite(value):
    """A copy of a record with NaN/Inf as null: valid JSON, as the run's own record.json."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def artifact_location(db_path: Path, experiment: str) -> str:
    """Where a new experiment in a local database keeps its files: beside the database, not
    in whatever folder the run happened to start from (MLflow's own ./mlruns)."""
    slug = re.sub(r"[^\w.-]+", "_", experiment).strip("._") or "experiment"
    return (db_path.parent / "mlruns" / slug).resolve().as_uri()


class MlflowAdapter(Adapter):
    name = "mlflow"
    description = "MLflow tracking: a local mlflow.db by default, or --mlflow-tracking-uri"
    cli_options = [
        click.Option(["--mlflow-tracking-uri"], default=None, metavar="URI",
                     help="MLflow tracking store: sqlite:///FILE.db, file:///FOLDER or http(s)://SERVER "
                          "[default: MLFLOW_TRACKING_URI, else MLflow's default sqlite:///mlflow.db in "
                          "the current folder]."),
        click.Option(["--mlflow-experiment"], default=None, metavar="NAME",
                     help=f"MLflow experiment, created when missing [default: MLFLOW_EXPERIMENT_NAME, "
                          f"else {DEFAULT_EXPERIMENT}]."),
    ]

    def __init__(self, mlflow_tracking_uri: str | None = None, mlflow_experiment: str | None = None, **options):
        super().__init__(mlflow_tracking_uri=mlflow_tracking_uri, mlflow_experiment=mlflow_experiment, **options)
        self.uri_option = mlflow_tracking_uri
        self.experiment_name = (mlflow_experiment if mlflow_experiment is not None
                                else os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT)
        self.tracking_uri: str | None = None
        self.store_kind = "remote"
        self.store_path: Path | None = None
        self.client = None
        self.experiment_id: str | None = None
        self.run_info = None
        self.run_dir: Path | None = None
        self.logged: set[str] = set()
        self.errors: list[str] = []

    # -- before anything is loaded or written
    def preflight(self, config: dict, data_dir) -> None:
        super().preflight(config, data_dir)
        mlflow = import_sdk()
        if not self.experiment_name.strip():
            raise AdapterError("the MLflow experiment name is empty; pass --mlflow-experiment NAME")
        self.tracking_uri = resolve_tracking_uri(mlflow, self.uri_option)
        self.store_kind, self.store_path = local_store_path(self.tracking_uri)
        if self.store_kind == "memory":
            raise AdapterError(f"{self.tracking_uri} is an in-memory database that ends with the run; "
                               f"{URI_HINT}")
        # A new sqlite database is only checked for a writable place (opening it would create
        # it); any other store is opened and asked for the experiment. A file store is opened
        # even when new: MLflow 3 refuses file stores before creating anything.
        if self.store_kind in ("sqlite", "file"):
            exists = check_local_store(self.store_kind, self.store_path)
            if self.store_kind == "sqlite" and not exists:
                return
        experiment = self._lookup_experiment()
        if experiment is not None:
            if experiment.lifecycle_stage != "active":
                raise AdapterError(
                    f"the MLflow experiment '{self.experiment_name}' in {redact_uri(self.tracking_uri)} is "
                    f"deleted; restore it (mlflow experiments restore --experiment-id "
                    f"{experiment.experiment_id}) or pass another --mlflow-experiment")
            self.experiment_id = experiment.experiment_id
            location = experiment.artifact_location or ""
            kind, path = local_store_path(location) if location else ("remote", None)
            if kind == "file":
                check_writable_place(path, f"the artifact folder of MLflow experiment '{self.experiment_name}'")

    def _lookup_experiment(self):
        try:
            with quick_http():
                return self._client().get_experiment_by_name(self.experiment_name)
        except AdapterError:
            raise
        except Exception as exc:  # any store failure is the user's URI, server or credentials
            raise AdapterError(describe_store_error(exc, self.tracking_uri)) from None

    def _client(self):
        if self.client is None:
            from mlflow import MlflowClient

            self.client = MlflowClient(tracking_uri=self.tracking_uri)
        return self.client

    # -- the run
    def start(self, run_dir: Path, record: dict) -> None:
        self.run_dir = Path(run_dir)
        try:
            self.experiment_id = self.experiment_id or self._experiment_id()
            run = self._client().create_run(self.experiment_id, run_name=record["run_id"], tags=self._tags(record))
        except Exception as exc:
            raise AdapterError(describe_store_error(exc, self.tracking_uri)) from None
        self.run_info = run.info
        params = [self._entity("Param", k, v) for k, v in mlflow_params(record["experiment"]["config"]).items()]
        for i in range(0, len(params), MAX_BATCH):
            self._call("log_batch", params=params[i: i + MAX_BATCH])

    def _experiment_id(self) -> str:
        """The experiment's id, creating it (race-safe: another run may create it meanwhile)."""
        from mlflow.exceptions import MlflowException

        client = self._client()
        experiment = client.get_experiment_by_name(self.experiment_name)
        if experiment is not None:
            return experiment.experiment_id
        location = (artifact_location(self.store_path, self.experiment_name)
                    if self.store_kind == "sqlite" else None)
        try:
            return client.create_experiment(self.experiment_name, artifact_location=location,
                                            tags={"mnistexp": "true"})
        except MlflowException:
            experiment = client.get_experiment_by_name(self.experiment_name)
            if experiment is None:
                raise
            return experiment.experiment_id

    def log_epoch(self, epoch: int, row: dict) -> None:
        # Fold runs restart at epoch 1 per fold: one series per fold keeps the steps unique.
        prefix = f"fold{row['fold']}." if "fold" in row else ""
        self._log_metrics({f"{prefix}{k}": v for k, v in row.items() if k not in ("epoch", "fold")}, epoch)

    def log_metrics(self, metrics: dict, confusion=None) -> None:
        self._log_metrics(metrics, metrics.get("epochs_run") or 0)

    def log_artifact(self, path: Path, kind: str) -> None:
        path = Path(path)
        self._call("log_artifact", str(path))
        self.logged.add(path.name)

    def finish(self, record: dict) -> dict:
        info = {"tracking_uri": redact_uri(self.tracking_uri or ""), "mlflow_experiment": self.experiment_name}
        if self.run_info is None:  # the run stopped before start(): nothing in MLflow
            return info
        status = STATUS.get(record["status"], "FAILED")
        info.update(mlflow_run_id=self.run_info.run_id, mlflow_experiment_id=self.experiment_id,
                    artifact_uri=redact_uri(self.run_info.artifact_uri or ""), mlflow_status=status)
        url = self._run_url()
        if url:
            info["url"] = url
        if record["status"] != "completed" and self.run_dir is not None:
            # What a stopped run has (the partial history) is there to look at in MLflow too.
            history = self.run_dir / "history.csv"
            if history.is_file() and history.name not in self.logged:
                self.log_artifact(history, "history")
        steps = record["metrics"].get("epochs_run") or 0
        summary = {f"time.{k}": v for k, v in record.get("timings", {}).items()}
        summary.update(record.get("throughput", {}))
        self._log_metrics(summary, steps)
        ended = {"mnistexp.status": record["status"]}
        if record.get("error"):
            ended["mnistexp.error"] = shorten(redact(record["error"], self.tracking_uri), MAX_TAG_VALUE)
        self._call("log_batch", tags=[self._entity("RunTag", k, v) for k, v in ended.items()])
        # The record as it is being closed, platform facts included (the run folder's record.json
        # is written right after this, with the same content).
        final = finite({**record, "platform_info": {**record.get("platform_info", {}), **info}})
        self._call("log_text", json.dumps(final, indent=2), "record.json")
        # Tried even after logging errors: a run left RUNNING would look alive in MLflow forever.
        # MLflow's own "View run at" lines are off: they may show the URI's user info, and the
        # harness prints the link itself (below, without it).
        with environment(MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT="true"):
            self._call("set_terminated", status=status, always=True)
        if self.errors:
            info["mlflow_errors"] = self.errors[:20]
            self.messages.append(f"MLflow: {len(self.errors)} logging call(s) failed; see "
                                 "platform_info.mlflow_errors in the record")
        self.messages.append(f"MLflow run {self.run_info.run_id} in experiment '{self.experiment_name}' "
                             f"({info['tracking_uri']})")
        if url:
            self.messages.append(f"Open it at: {url}")
        elif self.store_kind in ("sqlite", "file"):
            self.messages.append(f"Open it with: mlflow ui --backend-store-uri {info['tracking_uri']}")
        return info

    # -- helpers
    def _tags(self, record: dict) -> dict:
        experiment = record["experiment"]
        tags = {
            "mnistexp.run_id": record["run_id"],
            "mnistexp.fingerprint": experiment["fingerprint"],
            "mnistexp.config_hash": experiment["config_hash"],
            "mnistexp.experiment": experiment["name"],
            "mnistexp.platform": record["platform"],
            "mnistexp.dataset": record["data"].get("dataset"),
            "mnistexp.seed": record.get("seed"),
            "mnistexp.model_params": (record.get("model") or {}).get("params"),
            "mnistexp.status": record["status"],
            "mlflow.source.name": "mnistexp",
            "mlflow.note.content": (f"mnistexp run {record['run_id']}: the canonical MNIST experiment "
                                    f"'{experiment['name']}'; its run record is the record.json artifact."),
        }
        for key, value in record.get("tags", {}).items():
            if key != "platform":  # the user's --tag KEY=VALUE, never over MLflow's own mlflow.* tags
                tags[param_key(key if not key.startswith("mlflow.") else f"mnistexp.tag.{key}")] = value
        return {k: shorten(str(v), MAX_TAG_VALUE) for k, v in tags.items() if v is not None}

    def _log_metrics(self, values: dict, step: int) -> None:
        now = int(time.time() * 1000)
        metrics = [self._entity("Metric", param_key(k), float(v), now, int(step))
                   for k, v in values.items() if is_metric(v)]
        if metrics:
            self._call("log_batch", metrics=metrics)

    @staticmethod
    def _entity(kind: str, *args):
        import mlflow.entities

        return getattr(mlflow.entities, kind)(*args)

    def _call(self, method: str, *args, always: bool = False, **kwargs) -> None:
        """One logging call for this run; a failure is noted, never allowed to stop the training."""
        if self.run_info is None or (len(self.errors) >= MAX_ERRORS and not always):
            return
        try:
            getattr(self._client(), method)(self.run_info.run_id, *args, **kwargs)
        except Exception as exc:
            text = redact(f"{method}: {type(exc).__name__}: {exc}", self.tracking_uri)
            self.errors.append(text.splitlines()[0][:500])
            if len(self.errors) >= MAX_ERRORS:
                self.errors.append("stopped logging to MLflow after these errors")

    def _run_url(self) -> str | None:
        parts = urlsplit(self.tracking_uri or "")
        if parts.scheme not in ("http", "https"):
            return None
        base = redact_uri(self.tracking_uri).split("?", 1)[0].rstrip("/")
        if "@" in urlsplit(base).netloc:  # a link to click has no user info at all
            base = urlunsplit((parts.scheme, urlsplit(base).netloc.rsplit("@", 1)[1], urlsplit(base).path, "", ""))
        return f"{base}/#/experiments/{self.experiment_id}/runs/{self.run_info.run_id}"


ADAPTER = MlflowAdapter
