"""What a study changes in a trial's run record after the run."""

from __future__ import annotations

from pathlib import Path


def mark_pruned(run_dir: Path, epoch: int, monitor: str, value) -> None:
    """A pruned trial's run stopped early: its record says so (status interrupted, not completed)."""
    from mnistexp.experiment.record import RECORD_NAME, read_record, write_record

    record = read_record(Path(run_dir) / RECORD_NAME)
    record["status"] = "interrupted"
    record["error"] = f"pruned by the study's median pruner after epoch {epoch} ({monitor} {value:.4f})"
    record["tags"]["trial_state"] = "pruned"
    write_record(run_dir, record)
