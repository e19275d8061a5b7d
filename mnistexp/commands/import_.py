"""`mnistexp import PATH`: bring a run record (or a downloaded output folder) into results/."""

from __future__ import annotations

import click

from mnistexp.paths import default_results_dir


@click.command("import")
@click.argument("path", type=click.Path())
@click.option("--results-dir", type=click.Path(file_okay=False), default=None,
              help="Where run folders go [default: results, env MNISTEXP_RESULTS_DIR].")
def command(path, results_dir):
    """Import the run record(s) at PATH into results/<run-id>/.

    \b
    PATH is a record.json, or a folder with record.json (a Kaggle kernel's output,
    a CodaLab bundle, another machine's results/): every record below it is
    validated against the run-record schema, then copied with its artifact files.
    Symbolic links in PATH are skipped with a warning, never followed.
    """
    from mnistexp.importer import describe, import_records

    for item in import_records(path, results_dir or default_results_dir()):
        for warning in item.warnings:
            click.echo(f"Warning: {warning}", err=True)
        click.echo(describe(item))
