"""Run the experiment with BEAT's local executor and turn its results into a run record.

The `beat` command lives in its own virtualenv (BEAT pins old jsonschema/setuptools), so
it is driven as a subprocess: generate a prefix for this config whose database root
folder is the data folder, `beat experiments run --local`, read the analyzer's results
with beat_tool.py in the same virtualenv, and write the standard record.json.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mnistexp.adapters.base import AdapterError
from mnistexp.experiment import record as rec
from mnistexp.experiment.record import utc_now

PROJECT_DIR = Path(__file__).resolve().parent.parent.parent
DEFAULT_BEAT = PROJECT_DIR / ".venv-beat" / "bin" / "beat"
BEAT_TOOL = Path(__file__).resolve().with_name("beat_tool.py")
LOG_NAME = "beat.log"


class BeatError(AdapterError):
    """BEAT missing, failing or returning something unusable; one line for the user."""


def find_beat() -> Path:
    """The `beat` executable: $MNISTEXP_BEAT, else .venv-beat/bin/beat in the project."""
    configured = os.environ.get("MNISTEXP_BEAT")
    beat = Path(configured).expanduser() if configured else DEFAULT_BEAT
    if not (beat.is_file() and os.access(beat, os.X_OK)):
        where = f"MNISTEXP_BEAT={configured}" if configured else f"{DEFAULT_BEAT}"
        raise BeatError(
            f"no BEAT executable at {where}; create the BEAT virtualenv (README, section BEAT) "
            "or set MNISTEXP_BEAT=/path/to/venv/bin/beat"
        )
    return beat


def beat_python(beat: Path) -> Path:
    """The Python of the virtualenv that holds `beat` (it runs beat_tool.py)."""
    python = beat.parent / "python"
    if not python.exists():
        raise BeatError(f"{beat}: no python beside it; MNISTEXP_BEAT must point into a virtualenv's bin/")
    return python


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONWARNINGS"] = "ignore::UserWarning"  # pkg_resources deprecation from beat's CLI
    env.pop("PYTHONPATH", None)  # the BEAT virtualenv must not see the main environment
    return env


def tool(beat: Path, *args: str, timeout: float = 300) -> object:
    """Run beat_tool.py in the BEAT virtualenv; return its JSON output."""
    try:
        out = subprocess.run(
            [str(beat_python(beat)), str(BEAT_TOOL), *args],
            capture_output=True, text=True, timeout=timeout, env=_env(), check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BeatError(f"BEAT helper failed to run: {exc}") from None
    if out.returncode != 0:
        lines = (out.stderr or out.stdout).strip().splitlines()
        raise BeatError(f"BEAT helper failed: {lines[-1] if lines else 'exit ' + str(out.returncode)}")
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        raise BeatError("BEAT helper printed no JSON; is beat.core installed in that virtualenv?") from None


def validate_prefix(beat: Path, prefix: str | Path) -> list:
    """beat.core's verdict on every declaration: [{'kind', 'name', 'errors'}]."""
    return tool(beat, "validate", str(prefix))


