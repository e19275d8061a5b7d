"""`mnistexp explore`: hyperparameter search with Optuna; every trial is a normal run."""

from __future__ import annotations

import os
import sys

import click

from mnistexp import adapters
from mnistexp.commands.run import PlatformCommand, platform_options
from mnistexp.paths import default_results_dir

# Built from mnistexp.explore.GRID_FLAGS without importing it eagerly (it is cheap, but
# keeping the table here readable in --help matters more): long, short, parameter.
_GRID = (
    ("rate", "r", "train.learning_rate"), ("batch", "b", "train.batch_size"),
    ("layers", "l", "model.dense_layers"), ("conv", "c", "model.conv_filters"),
    ("opt", "o", "train.optimizer"), ("dropout", "d", "model.dropout"), ("epochs", "e", "train.epochs"),
    ("dense", "z", "model.dense_units"), ("kernel", "k", "model.kernel_size"), ("pool", "p", "model.pool_size"),
    ("decay", "y", "train.decay"), ("mom", "m", "train.momentum"), ("convlayers", "v", "model.conv_blocks"),
)


def _grid_options(func):
    for long, short, param in reversed(_GRID):
        func = click.option(f"-{short}", f"--{long}", f"grid_{long}", metavar="V1,V2,...",
                            help=f"Values of {param} (comma list; shorthand for --param {param}=...).")(func)
    return func


@click.command("explore", cls=PlatformCommand)
@click.option("--study", "study_name", default="explore", show_default=True,
              help="Study name: results/<study>/ holds its storage, summary and trial runs.")
@click.option("--platform", "-P", type=click.Choice(adapters.platform_names(runs_here=True)), default="local",
              show_default=True, help="Where each trial runs and is logged (any run-here platform; its own "
                                      "options, e.g. --offline, apply to every trial).")
@click.option("--config", "config", metavar="FILE_OR_NAME", help="Base config: a YAML file or a zoo name.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a base config key (repeatable).")
@click.option("--param", "params", multiple=True, metavar="KEY=SPEC",
              help="A searched key: KEY=v1,v2,... (choices), KEY=float:LOW:HIGH[:log] or KEY=int:LOW:HIGH[:log].")
@_grid_options
@click.option("--sampler", type=click.Choice(["grid", "random", "tpe"]), default=None,
              help="grid (every combination), random, or tpe (Bayesian) [default: grid when all parameters "
                   "are lists, else tpe].")
@click.option("--trials", "n_trials", type=click.IntRange(min=1),
              help="Total trials wanted in the study (a resume runs only the missing ones) [grid: all points; "
                   "else 20].")
@click.option("--timeout", type=click.FloatRange(min=1), metavar="SECONDS", help="Stop starting trials after this long.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True,
              help="Parallel trials on this machine, each in its own process sharing the storage.")
@click.option("--storage", metavar="URL",
              help="Optuna storage URL [default: sqlite:///results/<study>/study.db]; an RDB URL such as "
                   "postgresql://user@host/db lets several machines work on one study.")
@click.option("--metric", type=click.Choice(["val_accuracy", "test_accuracy"]), default="val_accuracy",
              show_default=True, help="What the search maximises.")
@click.option("--pruning/--no-pruning", default=True, show_default=True,
              help="Median pruning: stop a trial whose val_accuracy falls below the median of earlier trials "
                   "at the same epoch.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Sampler seed.")
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="MNISTEXP_DATA_DIR",
              help="Local data files instead of the download cache [env MNISTEXP_DATA_DIR].")
@click.option("--results-dir", type=click.Path(file_okay=False), help="Where <study>/ goes [default: results].")
@click.option("--verbose", is_flag=True, help="Show Keras progress for each trial.")
def command(study_name, platform, config, overrides, params, sampler, n_trials, timeout, jobs, storage, metric,
            pruning, seed, data_dir, results_dir, verbose, **grid):
    """Search hyperparameters of any config keys with Optuna.

    Every trial is an ordinary run (record tagged study=<study>); the study
    persists, so running the same command again after Ctrl-C resumes it without
    repeating finished trials, and `mnistexp explore --study NAME` alone resumes
    a stored search. Derived parameters reshape model.layers: model.conv_blocks
    (-v), model.conv_filters (-c), model.kernel_size (-k), model.pool_size (-p),
    model.dense_layers (-l), model.dense_units (-z), model.dropout (-d);
    train.decay (-y) is 0 for no LR decay or the ReduceLROnPlateau factor.

    \b
      mnistexp explore --study lr-batch -r 0.0005,0.001,0.002 -b 64,128 -e 3
      mnistexp explore --study tpe --param train.learning_rate=float:1e-4:1e-2:log \\
          --param model.dropout=float:0.1:0.6 --trials 30 --jobs 2
      mnistexp explore --study on-comet --platform comet --offline -r 0.001,0.01
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    adapter_options = platform_options(grid)  # the chosen platform's own options, out of **grid
    from mnistexp.explore import ExploreInterrupted, make_spec, parse_param, run_study

    space = {}
    for long, _, param in _GRID:
        if grid.get(f"grid_{long}"):
            key, dist = parse_param(f"{param}={grid[f'grid_{long}']}")
            space[key] = dist
    for item in params:
        key, dist = parse_param(item)
        space[key] = dist
    spec = None
    if space:
        if sampler is None:
            sampler = "grid" if all(d["type"] == "choice" for d in space.values()) else "tpe"
        spec = make_spec(config, overrides, space, sampler, metric, pruning, seed)
    elif config or overrides or sampler:
        raise click.UsageError("--config/--set/--sampler describe a new search: give parameters too "
                               "(--param or grid flags), or leave them out to resume a stored study")
    try:
        summary = run_study(study_name, spec, results_dir or default_results_dir(), data_dir, storage,
                            n_trials, timeout, jobs, verbose=2 if verbose else 0, echo=click.echo,
                            platform=platform, adapter_options=adapter_options)
    except ExploreInterrupted as exc:
        click.echo(f"Interrupted: {exc}", err=True)
        sys.exit(130)
    _print_summary(summary, results_dir or default_results_dir())


def _print_summary(summary: dict, results_dir) -> None:
    from pathlib import Path

    counts = ", ".join(f"{n} {state}" for state, n in summary["trials"].items() if n)
    click.echo(f"study {summary['study']}: {counts or 'no trials'}")
    best = summary.get("best_trial")
    if best:
        params = " ".join(f"{k}={v}" for k, v in best["params"].items())
        click.echo(f"best trial #{best['number']}: {summary['metric']}={best['value']:.4f} {params}")
        click.echo(f"best run: {best['run_dir']}")
    if summary.get("param_importances"):
        click.echo("importances: " + ", ".join(f"{k} {v:.2f}" for k, v in summary["param_importances"].items()))
    if summary.get("warning"):
        click.echo(f"warning: {summary['warning']}", err=True)
    study_dir = Path(results_dir) / summary["study"]
    click.echo(f"summary: {study_dir / 'summary.json'}")
    if summary.get("plot"):
        click.echo(f"history plot: {summary['plot']}")
