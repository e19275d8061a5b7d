"""Seed studies: one experiment over several seeds, as parallel processes, here or on many machines.

    mnistexp run --seeds 1-5                         this machine, --jobs processes at a time
    mnistexp run --seeds 1-20 --study s --storage postgresql://...   started on N machines

Each seed is an ordinary run (results/<run-id>/record.json, tagged study=<name>), trained
in a fresh child process (`python -m mnistexp.study`): TensorFlow keeps process-global
state (seeds, determinism, thread pools), so one process per seed keeps seeds independent
and reproducible. The parent never imports TensorFlow: it loads the data once (filling
the decoded-data cache the children then read), splits the machine's cores between the
children's TensorFlow thread pools, shows progress and stops the children on Ctrl-C.

Children run in their own session, so a terminal Ctrl-C reaches only the parent, which
sends each child exactly one SIGINT: a second signal could land while a child is writing
its final record, and each record must end `interrupted` or `completed`, never `running`.

With --storage, the seeds are the trials of one Optuna study in that RDB storage
(explore's mechanism): the process that creates the study queues one trial per seed;
every worker claims a waiting trial atomically (Optuna's own compare-and-set from WAITING
to RUNNING, a row lock on PostgreSQL), so each seed runs on exactly one machine. An
interrupted seed goes back to WAITING for the next worker; a failed seed stays failed.
"""

from __future__ import annotations

import copy
import json
import os
import queue as queue_module
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from mnistexp.runner import RunError

SEEDS_ATTR = "mnistexp_seed_study"  # study user attribute: what the seed study runs
READY_ATTR = "mnistexp_seeds_queued"  # set once every seed's trial is queued
PROTOCOL_PREFIX = "@mnistexp-study "
MAX_SEEDS = 10_000


class StudyError(RunError):
    """A seed study that cannot start; one line for the user."""


