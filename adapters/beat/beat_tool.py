"""Helper run by the BEAT virtualenv's Python (it imports beat.core, never mnistexp).

    python beat_tool.py validate PREFIX
        Load every declaration under PREFIX with beat.core; print a JSON list of
        {"kind", "name", "errors"} (errors empty when valid).
    python beat_tool.py results PREFIX CACHE EXPERIMENT
        Print, as JSON, the analyzer results BEAT's executor stored in CACHE for EXPERIMENT.

mnistexp runs this file as a subprocess, so BEAT's pinned dependencies (jsonschema 3.2,
old setuptools) stay out of the main environment.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# kind -> (folder, number of name parts below it, file suffix)
KINDS = {
    "dataformat": ("dataformats", 3, ".json"),
    "protocoltemplate": ("protocoltemplates", 2, ".json"),
    "database": ("databases", 2, ".json"),
    "library": ("libraries", 3, ".json"),
    "algorithm": ("algorithms", 3, ".json"),
    "toolchain": ("toolchains", 3, ".json"),
    "experiment": ("experiments", 5, ".json"),
}


def declarations(prefix: Path):
    for kind, (folder, depth, suffix) in KINDS.items():
        root = prefix / folder
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*" + suffix)):
            parts = path.relative_to(root).with_suffix("").parts
            if len(parts) == depth:
                yield kind, "/".join(parts)


def load(kind: str, prefix: str, name: str):
    from beat.core.algorithm import Algorithm
    from beat.core.database import Database
    from beat.core.dataformat import DataFormat
    from beat.core.experiment import Experiment
    from beat.core.library import Library
    from beat.core.protocoltemplate import ProtocolTemplate
    from beat.core.toolchain import Toolchain

    classes = {
        "dataformat": DataFormat, "protocoltemplate": ProtocolTemplate, "database": Database,
        "library": Library, "algorithm": Algorithm, "toolchain": Toolchain, "experiment": Experiment,
    }
    return classes[kind](prefix, name)


def validate(prefix: str) -> list:
    report = []
    for kind, name in declarations(Path(prefix)):
        obj = load(kind, prefix, name)
        errors = [str(e) for e in getattr(obj, "errors", [])]
        if not errors and not obj.valid:
            errors = ["not valid"]
        report.append({"kind": kind, "name": name, "errors": errors})
    return report


def results(prefix: str, cache: str, name: str) -> dict:
    from beat.backend.python.data import CachedDataSource
    from beat.core.experiment import Experiment

    experiment = Experiment(prefix, name)
    if not experiment.valid:
        raise SystemExit(f"experiment {name} is not valid: {'; '.join(experiment.errors)}")
    out = {}
    for block, value in experiment.setup().items():
        configuration = value["configuration"]
        if "result" not in configuration:
            continue
        path = os.path.join(cache, configuration["result"]["path"] + ".data")
        source = CachedDataSource()
        if not source.setup(path, prefix):
            raise SystemExit(f"no results of block {block} in the cache ({path})")
        data, _, _ = source[0]
        out[block] = {k: _plain(v) for k, v in data.as_dict().items()}
    return out


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    return value


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "validate":
        print(json.dumps(validate(argv[1])))
        return 0
    if len(argv) >= 4 and argv[0] == "results":
        print(json.dumps(results(argv[1], argv[2], argv[3])))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
