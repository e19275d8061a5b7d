"""Hyperparameter search over any config keys with Optuna.

A study is an Optuna study in persistent storage (default: SQLite at
results/<study>/study.db), so an interrupted search resumes where it stopped and
several processes or machines (an RDB URL such as postgresql://...) can work on one
study. Every trial is an ordinary run: results/<study>/runs/<run-id>/record.json,
tagged study=<study> and trial=<number>. The study summary (best trial, parameter
importances, optimisation history plot, trials.csv) goes to results/<study>/.

Parallel trials (--jobs N) run in N separate processes that share the storage, not in
Optuna's thread pool: TensorFlow/Keras keep process-global state (random seeds, op
determinism, thread pools, the Keras graph/name scope), so concurrent model.fit calls in
threads of one process interfere and gain nothing under the GIL; processes are isolated
and each gets cores/N TensorFlow threads.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from mnistexp.experiment.config import SPEC, ConfigError, parse_override, resolve_config

SAMPLERS = ("grid", "random", "tpe")
METRICS = ("val_accuracy", "test_accuracy")
METRIC_KEYS = {"val_accuracy": "final_val_accuracy", "test_accuracy": "test_accuracy"}  # in record.metrics
SPEC_ATTR = "mnistexp_spec"

# Parameters that have no config key of their own: each is a documented transformation of
# model.layers (or of train.lr_decay.*), applied in this order.
DERIVED = {
    "model.conv_blocks": "number of conv blocks: N copies of [first Conv2D, first pooling layer] "
                         "(filters doubling per block), then the layers that followed the last pooling",
    "model.conv_filters": "filters of the first Conv2D; every conv layer is scaled by the same factor",
    "model.kernel_size": "kernel_size of every Conv2D",
    "model.pool_size": "pool_size of every pooling layer",
    "model.dense_layers": "number of hidden Dense layers after Flatten (copies of the first one, "
                          "each with its Dropout)",
    "model.dense_units": "units of every hidden Dense layer after Flatten",
    "model.dropout": "rate of every Dropout layer",
    "train.decay": "0 = no LR decay; f in (0, 1) = ReduceLROnPlateau enabled with factor f",
}

# The original system's comma-list flags: (long flag, short flag, parameter).
GRID_FLAGS = (
    ("rate", "r", "train.learning_rate"),
    ("batch", "b", "train.batch_size"),
    ("layers", "l", "model.dense_layers"),
    ("conv", "c", "model.conv_filters"),
    ("opt", "o", "train.optimizer"),
    ("dropout", "d", "model.dropout"),
    ("epochs", "e", "train.epochs"),
    ("dense", "z", "model.dense_units"),
    ("kernel", "k", "model.kernel_size"),
    ("pool", "p", "model.pool_size"),
    ("decay", "y", "train.decay"),
    ("mom", "m", "train.momentum"),
    ("convlayers", "v", "model.conv_blocks"),
)

CONV_TYPES = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D")
POOL_TYPES = ("MaxPooling2D", "AveragePooling2D")


class ExploreError(ConfigError):
    """A search that cannot start; one line for the user."""


class ExploreInterrupted(RuntimeError):
    """Ctrl-C: the study is saved and resumes with the same command."""


# ---------------------------------------------------------------- search space


def parse_param(item: str) -> tuple[str, dict]:
    """`KEY=v1,v2` (choices), `KEY=float:LOW:HIGH[:log]` or `KEY=int:LOW:HIGH[:log]`."""
    import yaml

    if "=" not in item:
        raise ExploreError(f"--param '{item}' must look like KEY=v1,v2 or KEY=float:LOW:HIGH[:log]")
    key, text = (part.strip() for part in item.split("=", 1))
    check_param_name(key)
    kind = text.split(":", 1)[0]
    if kind in ("float", "int") and ":" in text:
        parts = text.split(":")
        if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] != "log"):
            raise ExploreError(f"--param {key}: range must be {kind}:LOW:HIGH or {kind}:LOW:HIGH:log, got {text!r}")
        try:
            low, high = (float(p) if kind == "float" else int(p) for p in parts[1:3])
        except ValueError:
            raise ExploreError(f"--param {key}: bounds of {text!r} must be {kind} numbers") from None
        log = len(parts) == 4
        if not low < high or (log and low <= 0):
            raise ExploreError(f"--param {key}: need LOW < HIGH (and LOW > 0 for log), got {text!r}")
        return key, {"type": kind, "low": low, "high": high, "log": log}
    values = []
    for raw in text.split(","):
        if not raw.strip():
            raise ExploreError(f"--param {key}: empty value in {text!r}")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ExploreError(f"--param {key}: value {raw!r} cannot be read") from None
        if not (value is None or isinstance(value, (str, int, float, bool))):
            raise ExploreError(f"--param {key}: value {raw!r} must be a number, string or boolean")
        values.append(value)
    if len(set(map(repr, values))) != len(values):
        raise ExploreError(f"--param {key}: repeated value in {text!r}")
    return key, {"type": "choice", "values": values}


def check_param_name(key: str) -> None:
    if key in DERIVED:
        return
    if key not in SPEC or key in ("model.layers", "model.input_shape", "name", "description"):
        searchable = [k for k in SPEC if k.startswith(("data.", "train.", "runtime."))] + list(DERIVED)
        raise ExploreError(f"cannot search '{key}'; searchable keys: {', '.join(searchable)}")


def grid_points(space: dict) -> list[dict]:
    names = sorted(space)
    for name in names:
        if space[name]["type"] != "choice":
            raise ExploreError(f"--sampler grid needs a list of values for {name}, not a range; "
                               "use random or tpe for ranges")
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(space[n]["values"] for n in names))]


def suggest(trial, space: dict) -> dict:
    params = {}
    for name in sorted(space):
        dist = space[name]
        if dist["type"] == "choice":
            params[name] = trial.suggest_categorical(name, dist["values"])
        elif dist["type"] == "int":
            params[name] = trial.suggest_int(name, dist["low"], dist["high"], log=dist["log"])
        else:
            params[name] = trial.suggest_float(name, dist["low"], dist["high"], log=dist["log"])
    return params


# ---------------------------------------------------------------- config transformations


def apply_params(base: dict, params: dict) -> dict:
    """The base config with the trial's parameters applied and validated (ConfigError if not)."""
    config = copy.deepcopy(base)
    overrides = []
    for key, value in params.items():
        if key not in DERIVED:
            overrides.append(f"{key}={json.dumps(value)}")
            parse_override(overrides[-1])
    layers = config["model"]["layers"]
    for key in DERIVED:
        if key in params:
            value = params[key]
            if key == "train.decay":
                if not isinstance(value, (int, float)) or not 0 <= value < 1:
                    raise ConfigError(f"train.decay must be 0 (off) or a factor in (0, 1), got {value!r}")
                config["train"]["lr_decay"]["enabled"] = value > 0
                if value > 0:
                    config["train"]["lr_decay"]["factor"] = float(value)
            else:
                layers = _transform(key, layers, value)
    config["model"]["layers"] = layers
    return resolve_config(config, overrides)


