"""`mnistexp kernel codalab`: write platforms/codalab/ (kernel, codalab.json, commands.sh)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("codalab")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Experiment config (default: ./config.yaml, else the canonical one).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key for this kernel, e.g. --set train.epochs=3 (repeatable).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder [default: platforms/codalab].")
@click.option("--docker-image", metavar="IMAGE",
              help="Image the run uses [default: tensorflow/tensorflow:2.16.1, -gpu with --gpus].")
@click.option("--cpus", type=click.IntRange(min=1), default=2, show_default=True, help="CPUs to request.")
@click.option("--gpus", type=click.IntRange(min=0), default=0, show_default=True, help="GPUs to request.")
@click.option("--memory", default="8g", show_default=True, help="Memory to request (e.g. 8g).")
@click.option("--disk", default="2g", show_default=True, help="Disk to request (e.g. 2g).")
@click.option("--time", "time_limit", default="2h", show_default=True, help="Run time to request (e.g. 2h).")
@click.option("--data-bundle", "data_dependency", default="mnist", show_default=True,
              help="Name of the MNIST data bundle; also the folder it is mounted as in the run.")
def command(config_path, overrides, out_dir, docker_image, cpus, gpus, memory, disk, time_limit, data_dependency):
    """Generate the self-contained CodaLab kernel and its exact `cl` commands.

    \b
    Writes mnistexp_codalab.py, codalab.json (names and resource requests) and
    commands.sh (the cl upload / cl run lines). Run it with `mnistexp codalab submit`.
    """
    from mnistexp.adapters.codalab.kernel import DEFAULT_OUT, default_settings, generate_codalab
    from mnistexp.experiment.config import load_config
    from mnistexp.kernels.build import KernelError
    from mnistexp.paths import default_config_path

    config = load_config(config_path or default_config_path(), list(overrides))
    out = Path(out_dir) if out_dir else DEFAULT_OUT
    try:
        settings = default_settings(config, gpus=gpus, docker_image=docker_image, cpus=cpus, memory=memory,
                                    disk=disk, time=time_limit, data_dependency=data_dependency)
        paths = generate_codalab(config, out, settings)
    except KernelError as exc:
        raise click.ClickException(str(exc)) from None
    for path in paths:
        click.echo(f"wrote {path}")
