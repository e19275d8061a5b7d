"""Time `mnistexp compare` on N synthetic run records (default 10,000; target < 3 s).

    python benchmarks/bench_compare.py            # 10,000 records in a temp folder
    python benchmarks/bench_compare.py -n 2000 --keep /tmp/records

Prints the end-to-end time of the command (a fresh process, as a user runs it), the
in-process time of load + statistics, and the ratio to a bare json.load of the same files.
Records are valid (schema-checked templates) across 4 platforms and 2 experiments.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LIMIT_S = 3.0
PLATFORMS = ("local", "comet", "kaggle", "codalab")


def write_records(folder: Path, n: int) -> list[Path]:
    from mnistexp.compare.synthetic import make_record

    templates = [make_record(platform=p, epochs=12, overrides=o)
                 for p in PLATFORMS for o in ((), ("train.batch_size=256",))]
    rng = random.Random(0)
    paths = []
    for i in range(n):
        record = copy.deepcopy(templates[i % len(templates)])
        record["run_id"] = f"20260101T000000000Z-{record['platform']}-{i:06d}"
        record["seed"] = record["experiment"]["config"]["train"]["seed"] = i
        record["metrics"]["test_accuracy"] = round(rng.gauss(0.991, 0.001), 4)
        record["metrics"]["test_loss"] = rng.gauss(0.028, 0.002)
        run_dir = folder / record["run_id"]
        run_dir.mkdir()
        path = run_dir / "record.json"
        path.write_text(json.dumps(record, indent=2))
        paths.append(path)
    return paths


def bare_load(paths) -> float:
    start = time.perf_counter()
    for path in paths:
        with open(path, encoding="utf-8") as f:
            json.load(f)
    return time.perf_counter() - start


def best_of(k: int, fn) -> float:
    return min(fn() for _ in range(k))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="number of records (default 10000)")
    parser.add_argument("--keep", type=Path, help="write the records here and keep them")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many timings (default 3)")
    args = parser.parse_args(argv)

    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-compare-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        paths = write_records(folder, args.n)
        print(f"wrote {len(paths):,} records to {folder} in {time.perf_counter() - t0:.1f} s")
        bare_load(paths)  # warm the page cache so both timings read from memory

        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        command = [sys.executable, "-m", "mnistexp.cli", "compare", str(folder)]

        cpu_times = []

        def end_to_end():
            # CPU time too: on a machine shared with other jobs, wall time mostly measures them.
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if done.returncode != 0:
                raise SystemExit(f"compare failed: {done.stderr.strip()}")
            cpu_times.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            return wall

        def in_process():
            from mnistexp.compare.analysis import build_report
            from mnistexp.compare.load import load_runs

            start = time.perf_counter()
            loaded = load_runs([folder])
            build_report(loaded.runs)
            assert len(loaded.runs) == args.n and not loaded.warnings, loaded.warnings[:3]
            return time.perf_counter() - start

        cli_s = best_of(args.repeat, end_to_end)
        inproc_s = best_of(args.repeat, in_process)
        bare_s = best_of(args.repeat, lambda: bare_load(paths))
        verdict = "PASS" if cli_s < LIMIT_S else "FAIL"
        print(f"mnistexp compare, end to end : {cli_s:.2f} s for {args.n:,} records "
              f"(target < {LIMIT_S:.0f} s: {verdict})")
        print(f"  CPU time of that process   : {min(cpu_times):.2f} s (load average now "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        print(f"load + statistics in-process : {inproc_s:.2f} s")
        print(f"bare json.load of the files  : {bare_s:.2f} s")
        print(f"ratio end-to-end / json.load : {cli_s / bare_s:.1f}x  (in-process: {inproc_s / bare_s:.1f}x)")
        return 0 if cli_s < LIMIT_S else 1
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