def _positive_int(key, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{key} must be a non-negative integer, got {value!r}")
    return value


def _split(layers):
    """(layers before Flatten, Flatten and after); a model without Flatten is all head."""
    for i, layer in enumerate(layers):
        if layer["type"] in ("Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D"):
            return layers[:i], layers[i:]
    return layers, []


def _transform(key: str, layers: list, value) -> list:
    layers = copy.deepcopy(layers)
    head, tail = _split(layers)
    if key == "model.conv_blocks":
        n = _positive_int(key, value)
        convs = [i for i, layer in enumerate(head) if layer["type"] in CONV_TYPES]
        pools = [i for i, layer in enumerate(head) if layer["type"] in POOL_TYPES]
        if not convs:
            raise ConfigError("model.conv_blocks needs a config with a Conv2D layer before Flatten")
        conv = head[convs[0]]
        pool = head[pools[0]] if pools else None
        end = (pools[-1] if pools else convs[-1]) + 1
        blocks = []
        for i in range(n):
            layer = dict(conv)
            if "filters" in layer:
                layer["filters"] = int(conv["filters"]) * 2**i
            blocks += [layer] + ([dict(pool)] if pool else [])
        return head[: convs[0]] + blocks + head[end:] + tail
    if key == "model.conv_filters":
        n = _positive_int(key, value)
        convs = [layer for layer in head if layer["type"] in CONV_TYPES and "filters" in layer]
        if not convs or n == 0:
            raise ConfigError("model.conv_filters needs a positive value and a Conv2D layer before Flatten")
        scale = n / int(convs[0]["filters"])
        for layer in convs:
            layer["filters"] = max(1, int(round(int(layer["filters"]) * scale)))
        return head + tail
    if key in ("model.kernel_size", "model.pool_size"):
        n = _positive_int(key, value)
        types, arg = (CONV_TYPES, "kernel_size") if key == "model.kernel_size" else (POOL_TYPES, "pool_size")
        for layer in layers:
            if layer["type"] in types:
                layer[arg] = n
        return layers
    if key == "model.dropout":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ConfigError(f"model.dropout must be a rate in [0, 1), got {value!r}")
        for layer in layers:
            if layer["type"] in ("Dropout", "SpatialDropout2D"):
                layer["rate"] = float(value)
        return layers
    # dense layers after Flatten: tail = [Flatten, hidden..., output Dense (+ anything after)]
    if not tail:
        raise ConfigError(f"{key} needs a config with a Flatten layer")
    dense = [i for i, layer in enumerate(tail) if layer["type"] == "Dense"]
    if not dense:
        raise ConfigError(f"{key} needs a config with an output Dense layer after Flatten")
    out = dense[-1]
    hidden = tail[1:out]
    if key == "model.dense_units":
        n = _positive_int(key, value)
        for layer in hidden:
            if layer["type"] == "Dense":
                layer["units"] = n
        return head + tail
    n = _positive_int(key, value)  # model.dense_layers
    first = [i for i, layer in enumerate(hidden) if layer["type"] == "Dense"]
    if first:
        start = first[0]
        stop = first[1] if len(first) > 1 else len(hidden)
        template = hidden[start:stop]
    else:
        template = [{"type": "Dense", "units": 128, "activation": "relu"}]
    return head + tail[:1] + [dict(layer) for _ in range(n) for layer in template] + tail[out:]


# ---------------------------------------------------------------- the study


@dataclass
class StudySpec:
    """What a study searches; stored in the study so workers and resumes use the same."""

    config_path: str  # what --config named (a label; the resolved config is `base`)
    overrides: list
    base: dict  # the resolved base config: workers on other machines need no file
    space: dict
    sampler: str
    metric: str
    pruning: bool
    seed: int

    def to_json(self) -> dict:
        return dict(self.__dict__)


def default_storage(results_dir: Path, study: str) -> str:
    return f"sqlite:///{(Path(results_dir) / study / 'study.db').resolve()}"


def _storage(url: str):
    import optuna

    kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    except Exception as exc:  # SQLAlchemy/driver errors vary widely
        raise ExploreError(f"--storage {url}: cannot be opened ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def _sampler(spec: StudySpec, worker: int, n_existing: int):
    import optuna

    if spec.sampler == "grid":
        points = grid_points(spec.space)
        if len(points) > 1:
            space = {name: dist["values"] for name, dist in spec.space.items()}
            return optuna.samplers.GridSampler(space, seed=spec.seed)
        return optuna.samplers.RandomSampler(seed=spec.seed)
    # Distinct seeds per worker and per resume, so no two draws repeat one sequence.
    seed = spec.seed + 1000 * worker + n_existing
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)


def _pruner(spec: StudySpec):
    import optuna

    if not spec.pruning:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)


