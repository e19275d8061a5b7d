"""`mnistexp kernel beat`: generate the BEAT prefix under platforms/beat/."""

from __future__ import annotations

from pathlib import Path

import click

from mnistexp.paths import PROJECT_DIR, default_config_path

DEFAULT_OUT = PROJECT_DIR / "platforms" / "beat"


@click.command("beat")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Experiment config (default: ./config.yaml, else the canonical one).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=str(DEFAULT_OUT),
              show_default=True, help="Folder that receives the BEAT prefix.")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 when the folder differs from what would be generated.")
def command(config_path, overrides, out_dir, check):
    """Generate a BEAT prefix: data formats, the MNIST database (IDX view), the training
    algorithm, the analyzer, the toolchain and the experiment.

    \b
    Run it with BEAT's executor (in the BEAT virtualenv; see README):
      mnistexp run --platform beat --data-dir ../shared/data/mnist
    """
    from mnistexp.adapters.beat.prefix import build_files, experiment_id, stale_files, write_prefix
    from mnistexp.experiment.config import load_config

    config = load_config(config_path or default_config_path(), list(overrides))
    files = build_files(config)
    out = Path(out_dir)
    if check:
        stale = stale_files(out, files)
        if stale:
            raise click.ClickException(
                f"{out} is out of date ({len(stale)} files, e.g. {stale[0]}); run `mnistexp kernel beat`"
            )
        click.echo(f"{out}: up to date ({len(files)} files)")
        return
    try:
        write_prefix(out, files)
    except OSError as exc:
        raise click.ClickException(f"cannot write {out} ({exc.strerror or exc}); pass a writable --out") from None
    click.echo(f"Wrote {len(files)} BEAT declarations to {out}")
    click.echo(f"  experiment: {experiment_id(config)}")