def parse_seeds(text: str) -> list[int]:
    """`1-5`, `1,2,7` or both mixed (`1-3,10`): distinct non-negative seeds, in the order given."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not match:
            raise StudyError(f"--seeds: '{part}' is not a seed or a range; write e.g. 1-5 or 1,2,7 (or 1-3,10)")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if high < low:
            raise StudyError(f"--seeds: range '{part}' runs backwards; write {high}-{low}")
        if len(seeds) + high - low + 1 > MAX_SEEDS:
            raise StudyError(f"--seeds: more than {MAX_SEEDS:,} seeds; split the study")
        seeds.extend(range(low, high + 1))
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise StudyError(f"--seeds: seed {repeated[0]} is listed twice; each seed runs once")
    return seeds


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_jobs(n_seeds: int, cores: int | None = None) -> int:
    return max(1, min(n_seeds, cores or cpu_count()))


def split_threads(runtime: dict, jobs: int, cores: int | None = None) -> dict:
    """The runtime settings of each child: the cores shared out, unless the config set threads."""
    runtime = dict(runtime)
    if jobs > 1:
        cores = cores or cpu_count()
        if not runtime.get("intra_op_threads"):
            runtime["intra_op_threads"] = max(1, cores // jobs)
        if not runtime.get("inter_op_threads"):
            # One op at a time per process: the other processes keep the other cores busy.
            runtime["inter_op_threads"] = 1
    return runtime


def default_study_name(config: dict) -> str:
    return f"{config.get('name', 'custom')}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"


@dataclass
class SeedStudy:
    name: str
    seeds: list[int]
    config: dict  # resolved; train.seed is set per child
    platform: str = "local"
    adapter_options: dict = field(default_factory=dict)
    results_dir: str = "results"
    data_dir: str | None = None
    tags: dict = field(default_factory=dict)
    jobs: int = 1
    storage: str | None = None


@dataclass
class SeedOutcome:
    seed: int
    status: str  # completed / failed / interrupted / not started
    run_dir: str | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    seconds: float | None = None
    error: str | None = None


@dataclass
class StudyResult:
    name: str
    outcomes: list[SeedOutcome]
    interrupted: bool = False
    storage_counts: dict | None = None  # with --storage: the whole study's trials by state
    left: list[int] = field(default_factory=list)  # seeds still waiting (not started)

    @property
    def failed(self) -> list[SeedOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


# ---------------------------------------------------------------- where the seeds come from


class LocalSeeds:
    """The seeds of this invocation, handed out in order."""

    def __init__(self, seeds: list[int]):
        self.pending = list(seeds)

    def claim(self):
        return (self.pending.pop(0), None) if self.pending else None

    def finish(self, ticket, outcome: SeedOutcome) -> None:
        pass

    def left(self) -> list[int]:
        return list(self.pending)

    def counts(self) -> dict | None:
        return None


class StorageSeeds:
    """The seeds as trials of one Optuna study in an RDB storage, shared by every machine."""

    def __init__(self, study: SeedStudy, wait_s: float = 60.0):
        import optuna

        from mnistexp.experiment.record import config_hash, experiment_part
        from mnistexp.explore.storage import SPEC_ATTR, open_storage

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        self.optuna = optuna
        self.storage_url = study.storage
        self.rdb = open_storage(study.storage)
        spec = {"kind": "seeds", "seeds": list(study.seeds), "platform": study.platform,
                "config_name": study.config.get("name"),
                "experiment_hash": config_hash(experiment_part(study.config))}
        try:
            optuna.create_study(study_name=study.name, storage=self.rdb, direction="maximize")
            created = True  # the study name's unique constraint makes exactly one process the creator
        except optuna.exceptions.DuplicatedStudyError:
            created = False
        self.study = optuna.load_study(study_name=study.name, storage=self.rdb)
        self.study_id = self.rdb.get_study_id_from_name(study.name)
        if created:
            self.study.set_user_attr(SEEDS_ATTR, spec)
            for seed in study.seeds:
                self.study.enqueue_trial({}, user_attrs={"seed": seed})
            self.study.set_user_attr(READY_ATTR, True)
            return
        deadline = time.monotonic() + wait_s
        while True:
            attrs = self.study.user_attrs
            if SPEC_ATTR in attrs:
                raise StudyError(f"study '{study.name}' in --storage is an explore study; give the seed study "
                                 "another --study name")
            stored = attrs.get(SEEDS_ATTR)
            if stored is not None and stored != spec:
                raise StudyError(
                    f"study '{study.name}' exists with another seed study (seeds {_seed_text(stored['seeds'])}, "
                    f"platform {stored['platform']}, config '{stored['config_name']}'); start every machine with "
                    "the same command, or use another --study")
            if attrs.get(READY_ATTR):
                return
            if time.monotonic() > deadline:
                raise StudyError(f"study '{study.name}' exists but its seeds were never queued (its creator "
                                 "stopped early); use another --study name")
            time.sleep(0.5)

    def claim(self):
        """A waiting seed's trial, now RUNNING for this worker alone; None when none waits."""
        from mnistexp.explore.storage import claim_waiting

        trial_id = claim_waiting(self.rdb, self.study_id)
        if trial_id is None:
            return None
        return int(self.rdb.get_trial(trial_id).user_attrs["seed"]), trial_id

    def finish(self, trial_id, outcome: SeedOutcome) -> None:
        states = self.optuna.trial.TrialState
        for key, value in (("run_dir", outcome.run_dir), ("error", outcome.error),
                           ("host", _host()), ("status", outcome.status)):
            if value is not None:
                self.rdb.set_trial_user_attr(trial_id, key, value)
        if outcome.status == "completed" and outcome.test_accuracy is not None:
            self.rdb.set_trial_state_values(trial_id, state=states.COMPLETE, values=[outcome.test_accuracy])
        elif outcome.status in ("interrupted", "not started"):
            self.rdb.set_trial_state_values(trial_id, state=states.WAITING)  # the next worker reruns it
        else:
            self.rdb.set_trial_state_values(trial_id, state=states.FAIL)

    def left(self) -> list[int]:
        states = self.optuna.trial.TrialState
        return sorted(int(t.user_attrs["seed"]) for t in
                      self.rdb.get_all_trials(self.study_id, deepcopy=False, states=(states.WAITING,)))

    def counts(self) -> dict:
        counts: dict[str, int] = {}
        for trial in self.rdb.get_all_trials(self.study_id, deepcopy=False):
            state = trial.state.name.lower()
            counts[state] = counts.get(state, 0) + 1
        return counts


def _host() -> str:
    from mnistexp.compare.load import this_host

    return this_host()


def _seed_text(seeds: list[int]) -> str:
    """1,2,3,5 -> '1-3,5'."""
    parts, start = [], None
    ordered = sorted(seeds)
    for i, seed in enumerate(ordered):
        if start is None:
            start = seed
        if i + 1 == len(ordered) or ordered[i + 1] != seed + 1:
            parts.append(str(start) if start == seed else f"{start}-{seed}")
            start = None
    return ",".join(parts)


# ---------------------------------------------------------------- the parent


def preload(study: SeedStudy) -> None:
    """Check and load the data once, before any child starts: bad data stops the study here, and
    the children read the decoded-data cache instead of decoding and verifying it again."""
    from mnistexp import adapters
    from mnistexp.adapters.base import Adapter

    adapter_cls = adapters.adapter_class(study.platform)
    adapter = adapter_cls(**study.adapter_options)
    adapter.preflight(study.config, study.data_dir)
    # Only the standard data path is shared; a platform with its own splits (OpenML's task
    # folds) or its own executor (BEAT) loads its data in each child.
    if adapter.trains_here and adapter_cls.splits is Adapter.splits:
        Adapter.load_data(adapter, study.config, study.data_dir)


