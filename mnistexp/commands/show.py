"""`mnistexp show`: PNG galleries of what a trained model sees and gets wrong."""

from __future__ import annotations

import click


@click.command("show")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="MNISTEXP_DATA_DIR",
              help="Local data files instead of the download cache [env MNISTEXP_DATA_DIR].")
@click.option("--dataset", type=click.Choice(["mnist", "fashion-mnist"]),
              help="Data set to show (default: the run's own); fashion-mnist labels use class names.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Output folder [default: RUN_DIR/show].")
@click.option("--samples", "n_samples", type=click.IntRange(1, 100), default=25, show_default=True,
              help="Test images in the sample gallery.")
@click.option("--errors", "n_errors", type=click.IntRange(1, 100), default=36, show_default=True,
              help="Misclassified images shown (most confident mistakes first).")
@click.option("--image", "image_index", type=click.IntRange(min=0), default=0, show_default=True,
              help="Index of the test image whose per-layer activations are drawn.")
def command(run_dir, data_dir, dataset, out_dir, n_samples, n_errors, image_index):
    """Write PNG galleries for a run: samples, mistakes (top-2 probabilities), activations.

    \b
      mnistexp show results/<run-id> --data-dir ../shared/data/mnist
    """
    from mnistexp.tfenv import import_keras_quietly

    import_keras_quietly()
    from mnistexp.show import show_run

    files = show_run(run_dir, data_dir, dataset, out_dir, n_samples, n_errors, image_index)
    for kind, path in files.items():
        click.echo(f"{kind:<14} {path}")
