"""`mnistexp codalab submit / pull`: run the generated kernel on CodaLab through the `cl` CLI.

The codalab CLI cannot be installed next to TensorFlow on Python 3.11, so it is never
imported: `cl` runs as a subprocess (install it in its own virtualenv or with pipx and
put it on PATH; README "Run on CodaLab"). The argument lists come from
mnistexp.adapters.codalab.kernel, the same that wrote platforms/codalab/commands.sh.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import click

from mnistexp.paths import default_results_dir

NO_CL = ("the CodaLab CLI `cl` is not on PATH; install it in its own virtualenv (README, "
         "\"Run on CodaLab\") and put it on PATH")


def cl_available(hint: str = "") -> None:
    if shutil.which("cl") is None:
        raise click.ClickException(NO_CL + hint)


def run_cl(argv: list[str], echo: bool = True) -> str:
    """Run one cl command (no prompts: stdin closed); return its stdout or fail with one line."""
    if echo:
        click.echo(f"$ {shlex.join(argv)}")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    except OSError as exc:
        raise click.ClickException(f"cannot run cl ({exc.strerror or exc}); {NO_CL}") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"exit status {done.returncode}"
        raise click.ClickException(
            f"`{shlex.join(argv[:2])}` failed: {reason} (signed in? run `cl work` once to log in)")
    return done.stdout


def bundle_uuid(output: str, argv: list[str]) -> str:
    from mnistexp.adapters.codalab.kernel import UUID_RE

    found = UUID_RE.findall(output)
    if not found:
        raise click.ClickException(f"`{shlex.join(argv[:2])}` printed no bundle uuid: {output.strip()[:200]!r}")
    return found[-1]


@click.group("codalab")
def command():
    """Run the generated CodaLab kernel and pull its bundle into results/ (needs `cl` on PATH).

    \b
      mnistexp kernel codalab                      generate platforms/codalab/
      mnistexp codalab submit --data-dir DIR       upload data + kernel, start the run
      mnistexp codalab pull BUNDLE                 download the run, import its record
    """


@command.command("submit")
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="MNISTEXP_DATA_DIR",
              help="Folder with the MNIST files to upload as the data bundle [env MNISTEXP_DATA_DIR].")
@click.option("--data-bundle", metavar="BUNDLE",
              help="Use this already uploaded MNIST bundle (uuid or name) instead of uploading --data-dir.")
@click.option("--kernel-dir", type=click.Path(file_okay=False), default=None,
              help="Folder with the generated kernel and codalab.json [default: platforms/codalab].")
@click.option("--worksheet", "-w", metavar="WORKSHEET", help="CodaLab worksheet for the bundles.")
@click.option("--dry-run", is_flag=True, help="Print the cl commands instead of running them.")
def submit(data_dir, data_bundle, kernel_dir, worksheet, dry_run):
    """Upload the data and the kernel, and start the run bundle."""
    from mnistexp.adapters.codalab.kernel import (
        CODE_FILE,
        DEFAULT_OUT,
        cl_run,
        cl_upload_data,
        cl_upload_kernel,
        read_metadata,
    )
    from mnistexp.kernels.build import KernelError
    from mnistexp.kernels.runtime import find_mnist_dirs

    folder = Path(kernel_dir) if kernel_dir else DEFAULT_OUT
    try:
        _, settings = read_metadata(folder)
    except KernelError as exc:
        raise click.ClickException(str(exc)) from None
    kernel = folder / CODE_FILE
    if not kernel.is_file():
        raise click.ClickException(f"{kernel} not found; generate the kernel first: mnistexp kernel codalab")
    if data_bundle and data_dir:
        raise click.UsageError("pass --data-dir or --data-bundle, not both")
    if not data_bundle:
        if not data_dir:
            raise click.UsageError("pass --data-dir (a folder with the MNIST files to upload) or --data-bundle")
        if not Path(data_dir).is_dir():
            raise click.ClickException(f"data directory {data_dir} does not exist; pass the folder with the "
                                       "MNIST files to --data-dir")
        if not find_mnist_dirs(Path(data_dir), max_depth=0):
            raise click.ClickException(f"{data_dir}: no MNIST files (four IDX files, mnist.npz or train.csv); "
                                       "pass the folder that holds them to --data-dir")
    if not dry_run:
        cl_available(", or use --dry-run to print the commands")

    steps = []
    if not data_bundle:
        steps.append(("data", cl_upload_data(str(data_dir), settings, worksheet)))
    steps.append(("kernel", cl_upload_kernel(str(kernel), settings, worksheet)))
    if dry_run:
        for _, argv in steps:
            click.echo(shlex.join(argv))
        click.echo(shlex.join(cl_run(data_bundle or settings.data_dependency, settings.kernel_bundle,
                                     settings, worksheet)))
        return
    refs = {"data": data_bundle}
    for what, argv in steps:
        refs[what] = bundle_uuid(run_cl(argv), argv)
    argv = cl_run(refs["data"], refs["kernel"], settings, worksheet)
    run_bundle = bundle_uuid(run_cl(argv), argv)
    click.echo(f"started run bundle {run_bundle} ({settings.run_name})")
    click.echo(f"When it is ready: mnistexp codalab pull {run_bundle}")


@command.command("pull")
@click.argument("bundle")
@click.option("--results-dir", type=click.Path(file_okay=False), default=None,
              help="Where run folders go [default: results, env MNISTEXP_RESULTS_DIR].")
def pull(bundle, results_dir):
    """Download a finished run bundle and import its run record into results/."""
    from mnistexp.adapters.codalab.kernel import cl_download, cl_state
    from mnistexp.experiment.record import RecordError
    from mnistexp.importer import describe, find_records, import_records

    if bundle.startswith("-") or not bundle.strip():
        raise click.BadParameter("must be a bundle uuid or name", param_hint="BUNDLE")
    cl_available()
    state = run_cl(cl_state(bundle), echo=False).strip().splitlines()
    state = state[-1].strip() if state else "unknown"
    if state not in ("ready", "failed", "killed"):
        raise click.ClickException(f"bundle {bundle} is {state}, not finished; wait for it (cl wait {bundle}) "
                                   "and pull again")
    with tempfile.TemporaryDirectory(prefix="mnistexp-codalab-") as download:
        target = Path(download) / "bundle"
        run_cl(cl_download(bundle, str(target)), echo=False)
        try:
            find_records(target)
        except RecordError:
            raise click.ClickException(
                f"bundle {bundle} ({state}) holds no record.json; see its output: cl cat {bundle}/stderr") from None
        logs = [target / name for name in ("stdout", "stderr") if (target / name).is_file()]
        items = import_records(target, results_dir or default_results_dir(),
                               imported_info={"source": f"codalab bundle {bundle}", "bundle_state": state},
                               extra_files=logs)
    for item in items:
        click.echo(describe(item))
