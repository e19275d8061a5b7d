"""Re-score saved models on the test set (the original system's `test <name> <models>`)."""

from __future__ import annotations

import json
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
    from mnistexp.experiment.data import prepare_arrays
    from mnistexp.experiment.train import predict_proba, score

    cache: dict = {}
    for entry in entries:
        config = entry.config or resolve_config({"model": {"layers": [{"type": "Flatten"}]}})
        if dataset_name:
            config["data"]["dataset"] = dataset_name
        key = (config["data"]["dataset"], json.dumps(config["data"], sort_keys=True))
        if key not in cache:
            data = LocalAdapter().load_data(config, data_dir)
            cache[key] = (data, prepare_arrays(data, {**config["data"], "validation_split": 0.0},
                                               config["model"]["input_shape"]))
        data, arrays = cache[key]
        try:
            model = keras.models.load_model(entry.model_path, safe_mode=True, compile=False)
        except Exception as exc:  # Keras raises many types for a bad file
            raise RecordError(f"{entry.model_path}: cannot be loaded as a Keras model ({type(exc).__name__})") from None
        x_test = arrays["x_test"].reshape((len(arrays["x_test"]),) + tuple(model.input_shape[1:]))
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


def write_comparison(rows: list[dict], name: str, results_dir: Path) -> Path:
    out_dir = Path(results_dir) / "comparisons"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    write_json_atomic(path, {"name": name, "created_at": utc_now(), "models": rows})
    return path
