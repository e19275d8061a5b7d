"""`mnistexp run --seeds`: seed lists, one record per seed in parallel processes, Ctrl-C, shared storage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnistexp import study as studies
from mnistexp.cli import cli
from tests.conftest import REPO

TINY_ARGS = ["--epochs", "1", "--batch-size", "32"]


def records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(results.glob("*/record.json"))]


@pytest.mark.parametrize("text, seeds", [
    ("1-5", [1, 2, 3, 4, 5]),
    ("1,2,7", [1, 2, 7]),
    ("1-3, 10", [1, 2, 3, 10]),
    ("0", [0]),
    ("7-7", [7]),
])
def test_seed_lists_and_ranges(text, seeds):
    assert studies.parse_seeds(text) == seeds


@pytest.mark.parametrize("text, message", [
    ("5-1", "range '5-1' runs backwards; write 1-5"),
    ("1,x", "'x' is not a seed or a range"),
    ("1,,2", "'' is not a seed or a range"),
    ("-3", "'-3' is not a seed or a range"),
    ("1-3,2", "seed 2 is listed twice"),
    ("0-20000", "more than 10,000 seeds"),
])
def test_bad_seed_lists_are_refused(text, message):
    with pytest.raises(studies.StudyError, match=message.replace("(", r"\(")):
        studies.parse_seeds(text)


@pytest.mark.parametrize("jobs, cores, runtime, intra, inter", [
    (1, 2, {"intra_op_threads": 0, "inter_op_threads": 0}, 0, 0),  # one process: TF's own default
    (2, 2, {"intra_op_threads": 0, "inter_op_threads": 0}, 1, 1),
    (2, 16, {"intra_op_threads": 0, "inter_op_threads": 0}, 8, 1),
    (4, 2, {"intra_op_threads": 0, "inter_op_threads": 0}, 1, 1),
    (2, 16, {"intra_op_threads": 3, "inter_op_threads": 2}, 3, 2),  # the config's own choice wins
])
def test_cores_are_split_between_the_processes(jobs, cores, runtime, intra, inter):
    assert studies.split_threads(runtime, jobs, cores) == {"intra_op_threads": intra, "inter_op_threads": inter}


def test_default_jobs_follow_the_cores_and_the_seeds():
    assert studies.default_jobs(5, cores=2) == 2
    assert studies.default_jobs(1, cores=16) == 1
    assert studies.default_jobs(20, cores=16) == 16


@pytest.mark.parametrize("args, message", [
    (["--seeds", "3-1"], "Error: --seeds: range '3-1' runs backwards"),
    (["--seeds", "1-2", "--seed", "4"], "give --seed (one run) or --seeds (a study), not both"),
    (["--jobs", "2"], "--jobs applies to a seed study only; add --seeds"),
    (["--study", "x", "--storage", "sqlite:///x.db"], "--study, --storage applies to a seed study only"),
    (["--seeds", "1-2", "--storage", "sqlite:///x.db"], "--storage needs --study NAME"),
    (["--seeds", "1-2", "--set", "train.epochs=0"], "train.epochs"),
])
def test_bad_study_input_is_one_line_and_writes_nothing(args, message, tiny_data_dir, tmp_path):
    results = tmp_path / "results"
    result = CliRunner().invoke(cli, ["run", *args, "--data-dir", str(tiny_data_dir), "--results-dir", str(results)])
    assert result.exit_code in (1, 2), result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not results.exists() or not any(results.iterdir())


def test_a_missing_data_folder_stops_the_study_before_any_process_starts(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--seeds", "1-3", "--data-dir", str(tmp_path / "nope"),
                                      "--results-dir", str(tmp_path / "results")])
    assert result.exit_code == 1 and "nope does not exist" in result.output and "--data-dir" in result.output
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


@pytest.mark.slow
def test_seeds_run_in_parallel_processes_one_record_each(tiny_data_dir, tmp_path):
    results = tmp_path / "results"
    result = CliRunner().invoke(cli, ["run", "--seeds", "1,4", "--jobs", "2", "--study", "pair", *TINY_ARGS,
                                      "--data-dir", str(tiny_data_dir), "--results-dir", str(results),
                                      "--tag", "purpose=test"])
    assert result.exit_code == 0, result.output
    assert "study pair: seeds 1,4 on local, 2 process(es) at a time" in result.output
    assert "seed 1: completed  test accuracy" in result.output and "seed 4: completed" in result.output
    assert "study pair: 2 completed" in result.output and "over 2 seed(s)" in result.output
    recs = records(results)
    assert sorted(r["seed"] for r in recs) == [1, 4]
    assert all(r["status"] == "completed" and r["tags"]["study"] == "pair" and r["tags"]["purpose"] == "test"
               for r in recs)
    assert len({r["experiment"]["fingerprint"] for r in recs}) == 1  # the same experiment, two seeds
    assert len({r["process"]["pid"] for r in recs}) == 2  # two processes
    expected = max(1, studies.cpu_count() // 2)
    assert all(r["experiment"]["config"]["runtime"]["intra_op_threads"] == expected for r in recs)
    assert all(r["runtime"]["intra_op_threads"] == expected for r in recs)  # what TF actually used


@pytest.mark.slow
def test_a_diverging_study_exits_non_zero_with_each_seed_failed(tiny_data_dir, tmp_path):
    results = tmp_path / "results"
    result = CliRunner().invoke(cli, ["run", "--seeds", "1-2", "--jobs", "2", "--study", "nan", *TINY_ARGS,
                                      "--set", "train.learning_rate=1e12", "--set", "data.normalize=false",
                                      "--data-dir", str(tiny_data_dir), "--results-dir", str(results)])
    assert result.exit_code == 1, result.output
    assert "2 of 2 seed(s) failed" in result.output and "diverged" in result.output
    assert sorted(r["status"] for r in records(results)) == ["failed", "failed"]


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.slow
def test_ctrl_c_stops_every_seed_and_leaves_interrupted_records(tiny_data_dir, tmp_path):
    results = tmp_path / "results"
    env = dict(os.environ, MNISTEXP_HEARTBEAT_S="0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mnistexp.cli", "run", "--seeds", "1-3", "--jobs", "2", "--study", "stop",
         "--epochs", "500", "--batch-size", "32", "--data-dir", str(tiny_data_dir), "--results-dir", str(results)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as in a terminal, even under `&`
    try:
        # Both running seeds have trained at least one epoch: their records exist.
        _wait_for(lambda: len([r for r in records(results) if r["history"]]) == 2, 240, "two running seeds")
        proc.send_signal(signal.SIGINT)  # to the parent only: the children run in their own session
        output, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    recs = records(results)
    assert len(recs) == 2 and all(r["status"] == "interrupted" for r in recs), [r["status"] for r in recs]
    assert "seed 1: interrupted" in output and "seed 2: interrupted" in output
    assert "not run yet: seeds 3" in output
    assert "Traceback" not in output


def start_worker(storage: str, study: str, seeds: str, data_dir: Path, results: Path, jobs: int = 1):
    """One machine of a distributed study: `mnistexp run --seeds ... --storage ...` in its own process."""
    return subprocess.Popen(
        [sys.executable, "-m", "mnistexp.cli", "run", "--seeds", seeds, "--jobs", str(jobs), "--study", study,
         "--storage", storage, *TINY_ARGS, "--data-dir", str(data_dir), "--results-dir", str(results)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def check_two_workers_run_each_seed_once(storage: str, data_dir: Path, tmp_path: Path) -> None:
    """Two workers started on one study: every seed has exactly one completed record, and a third
    start finds nothing left to do."""
    results = tmp_path / "results"
    workers = [start_worker(storage, "shared", "1-4", data_dir, results) for _ in range(2)]
    outputs = [w.communicate(timeout=480)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    recs = records(results)
    assert sorted(r["seed"] for r in recs) == [1, 2, 3, 4], outputs
    assert all(r["status"] == "completed" and r["tags"]["study"] == "shared" for r in recs)
    ran = [sorted(int(line.split()[1].rstrip(":")) for line in out.splitlines() if line.startswith("seed "))
           for out in outputs]
    assert sorted(ran[0] + ran[1]) == [1, 2, 3, 4], outputs  # each seed ran on one worker only
    assert any("whole study in storage: 4 complete" in out for out in outputs), outputs  # the last to finish
    again = start_worker(storage, "shared", "1-4", data_dir, results)
    out = again.communicate(timeout=120)[0]
    assert again.returncode == 0 and "no seed run here" in out, out
    assert len(records(results)) == 4
    other = start_worker(storage, "shared", "1-5", data_dir, results)
    out = other.communicate(timeout=120)[0]
    assert other.returncode == 1 and "exists with another seed study (seeds 1-4" in out, out


@pytest.mark.slow
def test_two_workers_share_one_sqlite_study(tiny_data_dir, tmp_path):
    check_two_workers_run_each_seed_once(f"sqlite:///{tmp_path / 'study.db'}", tiny_data_dir, tmp_path)


def test_an_unreachable_storage_is_one_line(tiny_data_dir, tmp_path):
    result = CliRunner().invoke(cli, ["run", "--seeds", "1-2", "--study", "s", "--storage",
                                      "postgresql://user:secret@127.0.0.1:1/db", "--data-dir", str(tiny_data_dir),
                                      "--results-dir", str(tmp_path / "results")])
    assert result.exit_code == 1 and "--storage postgresql://user:***@127.0.0.1:1/db: cannot be opened" in result.output
    assert "secret" not in result.output
