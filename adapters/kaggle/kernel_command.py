"""`mnistexp kernel kaggle`: write platforms/kaggle/ (the kernel and its kernel-metadata.json)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("kaggle")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Experiment config (default: ./config.yaml, else the canonical one).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key for this kernel, e.g. --set train.epochs=3 (repeatable).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder [default: platforms/kaggle].")
@click.option("--kaggle-user", metavar="USER",
              help="Kaggle user that owns the kernel (the id's <user>) [default: env KAGGLE_USERNAME, "
                   "else the owner already in the output folder's kernel-metadata.json].")
@click.option("--gpu/--no-gpu", default=False, show_default=True, help="Run the kernel on a Kaggle GPU.")
@click.option("--dataset-source", "dataset_sources", multiple=True, metavar="OWNER/SLUG",
              help="Kaggle data set with the MNIST files to attach [default: hojjatk/mnist-dataset, the "
                   "official split: the same experiment as local runs]. Repeatable.")
@click.option("--competition", type=click.Choice(["digit-recognizer"]), default=None,
              help="Train on this competition's data instead and write its submission.csv (a different "
                   "experiment: 42,000 rows with their own holdout split).")
def command(config_path, overrides, out_dir, kaggle_user, gpu, dataset_sources, competition):
    """Generate the self-contained Kaggle kernel from config.yaml and experiment/.

    \b
    Writes mnistexp_kaggle.py (the experiment code, flattened, with the resolved
    config embedded) and kernel-metadata.json. Push it with `mnistexp kaggle push`.
    """
    from mnistexp.adapters.kaggle.kernel import (
        DEFAULT_DATASET,
        DEFAULT_OUT,
        PLACEHOLDER_USER,
        generate_kaggle,
        resolve_user,
    )
    from mnistexp.experiment.config import load_config
    from mnistexp.kernels.build import KernelError
    from mnistexp.paths import default_config_path

    config = load_config(config_path or default_config_path(), list(overrides))
    out = Path(out_dir) if out_dir else DEFAULT_OUT
    user = resolve_user(kaggle_user, out)
    try:
        sources = tuple(dataset_sources) or (() if competition else (DEFAULT_DATASET,))
        paths = generate_kaggle(config, out, user=user, gpu=gpu, dataset_sources=sources, competition=competition)
    except KernelError as exc:
        raise click.ClickException(str(exc)) from None
    for path in paths:
        click.echo(f"wrote {path}")
    if user == PLACEHOLDER_USER:
        click.echo("note: the kernel id's owner is a placeholder; `mnistexp kaggle push` uses your Kaggle "
                   "user, or pass --kaggle-user")
