"""The platform registry: one table, read without importing any platform.

A platform is one module (or package) in this folder that declares everything about it,
as module-level names (all optional, at least one of the first two):

    ADAPTER         an adapters.base.Adapter subclass: the platform runs the experiment *here*
                    (`mnistexp run --platform NAME`); its cli_options are its `run` options
    KERNEL_COMMAND  a click command: `mnistexp kernel NAME` generates what runs *there*
                    (under platforms/NAME/)
    COMMAND         a click group of its own subcommands: `mnistexp NAME push|pull|upload|...`;
                    an `upload` subcommand also serves `mnistexp upload RUN_DIR`
    INSTALL_HINT    how to install what it needs (shown when its SDK is missing)

Adding a platform = one module + one line in PLATFORMS. Third-party packages register a
run-here platform (a module with ADAPTER) through the entry-point group `mnistexp.platforms`
(name = module path). Platform modules
must not import their SDK, numpy or TensorFlow at import time: `mnistexp run --help`
imports them all to list their options.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

ENTRY_POINT_GROUP = "mnistexp.platforms"


@dataclass(frozen=True)
class Platform:
    module: str
    extra: str | None  # pip extra: pip install 'mnistexp[EXTRA]'
    description: str
    runs_here: bool = True  # has ADAPTER (`run --platform`)
    kernel: bool = False  # has KERNEL_COMMAND (`kernel NAME`)
    commands: bool = False  # has COMMAND (`mnistexp NAME ...`)


PLATFORMS = {
    "local": Platform("mnistexp.adapters.local", None, "this machine; results only under results/"),
    "comet": Platform("mnistexp.adapters.comet", "comet", "Comet (comet.com): online or an offline archive to upload",
                      commands=True),
    "openml": Platform("mnistexp.adapters.openml", "openml", "an OpenML task's folds; --publish uploads the run"),
    "mlflow": Platform("mnistexp.adapters.mlflow", "mlflow", "MLflow tracking (local mlflow.db by default, or a server)"),
    "beat": Platform("mnistexp.adapters.beat", None, "BEAT (Idiap): its declarations run by BEAT's local executor",
                     kernel=True),
    "kaggle": Platform("mnistexp.adapters.kaggle", "kaggle", "Kaggle: a generated kernel, pushed and pulled",
                       runs_here=False, kernel=True, commands=True),
    "codalab": Platform("mnistexp.adapters.codalab", None, "CodaLab worksheets: a generated run bundle via `cl`",
                        runs_here=False, kernel=True, commands=True),
}


class UnknownPlatformError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def _plugins() -> dict[str, Platform]:
    """Platforms other packages register under the entry-point group (a module each)."""
    from importlib.metadata import entry_points

    # A plugin is a run-here platform (its module's ADAPTER): the table's other flags cannot be
    # known without importing it, and `mnistexp --help` imports no platform.
    return {ep.name: Platform(ep.value, None, f"plugin ({ep.value})")
            for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in PLATFORMS}


_ALL: dict[str, Platform] | None = None


def platforms() -> dict[str, Platform]:
    global _ALL
    if _ALL is None:
        _ALL = {**PLATFORMS, **_plugins()}
    return _ALL


def platform_names(runs_here: bool | None = None, kernel: bool | None = None, commands: bool | None = None):
    return [name for name, p in platforms().items()
            if (runs_here is None or p.runs_here == runs_here) and (kernel is None or p.kernel == kernel)
            and (commands is None or p.commands == commands)]


def load_platform(name: str):
    """The platform's module (imported now)."""
    try:
        entry = platforms()[name]
    except KeyError:
        raise UnknownPlatformError(f"unknown platform '{name}'; choose one of {', '.join(platforms())}") from None
    return importlib.import_module(entry.module)


def adapter_class(name: str):
    adapter = getattr(load_platform(name), "ADAPTER", None)
    if adapter is None:
        raise UnknownPlatformError(f"platform '{name}' does not run here; see `mnistexp kernel {name} --help`")
    return adapter
