"""What the CLI prints: run summaries and small tables (rich)."""

from __future__ import annotations

from pathlib import Path


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def print_run_summary(record: dict, run_dir: Path, quiet: bool = False) -> None:
    metrics, timings = record["metrics"], record["timings"]
    speed = record["throughput"].get("train_images_per_s")
    if quiet:
        console().print(
            f"{record['run_id']}: test_accuracy={metrics['test_accuracy']:.4f} "
            f"test_loss={metrics['test_loss']:.4f} total={timings['total_s']:.1f}s record={run_dir / 'record.json'}"
        )
        return
    from rich.table import Table

    table = Table(title=f"{record['experiment']['name']} on {record['platform']}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("test accuracy", f"{metrics['test_accuracy']:.4f}")
    table.add_row("test loss", f"{metrics['test_loss']:.4f}")
    table.add_row("epochs", str(metrics.get("epochs_run")))
    table.add_row("train time", f"{timings.get('train_s', 0):.1f} s")
    if speed:
        n_train = record["data"].get("n_train")
        epochs = metrics.get("epochs_run") or 0
        what = f"{n_train:,} images x {epochs} epoch{'s' if epochs != 1 else ''}, " if n_train else ""
        # Per-epoch wall time includes the validation pass: what a stopwatch on the epochs shows.
        table.add_row("speed", f"{speed:,.0f} training images/s  ({what}validation time included)")
    runs_on = runtime_summary(record.get("runtime") or {})
    if runs_on:
        table.add_row("runs on", runs_on)
    table.add_row("total time", f"{timings['total_s']:.1f} s")
    table.add_row("fingerprint", record["experiment"]["fingerprint"])
    table.add_row("record", str(run_dir / "record.json"))
    console().print(table)


def runtime_summary(runtime: dict) -> str:
    """Backend, device, precision and XLA as the run resolved them ("auto" settings decide the
    speed): e.g. "tensorflow on cpu, mixed_bfloat16, XLA off"."""
    if not runtime.get("backend"):
        return ""
    parts = [f"{runtime['backend']} on {runtime.get('devices', 'cpu')}"]
    if runtime.get("mixed_precision"):
        parts.append(runtime["mixed_precision"])
    if isinstance(runtime.get("jit_compile"), bool):
        parts.append("XLA on" if runtime["jit_compile"] else "XLA off")
    return ", ".join(parts)
