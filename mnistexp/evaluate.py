"""Re-score saved models on the test set (the original system's `test <name> <models>`)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from mnistexp.experiment.record import (
    RECORD_NAME,
    RecordError,
    read_record,
    utc_now,
    write_json_atomic,
)


@dataclass
class ModelEntry:
    label: str
    model_path: Path
    config: dict | None  # the run's resolved config, when the model came from a run folder


def recorded_data_dir(record: dict, run_dir: Path) -> Path | None:
    """The data folder the run read (record data.source), if it is still there: so `show` and
    `evaluate` reuse the user's files instead of downloading. A relative source is tried from the
    current folder and from the folder that holds results/ (where the run was started)."""
    source = (record.get("data") or {}).get("source")
    if not source:
        return None
    path = Path(source)
    candidates = [path] if path.is_absolute() else [path, Path(run_dir).resolve().parent.parent / path]
    return next((c for c in candidates if c.is_dir()), None)


def resolve_models(targets: list[str]) -> list[ModelEntry]:
    entries = []
    for target in targets:
        path = Path(target)
        if path.is_dir():
            record = read_record(path / RECORD_NAME)
            model_path = path / record.get("artifacts", {}).get("model", "model.keras")
            if not model_path.is_file():
                raise RecordError(f"{path}: run folder has no saved model ({model_path.name}); the run did not complete")
            entries.append(ModelEntry(record["run_id"], model_path, record["experiment"]["config"]))
        elif path.is_file() and path.suffix == ".keras":
            entries.append(ModelEntry(path.stem if path.stem != "model" else path.parent.name, path, None))
        else:
            raise RecordError(f"{path}: not a run folder or a .keras model file")
    return entries


def evaluate_models(entries: list[ModelEntry], data_dir, dataset_name: str | None = None) -> list[dict]:
    """Load each model with Keras safe mode and score it on its data set's test images."""
    return [row for row, _, _ in _score_entries(entries, data_dir, dataset_name)]


def evaluate_ensemble(entries: list[ModelEntry], data_dir, dataset_name: str | None = None) -> list[dict]:
    """Each member's row, then the ensemble's: the mean of the members' softmax outputs.

    All members must be scored on the same test images (same data set, same test_limit);
    the ensemble row lists its members and the best single member's accuracy for comparison.
    """
    import numpy as np

    from mnistexp.experiment.train import score

    if len(entries) < 2:
        raise RecordError("--ensemble needs at least two runs or models")
    scored = list(_score_entries(entries, data_dir, dataset_name))
    first_row, _, y_test = scored[0]
    for row, _, labels in scored[1:]:
        if row["dataset"] != first_row["dataset"] or not np.array_equal(labels, y_test):
            raise RecordError(
                f"{row['model']} was scored on other test images than {first_row['model']} "
                f"({row['dataset']}, {row['n_test']} images vs {first_row['dataset']}, {first_row['n_test']}); "
                "ensemble members need the same data.dataset and data.test_limit"
            )
    mean = np.mean([probabilities for _, probabilities, _ in scored], axis=0)
    scores = score(mean, y_test)
    rows = [row for row, _, _ in scored]
    for row in rows:
        row["role"] = "member"
    best = max(row["test_accuracy"] for row in rows)
    rows.append({
        "model": f"ensemble of {len(rows)}",
        "role": "ensemble",
        "path": "",
        "dataset": first_row["dataset"],
        "n_test": int(len(y_test)),
        "test_accuracy": scores["accuracy"],
        "test_loss": scores["loss"],
        "errors": int(np.sum(mean.argmax(axis=1) != y_test)),
        "members": [row["model"] for row in rows],
        "gain_over_best_member": scores["accuracy"] - best,
    })
    return rows


