"""Seeds per hour: a seed study through `mnistexp run --seeds` against sequential bare Keras processes.

    python benchmarks/bench_seeds.py                       # 4 seeds x 3 epochs, real MNIST, 1 round
    python benchmarks/bench_seeds.py --rounds 2 --train-limit 6000

Variants, interleaved (round 1: study then bare; round 2: bare then study; ...) so load on
the machine hits both alike:
  study  `mnistexp run --seeds 1-N --epochs E -q`: parallel processes sized to the machine
  bare   benchmarks/bare_keras.py once per seed, one after another (what a user's shell loop does)
Seeds per hour = N / wall time of the whole variant; the ratio is study / bare (target >= 1.5x
on 2 cores). Figures also go to a JSON file (--json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _run(argv: list[str]) -> str:
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed ({proc.returncode}): {' '.join(argv)}\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def run_study(args) -> dict:
    with tempfile.TemporaryDirectory() as results:
        argv = [sys.executable, "-m", "mnistexp.cli", "run", "--seeds", f"1-{args.seeds}", "--epochs", str(args.epochs),
                "--data-dir", args.data_dir, "--results-dir", results, "-q"]
        if args.jobs:
            argv += ["--jobs", str(args.jobs)]
        if args.train_limit:
            argv += ["--train-limit", str(args.train_limit)]
        start = time.perf_counter()
        _run(argv)
        wall = time.perf_counter() - start
        records = [json.loads(p.read_text()) for p in Path(results).glob("*/record.json")]
    return {"wall_s": wall, "accuracy": {r["seed"]: r["metrics"]["test_accuracy"] for r in records},
            "runtime": records[0]["runtime"] if records else None}


def run_bare(args) -> dict:
    start = time.perf_counter()
    accuracy = {}
    for seed in range(1, args.seeds + 1):
        out = _run([sys.executable, str(HERE / "bare_keras.py"), args.data_dir, str(args.epochs), str(seed),
                    str(args.train_limit or 0)])
        accuracy[seed] = json.loads(out.strip().splitlines()[-1])["test_accuracy"]
    return {"wall_s": time.perf_counter() - start, "accuracy": accuracy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=0, help="--jobs for the study [default: mnistexp's]")
    parser.add_argument("--train-limit", type=int, default=0)
    parser.add_argument("--json", default=str(HERE / "results" / "bench_seeds.json"))
    args = parser.parse_args()

    rounds = []
    for i in range(args.rounds):
        order = ("study", "bare") if i % 2 == 0 else ("bare", "study")
        result = {}
        for variant in order:
            result[variant] = run_study(args) if variant == "study" else run_bare(args)
            print(f"round {i + 1} {variant}: {result[variant]['wall_s']:.1f} s for {args.seeds} seeds "
                  f"({args.seeds / result[variant]['wall_s'] * 3600:.0f} seeds/h)", flush=True)
        rounds.append(result)
    study_s = statistics.fmean(r["study"]["wall_s"] for r in rounds)
    bare_s = statistics.fmean(r["bare"]["wall_s"] for r in rounds)
    summary = {
        "seeds": args.seeds, "epochs": args.epochs, "rounds": args.rounds, "train_limit": args.train_limit or None,
        "study_seeds_per_hour": args.seeds / study_s * 3600, "bare_seeds_per_hour": args.seeds / bare_s * 3600,
        "ratio": bare_s / study_s, "rounds_detail": rounds,
    }
    print(f"study {summary['study_seeds_per_hour']:.0f} seeds/h, bare {summary['bare_seeds_per_hour']:.0f} seeds/h: "
          f"ratio {summary['ratio']:.2f}x (target >= 1.5x)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