class _Child:
    """One seed's process: `python -m mnistexp.study` with its job on stdin, events on stdout."""

    def __init__(self, study: SeedStudy, seed: int, ticket, events: queue_module.Queue):
        self.seed, self.ticket = seed, ticket
        self.started = time.monotonic()
        self.outcome: SeedOutcome | None = None
        self.epochs_seen = 0
        self.signalled = 0
        config = copy.deepcopy(study.config)
        config["train"]["seed"] = seed
        job = {"config": config, "platform": study.platform, "adapter_options": study.adapter_options,
               "results_dir": str(study.results_dir), "data_dir": study.data_dir,
               "tags": {**study.tags, "study": study.name}}
        self.stderr = tempfile.TemporaryFile()
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mnistexp.study"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.stderr, env=env, start_new_session=True,
        )
        self.proc.stdin.write(json.dumps(job, default=str).encode())
        self.proc.stdin.close()
        self.reader = threading.Thread(target=self._read, args=(events,), daemon=True)
        self.reader.start()

    def _read(self, events):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            if line.startswith(PROTOCOL_PREFIX):
                try:
                    events.put((self.seed, json.loads(line[len(PROTOCOL_PREFIX):])))
                except ValueError:
                    pass

    def signal(self, signum) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signum)
            except ProcessLookupError:
                pass

    def collect(self) -> SeedOutcome:
        """After the process ended: its outcome (from its last event, else from its exit)."""
        self.reader.join(timeout=5)
        if self.outcome is None:
            self.stderr.seek(0)
            tail = [line for line in self.stderr.read().decode(errors="replace").splitlines() if line.strip()]
            code = self.proc.returncode
            why = f"exit status {code}" if code is not None and code >= 0 else f"killed by signal {-(code or 0)}"
            self.outcome = SeedOutcome(self.seed, "failed", error=f"the run process ended ({why})"
                                       + (f": {tail[-1][:300]}" if tail else ""))
        self.stderr.close()
        return self.outcome


