"""Training throughput of `mnistexp run` against a bare Keras script, interleaved in one invocation.

    python benchmarks/bench_train.py --epochs 2            # real MNIST from ../shared/data/mnist
    python benchmarks/bench_train.py --epochs 12 --seeds 3 # accuracy comparison over seeds

Variants, run in turn (A B C A B C ...) so machine load affects all alike:
  bare      benchmarks/bare_keras.py: the canonical model as a plain Keras script
  harness   `mnistexp run` with the config's default runtime settings
  plain     `mnistexp run` with every speed knob off (the bare script's settings): the overhead
  nogc      `mnistexp run` with the defaults but runtime.gc_pause=false: what that knob gives
Each child runs in its own process; peak RSS comes from the kernel (os.wait4).
Figures go to the terminal and to a JSON file (--json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PLAIN = ["runtime.jit_compile=false", "runtime.steps_per_execution=1", "runtime.intra_op_threads=0", "runtime.inter_op_threads=0",
         "runtime.eval_batch_size=128", "runtime.gc_pause=false"]
# harness variants: `mnistexp run --set ...` for each
OVERRIDES = {"harness": [], "plain": PLAIN, "nogc": ["runtime.gc_pause=false"]}


def run_child(argv: list[str], env: dict) -> tuple[str, float, float, float]:
    """Run a child process; return its stdout, wall time, peak RSS in MiB and CPU seconds."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL, env=env, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed ({proc.returncode}): {' '.join(argv)}\n{text}")
    # CPU time of all its threads, start-up included: unlike wall time, it does not depend on
    # how much of the machine other processes leave free.
    return text, time.perf_counter() - start, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def run_harness(args, seed, extra, env) -> dict:
    with tempfile.TemporaryDirectory() as results:
        argv = [sys.executable, "-m", "mnistexp.cli", "run", "--data-dir", args.data_dir, "--results-dir", results,
                "--epochs", str(args.epochs), "--seed", str(seed), "-q"]
        if args.train_limit:
            argv += ["--train-limit", str(args.train_limit)]
        for item in extra:
            argv += ["--set", item]
        _, wall, rss, cpu = run_child(argv, env)
        record = json.loads(next(Path(results).glob("*/record.json")).read_text())
    n_train = record["data"]["n_train"]
    return {
        "images_per_s": [n_train / row["epoch_time_s"] for row in record["history"]],
        "time_to_first_step_s": record["timings"]["time_to_first_step_s"],
        "test_accuracy": record["metrics"]["test_accuracy"],
        "wall_s": wall,
        "peak_rss_mib": rss,
        "cpu_s": cpu,
        "runtime": record["runtime"],
    }


def run_bare(args, seed, env) -> dict:
    argv = [sys.executable, str(HERE / "bare_keras.py"), args.data_dir, str(args.epochs), str(seed),
            str(args.train_limit or 0)]
    text, wall, rss, cpu = run_child(argv, env)
    result = json.loads(text.strip().splitlines()[-1])
    result.update(wall_s=wall, peak_rss_mib=rss, cpu_s=cpu)
    return result


def run_torch(args, seed, env) -> dict | None:
    if not (HERE / "torch_reference.py").is_file():
        return None  # no PyTorch reference script in this checkout
    try:
        import torch  # noqa: F401
    except ImportError:
        return None
    argv = [sys.executable, str(HERE / "torch_reference.py"), args.data_dir, str(args.epochs), str(seed),
            str(args.train_limit or 0)]
    text, wall, rss, cpu = run_child(argv, env)
    result = json.loads(text.strip().splitlines()[-1])
    result.update(wall_s=wall, peak_rss_mib=rss, cpu_s=cpu)
    return result


