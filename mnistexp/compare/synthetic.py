"""Valid run records with chosen numbers, for the compare tests and benchmarks/bench_compare.py.

They go through the same config resolution, fingerprint and schema validation as real
records, so `compare` cannot tell them apart by structure; only the numbers are made up.
"""

from __future__ import annotations

import copy
import hashlib
from functools import lru_cache
from pathlib import Path

from mnistexp.experiment.record import (
    SCHEMA_VERSION,
    config_hash,
    experiment_fingerprint,
    validate_record,
    write_json_atomic,
)

CHECKSUMS = {part: hashlib.sha256(part.encode()).hexdigest()
             for part in ("train_images", "train_labels", "test_images", "test_labels")}


@lru_cache(maxsize=32)
def _config(overrides: tuple[str, ...]) -> dict:
    from mnistexp.experiment.config import load_config
    from mnistexp.paths import PACKAGE_DIR

    return load_config(PACKAGE_DIR / "config.yaml", list(overrides))


def make_record(platform: str = "local", seed: int = 1, test_accuracy: float = 0.99,
                test_loss: float = 0.03, overrides: tuple[str, ...] = (), epochs: int = 3,
                epoch_time_s: float = 10.0, run_id: str | None = None, status: str = "completed",
                tensorflow: str = "2.21.0", gpus: tuple[str, ...] = (), folds: list | None = None,
                tags: dict | None = None, checksums: dict | None = None, process: dict | None = None,
                created_at: str = "2026-01-01T00:00:00.000Z", name: str | None = None) -> dict:
    config = copy.deepcopy(_config(tuple(overrides) + (f"train.seed={seed}", f"train.epochs={epochs}")))
    checksums = dict(checksums or CHECKSUMS)
    n_train = 54000
    history = [
        {"epoch": e, "epoch_time_s": epoch_time_s * (1.5 if e == 1 else 1.0),
         "loss": 0.3 / e, "accuracy": 1 - 0.1 / e, "val_loss": 0.1 / e,
         "val_accuracy": (test_accuracy or 0.9) - 0.01 / e}
        for e in range(1, epochs + 1)
    ]
    train_s = sum(h["epoch_time_s"] for h in history)
    record = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id or f"20260101T000000000Z-{platform}-{seed:06x}",
        "platform": platform,
        "status": status,
        "error": None,
        "created_at": created_at,
        "finished_at": "2026-01-01T00:01:00.000Z",
        "experiment": {"name": config["name"], "fingerprint": experiment_fingerprint(config, checksums),
                       "config_hash": config_hash(config), "config": config},
        "data": {"dataset": config["data"]["dataset"], "source": "synthetic", "format": "idx",
                 "test_split": "folds" if folds else "official", "checksums": checksums,
                 "n_train": n_train, "n_val": 6000, "n_test": 10000},
        "seed": seed,
        "metrics": {"test_accuracy": test_accuracy, "test_loss": test_loss, "epochs_run": epochs,
                    "final_val_accuracy": history[-1]["val_accuracy"], "final_val_loss": history[-1]["val_loss"]},
        "history": history,
        "timings": {"data_load_s": 0.5, "build_s": 1.0, "train_s": train_s, "evaluate_s": 1.0,
                    "total_s": train_s + 2.5},
        "throughput": {"train_images_per_s": n_train * epochs / train_s},
        "runtime": dict(config["runtime"]),
        "environment": {"python": "3.11.7", "tensorflow": tensorflow, "keras": "3.15.1", "numpy": "2.4.6",
                        "cpu": "Synthetic CPU", "cpu_count": 2, "gpus": list(gpus), "git_commit": None},
        "tags": {"platform": platform, **(tags or {})},
        "platform_info": {},
        "model": {"params": 225034},
    }
    if name is not None:  # any text, also what YAML overrides cannot spell ([/], =x)
        record["experiment"]["name"] = config["name"] = name
    if process is not None:
        record["process"] = process
    if folds:
        record["folds"] = [{"fold": i, "test_accuracy": a, "test_loss": 0.05} for i, a in enumerate(folds)]
    validate_record(record, "synthetic record")
    return record


def write_run(results_dir: str | Path, record: dict) -> Path:
    folder = Path(results_dir) / record["run_id"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "record.json"
    write_json_atomic(path, record)
    return path
