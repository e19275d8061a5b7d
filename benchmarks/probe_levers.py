"""Short side-by-side probes of speed levers for the canonical model (issue 16).

    python benchmarks/probe_levers.py --levers bare,spe8,onednn_off,jax --repeats 3 --train-limit 20000

Each lever trains the canonical CNN (the layers of bare_keras.py, Adam 1e-3, batch 128, validation
split 0.1) in a fresh process; levers run interleaved (A B C A B C ...) so the load of a shared
machine hits all alike. Prints per-epoch images/s and each lever's ratio to `bare` (harmonic mean
of the steady epochs, 2..), and writes the figures to --json. A probe, not a benchmark of the
harness: bench_train.py measures `mnistexp run` itself.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# lever name -> (environment for the child, options for the child)
LEVERS: dict[str, tuple[dict, dict]] = {
    "bare": ({}, {}),
    "spe8": ({}, {"spe": 8}),
    "spe64": ({}, {"spe": 64}),
    "onednn_off": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, {"spe": 8}),
    "threads_1_1": ({}, {"spe": 8, "intra": 1, "inter": 1}),
    "threads_2_1": ({}, {"spe": 8, "intra": 2, "inter": 1}),
    "xla": ({}, {"spe": 8, "jit": True}),
    "nchw": ({}, {"spe": 8, "nchw": True}),
    "loop": ({}, {"loop": True}),
    "nobias": ({}, {"spe": 8, "nobias": True}),
    "nodropout": ({}, {"spe": 8, "nodropout": True}),
    "gcfreeze": ({}, {"spe": 8, "gcfreeze": True}),
    "gcoff": ({}, {"spe": 8, "gcoff": True}),
    "noremap": ({}, {"spe": 8, "grappler": {"remapping": False}}),
    "nolayout": ({}, {"spe": 8, "grappler": {"layout_optimizer": False}}),
    "jax": ({"KERAS_BACKEND": "jax"}, {"spe": 8, "jit": True}),
    "jax_spe1": ({"KERAS_BACKEND": "jax"}, {"jit": True}),
    "torch": ({"KERAS_BACKEND": "torch"}, {}),
    "torch_compile": ({"KERAS_BACKEND": "torch"}, {"jit": True}),
}


def child(opts: dict) -> None:
    """Train once with the given options; print one JSON line."""
    t_start = time.time()
    if opts.get("intra") or opts.get("inter"):
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(opts.get("intra", 0))
        tf.config.threading.set_inter_op_parallelism_threads(opts.get("inter", 0))
    if opts.get("grappler"):
        import tensorflow as tf

        tf.config.optimizer.set_experimental_options(opts["grappler"])
    import keras
    import numpy as np

    sys.path.insert(0, str(HERE))
    from bare_keras import load

    keras.utils.set_random_seed(opts["seed"])
    d = opts["data_dir"]
    x_train, y_train = load(f"{d}/train-images-idx3-ubyte.gz"), load(f"{d}/train-labels-idx1-ubyte.gz")
    x_test, y_test = load(f"{d}/t10k-images-idx3-ubyte.gz"), load(f"{d}/t10k-labels-idx1-ubyte.gz")
    if opts["train_limit"]:
        x_train, y_train = x_train[: opts["train_limit"]], y_train[: opts["train_limit"]]
    x_train = (x_train.astype("float32") / 255.0)[..., None]
    x_test = (x_test.astype("float32") / 255.0)[..., None]
    fmt = "channels_last"
    if opts.get("nchw"):
        fmt = "channels_first"
        x_train, x_test = x_train.transpose(0, 3, 1, 2).copy(), x_test.transpose(0, 3, 1, 2).copy()
    bias = not opts.get("nobias")
    drop = (lambda r: []) if opts.get("nodropout") else (lambda r: [keras.layers.Dropout(r)])
    model = keras.Sequential([
        keras.Input(shape=x_train.shape[1:]),
        keras.layers.Conv2D(32, 3, activation="relu", data_format=fmt, use_bias=bias),
        keras.layers.MaxPooling2D(2, data_format=fmt),
        keras.layers.Conv2D(64, 3, activation="relu", data_format=fmt, use_bias=bias),
        keras.layers.MaxPooling2D(2, data_format=fmt),
        *drop(0.25),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        *drop(0.5),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=bool(opts.get("jit")), steps_per_execution=opts.get("spe", 1))
    n_val = int(len(x_train) * 0.1)
    x_tr, y_tr, x_val, y_val = x_train[:-n_val], y_train[:-n_val], x_train[-n_val:], y_train[-n_val:]
    if opts.get("gcfreeze"):
        import gc

        # the objects of TF, Keras and the traced model live to the end: out of the GC's scans
        gc.freeze()
    times, first, cpu = [], [], []
    if opts.get("loop"):
        times, first, cpu = _hand_loop(model, x_tr, y_tr, x_val, y_val, opts["epochs"])
    else:
        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.t, self.c = time.perf_counter(), time.process_time()

            def on_train_batch_end(self, batch, logs=None):
                if not first:
                    first.append(time.time())

            def on_epoch_end(self, epoch, logs=None):
                times.append(time.perf_counter() - self.t)
                cpu.append(time.process_time() - self.c)
                if opts.get("gcfreeze") and epoch == 0:
                    import gc

                    gc.freeze()  # and the objects of the traced train and test functions
                if opts.get("gcoff") and epoch == 0:
                    import gc

                    gc.disable()  # an upper bound on what the collector costs the steady epochs

        model.fit(x_tr, y_tr, batch_size=128, epochs=opts["epochs"], validation_data=(x_val, y_val),
                  validation_batch_size=1024 if opts.get("spe") else None, callbacks=[Timer()], verbose=0)
    probabilities = np.asarray(model.predict(x_test, batch_size=1024, verbose=0))
    print(json.dumps({
        "images_per_s": [len(x_tr) / t for t in times],
        # CPU seconds (all threads) per 1000 images: less sensitive than wall time to other
        # processes taking the cores, though spin-waiting threads count here too.
        "cpu_ms_per_image": [1000 * c / len(x_tr) for c in cpu],
        "time_to_first_step_s": first[0] - t_start if first else None,
        "test_accuracy": float(np.mean(probabilities.argmax(1) == y_test)),
        "backend": keras.backend.backend(),
    }))


def _hand_loop(model, x_tr, y_tr, x_val, y_val, epochs):
    """A hand-written TF epoch: one tf.function per epoch, a GradientTape step per batch, no callbacks."""
    import keras
    import numpy as np
    import tensorflow as tf

    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)

    @tf.function
    def train_epoch(dataset):
        total = tf.constant(0.0)
        for x, y in dataset:
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
            total += loss
        return total

    times, first, cpu = [], [], []
    rng = np.random.default_rng(0)
    for _ in range(epochs):
        t, c = time.perf_counter(), time.process_time()
        order = rng.permutation(len(x_tr))
        ds = tf.data.Dataset.from_tensor_slices((x_tr[order], y_tr[order])).batch(128).prefetch(2)
        train_epoch(ds)
        if not first:
            first.append(time.time())
        model.predict(x_val, batch_size=1024, verbose=0)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return times, first, cpu


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--levers", default="bare,spe8")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-limit", type=int, default=20000)
    parser.add_argument("--json", default=str(HERE / "results" / "probe_levers.json"))
    args = parser.parse_args()
    levers = args.levers.split(",")
    unknown = [lever for lever in levers if lever not in LEVERS]
    if unknown:
        raise SystemExit(f"unknown lever(s) {', '.join(unknown)}; choose from {', '.join(LEVERS)}")
    runs: dict[str, list] = {lever: [] for lever in levers}
    for repeat in range(args.repeats):
        for lever in levers:
            env_extra, opts = LEVERS[lever]
            opts = {**opts, "data_dir": args.data_dir, "epochs": args.epochs, "seed": repeat + 1,
                    "train_limit": args.train_limit}
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env_extra}
            proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(opts)], env=env, cwd=REPO,
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{lever}: failed\n{proc.stderr[-2000:]}", flush=True)
                continue
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            runs[lever].append(result)
            print(f"repeat {repeat + 1} {lever:14s} " + " ".join(f"{v:7,.0f}" for v in result["images_per_s"])
                  + "  cpu ms/img " + " ".join(f"{v:.3f}" for v in result["cpu_ms_per_image"])
                + f"  acc {result['test_accuracy']:.4f}", flush=True)
    summary = {}
    for lever, results in runs.items():
        if not results:
            continue
        steady = [v for r in results for v in (r["images_per_s"][1:] or r["images_per_s"])]
        per_repeat = [statistics.harmonic_mean(r["images_per_s"][1:] or r["images_per_s"]) for r in results]
        summary[lever] = {"images_per_s": statistics.harmonic_mean(steady), "per_repeat": per_repeat,
                          "first_epoch": statistics.median(r["images_per_s"][0] for r in results),
                          "cpu_ms_per_image": statistics.median(
                              v for r in results for v in (r["cpu_ms_per_image"][1:] or r["cpu_ms_per_image"]))}
    base = summary.get("bare", {}).get("images_per_s")
    print(f"\n{'lever':14s} {'images/s':>9s} {'ratio':>6s} {'cpu ms/img':>10s} {'cpu ratio':>9s}  "
          "per-repeat ratios (repeat i vs bare repeat i)")
    for lever, s in summary.items():
        s["ratio_to_bare"] = s["images_per_s"] / base if base else None
        pairs = [a / b for a, b in zip(s["per_repeat"], summary.get("bare", {}).get("per_repeat", []), strict=False)]
        s["ratio_per_repeat"] = pairs
        base_cpu = summary.get("bare", {}).get("cpu_ms_per_image")
        # bare's CPU per image over this lever's: > 1 means less CPU work per image
        s["cpu_ratio_to_bare"] = base_cpu / s["cpu_ms_per_image"] if base_cpu else None
        print(f"{lever:14s} {s['images_per_s']:9,.0f} {s['ratio_to_bare'] or float('nan'):6.2f} "
              f"{s['cpu_ms_per_image']:10.3f} {s['cpu_ratio_to_bare'] or float('nan'):9.2f}  "
              + " ".join(f"{p:.2f}" for p in pairs))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"args": vars(args), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                               "summary": summary, "runs": runs}, indent=2) + "\n")
    tmp.replace(out)
    print(f"\nfigures written to {out}")


if __name__ == "__main__":
    main()
