"""Rerun a record's exact experiment and say whether it came out the same.

Three verdicts, strongest first:

    bit-identical        every recorded training number (loss, accuracy, val_*, learning rate of
                         every epoch) and the test metrics are equal to the last bit
    same within seed noise
                         the test accuracy differs by no more than the tolerance: a stated
                         --tolerance, else 1.96 x sqrt(2) x the sample std of the record's study
                         (the 95% bound on the difference of two runs drawn from that spread),
                         else DEFAULT_TOLERANCE
    different            anything else (including a rerun on data with other content)

Bit-identical results need runtime.deterministic=true and the same software and hardware;
the verdict comes with the environment fields that differ, which usually explain why not.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TOLERANCE = 0.001  # 0.1 percentage points of accuracy: compare's default equivalence margin
TIMING_KEYS = ("epoch_time_s",)  # per-epoch fields that are clock readings, not results

BIT_IDENTICAL = "bit-identical"
WITHIN_NOISE = "same within seed noise"
DIFFERENT = "different"


@dataclass
class Verdict:
    verdict: str
    reason: str
    delta_accuracy: float | None
    tolerance: float | None
    tolerance_source: str | None
    environment: list  # rows {"key", "a", "b"} of environment/runtime fields that differ
    first_difference: str | None = None


def data_dir_for(record: dict, data_dir: str | None) -> tuple[str | None, str]:
    """The record's data folder if it still exists, else --data-dir, else the download cache."""
    source = (record.get("data") or {}).get("source")
    if source and Path(source).is_dir():
        return str(source), f"the record's data folder {source}"
    if data_dir:
        return str(data_dir), f"--data-dir {data_dir} (the record's folder {source or '?'} is gone)"
    return None, f"the download cache (the record's folder {source or '?'} is gone; --data-dir uses another)"


def check_reproducible(record: dict) -> None:
    from mnistexp.experiment.record import RecordError

    if record.get("status") != "completed":
        raise RecordError(f"run {record.get('run_id')} ended {record.get('status')}: only a completed run has "
                          "results to reproduce; rerun it with `mnistexp run --config ...` instead")


def first_history_difference(a: list, b: list) -> str | None:
    """Where two histories first differ (None: identical to the last bit), timings aside."""
    if len(a) != len(b):
        return f"the original ran {len(a)} epoch(s), the rerun {len(b)}"
    for i, (row_a, row_b) in enumerate(zip(a, b, strict=True), start=1):
        for key in sorted(set(row_a) | set(row_b)):
            if key in TIMING_KEYS:
                continue
            if row_a.get(key) != row_b.get(key):
                return f"epoch {i} {key}: {row_a.get(key)!r} vs {row_b.get(key)!r}"
    return None


def study_spread(record: dict, results_dir) -> tuple[float, str] | None:
    """1.96 x sqrt(2) x the sample std of test accuracy over the record's study (same experiment,
    completed), or None when the record has no study or it has fewer than 2 runs."""
    from mnistexp.compare.load import load_runs

    study = (record.get("tags") or {}).get("study")
    if not study or results_dir is None or not Path(results_dir).is_dir():
        return None
    fingerprint = record["experiment"]["fingerprint"]
    accs = [r.record["metrics"]["test_accuracy"] for r in load_runs([results_dir]).runs
            if (r.record.get("tags") or {}).get("study") == study and r.record.get("status") == "completed"
            and r.record["experiment"]["fingerprint"] == fingerprint
            and (r.record.get("tags") or {}).get("reproduces") is None
            and isinstance(r.record["metrics"].get("test_accuracy"), float)]
    if len(accs) < 2:
        return None
    s = statistics.stdev(accs)
    return 1.96 * math.sqrt(2) * s, f"study {study}'s spread (s = {s:.4f} over {len(accs)} runs; 1.96·√2·s)"


def compare_runs(original: dict, rerun: dict, tolerance: float | None = None, results_dir=None) -> Verdict:
    from mnistexp.compare.diff import diff_records

    sections = {s["name"]: s["rows"] for s in diff_records(original, rerun)["sections"]}
    environment = [{"key": f"{name}.{row['key']}", "a": row["a"], "b": row["b"]}
                   for name in ("environment", "runtime") for row in sections.get(name, [])]
    m_a, m_b = original["metrics"], rerun["metrics"]
    acc_a, acc_b = m_a.get("test_accuracy"), m_b.get("test_accuracy")
    delta = acc_b - acc_a if isinstance(acc_a, float) and isinstance(acc_b, float) else None
    first = first_history_difference(original.get("history") or [], rerun.get("history") or [])
    if first is None:
        for key in ("test_accuracy", "test_loss"):
            if m_a.get(key) != m_b.get(key):
                first = f"{key}: {m_a.get(key)!r} vs {m_b.get(key)!r}"
                break
    if original["experiment"]["fingerprint"] != rerun["experiment"]["fingerprint"]:
        return Verdict(DIFFERENT, "the rerun's experiment fingerprint differs (other data content or config): "
                       f"{original['experiment']['fingerprint']} vs {rerun['experiment']['fingerprint']}",
                       delta, None, None, environment, first)
    if first is None:
        epochs = len(original.get("history") or [])
        return Verdict(BIT_IDENTICAL, f"the same history ({epochs} epoch(s)) and test metrics to the last bit",
                       0.0, None, None, environment)
    if tolerance is not None:
        source = f"--tolerance {tolerance:g}"
    else:
        spread = study_spread(original, results_dir)
        tolerance, source = spread if spread else (DEFAULT_TOLERANCE, f"default tolerance {DEFAULT_TOLERANCE:g} "
                                                   "(no study spread to go by; --tolerance sets one)")
    if delta is None:
        return Verdict(DIFFERENT, "a test accuracy is missing", None, tolerance, source, environment, first)
    text = f"test accuracy {acc_a:.4f} -> {acc_b:.4f} (Δ {delta:+.4f}; tolerance ±{tolerance:.4f} from {source})"
    if abs(delta) <= tolerance:
        return Verdict(WITHIN_NOISE, f"not bit-identical ({first}), but {text}", delta, tolerance, source,
                       environment, first)
    return Verdict(DIFFERENT, text, delta, tolerance, source, environment, first)
