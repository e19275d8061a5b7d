"""`mnistexp upload RUN_DIR [OPTIONS]`: hand a run to its platform's own `upload` subcommand."""

from __future__ import annotations

import click

from mnistexp import adapters


@click.command("upload", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.pass_context
def command(ctx, run_dir):
    """Upload RUN_DIR, a run logged offline, to the platform named in its record.

    Options after RUN_DIR go to that platform's upload (see `mnistexp comet upload --help`).
    """
    from mnistexp.experiment.record import read_record

    platform = read_record(run_dir)["platform"]
    group = getattr(adapters.load_platform(platform), "COMMAND", None) if platform in adapters.platforms() else None
    upload = group.get_command(ctx, "upload") if group is not None else None
    if upload is None:
        raise click.ClickException(f"{run_dir}: platform '{platform}' has nothing to upload "
                                   "(only runs logged offline are uploaded later)")
    with upload.make_context("upload", [run_dir, *ctx.args], parent=ctx) as sub:
        upload.invoke(sub)
