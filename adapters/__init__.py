"""Platform adapters, registered in one table that the CLI reads.

Adding a platform = one module in this folder + one line in ADAPTERS. Modules must not
import their platform SDK (or TensorFlow) at import time, so `mnistexp --help` stays fast
and works without the optional extras.
"""

from __future__ import annotations

import importlib

# platform name -> "module:Class" (imported only when used)
ADAPTERS = {
    "local": "mnistexp.adapters.local:LocalAdapter",
    "beat": "mnistexp.adapters.beat:BeatAdapter",
    "comet": "mnistexp.adapters.comet:CometAdapter",
    "openml": "mnistexp.adapters.openml:OpenMLAdapter",
}


class UnknownPlatformError(KeyError):
    pass


def adapter_class(name: str):
    try:
        target = ADAPTERS[name]
    except KeyError:
        raise UnknownPlatformError(
            f"unknown platform '{name}'; choose one of {', '.join(ADAPTERS)}"
        ) from None
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def platform_names() -> list[str]:
    return list(ADAPTERS)
