"""Look at a trained model: PNG galleries of predictions, mistakes and activation maps.

show_run(RUN_DIR) reloads the run's model (Keras safe mode) and its test images (the
data set and preprocessing its record names) and writes, under RUN_DIR/show/:
  samples.png        the first test images with predicted and true labels (mistakes in red)
  misclassified.png  misclassified test images with their top-2 class probabilities
  activations.png    every layer's output for one chosen test image (feature maps / units)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnistexp.experiment.record import RECORD_NAME, RecordError, read_record


def show_run(
    run_dir: str | Path,
    data_dir: str | Path | None = None,
    dataset: str | None = None,
    out_dir: str | Path | None = None,
    n_samples: int = 25,
    n_misclassified: int = 36,
    image_index: int = 0,
) -> dict:
    """Write the galleries; return {kind: path}."""
    import keras

    from mnistexp.adapters.local import LocalAdapter
    from mnistexp.experiment.data import CLASS_NAMES, prepare_arrays
    from mnistexp.experiment.train import predict_proba

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RecordError(f"{run_dir}: not a run folder; pass a folder that holds {RECORD_NAME}")
    record = read_record(run_dir / RECORD_NAME)
    model_path = run_dir / record.get("artifacts", {}).get("model", "model.keras")
    if not model_path.is_file():
        raise RecordError(f"{run_dir}: run folder has no saved model ({model_path.name}); the run did not complete")
    config = record["experiment"]["config"]
    if dataset:
        config["data"]["dataset"] = dataset
    from mnistexp.evaluate import recorded_data_dir

    data = LocalAdapter().load_data(config, data_dir if data_dir is not None else recorded_data_dir(record, run_dir))
    arrays = prepare_arrays(data, {**config["data"], "validation_split": 0.0}, config["model"]["input_shape"])
    x_test, y_test = arrays["x_test"], arrays["y_test"]
    raw_test = data.x_test[: len(y_test)]
    if not 0 <= image_index < len(y_test):
        raise RecordError(f"--image {image_index} is out of range; the test set has {len(y_test)} images (0..{len(y_test) - 1})")
    from mnistexp.evaluate import check_model_shapes, load_error_message

    try:
        model = keras.models.load_model(model_path, safe_mode=True, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file
        raise RecordError(load_error_message(model_path, exc)) from None
    input_shape = check_model_shapes(model, model_path, data.name, len(CLASS_NAMES.get(data.name, CLASS_NAMES["mnist"])))
    x_test = x_test.reshape((len(x_test),) + input_shape)

    probabilities = predict_proba(model, x_test, config["runtime"].get("eval_batch_size", 1024))
    names = CLASS_NAMES.get(data.name, [str(i) for i in range(probabilities.shape[1])])
    out = Path(out_dir) if out_dir else run_dir / "show"
    out.mkdir(parents=True, exist_ok=True)
    title = f"{record['run_id']} ({data.name}, test accuracy {np.mean(probabilities.argmax(1) == y_test):.4f})"
    return {
        "samples": plot_samples(out / "samples.png", raw_test, y_test, probabilities, names, n_samples, title),
        "misclassified": plot_misclassified(out / "misclassified.png", raw_test, y_test, probabilities, names,
                                            n_misclassified, title),
        "activations": plot_activations(out / "activations.png", model, x_test[image_index], raw_test[image_index],
                                        names[int(y_test[image_index])], image_index),
    }


def _grid(n: int, max_cols: int = 8) -> tuple[int, int]:
    cols = max(1, min(max_cols, n))
    return max(1, -(-n // cols)), cols


def plot_samples(path: Path, images, labels, probabilities, names, n: int, title: str) -> Path:
    from mnistexp.experiment.artifacts import _pyplot, save_figure

    plt = _pyplot()
    n = max(1, min(n, len(labels)))
    rows, cols = _grid(n, 5 if n <= 25 else 8)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.9, rows * 2.1), squeeze=False)
    predicted = probabilities.argmax(axis=1)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=255)
        wrong = predicted[i] != labels[i]
        ax.set_title(f"#{i} pred {names[predicted[i]]}\ntrue {names[labels[i]]}", fontsize=8,
                     color="red" if wrong else "black")
    fig.suptitle(f"Test samples: {title}", fontsize=9)
    save_figure(fig, path)
    return path


def plot_misclassified(path: Path, images, labels, probabilities, names, n: int, title: str) -> Path:
    from mnistexp.experiment.artifacts import _pyplot, save_figure

    plt = _pyplot()
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    # The most confident mistakes first: those are the interesting ones.
    wrong = wrong[np.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")][:n]
    if len(wrong) == 0:
        fig, ax = plt.subplots(figsize=(4, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, f"no misclassified test images\nof {len(labels)}", ha="center", va="center")
        save_figure(fig, path)
        return path
    rows, cols = _grid(len(wrong), 6)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.1, rows * 2.5), squeeze=False)
    for slot, ax in enumerate(axes.flat):
        ax.axis("off")
        if slot >= len(wrong):
            continue
        i = wrong[slot]
        top = np.argsort(-probabilities[i])[:2]
        ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=255)
        ax.set_title(f"#{i} true {names[labels[i]]}\n1. {names[top[0]]} {probabilities[i, top[0]]:.2f}\n"
                     f"2. {names[top[1]]} {probabilities[i, top[1]]:.2f}", fontsize=7, color="red")
    fig.suptitle(f"Misclassified ({int(np.sum(predicted != labels))} of {len(labels)}, most confident first): "
                 f"{title}", fontsize=9)
    save_figure(fig, path)
    return path


def layer_activations(model, image) -> list[tuple[str, np.ndarray]]:
    """(layer name, output for `image`) for every layer of the model, in order."""
    import keras

    probe = keras.Model(inputs=model.inputs, outputs=[layer.output for layer in model.layers])
    outputs = probe([image[np.newaxis].astype("float32")], training=False)
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    # float32 for plotting: a mixed-precision model's hidden layers output bfloat16
    return [(layer.name, np.asarray(output, dtype=np.float32)[0])
            for layer, output in zip(model.layers, outputs, strict=True)]


def plot_activations(path: Path, model, image, raw_image, true_name: str, index: int,
                     max_maps: int = 16) -> Path:
    """One row per layer: up to `max_maps` feature maps of a conv layer, or a unit strip."""
    from mnistexp.experiment.artifacts import _pyplot, save_figure

    plt = _pyplot()
    activations = layer_activations(model, image)
    rows = len(activations) + 1
    fig, axes = plt.subplots(rows, max_maps, figsize=(max_maps * 0.9, rows * 1.05), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    axes[0, 0].imshow(raw_image, cmap="gray_r", vmin=0, vmax=255)
    axes[0, 1].text(0, 0.5, f"input: test image #{index} (true {true_name})", va="center", fontsize=8)
    for row, (name, act) in enumerate(activations, start=1):
        if act.ndim == 3:  # (H, W, channels): one image per channel
            shown = min(max_maps, act.shape[-1])
            for c in range(shown):
                axes[row, c].imshow(act[..., c], cmap="viridis")
            label = f"{name} {act.shape[0]}x{act.shape[1]}x{act.shape[2]}"
        else:  # (units,) or anything else: one strip, as square as possible
            flat = act.reshape(-1)
            width = int(np.ceil(np.sqrt(flat.size)))
            padded = np.full(width * width, np.nan)
            padded[: flat.size] = flat
            axes[row, 0].imshow(padded.reshape(width, width), cmap="viridis")
            label = f"{name} ({flat.size} units)"
            if flat.size <= 10 and flat.size > 0:
                label += f": argmax {int(np.argmax(flat))}"
        axes[row, 0].set_title(label, fontsize=7, loc="left")
    fig.suptitle("Activations per layer", fontsize=9)
    save_figure(fig, path)
    return path
