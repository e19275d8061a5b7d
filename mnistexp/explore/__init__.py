"""Hyperparameter search over any config keys with Optuna.

A study is an Optuna study in persistent storage (default: SQLite at
results/<study>/study.db), so an interrupted search resumes where it stopped and
several processes or machines (an RDB URL such as postgresql://...) can work on one
study. Every trial is an ordinary run on any run-here platform:
results/<study>/runs/<run-id>/record.json, tagged study=<study> and trial=<number>. The
study summary (best trial, parameter importances, optimisation history plot, trials.csv)
goes to results/<study>/.

    params    the --param grammar, grid points, Optuna suggestions, applying a point to a config
    layers    model-layer surgery behind the derived parameters (model.conv_blocks, ...)
    storage   Optuna storage, samplers and pruner
    search    the stored spec, the plan, worker processes, the objective
    records   patching a trial's run record (pruned runs)
    summary   summary.json, trials.csv, the optimisation history plot
"""

from .params import (
    DERIVED,
    GRID_FLAGS,
    METRIC_KEYS,
    METRICS,
    SAMPLERS,
    ExploreError,
    ExploreInterrupted,
    apply_params,
    check_param_name,
    grid_points,
    parse_param,
    suggest,
)
from .search import (
    Objective,
    StudySpec,
    TrialFailed,
    load_base,
    make_spec,
    pruning_callback,
    run_study,
)
from .storage import SPEC_ATTR, default_storage, open_storage
from .summary import write_summary

__all__ = [
    "DERIVED", "GRID_FLAGS", "METRIC_KEYS", "METRICS", "SAMPLERS", "SPEC_ATTR", "ExploreError", "ExploreInterrupted",
    "Objective", "StudySpec", "TrialFailed", "apply_params", "check_param_name", "default_storage", "grid_points",
    "load_base", "make_spec", "open_storage", "parse_param", "pruning_callback", "run_study", "suggest",
    "write_summary",
]
