"""The bare Keras script of the canonical model: the baseline the harness is measured against.

Same model, optimizer, batch size, validation split and data as config.yaml; nothing else
(Keras' defaults for everything else, on whichever backend KERAS_BACKEND names).
Prints one JSON line: per-epoch images/s, time to first training step, test accuracy.

    python bare_keras.py DATA_DIR EPOCHS SEED [TRAIN_LIMIT] [--test-each-epoch]

--test-each-epoch scores the test set after every epoch (outside the timed epochs), for
the time to a target test accuracy.
"""

import gzip
import json
import os
import sys
import time

import numpy as np


def process_start() -> float:
    """Wall-clock start of this process (Linux /proc), so import time counts too."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return btime + start_ticks / ticks
    except (OSError, ValueError, StopIteration):
        return time.time()


T_START = process_start()

import keras  # noqa: E402


def load(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = np.frombuffer(raw[4 : 4 + 4 * ndim], dtype=">u4")
    return np.frombuffer(raw[4 + 4 * ndim :], dtype=np.uint8).reshape(tuple(int(s) for s in shape))


def test_each_epoch_callback(x_test, y_test, batch_size=None):
    """Scores the test set at each epoch end; list it after the epoch timer so its time is not
    counted. `rows` gets (epoch, test accuracy) pairs."""

    class TestEachEpoch(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.rows = []

        def on_epoch_end(self, epoch, logs=None):
            _, accuracy = self.model.evaluate(x_test, y_test, batch_size=batch_size, verbose=0)
            self.rows.append((epoch + 1, float(accuracy)))

    return TestEachEpoch()


def main(data_dir, epochs, seed, train_limit, test_each_epoch=False):
    keras.utils.set_random_seed(seed)
    x_train = load(f"{data_dir}/train-images-idx3-ubyte.gz")
    y_train = load(f"{data_dir}/train-labels-idx1-ubyte.gz")
    x_test = load(f"{data_dir}/t10k-images-idx3-ubyte.gz")
    y_test = load(f"{data_dir}/t10k-labels-idx1-ubyte.gz")
    if train_limit:
        x_train, y_train = x_train[:train_limit], y_train[:train_limit]
    x_train = (x_train.astype("float32") / 255.0)[..., None]
    x_test = (x_test.astype("float32") / 255.0)[..., None]

    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, kernel_size=3, activation="relu"),
        keras.layers.MaxPooling2D(pool_size=2),
        keras.layers.Conv2D(64, kernel_size=3, activation="relu"),
        keras.layers.MaxPooling2D(pool_size=2),
        keras.layers.Dropout(0.25),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    times, first = [], []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if not first:
                first.append(time.time())

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)

    callbacks = [Timer()]
    if test_each_epoch:
        callbacks.append(test_each_epoch_callback(x_test, y_test))
    model.fit(x_train, y_train, batch_size=128, epochs=epochs, validation_split=0.1,
              callbacks=callbacks, verbose=0)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    n_train = len(x_train) - int(len(x_train) * 0.1)
    result = {
        "images_per_s": [n_train / t for t in times],
        "epoch_time_s": times,
        "time_to_first_step_s": first[0] - T_START,
        "test_accuracy": float(accuracy),
        "test_loss": float(loss),
        "backend": keras.backend.backend(),
    }
    if test_each_epoch:
        result["test_accuracy_per_epoch"] = [acc for _, acc in callbacks[1].rows]
    print(json.dumps(result))


if __name__ == "__main__":
    flags = [a for a in sys.argv[1:] if a.startswith("--")]
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    data_dir, epochs, seed = args[0], int(args[1]), int(args[2])
    main(data_dir, epochs, seed, int(args[3]) if len(args) > 3 else 0, "--test-each-epoch" in flags)
