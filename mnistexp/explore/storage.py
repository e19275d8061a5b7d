"""Optuna storage, samplers and pruner of a study: what several processes or machines share.

The study's storage is an Optuna RDB storage (SQLite by default, any SQLAlchemy URL such
as postgresql://user@host/db for several machines). Seed studies (mnistexp.study) use the
same opener.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

from .params import ExploreError, grid_points

SPEC_ATTR = "mnistexp_spec"  # study user attribute: the search (StudySpec.to_json())


def default_storage(results_dir: Path, study: str) -> str:
    return f"sqlite:///{(Path(results_dir) / study / 'study.db').resolve()}"


def open_storage(url: str):
    """An Optuna RDBStorage, or one line naming --storage and why it cannot be opened."""
    import optuna

    # SQLite: wait for another process's write lock instead of failing; server databases:
    # check pooled connections before use (a worker may sit idle for a whole trial).
    kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    import sqlalchemy.exc

    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(with_driver(url), engine_kwargs=kwargs)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError, sqlalchemy.exc.OperationalError) as exc:
            # Workers started together on a new database race to create Optuna's tables; the
            # loser's CREATE fails (PostgreSQL: on its catalog; SQLite: "table ... already
            # exists"), and the tables exist a moment later.
            if isinstance(exc, sqlalchemy.exc.OperationalError) and "already exists" not in str(exc):
                raise ExploreError(f"--storage {_redact(url)}: cannot be opened (OperationalError: "
                                   f"{_redact(str(exc).splitlines()[0])}); check the URL, that the server "
                                   "runs and that its driver is installed") from None
            if attempt == 4:
                raise ExploreError(f"--storage {_redact(url)}: Optuna's tables could not be created") from None
            time.sleep(0.5 + attempt)
        except Exception as exc:  # SQLAlchemy/driver errors vary widely
            raise ExploreError(f"--storage {_redact(url)}: cannot be opened ({type(exc).__name__}: "
                               f"{_redact(str(exc).splitlines()[0]) if str(exc) else ''}); check the URL, "
                               "that the server runs and that its driver is installed") from None
    raise AssertionError("unreachable")


def with_driver(url: str) -> str:
    """postgresql://... with the PostgreSQL driver that is installed: SQLAlchemy 2.1 reads a bare
    postgresql:// as psycopg 3, while the dev extra installs psycopg2 (psycopg2-binary)."""
    import importlib.util

    if url.startswith(("postgresql://", "postgres://")) and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def _redact(text: str) -> str:
    """A database URL's password never reaches a message: scheme://user:***@host."""
    import re

    return re.sub(r"(://[^:/@\s]+):[^@\s]*@", r"\1:***@", text)


def existing_spec(rdb, study_name: str, attr: str = SPEC_ATTR) -> dict | None:
    import optuna

    try:
        study = optuna.load_study(study_name=study_name, storage=rdb)
    except KeyError:
        return None
    return study.user_attrs.get(attr)


def make_sampler(spec, worker: int, n_existing: int):
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


def make_pruner(spec):
    import optuna

    if not spec.pruning:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)


def claim_waiting(rdb, study_id: int) -> int | None:
    """Take one WAITING trial for this worker alone (WAITING -> RUNNING is a compare-and-set
    under a row lock in Optuna's RDB storage); its id, or None when none waits."""
    import optuna

    states = optuna.trial.TrialState
    for trial in rdb.get_all_trials(study_id, deepcopy=False, states=(states.WAITING,)):
        trial_id = rdb.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            if rdb.set_trial_state_values(trial_id, state=states.RUNNING):
                return trial_id
        except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError):
            continue  # another worker took it first
    return None


@contextmanager
def storage_lock(rdb, name: str, wait_s: float = 120.0):
    """A mutex over any RDB storage, for planning a study: holding it = owning the study name
    `<name>.lock` (study names are unique in the storage, so creating one is atomic). A lock
    older than wait_s (its holder died) is broken."""
    import optuna

    lock = f"{name}.lock"
    deadline = time.monotonic() + wait_s
    while True:
        try:
            rdb.create_new_study(directions=[optuna.study.StudyDirection.MAXIMIZE], study_name=lock)
            break
        except optuna.exceptions.DuplicatedStudyError:
            if time.monotonic() > deadline:
                _delete_study(rdb, lock)
                deadline = time.monotonic() + wait_s
            time.sleep(0.2)
    try:
        yield
    finally:
        _delete_study(rdb, lock)


def _delete_study(rdb, name: str) -> None:
    try:
        rdb.delete_study(rdb.get_study_id_from_name(name))
    except KeyError:
        pass