def run_beat_experiment(beat: Path, prefix: Path, cache: Path, name: str, log_path: Path,
                        verbose: int = 1, timeout: float | None = None, heartbeat=None) -> None:
    """`beat -p PREFIX -c CACHE experiments run --local NAME`; output goes to log_path."""
    cmd = [str(beat), "-p", str(prefix), "-c", str(cache), "experiments", "run", "--local", name]
    with open(log_path, "w", encoding="utf-8") as log:
        try:
            proc = subprocess.Popen(cmd, cwd=prefix.parent, env=_env(), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
        except OSError as exc:
            raise BeatError(f"cannot start {beat}: {exc.strerror or exc}") from None
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            for line in proc.stdout:
                log.write(line)
                log.flush()  # `tail -f beat.log` follows the run
                if heartbeat is not None:
                    heartbeat()
                if verbose:
                    sys.stdout.write("  beat | " + line)
                if deadline is not None and time.monotonic() > deadline:
                    proc.kill()
                    raise BeatError(f"BEAT did not finish within {timeout:.0f} s; see {log_path}")
            proc.wait(timeout=None if deadline is None else max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            raise BeatError(f"BEAT did not finish within {timeout:.0f} s; see {log_path}") from None
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    if proc.returncode != 0:
        reason = _failure_reason(log_path)
        if "diverged: " in reason:  # the algorithm's own check (code_train.py)
            from mnistexp.experiment.hooks import RunDiverged

            raise RunDiverged(reason.split("diverged: ", 1)[1])
        raise BeatError(f"BEAT experiment failed ({reason}); full log: {log_path}")


def _failure_reason(log_path: Path) -> str:
    lines = [ln.strip() for ln in log_path.read_text(encoding="utf-8", errors="replace").splitlines()]
    lines = [ln for ln in lines if ln and "pkg_resources" not in ln]
    for marker in ("Error:", "Exception:"):
        hits = [ln for ln in lines if marker in ln and not ln.startswith("Error: Error occured")]
        if hits:
            return hits[-1][:300]
    return lines[-1][:300] if lines else "no output"


def run_with_beat(config: dict, results_dir: str | Path = "results", data_dir: str | Path | None = None,
                  verbose: int = 1, tags: dict | None = None, timeout: float | None = None):
    """The whole BEAT run; returns (run folder, final record)."""
    from mnistexp.adapters.beat.prefix import build_files, experiment_id, write_prefix
    from mnistexp.experiment.data import load_dataset
    from mnistexp.experiment.hooks import RunInterrupted
    from mnistexp.experiment.lifecycle import RecordWriter, StopSignals, new_record

    t_start = time.perf_counter()
    beat = find_beat()
    results_dir = Path(results_dir)
    data_config = config["data"]
    if data_dir is None:
        from mnistexp.experiment.download import ensure_dataset

        data_dir = ensure_dataset(data_config["dataset"])
    # The same loading and verification as a local run: the record's data facts and a
    # cross-check of what BEAT's executor reports it read.
    dataset = load_dataset(data_dir, dataset=data_config["dataset"], verify=data_config["verify"],
                           holdout_fraction=data_config["holdout_fraction"])
    if dataset.format != "idx" or dataset.test_split != "official":
        raise BeatError(f"{data_dir}: the BEAT database reads the four IDX files; this folder holds "
                        f"{dataset.format} data; pass a folder with MNIST IDX files to --data-dir")

    run_id = rec.new_run_id("beat")
    run_dir = results_dir / run_id
    run_dir.mkdir()
    record = new_record(config, "beat", dataset, None, run_id, {"executor": "local", **(tags or {})},
                        project_dir=PROJECT_DIR)
    writer = RecordWriter(run_dir, record)
    writer.write()
    name = experiment_id(config)
    try:
        with StopSignals(), tempfile.TemporaryDirectory(prefix="mnistexp-beat-") as work:
            prefix = Path(work) / "prefix"
            write_prefix(prefix, build_files(config, root_folder=str(Path(data_dir).resolve())))
            t0 = time.perf_counter()
            run_beat_experiment(beat, prefix, Path(work) / "cache", name, run_dir / LOG_NAME, verbose, timeout,
                                heartbeat=writer.beat)
            beat_s = time.perf_counter() - t0
            results = tool(beat, "results", str(prefix), str(Path(work) / "cache"), name)
        summary = _summary(results)
        fill_record(record, summary, dataset)
        record["timings"]["beat_s"] = beat_s
        _write_artifacts(run_dir, record, summary)
        _close(record, writer, "completed", None, t_start, beat)
    except KeyboardInterrupt as exc:
        reason = exc.reason if isinstance(exc, RunInterrupted) else "interrupted by the user (Ctrl-C)"
        _close(record, writer, "interrupted", reason, t_start, beat)
        raise RunInterrupted(run_dir, reason) from None
    except Exception as exc:
        text = str(exc).splitlines()[0] if str(exc) else ""
        reason = f"diverged: {text}" if type(exc).__name__ == "RunDiverged" else f"{type(exc).__name__}: {text}"
        _close(record, writer, "failed", reason, t_start, beat)
        raise
    return run_dir, record


def _summary(results: dict) -> dict:
    try:
        summary = json.loads(results["analysis"]["summary"])
    except (KeyError, TypeError, json.JSONDecodeError):
        raise BeatError("BEAT's analyzer results lack the mnistexp summary; regenerate the prefix") from None
    return summary


def fill_record(record: dict, summary: dict, dataset) -> None:
    """Put BEAT's results into the record; the data BEAT read must be the data verified here."""
    beat_checksums = summary.get("checksums") or {}
    if beat_checksums != dataset.checksums:
        differing = sorted(k for k in set(beat_checksums) | set(dataset.checksums)
                           if beat_checksums.get(k) != dataset.checksums.get(k))
        raise BeatError(f"BEAT read different data than {dataset.source} holds ({', '.join(differing)})")
    # Fingerprint from the content checksums of what BEAT's executor actually trained and tested on.
    config = record["experiment"]["config"]
    record["experiment"]["fingerprint"] = rec.experiment_fingerprint(config, beat_checksums)
    record["data"].update(n_train=summary["n_train"], n_val=summary["n_val"], n_test=summary["n_test"])
    history = summary.get("history") or []
    values = [summary.get("test_loss"), summary.get("test_accuracy"), *(v for row in history for v in row.values())]
    bad = [v for v in values if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        from mnistexp.experiment.hooks import RunDiverged

        raise RunDiverged(f"BEAT's training loss or test metrics became {bad[0]}: the run diverged; "
                          "lower train.learning_rate or check the data scaling")
    record["history"] = history
    last = history[-1] if history else {}
    record["metrics"].update(
        test_accuracy=summary["test_accuracy"], test_loss=summary["test_loss"], epochs_run=len(history),
        final_val_accuracy=last.get("val_accuracy"), final_val_loss=last.get("val_loss"),
    )
    timings = summary.get("timings") or {}
    record["timings"].update({k: timings.get(k) for k in ("data_load_s", "build_s", "train_s", "evaluate_s")})
    epoch_times = [row["epoch_time_s"] for row in history if "epoch_time_s" in row]
    if epoch_times:
        record["throughput"]["train_images_per_s"] = summary["n_train"] * len(epoch_times) / sum(epoch_times)
    record["runtime"] = summary.get("runtime") or {}
    record["model"] = {"params": summary["params"]}
    # The training ran in the BEAT virtualenv: its versions, not the main environment's.
    beat_env = summary.get("environment") or {}
    for key in ("python", "tensorflow", "keras", "numpy"):
        if beat_env.get(key):
            record["environment"][key] = beat_env[key]
    record["platform_info"].update(
        beat_core=beat_env.get("beat.core"), beat_backend_python=beat_env.get("beat.backend.python"),
    )


def _write_artifacts(run_dir: Path, record: dict, summary: dict) -> None:
    from mnistexp.experiment import artifacts
    from mnistexp.experiment.data import CLASS_NAMES

    artifacts.write_history_csv(run_dir / "history.csv", record["history"])
    names = CLASS_NAMES.get(record["data"]["dataset"], [str(i) for i in range(10)])
    artifacts.write_confusion_csv(run_dir / "confusion_matrix.csv", summary["confusion_matrix"], names)
    record["artifacts"] = {"history": "history.csv", "confusion_matrix": "confusion_matrix.csv",
                           "beat_log": LOG_NAME}


def _close(record: dict, writer, status: str, error: str | None, t_start: float, beat: Path) -> None:
    from mnistexp.adapters.beat.prefix import experiment_id

    record["status"] = status
    record["error"] = error
    record["finished_at"] = utc_now()
    record["timings"]["total_s"] = time.perf_counter() - t_start
    record["platform_info"].update(
        executor="beat experiments run --local", beat=str(beat),
        experiment=experiment_id(record["experiment"]["config"]),
    )
    writer.write()
