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


def export_dataset(data, out_dir, fmt: str, force: bool = False) -> list:
    """Write `data` (an experiment.data.Dataset) as CSV or .npz; return the paths written.

    Each file is written to a temporary name and renamed, so an interrupted export leaves
    no half-written file; existing files are only replaced with force=True.
    """
    import os
    from pathlib import Path

    import numpy as np

    from mnistexp.experiment.data import DataError, write_csv

    out = Path(out_dir)
    if fmt == "csv":
        targets = {"train.csv": (data.x_train, data.y_train), "test.csv": (data.x_test, data.y_test)}
    elif fmt == "npz":
        targets = {f"{data.name}.npz": None}
    else:
        raise DataError(f"unknown export format {fmt!r}; use csv or npz")
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} is a file; pass a folder to --out")
    for name in targets:
        if (out / name).exists() and not force:
            raise DataError(f"{out / name} already exists; pass --force to replace it or choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{out}: cannot create the folder ({exc.strerror}); pass a writable --out") from None
    written = []
    for name, arrays in targets.items():
        path = out / name
        tmp = out / f".{name}.tmp"
        try:
            if arrays is not None:
                write_csv(tmp, arrays[0], arrays[1])
            else:
                with open(tmp, "wb") as f:
                    np.savez_compressed(f, x_train=data.x_train, y_train=data.y_train,
                                        x_test=data.x_test, y_test=data.y_test)
            os.replace(tmp, path)
        except OSError as exc:
            raise DataError(f"{path}: cannot be written ({exc.strerror}); pass a writable --out") from None
        finally:
            tmp.unlink(missing_ok=True)
        written.append(path)
    # A SHA256SUMS file, as `sha256sum` writes it: loading the folder verifies the copy.
    from mnistexp.experiment.data import file_sha256, read_sha256sums
    from mnistexp.experiment.record import write_text_atomic

    sums = read_sha256sums(out) or {}
    sums.update({path.name: file_sha256(path) for path in written})
    write_text_atomic(out / "SHA256SUMS", "".join(f"{digest}  {name}\n" for name, digest in sorted(sums.items())))
    return written


def class_counts(labels) -> dict:
    """{label: number of images} for every label present."""
    import numpy as np

    values, counts = np.unique(np.asarray(labels), return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts, strict=True)}


def _load(data_dir, dataset, verify):
    from mnistexp.experiment.data import load_dataset
    from mnistexp.experiment.download import ensure_dataset

    folder = data_dir if data_dir is not None else ensure_dataset(dataset)
    return load_dataset(folder, dataset=dataset, verify=verify)


_DATA_OPTIONS = (
    click.option("--data-dir", type=click.Path(file_okay=False), envvar="MNISTEXP_DATA_DIR",
                 help="Folder with the data (IDX, .npz or CSV) [default: the verified download cache; "
                      "env MNISTEXP_DATA_DIR]."),
    click.option("--dataset", type=click.Choice(["mnist", "fashion-mnist"]), default="mnist", show_default=True),
    click.option("--verify/--no-verify", default=True, show_default=True,
                 help="Check the published checksums (or a SHA256SUMS file) before using the files."),
)


def _data_options(func):
    for option in reversed(_DATA_OPTIONS):
        func = option(func)
    return func


@command.command("export")
@_data_options
@click.option("--format", "fmt", type=click.Choice(["csv", "npz"]), required=True,
              help="csv: train.csv and test.csv (header, then label + 784 pixels per row); "
                   "npz: one Keras-style file with x_train, y_train, x_test, y_test.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Folder to write into (created if missing).")
@click.option("--force", is_flag=True, help="Replace files that already exist there.")
def export(data_dir, dataset, verify, fmt, out_dir, force):
    """Write the data set as CSV or .npz; the files load back bit-exactly (`--data-dir OUT`).

    A SHA256SUMS file is written beside them, so loading the folder verifies the copy.
    """
    data = _load(data_dir, dataset, verify)
    for path in export_dataset(data, out_dir, fmt, force=force):
        click.echo(f"wrote {path}")


@command.command("info")
@_data_options
def info(data_dir, dataset, verify):
    """Print image counts per class for train and test, and the content checksums."""
    from rich.table import Table

    from mnistexp.experiment.data import CLASS_NAMES
    from mnistexp.output import console

    data = _load(data_dir, dataset, verify)
    names = CLASS_NAMES.get(data.name, [str(i) for i in range(10)])
    train, test = class_counts(data.y_train), class_counts(data.y_test)
    table = Table(title=f"{data.name} ({data.format}, {data.test_split} test split)")
    for column in ("class", "name", "train", "test"):
        table.add_column(column, justify="left" if column == "name" else "right")
    for label in sorted(set(train) | set(test)):
        name = names[label] if label < len(names) else ""
        table.add_row(str(label), name, str(train.get(label, 0)), str(test.get(label, 0)))
    table.add_row("all", "", str(len(data.y_train)), str(len(data.y_test)), style="bold")
    console().print(table)
    click.echo(f"source: {data.source}")
    for part, digest in data.checksums.items():
        click.echo(f"sha256 {part:<13} {digest}")
