"""`mnistexp upload RUN_DIR`: send a comet run's offline archive to Comet."""

from __future__ import annotations

import click


@click.command("upload")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--force", is_flag=True, help="Upload again even if the record says it was uploaded.")
@click.option("--comet-workspace", default=None, metavar="NAME",
              help="Upload into this workspace instead of the one the run was logged for.")
@click.option("--comet-project", default=None, metavar="NAME",
              help="Upload into this project instead of the one the run was logged for.")
def command(run_dir, force, comet_workspace, comet_project):
    """Upload the Comet offline archive of RUN_DIR (a `--platform comet` run).

    Uses the SDK's own offline upload and the key Comet finds (COMET_API_KEY or
    ~/.comet.config from `comet login`); the experiment URL is added to the run record.
    """
    from mnistexp.adapters.comet import upload_run

    for line in upload_run(run_dir, force=force, workspace=comet_workspace, project=comet_project):
        click.echo(line)