def pruning_callback(trial, monitor: str):
    """A Keras callback: report `monitor` each epoch; stop training when the pruner says so."""
    import keras

    class OptunaPruning(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.pruned_at: int | None = None
            self.value: float | None = None

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(monitor)
            if value is None:
                return
            trial.report(float(value), step=epoch + 1)
            if trial.should_prune():
                self.pruned_at, self.value = epoch + 1, float(value)
                self.model.stop_training = True

    return OptunaPruning()


def _params_of(t) -> dict:
    """A trial's parameters; a queued (waiting) trial has them only as fixed params."""
    return t.params or dict(t.system_attrs.get("fixed_params") or {})


def _is_interrupted(t) -> bool:
    import optuna

    return t.state == optuna.trial.TrialState.FAIL and bool(t.user_attrs.get("interrupted"))


def _plan(study, spec: StudySpec, n_trials: int | None) -> int:
    """Queue what this invocation must run; return how many trials that is."""
    import optuna

    states = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    waiting = [t for t in trials if t.state == states.WAITING]
    running = [t for t in trials if t.state == states.RUNNING]
    for t in trials:
        if _is_interrupted(t) and t.number not in retried and t.params:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
            waiting.append(t)
    if spec.sampler == "grid":
        taken = {json.dumps(_params_of(t), sort_keys=True) for t in study.get_trials(deepcopy=False)
                 if t.state in (states.COMPLETE, states.PRUNED, states.WAITING, states.RUNNING)
                 or (t.state == states.FAIL and not _is_interrupted(t))}
        points = grid_points(spec.space)
        if n_trials is not None:
            points = points[:n_trials]
        for point in points:
            if json.dumps(point, sort_keys=True) not in taken:
                study.enqueue_trial(point)
                waiting.append(point)
        return len(waiting)
    done = sum(1 for t in trials if t.state in (states.COMPLETE, states.PRUNED)
               or (t.state == states.FAIL and not _is_interrupted(t)))
    return max(len(waiting), (n_trials or 20) - done - len(running))


def run_study(
    study_name: str,
    spec: StudySpec | None,
    results_dir: str | Path = "results",
    data_dir: str | Path | None = None,
    storage: str | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    jobs: int = 1,
    verbose: int = 0,
    echo=print,
) -> dict:
    """Create or resume the study, run the planned trials (in `jobs` processes), write the summary."""
    import optuna

    results_dir = Path(results_dir)
    study_dir = results_dir / study_name
    if storage is None:
        try:
            study_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExploreError(f"{study_dir}: cannot be created ({exc.strerror}); pass a writable --results-dir") from None
        storage = default_storage(results_dir, study_name)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rdb = _storage(storage)
    existing = _existing_spec(rdb, study_name)
    if spec is None:
        if existing is None:
            raise ExploreError(f"study '{study_name}' does not exist in {storage}; give parameters to search "
                               "(--param KEY=..., or grid flags such as -r 0.001,0.01)")
        spec = StudySpec(**existing)
    elif existing is not None and existing != spec.to_json():
        raise ExploreError(f"study '{study_name}' exists with another search (config, --set, parameters, sampler "
                           "or metric); repeat its command, leave out the search flags to resume, or use another --study")
    base = load_base(spec)
    if spec.sampler == "grid":
        for point in grid_points(spec.space):
            apply_params(base, point)  # every grid point must be a valid config before anything runs
    study = optuna.create_study(study_name=study_name, storage=rdb, direction="maximize", load_if_exists=True,
                                sampler=_sampler(spec, 0, 0), pruner=_pruner(spec))
    if existing is None:
        study.set_user_attr(SPEC_ATTR, spec.to_json())
    planned = _plan(study, spec, n_trials)
    shares = [planned // jobs + (1 if i < planned % jobs else 0) for i in range(jobs)]
    shares = [s for s in shares if s] or [0]
    echo(f"study {study_name}: {planned} trial(s) to run in {len(shares)} process(es); storage {storage}")
    worker_args = dict(study_name=study_name, storage=storage, results_dir=str(results_dir),
                       data_dir=None if data_dir is None else str(data_dir), timeout=timeout,
                       verbose=verbose, threads=_threads(jobs))
    children = []
    try:
        if planned:
            import multiprocessing

            context = multiprocessing.get_context("spawn")
            for index, share in enumerate(shares[1:], start=1):
                child = context.Process(target=_worker_main, kwargs=dict(worker_args, worker=index, n_trials=share),
                                        daemon=False)
                child.start()
                children.append(child)
            _optimize(worker=0, n_trials=shares[0], **worker_args)
        for child in children:
            child.join()
    except KeyboardInterrupt:
        for child in children:
            child.join(timeout=60)
            if child.is_alive():
                child.terminate()
        raise ExploreInterrupted(
            f"study '{study_name}' interrupted; finished trials are saved in {storage}; "
            "run the same command again to resume"
        ) from None
    failed_workers = [c.exitcode for c in children if c.exitcode not in (0, None)]
    summary = write_summary(optuna.load_study(study_name=study_name, storage=rdb), study_dir)
    if failed_workers:
        summary["warning"] = f"{len(failed_workers)} worker process(es) exited with an error"
    return summary


def _threads(jobs: int) -> int:
    return 0 if jobs <= 1 else max(1, (os.cpu_count() or 1) // jobs)


def _existing_spec(rdb, study_name: str) -> dict | None:
    import optuna

    try:
        study = optuna.load_study(study_name=study_name, storage=rdb)
    except KeyError:
        return None
    return study.user_attrs.get(SPEC_ATTR)


def load_base(spec: StudySpec) -> dict:
    return resolve_config(copy.deepcopy(spec.base))


def make_spec(config: str | None, overrides, space: dict, sampler: str, metric: str, pruning: bool,
              seed: int = 0) -> StudySpec:
    """Validate a search before anything is written: config, overrides, parameter names."""
    from mnistexp.experiment.config import load_config
    from mnistexp.paths import default_config_path
    from mnistexp.zoo import resolve_config_arg

    if sampler not in SAMPLERS:
        raise ExploreError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    if metric not in METRICS:
        raise ExploreError(f"--metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if not space:
        raise ExploreError("nothing to search; give --param KEY=v1,v2 (or a range) or grid flags such as "
                           "-r 0.001,0.01 -b 64,128")
    for key in space:
        check_param_name(key)
    path = resolve_config_arg(config) if config else default_config_path()
    base = load_config(path, list(overrides))
    if metric == "val_accuracy" and not base["data"]["validation_split"]:
        raise ExploreError("--metric val_accuracy needs data.validation_split > 0 (the config has 0); "
                           "--set data.validation_split=0.1 or use --metric test_accuracy")
    if sampler == "grid":
        grid_points(space)
    return StudySpec(config_path=str(config or path), overrides=list(overrides), base=base, space=space,
                     sampler=sampler, metric=metric, pruning=pruning, seed=seed)


def _worker_main(**kwargs) -> None:
    """Entry point of a --jobs worker process."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        _optimize(**kwargs)
    except KeyboardInterrupt:
        pass


def _optimize(study_name, storage, results_dir, data_dir, timeout, verbose, threads, worker, n_trials) -> None:
    import optuna

    if n_trials <= 0:
        return
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rdb = _storage(storage)
    probe = optuna.load_study(study_name=study_name, storage=rdb)
    spec = StudySpec(**probe.user_attrs[SPEC_ATTR])
    study = optuna.load_study(study_name=study_name, storage=rdb, sampler=_sampler(spec, worker, len(probe.trials)),
                              pruner=_pruner(spec))
    base = load_base(spec)
    if threads:
        base["runtime"]["intra_op_threads"] = base["runtime"]["intra_op_threads"] or threads
    objective = Objective(study_name, spec, base, Path(results_dir) / study_name / "runs", data_dir, verbose)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
        study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=(TrialFailed,), callbacks=[_report])


def _report(study, trial) -> None:
    """One line per finished trial (Optuna's own logging is turned down to errors)."""
    params = " ".join(f"{k}={v}" for k, v in trial.params.items())
    state = trial.state.name.lower()
    if trial.value is not None:
        state += f" {study.user_attrs.get(SPEC_ATTR, {}).get('metric', 'value')}={trial.value:.4f}"
    elif trial.user_attrs.get("interrupted"):
        state = "interrupted"
    elif trial.user_attrs.get("error"):
        state += f" ({trial.user_attrs['error']})"
    print(f"trial {trial.number}: {state}  {params}", flush=True)


class TrialFailed(RuntimeError):
    """A trial whose config or run failed; the study goes on."""


class Objective:
    def __init__(self, study_name, spec: StudySpec, base: dict, runs_dir: Path, data_dir, verbose: int):
        self.study_name, self.spec, self.base = study_name, spec, base
        self.runs_dir, self.data_dir, self.verbose = runs_dir, data_dir, verbose

    def __call__(self, trial) -> float:
        import optuna

        from mnistexp.adapters.local import LocalAdapter
        from mnistexp.errors import user_errors
        from mnistexp.runner import RunInterrupted, run_experiment

        params = suggest(trial, self.spec.space)
        try:
            config = apply_params(self.base, params)
        except ConfigError as exc:
            trial.set_user_attr("error", str(exc))
            raise TrialFailed(str(exc)) from None
        monitor = self.spec.metric if self.spec.metric.startswith("val_") else "val_accuracy"
        pruner = pruning_callback(trial, monitor) if self.spec.pruning else None
        tags = {"study": self.study_name, "trial": str(trial.number), "sampler": self.spec.sampler}
        try:
            result = run_experiment(config, LocalAdapter(), self.runs_dir, self.data_dir, verbose=self.verbose,
                                    tags=tags, extra_callbacks=[pruner] if pruner else None)
        except (RunInterrupted, KeyboardInterrupt) as exc:
            trial.set_user_attr("interrupted", True)
            if isinstance(exc, RunInterrupted):
                trial.set_user_attr("run_dir", str(exc.run_dir))
            raise KeyboardInterrupt from None
        except user_errors() + (Exception,) as exc:
            line = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            trial.set_user_attr("error", line)
            raise TrialFailed(line) from None
        trial.set_user_attr("run_dir", str(result.run_dir))
        trial.set_user_attr("run_id", result.record["run_id"])
        if pruner is not None and pruner.pruned_at is not None:
            _mark_pruned(result.run_dir, pruner.pruned_at, monitor, pruner.value)
            raise optuna.TrialPruned(f"pruned after epoch {pruner.pruned_at}")
        value = result.record["metrics"].get(METRIC_KEYS[self.spec.metric])
        if value is None or (isinstance(value, float) and math.isnan(value)):
            line = f"run has no {self.spec.metric} (set data.validation_split > 0 or use --metric test_accuracy)"
            trial.set_user_attr("error", line)
            raise TrialFailed(line)
        return float(value)


def _mark_pruned(run_dir: Path, epoch: int, monitor: str, value) -> None:
    """A pruned trial's run stopped early: its record says so (status interrupted, not completed)."""
    from mnistexp.experiment.record import RECORD_NAME, read_record, write_record

    record = read_record(Path(run_dir) / RECORD_NAME)
    record["status"] = "interrupted"
    record["error"] = f"pruned by the study's median pruner after epoch {epoch} ({monitor} {value:.4f})"
    record["tags"]["trial_state"] = "pruned"
    write_record(run_dir, record)


# ---------------------------------------------------------------- summary


def write_summary(study, study_dir: Path) -> dict:
    """summary.json, trials.csv and optimization_history.png in results/<study>/."""
    import optuna

    from mnistexp.experiment.record import utc_now, write_json_atomic, write_text_atomic

    states = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False)
    counts = {state.name.lower(): sum(1 for t in trials if t.state == state) for state in states}
    complete = [t for t in trials if t.state == states.COMPLETE]
    best = None
    if complete:
        t = study.best_trial
        best = {"number": t.number, "value": t.value, "params": t.params,
                "run_dir": t.user_attrs.get("run_dir"), "run_id": t.user_attrs.get("run_id")}
    importances = None
    if len(complete) >= 2:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                importances = {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
        except (RuntimeError, ValueError):
            importances = None  # e.g. every parameter constant across the finished trials
    spec = study.user_attrs.get(SPEC_ATTR, {})
    summary = {
        "study": study.study_name,
        "created_at": utc_now(),
        "metric": spec.get("metric"),
        "direction": "maximize",
        "sampler": spec.get("sampler"),
        "search_space": spec.get("space"),
        "config": spec.get("config_path"),
        "overrides": spec.get("overrides"),
        "trials": counts,
        "best_trial": best,
        "param_importances": importances,
        "all_trials": [
            {"number": t.number, "state": t.state.name.lower(), "value": t.value, "params": t.params,
             "run_dir": t.user_attrs.get("run_dir"), "error": t.user_attrs.get("error"),
             "interrupted": bool(t.user_attrs.get("interrupted")), "retry_of": t.user_attrs.get("retry_of")}
            for t in trials
        ],
    }
    study_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(study_dir / "summary.json", summary)
    lines = ["number,state,value," + ",".join(sorted(spec.get("space", {})))]
    for t in trials:
        values = [json.dumps(t.params.get(name, "")) for name in sorted(spec.get("space", {}))]
        lines.append(",".join([str(t.number), t.state.name.lower(), "" if t.value is None else repr(t.value), *values]))
    write_text_atomic(study_dir / "trials.csv", "\n".join(lines) + "\n")
    if complete:
        _plot_history(study, study_dir / "optimization_history.png")
        summary["plot"] = str(study_dir / "optimization_history.png")
    return summary


def _plot_history(study, path: Path) -> None:
    import optuna

    from mnistexp.artifacts import _pyplot, save_figure

    _pyplot()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
        ax = optuna.visualization.matplotlib.plot_optimization_history(study)
    fig = ax.figure
    fig.set_size_inches(7, 4)
    save_figure(fig, path)
