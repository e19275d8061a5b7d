"""The model zoo: ready configs shipped in configs/*.yaml, selectable by name.

`--config bn-cnn` resolves to configs/bn-cnn.yaml; `canonical` is the shipped config.yaml
itself (one source, never a copy). Anything that names an existing file is used as a path.
"""

from __future__ import annotations

from pathlib import Path

from mnistexp.experiment.config import ConfigError
from mnistexp.paths import PACKAGE_DIR

ZOO_DIR = PACKAGE_DIR / "configs"
CANONICAL = "canonical"


def zoo_names() -> list[str]:
    """Every zoo name, canonical first."""
    names = sorted(p.stem for p in ZOO_DIR.glob("*.yaml")) if ZOO_DIR.is_dir() else []
    return [CANONICAL] + [n for n in names if n != CANONICAL]


def zoo_path(name: str) -> Path:
    if name == CANONICAL:
        return PACKAGE_DIR / "config.yaml"
    return ZOO_DIR / f"{name}.yaml"


def resolve_config_arg(value: str | Path) -> Path:
    """A --config value: an existing file, else a zoo name; one clear error otherwise."""
    path = Path(value)
    if path.is_file():
        return path
    text = str(value)
    if text in zoo_names():
        return zoo_path(text)
    if path.suffix in (".yaml", ".yml") or "/" in text or path.exists():
        raise ConfigError(f"config file {path} not found; pass an existing file or a zoo name "
                          f"({', '.join(zoo_names())}) to --config")
    raise ConfigError(f"unknown config '{text}'; pass a YAML file or one of the zoo names: "
                      f"{', '.join(zoo_names())}")


def zoo_table() -> list[dict]:
    """Name, description and expected accuracy of every zoo config (reads the YAML only)."""
    import yaml

    rows = []
    for name in zoo_names():
        raw = yaml.safe_load(zoo_path(name).read_text(encoding="utf-8")) or {}
        rows.append({
            "name": name,
            "description": " ".join(str(raw.get("description", "")).split()),
            "expected_test_accuracy": raw.get("expected_test_accuracy"),
            "path": str(zoo_path(name)),
        })
    return rows
