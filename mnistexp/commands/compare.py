"""`mnistexp compare`: group run records by experiment, summarize seeds, test platform differences."""

from __future__ import annotations

from pathlib import Path

import click

from mnistexp.compare.render import FORMATS, SUFFIX_FORMATS


def _format_for(fmt: str | None, output: str | None) -> str:
    if fmt:
        return fmt
    if output:
        suffix = Path(output).suffix.lower()
        if suffix not in SUFFIX_FORMATS:
            raise click.UsageError(
                f"cannot tell the format from '{output}'; add --format {'|'.join(FORMATS)}")
        return SUFFIX_FORMATS[suffix]
    return "table"


@click.command("compare")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--by", default="platform", show_default=True, metavar="FIELD",
              help="Rows within each experiment: platform, seed, study (= tags.study), or any record "
                   "field path such as environment.tensorflow or runtime.jit_compile.")
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS),
              help="Output format [default: from the -o suffix, else table].")
@click.option("--output", "-o", type=click.Path(dir_okay=False),
              help="Write the report to this file (written whole or not at all).")
@click.option("--filter", "filters", multiple=True, metavar="FIELD=V1[,V2]",
              help="Keep runs whose FIELD is one of the values, e.g. platform=local,comet (repeatable; all must hold).")
@click.option("--sort", metavar="[-]KEY",
              help="Order rows by name, n, test_accuracy, test_loss, train_s, epoch_s or images_per_s; "
                   "a leading - sorts descending.")
@click.option("--plots", "plots_dir", type=click.Path(file_okay=False),
              help="Also write the figures as PNG files into this folder.")
def command(paths, by, fmt, output, filters, sort, plots_dir):
    """Compare run records under PATHS (folders searched recursively; default: results).

    Runs are grouped by experiment fingerprint (resolved config + data checksums) and never
    pooled across experiments. Per group and row: n, mean ± std and 95% CI of test accuracy
    and loss, timing and environment; between rows, the difference in mean accuracy with its
    95% CI and Welch's t-test. Unreadable records are skipped with a warning.
    """
    from mnistexp.compare.analysis import apply_filters, build_report, parse_filters
    from mnistexp.compare.load import load_runs
    from mnistexp.paths import default_results_dir

    fmt = _format_for(fmt, output)
    try:
        parsed = parse_filters(filters)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    loaded = load_runs(paths or [default_results_dir()])
    for line in loaded.warnings:  # plain echo: rich would wrap a long path onto two lines
        click.echo(f"Warning: {line}", err=True)
    if not loaded.runs:
        where = ", ".join(map(str, paths or [default_results_dir()]))
        raise click.ClickException(f"no readable run records under {where}; run `mnistexp run` first")
    runs = apply_filters(loaded.runs, parsed)
    if not runs:
        raise click.ClickException(f"no run matches --filter {' '.join(filters)} ({len(loaded.runs)} runs read)")
    try:
        report = build_report(runs, by=by, sort=sort, warnings=loaded.warnings)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None

    if plots_dir:
        from mnistexp.compare.plots import write_pngs

        for path in write_pngs(report, plots_dir):
            click.echo(f"wrote {path}", err=True)
    text = _render(report, fmt, output)
    if output:
        from mnistexp.experiment.record import write_text_atomic

        try:
            write_text_atomic(output, text)
        except OSError as exc:
            raise click.ClickException(f"cannot write {output} ({exc.strerror or exc}); choose another -o path") from None
        click.echo(f"wrote {output}", err=True)
    elif fmt == "table":
        from mnistexp.compare.render import to_table

        to_table(report.data, console_for_stdout())
    else:
        click.echo(text, nl=False)


def console_for_stdout():
    """The terminal's width on a terminal; wide when piped, so tables in logs are not squeezed."""
    import sys

    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _render(report, fmt: str, output: str | None) -> str | None:
    from mnistexp.compare import render

    if fmt == "table":
        return render.to_text(report.data) if output else None
    if fmt == "html":
        from mnistexp.compare.plots import data_uris

        return render.to_html(report.data, data_uris(report))
    return {"markdown": render.to_markdown, "csv": render.to_csv, "json": render.to_json}[fmt](report.data)
