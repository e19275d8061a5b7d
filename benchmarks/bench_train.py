"""Training throughput of `mnistexp run` against a bare Keras script, interleaved in one invocation.

    python benchmarks/bench_train.py --epochs 2            # real MNIST from ../shared/data/mnist
    python benchmarks/bench_train.py --epochs 12 --seeds 3 # accuracy comparison over seeds

Variants, run in turn (A B C A B C ...) so machine load affects all alike:
  bare      benchmarks/bare_keras.py: the canonical model as a plain Keras script
  harness   `mnistexp run` with the config's default runtime settings
  plain     `mnistexp run` with every speed knob off (the bare script's settings): the overhead
  nogc      `mnistexp run` with the defaults but runtime.gc_pause=false: what that knob gives
  fp32      the defaults with runtime.mixed_precision=float32 (what mixed precision gives)
  bf16      the defaults with runtime.mixed_precision=mixed_bfloat16
  nojit     the defaults with runtime.jit_compile=false (what XLA gives)
Each child runs in its own process; peak RSS comes from the kernel (os.wait4).
Figures go to the terminal and to a JSON file (--json).

--backend jax runs every variant, bare included, on Keras' JAX backend (KERAS_BACKEND).
--time-to 0.99 scores the test set after every epoch (outside the timed epochs) and reports
the training time until the test accuracy first reaches 0.99; harness variants then run
through harness_child.py (the same run_experiment call as the CLI, plus that callback).
--budget-s stops starting new children once that many seconds have passed (a GPU lease).
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
         "runtime.eval_batch_size=128", "runtime.gc_pause=false", "runtime.mixed_precision=float32"]
# harness variants: `mnistexp run --set ...` for each
OVERRIDES = {"harness": [], "plain": PLAIN, "nogc": ["runtime.gc_pause=false"],
             "fp32": ["runtime.mixed_precision=float32"], "bf16": ["runtime.mixed_precision=mixed_bfloat16"],
             "nojit": ["runtime.jit_compile=false"]}


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
        if args.time_to:
            sets = [f"train.epochs={args.epochs}", f"train.seed={seed}", *extra]
            if args.train_limit:
                sets.append(f"data.train_limit={args.train_limit}")
            argv = [sys.executable, str(HERE / "harness_child.py"), args.data_dir, results, *sets]
        else:
            argv = [sys.executable, "-m", "mnistexp.cli", "run", "--data-dir", args.data_dir, "--results-dir",
                    results, "--epochs", str(args.epochs), "--seed", str(seed), "-q"]
            if args.train_limit:
                argv += ["--train-limit", str(args.train_limit)]
            for item in extra:
                argv += ["--set", item]
        _, wall, rss, cpu = run_child(argv, env)
        run_dir = next(Path(results).glob("*/record.json")).parent
        record = json.loads((run_dir / "record.json").read_text())
        per_epoch = run_dir / "test_accuracy_per_epoch.txt"
        test_per_epoch = [float(v) for v in per_epoch.read_text().split()] if per_epoch.is_file() else None
    n_train = record["data"]["n_train"]
    result = {
        "images_per_s": [n_train / row["epoch_time_s"] for row in record["history"]],
        "epoch_time_s": [row["epoch_time_s"] for row in record["history"]],
        "time_to_first_step_s": record["timings"]["time_to_first_step_s"],
        "test_accuracy": record["metrics"]["test_accuracy"],
        "wall_s": wall,
        "peak_rss_mib": rss,
        "cpu_s": cpu,
        "runtime": record["runtime"],
        "gpus": record["environment"].get("gpus", []),
    }
    if test_per_epoch is not None:
        result["test_accuracy_per_epoch"] = test_per_epoch
    return result


def time_to_target(result: dict, target: float) -> float | None:
    """Training seconds (epoch wall times, validation included) until the test accuracy first
    reaches `target` at an epoch end; None if it never does."""
    elapsed = 0.0
    rows = zip(result.get("epoch_time_s", []), result.get("test_accuracy_per_epoch", []), strict=False)
    for seconds, accuracy in rows:
        elapsed += seconds
        if accuracy >= target:
            return elapsed
    return None


def run_bare(args, seed, env) -> dict:
    argv = [sys.executable, str(HERE / "bare_keras.py"), args.data_dir, str(args.epochs), str(seed),
            str(args.train_limit or 0)] + (["--test-each-epoch"] if args.time_to else [])
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


def summarise(runs: list[dict], target: float | None = None) -> dict:
    # The first epoch carries tracing/compilation; steady state is what later epochs show.
    steady = [v for r in runs for v in (r["images_per_s"][1:] or r["images_per_s"])]
    times = [time_to_target(r, target) for r in runs] if target else []
    return {
        "time_to_target_s": times or None,
        "test_accuracy_std": statistics.stdev(r["test_accuracy"] for r in runs) if len(runs) > 1 else None,
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
    parser.add_argument("--backend", choices=("tensorflow", "jax"), help="Keras backend for every variant")
    parser.add_argument("--time-to", type=float, metavar="ACC", help="report the training time to this test accuracy")
    parser.add_argument("--budget-s", type=float, help="start no new child after this many seconds")
    args = parser.parse_args()
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        args.json = args.from_json
        report(args, saved["runs"])
        return
    if not Path(args.data_dir, "train-images-idx3-ubyte.gz").is_file():
        raise SystemExit(f"no MNIST IDX files in {args.data_dir}; pass --data-dir")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if args.backend:
        env["KERAS_BACKEND"] = args.backend
    variants = args.variants.split(",")
    started = time.monotonic()
    unknown = [v for v in variants if v not in ("bare", "torch", *OVERRIDES)]
    if unknown:
        raise SystemExit(f"unknown variant(s) {', '.join(unknown)}; choose from bare, {', '.join(OVERRIDES)}, torch")
    runs: dict[str, list] = {v: [] for v in variants}
    for seed in range(1, args.seeds + 1):
        for variant in variants:
            if args.budget_s and time.monotonic() - started > args.budget_s:
                print(f"budget of {args.budget_s:.0f} s spent: seed {seed} {variant} and later not run", flush=True)
                break
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
            reach = ""
            if args.time_to:
                seconds = time_to_target(result, args.time_to)
                reach = f"  to {args.time_to}: " + (f"{seconds:.1f}s" if seconds is not None else "not reached")
            print(f"seed {seed} {variant:8s} images/s per epoch: {speeds}  "
                  f"first step {result['time_to_first_step_s']:.2f}s  acc {result['test_accuracy']:.4f}  "
                  f"peak RSS {result['peak_rss_mib']:.0f} MiB{reach}", flush=True)
    report(args, runs)


def report(args, runs: dict) -> None:
    target = getattr(args, "time_to", None) or (json.loads(Path(args.json).read_text()).get("args", {}).get("time_to")
                                                 if args.from_json else None)
    summary = {v: summarise(r, target) for v, r in runs.items() if r}
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
        if s["time_to_target_s"]:
            reached = [t for t in s["time_to_target_s"] if t is not None]
            median = statistics.median(reached) if len(reached) == len(s["time_to_target_s"]) else None
            s["time_to_target_s_median"] = median
            print(f"{'':8s} training time to test accuracy {target}: "
                  + " / ".join(f"{t:.1f}s" if t is not None else "not reached" for t in s["time_to_target_s"])
                  + (f" (median {median:.1f}s)" if median is not None else ""))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    saved = json.loads(out.read_text()) if args.from_json else {}
    gpus = sorted({g for r in runs.values() for run in r for g in run.get("gpus", [])})
    payload = {"args": saved.get("args", vars(args)), "cpu": saved.get("cpu", _cpu()),
               "gpus": saved.get("gpus", gpus), "summary": summary,
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
