"""Where things are by default: the config file, the results folder."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent  # the checkout (git commit, platforms/)


def default_config_path() -> Path:
    """./config.yaml when there is one, else the canonical config shipped with mnistexp."""
    local = Path("config.yaml")
    if local.is_file():
        return local
    return PACKAGE_DIR / "config.yaml"


def default_results_dir() -> Path:
    return Path(os.environ.get("MNISTEXP_RESULTS_DIR", "results"))
