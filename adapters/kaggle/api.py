"""`mnistexp kaggle push / pull`: run the generated kernel on Kaggle and bring its record home.

Uses the official kaggle package (`pip install 'mnistexp[kaggle]'`), imported only here,
inside the commands: it prints sign-in help (and older versions raise) when imported
without credentials, which becomes one clear error line instead.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import tempfile
from pathlib import Path

import click

from mnistexp.paths import default_results_dir

KERNEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*/[A-Za-z0-9][A-Za-z0-9_-]{4,}$")
UNFINISHED = ("QUEUED", "RUNNING", "NEW_SCRIPT", "CANCEL_REQUESTED")
NO_CREDENTIALS = (
    "Kaggle credentials not found; create an API token at https://www.kaggle.com/settings/api and "
    "export KAGGLE_API_TOKEN=<token> (or save it as ~/.kaggle/access_token), or export KAGGLE_USERNAME "
    "and KAGGLE_KEY, or save kaggle.json to ~/.kaggle/ (chmod 600)"
)


def kaggle_api():
    """The signed-in kaggle API object, or a ClickException saying what to install or set."""
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            import kaggle
    except ModuleNotFoundError as exc:
        if exc.name and exc.name != "kaggle" and not exc.name.startswith("kaggle."):
            raise click.ClickException(
                f"the kaggle package needs '{exc.name}', which is not installed; pip install {exc.name} "
                "(or pip install 'mnistexp[kaggle]')") from None
        raise click.ClickException("the kaggle package is not installed; pip install 'mnistexp[kaggle]'") from None
    except (Exception, SystemExit):  # kaggle < 2 raises on import without credentials
        raise click.ClickException(NO_CREDENTIALS) from None
    api = kaggle.api
    if not getattr(api, "_authenticated", True):
        raise click.ClickException(NO_CREDENTIALS)
    return api


def _call(what: str, function, *args, **kwargs):
    """Run one kaggle API call; any failure becomes one line naming the call."""
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet):
            return function(*args, **kwargs)
    except (Exception, SystemExit) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise click.ClickException(f"{what} failed: {reason}") from None


@click.group("kaggle")
def command():
    """Push the generated Kaggle kernel and pull its output into results/.

    \b
    Needs the kaggle package (pip install 'mnistexp[kaggle]') and a Kaggle API token.
      mnistexp kernel kaggle          generate platforms/kaggle/
      mnistexp kaggle push            upload and run it on Kaggle
      mnistexp kaggle pull USER/SLUG  download its record into results/
    """


@command.command("push")
@click.option("--kernel-dir", type=click.Path(file_okay=False), default=None,
              help="Folder with the kernel and kernel-metadata.json [default: platforms/kaggle].")
@click.option("--kaggle-user", metavar="USER", help="Owner of the kernel [default: the signed-in user].")
@click.option("--timeout", type=click.IntRange(min=60), metavar="SECONDS",
              help="Maximum run time of the kernel session.")
def push(kernel_dir, kaggle_user, timeout):
    """Upload the kernel; Kaggle starts running it at once."""
    from mnistexp.adapters.kaggle.kernel import DEFAULT_OUT, METADATA_FILE, validate_metadata
    from mnistexp.kernels.build import KernelError

    folder = Path(kernel_dir) if kernel_dir else DEFAULT_OUT
    meta_path = folder / METADATA_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        validate_metadata(meta)
    except FileNotFoundError:
        raise click.ClickException(f"{meta_path} not found; generate the kernel first: mnistexp kernel kaggle") from None
    except (OSError, ValueError) as exc:
        if isinstance(exc, KernelError):
            raise click.ClickException(str(exc)) from None
        raise click.ClickException(f"{meta_path} cannot be read ({exc}); regenerate it: mnistexp kernel kaggle") from None
    code = folder / meta["code_file"]
    if not code.is_file():
        raise click.ClickException(f"{code} not found; generate the kernel first: mnistexp kernel kaggle")

    api = kaggle_api()
    user = kaggle_user or api.get_config_value("username")
    if not user:
        raise click.ClickException("cannot tell your Kaggle user name; pass --kaggle-user")
    meta["id"] = f"{user}/{meta['id'].split('/', 1)[1]}"
    with tempfile.TemporaryDirectory(prefix="mnistexp-kaggle-") as staging:
        shutil.copy2(code, Path(staging) / code.name)
        (Path(staging) / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        response = _call(f"pushing {meta['id']} to Kaggle", api.kernels_push, staging,
                         str(timeout) if timeout else None)
    error = getattr(response, "error", None)
    if error:
        raise click.ClickException(f"Kaggle rejected {meta['id']}: {error}")
    version = getattr(response, "version_number", None)
    click.echo(f"pushed {meta['id']}" + (f" (version {version})" if version else "")
               + (f": {response.url}" if getattr(response, "url", None) else ""))
    for key in ("invalid_dataset_sources", "invalid_competition_sources"):
        bad = getattr(response, key, None)
        if bad:
            click.echo(f"warning: Kaggle did not attach {', '.join(map(str, bad))} ({key.replace('_', ' ')})")
    click.echo(f"When it has run: mnistexp kaggle pull {meta['id']}")


@command.command("pull")
@click.argument("kernel", metavar="OWNER/SLUG")
@click.option("--results-dir", type=click.Path(file_okay=False), default=None,
              help="Where run folders go [default: results, env MNISTEXP_RESULTS_DIR].")
def pull(kernel, results_dir):
    """Download the kernel's output and import its run record into results/."""
    from mnistexp.experiment.record import RecordError
    from mnistexp.importer import describe, find_records, import_records

    if not KERNEL_RE.match(kernel):
        raise click.BadParameter("must look like owner/kernel-slug, e.g. alice/mnistexp-canonical",
                                 param_hint="OWNER/SLUG")
    api = kaggle_api()
    status = _call(f"asking Kaggle for the status of {kernel}", api.kernels_status, kernel)
    state = getattr(getattr(status, "status", None), "name", str(getattr(status, "status", "")))
    if state in UNFINISHED:
        raise click.ClickException(f"kernel {kernel} is {state.lower()}; pull again when it has finished")
    with tempfile.TemporaryDirectory(prefix="mnistexp-kaggle-") as download:
        _call(f"downloading the output of {kernel}", api.kernels_output, kernel, download, force=True, quiet=True)
        try:
            find_records(download)
        except RecordError:
            raise click.ClickException(
                f"the output of {kernel} holds no record.json (kernel status {state.lower() or 'unknown'}); "
                "see the kernel's log on Kaggle") from None
        logs = sorted(Path(download).glob("*.log"))
        items = import_records(download, results_dir or default_results_dir(),
                               imported_info={"source": f"kaggle kernel {kernel}", "kernel_status": state},
                               extra_files=logs)
    for item in items:
        click.echo(describe(item))