def summarise(runs: list[dict]) -> dict:
    # The first epoch carries tracing/compilation; steady state is what later epochs show.
    steady = [v for r in runs for v in (r["images_per_s"][1:] or r["images_per_s"])]
    return {
        "n": len(runs),
        # Images over time across the steady epochs (harmonic mean): the headline figure. On a
        # machine whose epochs alternate between a slow and a fast mode, the median jumps
        # between the modes, so it is reported but not used for the ratio.
        "images_per_s": statistics.harmonic_mean(steady),
        "images_per_s_median": statistics.median(steady),
        "first_epoch_images_per_s_median": statistics.median(r["images_per_s"][0] for r in runs),
        "time_to_first_step_s_median": statistics.median(r["time_to_first_step_s"] for r in runs),
        "test_accuracy_mean": statistics.fmean(r["test_accuracy"] for r in runs),
        "peak_rss_mib_max": max(r["peak_rss_mib"] for r in runs),
        # whole-process CPU seconds (start-up, training, evaluation); absent in older JSON files
        "cpu_s_median": statistics.median(r["cpu_s"] for r in runs) if all("cpu_s" in r for r in runs) else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=1, help="repeats of the A B C cycle, seeds 1..N")
    parser.add_argument("--train-limit", type=int, default=0)
    parser.add_argument("--variants", default="bare,harness,plain")
    parser.add_argument("--json", default=str(HERE / "results" / "bench_train.json"))
    parser.add_argument("--from-json", metavar="FILE", help="re-print the summary of saved figures, run nothing")
    args = parser.parse_args()
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        args.json = args.from_json
        report(args, saved["runs"])
        return
    if not Path(args.data_dir, "train-images-idx3-ubyte.gz").is_file():
        raise SystemExit(f"no MNIST IDX files in {args.data_dir}; pass --data-dir")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in ("bare", "torch", *OVERRIDES)]
    if unknown:
        raise SystemExit(f"unknown variant(s) {', '.join(unknown)}; choose from bare, {', '.join(OVERRIDES)}, torch")
    runs: dict[str, list] = {v: [] for v in variants}
    for seed in range(1, args.seeds + 1):
        for variant in variants:
            if variant == "bare":
                result = run_bare(args, seed, env)
            elif variant == "torch":
                result = run_torch(args, seed, env)
                if result is None:
                    continue
            else:
                result = run_harness(args, seed, OVERRIDES[variant], env)
            runs[variant].append(result)
            speeds = " ".join(f"{v:,.0f}" for v in result["images_per_s"])
            print(f"seed {seed} {variant:8s} images/s per epoch: {speeds}  "
                  f"first step {result['time_to_first_step_s']:.2f}s  acc {result['test_accuracy']:.4f}  "
                  f"peak RSS {result['peak_rss_mib']:.0f} MiB", flush=True)
    report(args, runs)


def report(args, runs: dict) -> None:
    summary = {v: summarise(r) for v, r in runs.items() if r}
    bare = summary.get("bare")
    print(f"\n{'variant':8s} {'images/s':>10s} {'ratio':>7s} {'median':>8s} {'1st step':>9s} {'delta':>7s} "
          f"{'test acc':>9s} {'RSS MiB':>8s} {'CPU s':>7s} {'CPU ratio':>9s}")
    for variant, s in summary.items():
        ratio = s["images_per_s"] / bare["images_per_s"] if bare else float("nan")
        delta = s["time_to_first_step_s_median"] - bare["time_to_first_step_s_median"] if bare else float("nan")
        s["ratio_to_bare"] = ratio
        s["first_step_delta_s"] = delta
        # bare's CPU seconds over this variant's: > 1 means less CPU for the same run
        cpu_ratio = (bare["cpu_s_median"] / s["cpu_s_median"]) if bare and bare["cpu_s_median"] and s["cpu_s_median"] \
            else float("nan")
        s["cpu_ratio_to_bare"] = cpu_ratio
        print(f"{variant:8s} {s['images_per_s']:10,.0f} {ratio:7.3f} {s['images_per_s_median']:8,.0f} "
              f"{s['time_to_first_step_s_median']:8.2f}s "
              f"{delta:+6.2f}s {s['test_accuracy_mean']:9.4f} {s['peak_rss_mib_max']:8.0f} "
              f"{s['cpu_s_median'] or float('nan'):7.1f} {cpu_ratio:9.3f}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    saved = json.loads(out.read_text()) if args.from_json else {}
    payload = {"args": saved.get("args", vars(args)), "cpu": saved.get("cpu", _cpu()), "summary": summary,
               "runs": runs, "date": saved.get("date", time.strftime("%Y-%m-%d %H:%M:%S"))}
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nfigures written to {out}")


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        model = "unknown"
    return f"{model}, {os.cpu_count()} cores"


if __name__ == "__main__":
    main()
