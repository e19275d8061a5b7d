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

    The whole set (data files and SHA256SUMS) is written into a hidden sibling folder that
    is then swapped in: old folder renamed away, new one renamed in, old one deleted. So an
    interrupted export leaves either the previous folder or the new one, each passing its
    own checksums, never a mix. Other files already in the folder are carried over (hard
    links where possible); existing data files are only replaced with force=True.
    """
    from pathlib import Path

    from mnistexp.experiment.data import DataError

    out = Path(out_dir)
    real = out.resolve()  # swap the real folder: a link to it keeps pointing at the new set
    if real == Path.cwd().resolve() or real in Path.cwd().resolve().parents:
        raise DataError(f"{out} is the current folder or holds it, and the export replaces the whole folder; "
                        "run it from outside, or pass a subfolder to --out")
    if fmt == "csv":
        names = ["train.csv", "test.csv"]
    elif fmt == "npz":
        names = [f"{data.name}.npz"]
    else:
        raise DataError(f"unknown export format {fmt!r}; use csv or npz")
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} is a file; pass a folder to --out")
    for name in names:
        if (out / name).exists() and not force:
            raise DataError(f"{out / name} already exists; pass --force to replace it or choose another --out")
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{out}: cannot create the folder ({exc.strerror}); pass a writable --out") from None
    _write_and_swap(data, real, fmt, names, shown=out)
    return [out / name for name in names]


def _write_and_swap(data, out, fmt: str, names: list, shown) -> None:
    import os
    import shutil
    import tempfile
    from pathlib import Path

    import numpy as np

    from mnistexp.experiment.data import DataError, file_sha256, read_sha256sums, write_csv
    from mnistexp.experiment.record import write_text_atomic

    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))
    except OSError as exc:
        raise DataError(f"{shown}: cannot write next to it ({exc.strerror}); pass a writable --out") from None
    old = out.parent / f"{staging.name}.old"
    try:
        sums = {}
        if out.is_dir():
            previous = read_sha256sums(out) or {}
            for entry in out.iterdir():
                if entry.name in names or entry.name == "SHA256SUMS":
                    continue
                _carry(entry, staging / entry.name)
                if entry.name in previous:
                    sums[entry.name] = previous[entry.name]
        if fmt == "csv":
            write_csv(staging / "train.csv", data.x_train, data.y_train)
            write_csv(staging / "test.csv", data.x_test, data.y_test)
        else:
            with open(staging / names[0], "wb") as f:
                np.savez_compressed(f, x_train=data.x_train, y_train=data.y_train,
                                    x_test=data.x_test, y_test=data.y_test)
        # A SHA256SUMS file, as `sha256sum` writes it: loading the folder verifies the copy.
        sums.update({name: file_sha256(staging / name) for name in names})
        write_text_atomic(staging / "SHA256SUMS",
                          "".join(f"{digest}  {name}\n" for name, digest in sorted(sums.items())))
        for name in names:
            os.chmod(staging / name, 0o666 & ~_umask())
        os.chmod(staging, (out.stat().st_mode & 0o7777) if out.is_dir() else 0o777 & ~_umask())
        if out.is_dir():
            os.rename(out, old)
            try:
                os.rename(staging, out)
            except BaseException:
                os.rename(old, out)  # put the previous set back
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, out)
    except OSError as exc:
        raise DataError(f"{shown}: cannot be written ({exc.strerror or exc}); the folder is unchanged; "
                        "pass a writable --out with free space") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _carry(src, dst) -> None:
    """Bring a file the export does not own into the new folder: a hard link, else a copy."""
    import os
    import shutil

    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(src, dst)


def _link_or_copy(src, dst) -> None:
    import os
    import shutil

    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


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
