"""`mnistexp compare`: group run records by experiment, summarize seeds, test platform differences."""

from __future__ import annotations

from pathlib import Path

import click

from mnistexp.compare.render import FORMATS, SUFFIX_FORMATS


def _margin(ctx, param, value):
    """0.001 (accuracy as a fraction) or 0.1pp (percentage points): the same margin."""
    text = str(value).strip().lower()
    scale = 1.0
    if text.endswith("pp"):
        text, scale = text[:-2].strip(), 0.01
    try:
        margin = float(text) * scale
    except ValueError:
        margin = float("nan")
    if not (0 < margin < 1):
        raise click.BadParameter(f"'{value}' is not a margin between 0 and 1; give e.g. 0.001 or 0.1pp "
                                 "(0.1 percentage points of accuracy)")
    return margin


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
@click.option("--margin", default="0.001", show_default=True, callback=_margin, metavar="M",
              help="Equivalence margin for accuracy differences, as a fraction (0.001) or in "
                   "percentage points (0.1pp): within it two rows count as equivalent.")
def command(paths, by, fmt, output, filters, sort, plots_dir, margin):
    """Compare run records under PATHS (folders searched recursively; default: results).

    Runs are grouped by experiment fingerprint (resolved config + data checksums) and never
    pooled across experiments. Per group and row: n, mean ± std and 95% CI of test accuracy
    and loss, timing and environment; between rows, the difference in mean accuracy (paired
    by seed when both rows ran the same seeds, else Welch) and a verdict: equivalent within
    --margin, different, or inconclusive, with the seeds it would take to settle it.
    Unreadable records are skipped with a warning; results/examples is read only when named.
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
        hint = (f"; {loaded.notes[0]}" if loaded.notes else "; run `mnistexp run` first")
        raise click.ClickException(f"no readable run records under {where}{hint}")
    runs = apply_filters(loaded.runs, parsed)
    if not runs:
        raise click.ClickException(f"no run matches --filter {' '.join(filters)} ({len(loaded.runs)} runs read)")
    try:
        report = build_report(runs, by=by, sort=sort, warnings=loaded.warnings, margin=margin)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    report.data["notes"] = loaded.notes
    if fmt in ("html", "markdown", "json"):
        from mnistexp.compare.render import report_meta

        report.data["generated"] = report_meta()

    if plots_dir:
        from mnistexp.compare.plots import write_pngs

        try:
            written = write_pngs(report, plots_dir)
        except OSError as exc:
            raise click.ClickException(
                f"cannot write plots to {plots_dir} ({exc.strerror or exc}); choose another --plots folder") from None
        for path in written:
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

    # No markup and no :emoji: codes: record text (platform names, tags) is printed as written.
    return Console(highlight=False, markup=False, emoji=False, width=None if sys.stdout.isatty() else 160)


def _render(report, fmt: str, output: str | None) -> str | None:
    from mnistexp.compare import render

    if fmt == "table":
        return render.to_text(report.data) if output else None
    if fmt == "html":
        from mnistexp.compare.plots import data_uris

        return render.to_html(report.data, data_uris(report))
    return {"markdown": render.to_markdown, "csv": render.to_csv, "json": render.to_json}[fmt](report.data)
