"""`mnistexp diff RUN_A RUN_B`: why did these two runs differ?"""

from __future__ import annotations

import json

import click


@click.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--results-dir", type=click.Path(file_okay=False),
              help="Where to look up run ids [default: results, env MNISTEXP_RESULTS_DIR].")
@click.option("--all", "show_all", is_flag=True, help="Also list the fields that are the same.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def command(run_a, run_b, results_dir, show_all, fmt):
    """Show side by side the config keys, data, environment fields and metrics that differ.

    RUN_A and RUN_B are run folders, record files, or run ids (a unique part of one is
    enough) under the results folder.
    """
    from mnistexp.commands.compare import console_for_stdout
    from mnistexp.compare.diff import diff_records, print_diff
    from mnistexp.compare.load import find_run
    from mnistexp.experiment.record import RecordError, read_record
    from mnistexp.paths import default_results_dir

    root = results_dir or default_results_dir()
    try:
        records = [read_record(find_run(ref, root)) for ref in (run_a, run_b)]
    except RecordError as exc:  # one line, also when the command is used outside the cli group
        raise click.ClickException(str(exc)) from None
    result = diff_records(*records, show_all=show_all)
    if fmt == "json":
        click.echo(json.dumps(result, indent=2, allow_nan=False))
    else:
        print_diff(result, console_for_stdout())
