"""`mnistexp run --platform local` in-process, plus the test set scored after every epoch.

bench_train.py runs this instead of the CLI when it measures the time to a target test
accuracy (--time-to): the same run_experiment call the CLI makes, with one extra Keras
callback, listed after the harness's own epoch timer so its time is not counted.

    python harness_child.py DATA_DIR RESULTS_DIR KEY=VALUE ...
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(data_dir: str, results_dir: str, overrides: list[str]) -> None:
    from mnistexp import adapters
    from mnistexp.experiment.config import load_config
    from mnistexp.experiment.data import load_dataset, prepare_arrays
    from mnistexp.runner import run_experiment
    from mnistexp.tfenv import import_keras_quietly

    config = load_config(REPO / "config.yaml", overrides)
    import_keras_quietly(config["runtime"])
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bare_keras import test_each_epoch_callback

    arrays = prepare_arrays(load_dataset(data_dir, config["data"]["dataset"]), config["data"],
                            config["model"]["input_shape"])
    callback = test_each_epoch_callback(arrays["x_test"], arrays["y_test"],
                                        batch_size=config["runtime"]["eval_batch_size"])
    result = run_experiment(config, adapters.adapter_class("local")(), results_dir, data_dir, verbose=0,
                            extra_callbacks=[callback])
    (Path(result.run_dir) / "test_accuracy_per_epoch.txt").write_text(
        "\n".join(f"{acc:.6f}" for _, acc in callback.rows) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