def run_seed_study(study: SeedStudy, report=print, live: bool = False) -> StudyResult:
    """Run the study's seeds, `study.jobs` processes at a time; Ctrl-C stops them all.

    report(line): one line per finished seed. live: show a rich progress bar (a terminal).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    preload(study)  # bad data or a platform pre-flight failure stops the study before it is stored
    source = StorageSeeds(study) if study.storage else LocalSeeds(study.seeds)
    epochs = int(study.config["train"]["epochs"])
    events: queue_module.Queue = queue_module.Queue()
    active: dict[int, _Child] = {}
    outcomes: list[SeedOutcome] = []
    interrupted = False
    progress = Progress(TextColumn("study {task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("epochs  {task.fields[seeds]}"), TimeElapsedColumn(),
                        disable=not live, transient=False)
    say = (lambda line: progress.console.print(line, markup=False, highlight=False)) if live else report
    task = progress.add_task(study.name, total=epochs * len(study.seeds), seeds="")

    def status_text():
        done = sum(1 for o in outcomes if o.status == "completed")
        return f"{done} done, {len(active)} running"

    def drain(timeout: float):
        try:
            seed, event = events.get(timeout=timeout)
        except queue_module.Empty:
            return
        child = active.get(seed)
        if child is None:
            return
        if event.get("event") == "epoch":
            child.epochs_seen += 1
            if child.epochs_seen <= epochs:
                progress.advance(task)
        elif event.get("event") == "done":
            child.outcome = SeedOutcome(seed, event["status"], event.get("run_dir"), event.get("test_accuracy"),
                                        event.get("test_loss"), event.get("seconds"), event.get("error"))

    def reap():
        for seed, child in list(active.items()):
            if child.proc.poll() is None:
                continue
            while not events.empty():
                drain(0)
            outcome = child.collect()
            if outcome.seconds is None:
                outcome.seconds = time.monotonic() - child.started
            del active[seed]
            outcomes.append(outcome)
            progress.advance(task, max(0, epochs - child.epochs_seen))
            source.finish(child.ticket, outcome)
            say(seed_line(outcome))
            progress.update(task, seeds=status_text())

    previous = _sigterm_as_interrupt()
    try:
        with progress:
            while True:
                while len(active) < study.jobs:
                    claimed = source.claim()
                    if claimed is None:
                        break
                    seed, ticket = claimed
                    active[seed] = _Child(study, seed, ticket, events)
                    progress.update(task, seeds=status_text())
                if not active:
                    break
                drain(0.2)
                reap()
    except KeyboardInterrupt:
        interrupted = True
        say(f"Stopping {len(active)} running seed(s); each writes its record as interrupted ...")
        _stop(active, drain, reap)
    finally:
        _restore_sigterm(previous)
    return StudyResult(study.name, sorted(outcomes, key=lambda o: o.seed), interrupted,
                       source.counts() if study.storage else None, source.left())


def _stop(active: dict, drain, reap, grace_s: float = 60.0) -> None:
    """One SIGINT per child, then wait; a second Ctrl-C (or the grace time) escalates to SIGTERM,
    a third to SIGKILL (that child's record is then left `running`, and compare calls it abandoned)."""
    for child in active.values():
        child.signal(signal.SIGINT)
        child.signalled = 1
    deadline = time.monotonic() + grace_s
    while active:
        try:
            drain(0.1)
            reap()
            if time.monotonic() > deadline:
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            for child in active.values():
                child.signalled += 1
                child.signal(signal.SIGTERM if child.signalled == 2 else signal.SIGKILL)
            deadline = time.monotonic() + grace_s / 4


def _sigterm_as_interrupt():
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


def _restore_sigterm(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def seed_line(o: SeedOutcome) -> str:
    head = f"seed {o.seed}: {o.status}"
    if o.test_accuracy is not None:
        head += f"  test accuracy {o.test_accuracy:.4f}  loss {o.test_loss:.4f}"
    if o.seconds is not None:
        head += f"  {o.seconds:.1f} s"
    if o.run_dir:
        head += f"  {o.run_dir}"
    if o.error and o.status != "completed":
        head += f"  ({o.error})"
    return head


def summary_lines(result: StudyResult) -> list[str]:
    import statistics

    counts: dict[str, int] = {}
    for o in result.outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    text = ", ".join(f"{n} {status}" for status, n in counts.items()) or "no seed run here"
    lines = [f"study {result.name}: {text}"]
    accs = [o.test_accuracy for o in result.outcomes if o.status == "completed" and o.test_accuracy is not None]
    if accs:
        spread = f" ± {statistics.stdev(accs):.4f} (sample std)" if len(accs) > 1 else ""
        lines.append(f"test accuracy {statistics.fmean(accs):.4f}{spread} over {len(accs)} seed(s); "
                     f"min {min(accs):.4f}, max {max(accs):.4f}")
    if result.storage_counts is not None:
        whole = ", ".join(f"{n} {state}" for state, n in sorted(result.storage_counts.items()))
        lines.append(f"whole study in storage: {whole}")
    if result.left:
        lines.append(f"not run yet: seeds {_seed_text(result.left)}")
    lines.append(f"compare them: mnistexp compare --filter tags.study={result.name}")
    return lines


# ---------------------------------------------------------------- the child


def child_main() -> int:
    """One seed: the job (JSON) on stdin; events as prefixed JSON lines on the original stdout.

    Everything else the run prints (Keras, platform SDKs) goes to stderr, which the parent
    keeps for the error line of a crashed run.
    """
    job = json.loads(sys.stdin.read())
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    seed = job["config"]["train"]["seed"]

    def send(**event):
        protocol.write(PROTOCOL_PREFIX + json.dumps({"seed": seed, **event}) + "\n")

    started = time.monotonic()
    try:
        from mnistexp import adapters
        from mnistexp.errors import user_errors
        from mnistexp.runner import RunInterrupted, run_experiment
        from mnistexp.tfenv import import_keras_quietly

        adapter = adapters.adapter_class(job["platform"])(**job["adapter_options"])
        import_keras_quietly(job["config"]["runtime"])
        result = run_experiment(job["config"], adapter, job["results_dir"], job["data_dir"], verbose=0,
                                tags=job["tags"], extra_callbacks=[_epoch_events(send)])
    except RunInterrupted as exc:
        send(event="done", status="interrupted", run_dir=str(exc.run_dir) if exc.run_dir else None,
             seconds=time.monotonic() - started, error=exc.reason)
        return 130
    except KeyboardInterrupt:
        send(event="done", status="interrupted", seconds=time.monotonic() - started,
             error="interrupted before the run started; nothing was written")
        return 130
    except user_errors() + (Exception,) as exc:
        text = str(exc).splitlines()[0] if str(exc) else ""
        send(event="done", status="failed", seconds=time.monotonic() - started,
             error=f"{type(exc).__name__}: {text}" if not isinstance(exc, user_errors()) else text)
        return 1
    metrics = result.record["metrics"]
    send(event="done", status=result.record["status"], run_dir=str(result.run_dir),
         test_accuracy=metrics.get("test_accuracy"), test_loss=metrics.get("test_loss"),
         seconds=time.monotonic() - started)
    for line in adapter.messages:
        print(line, file=sys.stderr)
    return 0


def _epoch_events(send):
    import keras

    class EpochEvents(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            send(event="epoch", epoch=epoch + 1)

    return EpochEvents()


if __name__ == "__main__":
    sys.exit(child_main())
