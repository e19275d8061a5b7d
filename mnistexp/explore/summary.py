"""A study's summary: summary.json, trials.csv and the optimisation history plot."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from .storage import SPEC_ATTR


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

    from mnistexp.experiment.artifacts import _pyplot, save_figure

    _pyplot()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
        ax = optuna.visualization.matplotlib.plot_optimization_history(study)
    fig = ax.figure
    fig.set_size_inches(7, 4)
    save_figure(fig, path)
