"""The files of a run folder besides record.json: model, history, confusion matrix, plots.

Each file is written to a temporary name in the run folder and renamed into place.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from mnistexp.experiment.record import write_text_atomic

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "epoch_time_s")


def write_history_csv(path: Path, history: list[dict]) -> None:
    buffer = io.StringIO()
    columns = [c for c in HISTORY_COLUMNS if any(c in row for row in history)]
    if any("fold" in row for row in history):
        columns.insert(0, "fold")
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    write_text_atomic(path, buffer.getvalue())


def write_confusion_csv(path: Path, matrix, class_names: list[str]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["true\\predicted", *class_names])
    for name, row in zip(class_names, matrix, strict=True):
        writer.writerow([name, *(int(v) for v in row)])
    write_text_atomic(path, buffer.getvalue())


def save_model(path: Path, keras_model) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    try:
        keras_model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        fig.savefig(tmp, dpi=100, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        _pyplot().close(fig)


def plot_learning_curves(path: Path, history: list[dict], title: str) -> None:
    plt = _pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [row["epoch"] for row in history]
    for ax, metric in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        for key, label in ((metric, "train"), ("val_" + metric, "validation")):
            values = [row.get(key) for row in history]
            if any(v is not None for v in values):
                ax.plot(epochs, values, marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    save_figure(fig, path)


def plot_confusion(path: Path, matrix, class_names: list[str], title: str) -> None:
    """Counts on a log colour scale, so a handful of errors shows beside ~1,000 correct
    predictions (on a linear scale only the diagonal is visible); zero cells stay white."""
    import matplotlib.colors
    import numpy as np

    plt = _pyplot()
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(6.8, 6.0), layout="constrained")
    peak = max(int(matrix.max()) if matrix.size else 1, 2)
    norm = matplotlib.colors.LogNorm(vmin=1, vmax=peak)
    image = ax.imshow(np.ma.masked_equal(matrix, 0), cmap="viridis_r", norm=norm)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            count = int(matrix[i, j])
            if count:
                dark = norm(count) > 0.55
                ax.text(j, i, count, ha="center", va="center", fontsize=7,
                        color="white" if dark else "black", fontweight="normal" if i == j else "bold")
    errors = int(matrix.sum() - np.trace(matrix))
    fig.colorbar(image, ax=ax, shrink=0.8, label="count (log scale)")
    # The title sits above the whole figure, so it never runs into the colour bar.
    fig.suptitle(f"{title}\n{errors} errors of {int(matrix.sum())} test images", fontsize=9)
    save_figure(fig, path)
