"""`mnistexp evaluate`: re-score saved models side by side."""

from __future__ import annotations

import click

from mnistexp.paths import default_results_dir


def _check_name(ctx, param, value):
    from mnistexp.evaluate import check_comparison_name
    from mnistexp.experiment.record import RecordError

    try:
        return check_comparison_name(value)
    except RecordError as exc:  # checked before TensorFlow loads; one line, not the usage text
        raise click.ClickException(str(exc)) from None


@click.command("evaluate")
@click.argument("targets", nargs=-1, required=True, metavar="RUN_DIR_OR_MODEL...")
@click.option("--name", default="comparison", show_default=True, callback=_check_name,
              help="Comparison name (a plain name, no '/'); written to results/comparisons/NAME.json.")
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="MNISTEXP_DATA_DIR",
              help="Local MNIST files instead of the download cache [env MNISTEXP_DATA_DIR].")
@click.option("--dataset", type=click.Choice(["mnist", "fashion-mnist"]),
              help="Data set for bare .keras files (run folders use their own).")
@click.option("--results-dir", type=click.Path(file_okay=False), help="Where comparisons/ goes [default: results].")
@click.option("--ensemble", is_flag=True,
              help="Also average the models' softmax outputs and score that ensemble (2+ models, same test set).")
def command(targets, name, data_dir, dataset, results_dir, ensemble):
    """Re-score saved models on the test set and compare them.

    Each target is a run folder (its record says which data and preprocessing) or a
    .keras file. Models are loaded with Keras safe mode. With --ensemble the mean of
    their softmax outputs is scored too, beside each member:

    \b
      mnistexp evaluate --ensemble results/local-a results/local-b results/local-c
    """
    from mnistexp.tfenv import import_keras_quietly

    import_keras_quietly()
    from rich.table import Table

    from mnistexp.evaluate import (
        evaluate_ensemble,
        evaluate_models,
        resolve_models,
        write_comparison,
    )
    from mnistexp.output import console

    entries = resolve_models(list(targets))
    if ensemble:
        rows = evaluate_ensemble(entries, data_dir, dataset)
    else:
        rows = evaluate_models(entries, data_dir, dataset)
    table = Table(title=f"{'ensemble' if ensemble else 'comparison'}: {name}")
    for column in ("model", "dataset", "n_test", "test_accuracy", "test_loss", "errors"):
        table.add_column(column, justify="left" if column in ("model", "dataset") else "right")
    for row in rows:
        style = "bold" if row.get("role") == "ensemble" else None
        table.add_row(row["model"], row["dataset"], str(row["n_test"]), f"{row['test_accuracy']:.4f}",
                      f"{row['test_loss']:.4f}", str(row["errors"]), style=style)
    console().print(table)
    if ensemble:
        gain = rows[-1]["gain_over_best_member"]
        click.echo(f"ensemble test accuracy {rows[-1]['test_accuracy']:.4f} "
                   f"({gain * 100:+.2f} points vs the best member)")
    path = write_comparison(rows, name, results_dir or default_results_dir())
    click.echo(f"comparison written to {path}")
