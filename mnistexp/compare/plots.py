"""Comparison figures per experiment group (matplotlib, imported only when asked for).

learning curves: validation accuracy, training loss and validation loss side by side;
  mean over seeds per epoch with a ±1 std band, one colour, marker and small x offset per
  row, so rows with identical curves (a platform reproducing another) stay visible;
accuracy: the test accuracy of every run per row, with the config's expected_test_accuracy
  as a target line; a dot (strip) plot with mean and 95% CI while a row has fewer than 5
  runs (a box of 3 points misleads), box + points from 5 on;
epoch time: seconds per epoch per row (the first epoch, which includes tracing, left out),
  dots or boxes by the same rule.
"""

from __future__ import annotations

import base64
import io
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from mnistexp.compare.analysis import Report, epoch_times

KINDS = ("learning_curves", "accuracy", "epoch_time")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display; safe under CI and ssh
    import matplotlib.pyplot as plt

    return plt


def _per_epoch(record: dict, key: str) -> dict[int, float]:
    """Epoch -> value; cross-validation folds are averaged per epoch."""
    sums: dict[int, list[float]] = defaultdict(list)
    for h in record["history"]:
        if isinstance(h.get(key), (int, float)):
            sums[h["epoch"]].append(h[key])
    return {e: float(np.mean(v)) for e, v in sums.items()}


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.")
MIN_BOX_N = 5  # below this many values a row is drawn as dots, not a box


def _curves(ax, rows, key, label):
    spread = 0.06 * (len(rows) - 1)
    for i, (value, runs) in enumerate(rows):
        per_run = [_per_epoch(r.record, key) for r in runs]
        epochs = sorted({e for p in per_run for e in p})
        if not epochs:
            continue
        mean = np.array([np.mean([p[e] for p in per_run if e in p]) for e in epochs])
        std = np.array([np.std([p[e] for p in per_run if e in p]) for e in epochs])
        # A small x offset per row, a marker and a line style: identical curves stay visible.
        x = np.asarray(epochs, dtype=float) + (i * 0.06 - spread / 2 if len(rows) > 1 else 0.0)
        (line,) = ax.plot(x, mean, marker=MARKERS[i % len(MARKERS)], linestyle=LINESTYLES[i % len(LINESTYLES)],
                          markersize=6, markerfacecolor="none" if i % 2 else None, label=f"{value} (n={len(runs)})")
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.15)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.set_xlabel("epoch")
    ax.set_ylabel(label)
    ax.set_title(label, fontsize="medium")
    ax.grid(alpha=0.3)


def _dots_or_boxes(ax, data: list[list[float]]):
    """Every value as a dot; a box only when every row has MIN_BOX_N values, else the mean
    with its 95% CI as a bar."""
    from mnistexp.compare.stats import summarize

    if all(len(v) >= MIN_BOX_N for v in data):
        ax.boxplot(data, showmeans=True)
    else:
        for i, values in enumerate(data, start=1):
            s = summarize(values)
            if s is None:
                continue
            err = None if s["ci_low"] is None else [[s["mean"] - s["ci_low"]], [s["ci_high"] - s["mean"]]]
            ax.errorbar([i + 0.22], [s["mean"]], yerr=err, fmt="_", markersize=14, color="black", capsize=4,
                        label="mean, 95% CI" if i == 1 else None, zorder=4)
    for i, values in enumerate(data, start=1):
        jitter = np.linspace(-0.08, 0.08, len(values)) if len(values) > 1 else [0.0]
        ax.scatter(np.asarray(jitter) + i, values, s=22, alpha=0.8, zorder=3)
    ax.set_xlim(0.4, len(data) + 0.6)


def _figure(plt, group: dict, rows, kind: str, by: str):
    labels = [f"{v}\n(n={len(runs)})" for v, runs in rows]
    if kind == "learning_curves":
        fig, axes = plt.subplots(1, 3, figsize=(14, 4))
        _curves(axes[0], rows, "val_accuracy", "validation accuracy")
        _curves(axes[1], rows, "loss", "training loss")
        _curves(axes[2], rows, "val_loss", "validation loss")
        low = min(a.get_ylim()[0] for a in axes[1:])
        high = max(a.get_ylim()[1] for a in axes[1:])
        for ax in axes[1:]:  # one scale, so training and validation loss compare at a glance
            ax.set_ylim(low, high)
        if axes[0].lines:
            axes[0].legend(fontsize="small", title=by, title_fontsize="small")
    elif kind == "accuracy":
        fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(rows) + 2), 4))
        data = [[r.record["metrics"]["test_accuracy"] for r in runs] for _, runs in rows]
        _dots_or_boxes(ax, data)
        target = group.get("expected_test_accuracy")
        if target is not None:
            ax.axhline(target, color="tab:red", linestyle="--", linewidth=1,
                       label=f"target (expected_test_accuracy) {target:.4f}")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small", loc="best")
        ax.set_xticks(range(1, len(rows) + 1), labels)
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3, axis="y")
    else:
        fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(rows) + 2), 4))
        data = [[t for r in runs for t in epoch_times(r.record)] for _, runs in rows]
        _dots_or_boxes(ax, data)
        ax.set_xticks(range(1, len(rows) + 1), labels)
        ax.set_ylabel("seconds per epoch (first epoch left out)")
        ax.grid(alpha=0.3, axis="y")
    title = group.get("label") or group["name"]
    fig.suptitle(f"{title}: {kind.replace('_', ' ')}", fontsize="medium")
    fig.tight_layout()
    return fig


def render_pngs(report: Report):
    """Yield (fingerprint, kind, title, PNG bytes) for every group."""
    plt = _pyplot()
    for group in report.data["groups"]:
        rows = [(row["value"], report.runs[(group["fingerprint"], row["value"])]) for row in group["rows"]]
        if not rows:
            continue
        for kind in KINDS:
            fig = _figure(plt, group, rows, kind, report.data["by"])
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=90)
            plt.close(fig)
            title = f"{kind.replace('_', ' ')} by {report.data['by']}"
            yield group["fingerprint"], kind, title, buffer.getvalue()


def data_uris(report: Report) -> dict:
    figures: dict[str, list] = defaultdict(list)
    for fp, _kind, title, png in render_pngs(report):
        figures[fp].append((title, "data:image/png;base64," + base64.b64encode(png).decode("ascii")))
    return figures


def write_pngs(report: Report, folder: str | Path) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fp, kind, _title, png in render_pngs(report):
        path = folder / f"{fp}-{kind}.png"
        _write_bytes_atomic(path, png)
        written.append(path)
    return written


def _write_bytes_atomic(path: Path, payload: bytes) -> None:
    """Temp file + rename, as record.write_text_atomic does for text: no half-written PNG."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
