"""The study: its stored spec, the plan of trials to run, the worker processes and the objective.

Parallel trials (--jobs N) run in N separate processes that share the storage, not in
Optuna's thread pool: TensorFlow/Keras keep process-global state (random seeds, op
determinism, thread pools, the Keras graph/name scope), so concurrent model.fit calls in
threads of one process interfere and gain nothing under the GIL; processes are isolated
and each gets cores/N TensorFlow threads.
"""

from __future__ import annotations

import copy
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from mnistexp.experiment.config import ConfigError, resolve_config

from .params import (
    METRIC_KEYS,
    METRICS,
    SAMPLERS,
    ExploreError,
    ExploreInterrupted,
    apply_params,
    check_param_name,
    grid_points,
    suggest,
)
from .records import mark_pruned
from .storage import (
    SPEC_ATTR,
    claim_waiting,
    default_storage,
    existing_spec,
    make_pruner,
    make_sampler,
    open_storage,
    storage_lock,
)
from .summary import write_summary


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


def load_base(spec: StudySpec) -> dict:
    return resolve_config(copy.deepcopy(spec.base))


def pruning_callback(trial, monitor: str):
    """A Keras callback: report `monitor` each epoch; stop training when the pruner says so.

    A trial that has finished its last epoch is never pruned: stopping it saves nothing,
    and a completed run must not be recorded as interrupted.
    """
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
            last = epoch + 1 >= (self.params or {}).get("epochs", math.inf)
            if not last and trial.should_prune():
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
    platform: str = "local",
    adapter_options: dict | None = None,
) -> dict:
    """Create or resume the study, run the planned trials (in `jobs` processes), write the summary.

    platform/adapter_options: the run-here platform every trial of this invocation runs on
    (not part of the stored search: machines of one study may log to different platforms).
    """
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
    rdb = open_storage(storage)
    existing = existing_spec(rdb, study_name)
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
                                sampler=make_sampler(spec, 0, 0), pruner=make_pruner(spec))
    if existing is None:
        study.set_user_attr(SPEC_ATTR, spec.to_json())
    with storage_lock(rdb, study_name):  # machines starting together must not queue a grid point twice
        planned = _plan(study, spec, n_trials)
    shares = [planned // jobs + (1 if i < planned % jobs else 0) for i in range(jobs)]
    shares = [s for s in shares if s] or [0]
    echo(f"study {study_name}: {planned} trial(s) to run in {len(shares)} process(es) on {platform}; "
         f"storage {_shown(storage)}")
    worker_args = dict(study_name=study_name, storage=storage, results_dir=str(results_dir),
                       data_dir=None if data_dir is None else str(data_dir), timeout=timeout,
                       verbose=verbose, threads=_threads(jobs), platform=platform,
                       adapter_options=dict(adapter_options or {}))
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
            f"study '{study_name}' interrupted; finished trials are saved in {_shown(storage)}; "
            "run the same command again to resume"
        ) from None
    failed_workers = [c.exitcode for c in children if c.exitcode not in (0, None)]
    summary = write_summary(optuna.load_study(study_name=study_name, storage=rdb), study_dir)
    if failed_workers:
        summary["warning"] = f"{len(failed_workers)} worker process(es) exited with an error"
    return summary


def _shown(url: str) -> str:
    from .storage import _redact

    return _redact(url)


def _threads(jobs: int) -> int:
    return 0 if jobs <= 1 else max(1, (os.cpu_count() or 1) // jobs)


def _worker_main(**kwargs) -> None:
    """Entry point of a --jobs worker process."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        _optimize(**kwargs)
    except KeyboardInterrupt:
        pass


def _optimize(study_name, storage, results_dir, data_dir, timeout, verbose, threads, worker, n_trials,
              platform="local", adapter_options=None) -> None:
    import optuna

    from mnistexp.tfenv import import_keras_quietly

    if n_trials <= 0:
        return
    # Before the first trial's pruning callback imports Keras: TF's start-up chatter goes nowhere.
    import_keras_quietly()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rdb = open_storage(storage)
    probe = optuna.load_study(study_name=study_name, storage=rdb)
    spec = StudySpec(**probe.user_attrs[SPEC_ATTR])
    study = optuna.load_study(study_name=study_name, storage=rdb, sampler=make_sampler(spec, worker, len(probe.trials)),
                              pruner=make_pruner(spec))
    base = load_base(spec)
    if threads:
        base["runtime"]["intra_op_threads"] = base["runtime"]["intra_op_threads"] or threads
    objective = Objective(study_name, spec, base, Path(results_dir) / study_name / "runs", data_dir, verbose,
                          platform, adapter_options or {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
        if spec.sampler == "grid":
            # Only the queued points: Optuna's optimize() would create (and sample) a new trial when
            # another worker took the last queued one, i.e. run a grid point twice.
            queued = optuna.load_study(study_name=study_name, storage=rdb,
                                       sampler=optuna.samplers.RandomSampler(seed=spec.seed), pruner=make_pruner(spec))
            _run_queued(queued, rdb, objective, timeout)
        else:
            study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=(TrialFailed,), callbacks=[_report])


def _run_queued(study, rdb, objective, timeout: float | None) -> None:
    """Run waiting trials until none is left, each claimed atomically (several workers, one queue)."""
    import time

    import optuna

    states = optuna.trial.TrialState
    study_id = rdb.get_study_id_from_name(study.study_name)
    started = time.monotonic()
    while timeout is None or time.monotonic() - started < timeout:
        trial_id = claim_waiting(rdb, study_id)
        if trial_id is None:
            return
        study.get_trials(deepcopy=False)  # the study's storage cache learns of the claimed trial
        trial = optuna.trial.Trial(study, trial_id)
        try:
            value = objective(trial)
        except optuna.TrialPruned:
            study.tell(trial, state=states.PRUNED)
        except TrialFailed:
            study.tell(trial, state=states.FAIL)
        except BaseException:  # Ctrl-C or a crash: the trial is over, the exception goes on
            study.tell(trial, state=states.FAIL)
            raise
        else:
            study.tell(trial, value)
        _report(study, rdb.get_trial(trial_id))


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
    def __init__(self, study_name, spec: StudySpec, base: dict, runs_dir: Path, data_dir, verbose: int,
                 platform: str = "local", adapter_options: dict | None = None):
        self.study_name, self.spec, self.base = study_name, spec, base
        self.runs_dir, self.data_dir, self.verbose = runs_dir, data_dir, verbose
        self.platform, self.adapter_options = platform, dict(adapter_options or {})

    def __call__(self, trial) -> float:
        import optuna

        from mnistexp import adapters
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
            # A fresh adapter per trial: adapters hold the state of one run (its experiment, its folder).
            adapter = adapters.adapter_class(self.platform)(**self.adapter_options)
            result = run_experiment(config, adapter, self.runs_dir, self.data_dir, verbose=self.verbose,
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
            mark_pruned(result.run_dir, pruner.pruned_at, monitor, pruner.value)
            raise optuna.TrialPruned(f"pruned after epoch {pruner.pruned_at}")
        value = result.record["metrics"].get(METRIC_KEYS[self.spec.metric])
        if value is None or (isinstance(value, float) and math.isnan(value)):
            line = f"run has no {self.spec.metric} (set data.validation_split > 0 or use --metric test_accuracy)"
            trial.set_user_attr("error", line)
            raise TrialFailed(line)
        return float(value)
