"""`mnistexp data ...`: download and inspect the data sets."""

from __future__ import annotations

import click


@click.group("data")
def command():
    """Download, check and export the MNIST data sets."""


@command.command("download")
@click.option("--dataset", type=click.Choice(["mnist", "fashion-mnist"]), default="mnist", show_default=True)
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="Cache folder [default: the user cache dir, env MNISTEXP_CACHE_DIR].")
def download(dataset, cache_dir):
    """Fetch the four IDX files from the official mirrors, verify their sha256, cache them.

    Already cached, verified files are not fetched again; an interrupted download
    resumes. MNISTEXP_MIRRORS=url1,url2 replaces the mirror list.
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from mnistexp.experiment.download import ensure_dataset

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), transient=True) as bar:
        tasks = {}

        def progress(url, done, total):
            if url not in tasks:
                tasks[url] = bar.add_task(url.rsplit("/", 1)[-1], total=total)
            bar.update(tasks[url], completed=done, total=total)

        folder = ensure_dataset(dataset, cache_dir, progress)
    click.echo(f"{dataset}: 4 files verified in {folder}")