def _score_entries(entries: list[ModelEntry], data_dir, dataset_name: str | None = None):
    """Yield (row, test probabilities, test labels) per model."""
    import keras

    from mnistexp.adapters.local import LocalAdapter
    from mnistexp.experiment.config import resolve_config
    from mnistexp.experiment.data import CLASS_NAMES, prepare_arrays
    from mnistexp.experiment.train import predict_proba, score

    cache: dict = {}
    for entry in entries:
        # A bare .keras file: the canonical data settings (the model's own layers are not used)
        config = entry.config or resolve_config({})
        if dataset_name:
            config["data"]["dataset"] = dataset_name
        key = (config["data"]["dataset"], json.dumps(config["data"], sort_keys=True))
        if key not in cache:
            folder = data_dir
            if folder is None and entry.config is not None:
                record = read_record(entry.model_path.parent)
                folder = recorded_data_dir(record, entry.model_path.parent)
            data = LocalAdapter().load_data(config, folder)
            cache[key] = (data, prepare_arrays(data, {**config["data"], "validation_split": 0.0},
                                               config["model"]["input_shape"]))
        data, arrays = cache[key]
        try:
            model = keras.models.load_model(entry.model_path, safe_mode=True, compile=False)
        except Exception as exc:  # Keras raises many types for a bad file
            raise RecordError(load_error_message(entry.model_path, exc)) from None
        n_classes = len(CLASS_NAMES.get(data.name, CLASS_NAMES["mnist"]))
        input_shape = check_model_shapes(model, entry.model_path, data.name, n_classes)
        x_test = arrays["x_test"].reshape((len(arrays["x_test"]),) + input_shape)
        probabilities = predict_proba(model, x_test)
        scores = score(probabilities, arrays["y_test"])
        yield {
            "model": entry.label,
            "path": str(entry.model_path),
            "dataset": data.name,
            "n_test": int(len(arrays["y_test"])),
            "test_accuracy": scores["accuracy"],
            "test_loss": scores["loss"],
            "errors": int(round((1 - scores["accuracy"]) * len(arrays["y_test"]))),
        }, probabilities, arrays["y_test"]


def load_error_message(model_path: Path, exc: Exception) -> str:
    """One line saying why Keras refused the file and what to do about it."""
    text = str(exc)
    if "safe_mode" in text or "unsafe_deserialization" in text:
        return (f"{model_path}: refused by Keras safe mode: the model contains a Lambda layer (Python code "
                "that would run when loaded); mnistexp loads only models built from standard Keras layers, "
                "so rebuild it without Lambda layers (e.g. train it with mnistexp run)")
    custom = re.search(r"Could not locate (?:class|function) '([^']+)'", text)
    if custom:
        return (f"{model_path}: uses custom code ({custom.group(1)}) that is not part of Keras; mnistexp loads "
                "only models built from standard Keras layers, so rebuild it without custom layers or functions")
    if "File not found" in text or "zip file" in text or isinstance(exc, OSError):
        return f"{model_path}: not a readable .keras file (corrupt, truncated or another format); save the model again"
    return (f"{model_path}: cannot be loaded as a Keras model ({type(exc).__name__}); save it again with "
            "model.save('model.keras')")


def check_model_shapes(model, model_path: Path, dataset: str, n_classes: int) -> tuple:
    """The model's input shape (without batch) if it takes 28x28 images and outputs one value per class."""
    try:
        input_shape, output_shape = tuple(model.input_shape[1:]), tuple(model.output_shape[1:])
    except (AttributeError, ValueError, TypeError):  # several inputs or outputs
        raise RecordError(f"{model_path}: the model must have one input and one output; expected an image "
                          f"classifier with input 28x28 and output ({n_classes},)") from None
    if None in input_shape or _product(input_shape) != 28 * 28:
        raise RecordError(
            f"{model_path}: the model expects input of shape {_shape(input_shape)}, but {dataset} images are "
            "28x28 (784 values); expected input shape (28, 28, 1), (28, 28) or (784,)"
        )
    if output_shape != (n_classes,):
        raise RecordError(
            f"{model_path}: the model outputs shape {_shape(output_shape)} per image; expected ({n_classes},), "
            f"one probability per {dataset} class"
        )
    return input_shape


def _product(shape) -> int:
    total = 1
    for value in shape:
        total *= int(value)
    return total


def _shape(shape) -> str:
    return "(" + ", ".join("None" if v is None else str(v) for v in shape) + ("," if len(shape) == 1 else "") + ")"


COMPARISON_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")


def check_comparison_name(name: str) -> str:
    """A comparison name is a plain file name: no folders, no '..', nothing hidden."""
    if not COMPARISON_NAME_RE.match(name or "") or ".." in name:
        raise RecordError(
            f"comparison name {name!r} must be a plain name (letters, digits, '.', '_', '-', '+'; no '/' "
            "or '..'), e.g. --name baseline; it becomes results/comparisons/NAME.json"
        )
    return name


def write_comparison(rows: list[dict], name: str, results_dir: Path) -> Path:
    check_comparison_name(name)
    out_dir = Path(results_dir) / "comparisons"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    write_json_atomic(path, {"name": name, "created_at": utc_now(), "models": rows})
    return path
