"""`mnistexp reproduce RUN`: rerun a record's exact config and seed; bit-identical, within noise, or different."""

from __future__ import annotations

import json
import sys

import click

from mnistexp import adapters
from mnistexp.commands.run import PlatformCommand, platform_options
from mnistexp.paths import default_results_dir


@click.command("reproduce", cls=PlatformCommand)
@click.argument("run")
@click.option("--platform", "-P", type=click.Choice(adapters.platform_names(runs_here=True)), default=None,
              help="Where to rerun [default: the record's platform when it runs here, else local].")
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="MNISTEXP_DATA_DIR",
              help="Data folder to use when the record's own data folder no longer exists "
                   "[default: the download cache].")
@click.option("--results-dir", type=click.Path(file_okay=False),
              help="Where to look RUN up and write the rerun [default: results, env MNISTEXP_RESULTS_DIR].")
@click.option("--tolerance", type=click.FloatRange(min=0), metavar="ACCURACY",
              help="Largest |Δ test accuracy| called 'same within seed noise' [default: from the record's "
                   "study spread, else 0.001].")
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No training progress; the verdict only.")
def command(run, platform, data_dir, results_dir, tolerance, fmt, quiet, **rest):
    """Rerun RUN's exact config and seed, and say whether it reproduces.

    RUN is a run folder, record file or run id under the results folder. The rerun is an
    ordinary run (tagged reproduces=<run id>). The verdict is one of: bit-identical (every
    epoch's numbers and the test metrics equal to the last bit), same within seed noise
    (|Δ test accuracy| within --tolerance or the study's spread), or different; the
    environment fields that differ follow. Exit status: 0 when it reproduces (bit-identical or
    within noise), 1 when different. Bit-identical reruns need runtime.deterministic=true.
    """
    from mnistexp.compare.load import find_run
    from mnistexp.experiment.record import read_record
    from mnistexp.reproduce import DIFFERENT, check_reproducible, compare_runs, data_dir_for
    from mnistexp.runner import RunInterrupted, run_experiment

    adapter_options = platform_options(rest)
    root = results_dir or default_results_dir()
    original = read_record(find_run(run, root))
    check_reproducible(original)
    if platform is None:
        platform = original["platform"] if original["platform"] in adapters.platform_names(runs_here=True) else "local"
    folder, where = data_dir_for(original, data_dir)
    config = original["experiment"]["config"]
    say = (lambda *a, **k: None) if fmt == "json" else click.echo
    say(f"Reproducing {original['run_id']} ({original['platform']}, seed {original['seed']}, "
        f"config {original['experiment']['name']}) on {platform} with data from {where}")
    adapter = adapters.adapter_class(platform)(**adapter_options)
    verbose = 0 if quiet or fmt == "json" else (1 if sys.stdout.isatty() else 2)
    try:
        result = run_experiment(config, adapter, root, folder, verbose=verbose,
                                tags={"reproduces": original["run_id"]})
    except RunInterrupted as exc:
        message = str(exc)
        click.echo(message[:1].upper() + message[1:], err=True)
        sys.exit(130)
    verdict = compare_runs(original, result.record, tolerance, root)
    if fmt == "json":
        click.echo(json.dumps({"original": original["run_id"], "rerun": result.record["run_id"],
                               "rerun_dir": str(result.run_dir), **verdict.__dict__}, indent=2, default=str))
    else:
        _print(verdict, result)
    if verdict.verdict == DIFFERENT:
        sys.exit(1)


def _print(verdict, result) -> None:
    from mnistexp.compare.diff import cell

    click.echo(f"Rerun: {result.run_dir}")
    click.echo(f"Verdict: {verdict.verdict}: {verdict.reason}")
    if not verdict.environment:
        click.echo("Environment and runtime settings: the same (Python, TensorFlow, Keras, numpy, OS, CPU, GPU, "
                   "threads, determinism).")
        return
    click.echo("Environment and runtime fields that differ (original -> rerun):")
    width = max(len(row["key"]) for row in verdict.environment)
    for row in verdict.environment:
        click.echo(f"  {row['key']:<{width}}  {cell(row['a'])} -> {cell(row['b'])}")
