"""Assemble one self-contained kernel file from the experiment's own source code.

The kernel is the exact source of the experiment modules (data, model, train, record,
the artifact writers) and of the kernel runtime, flattened into one namespace: module
docstrings and imports are lifted out, the project's own imports (`from .config import
ConfigError`, `from mnistexp.experiment.data import ...`) are dropped because the names
are now defined in the same file, and every standard-library / numpy import that the kept
code uses is written once at the top. The resolved config and the run-record schema are
embedded as JSON. Nothing is hand-copied: regenerate after changing experiment/ or
config.yaml, and the committed kernels' staleness test says when that was forgotten.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import pprint
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mnistexp import __version__
from mnistexp.experiment.record import SCHEMA_PATH, config_hash

INTERNAL_PACKAGE = "mnistexp"
# Third-party modules a kernel may import at top level (the platform images have them).
THIRD_PARTY = ("numpy",)


class KernelError(ValueError):
    """The kernel cannot be generated (bad option or a source the flattener refuses); one line."""


@dataclass(frozen=True)
class Part:
    """One module embedded in a kernel: all its top-level definitions, or only `keep`."""

    module: str
    keep: tuple[str, ...] | None = None
    drop: tuple[str, ...] = ()


# The experiment code every kernel embeds, in dependency order.
EXPERIMENT_PARTS = (
    Part("mnistexp.experiment.config", keep=("ConfigError",)),
    Part("mnistexp.experiment.data"),
    Part("mnistexp.experiment.model"),
    Part("mnistexp.experiment.train"),
    # The schema is embedded as JSON instead of read from a file next to the module.
    Part("mnistexp.experiment.record", drop=("SCHEMA_PATH", "load_schema")),
    Part(
        "mnistexp.experiment.artifacts",
        keep=("HISTORY_COLUMNS", "write_history_csv", "write_confusion_csv", "save_model",
              "_pyplot", "save_figure", "plot_learning_curves", "plot_confusion"),
    ),
    Part("mnistexp.experiment.hooks"),
    Part("mnistexp.experiment.lifecycle"),
    Part("mnistexp.kernels.runtime"),
)

# Code the generator itself writes into every kernel (replaces record.load_schema).
EMBEDDED_SCHEMA_LOADER = '''
def load_schema() -> dict:
    """The run-record JSON schema (embedded copy of experiment/run_record.schema.json)."""
    return json.loads(RUN_RECORD_SCHEMA_JSON)
'''


@dataclass
class _Extracted:
    part: Part
    path: Path
    chunks: list[str]
    defined: set[str]
    used: set[str]
    internal_imports: list[tuple[str, str]]  # (imported name, from where)
    external_imports: set[tuple[str, str | None, str | None]]  # (module, name, asname)


def module_path(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        raise KernelError(f"module {module} not found; is mnistexp installed (pip install -e .)?")
    return Path(spec.origin)


def _is_internal(node: ast.ImportFrom | ast.Import) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] == INTERNAL_PACKAGE
    return any(alias.name.split(".")[0] == INTERNAL_PACKAGE for alias in node.names)


def _bound_names(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, ast.Assign):
        names = set()
        for target in node.targets:
            names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        return names
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return {node.target.id}
    return set()


def _used_names(nodes) -> set[str]:
    used = set()
    for node in nodes:
        used.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name))
    return used


def extract(part: Part) -> _Extracted:
    """The kept top-level statements of one module, with their leading comments."""
    path = module_path(part.module)
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    lines = source.splitlines()
    where = f"{part.module} ({path.name})"
    result = _Extracted(part, path, [], set(), set(), [], set())
    kept_nodes = []
    for index, node in enumerate(tree.body):
        if index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str):
            continue  # module docstring
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if _is_internal(node):
                if isinstance(node, ast.Import):
                    raise KernelError(f"{where} line {node.lineno}: `import mnistexp...` cannot be "
                                      "flattened; import the names (from mnistexp.x import name)")
                for alias in node.names:
                    if alias.asname not in (None, alias.name):
                        raise KernelError(f"{where} line {node.lineno}: renamed internal import "
                                          f"{alias.name} as {alias.asname} cannot be flattened")
                    result.internal_imports.append((alias.name, node.module or "." * node.level))
            else:
                for alias in node.names:
                    if isinstance(node, ast.Import):
                        result.external_imports.add((alias.name, None, alias.asname))
                    else:
                        result.external_imports.add((node.module, alias.name, alias.asname))
            continue
        names = _bound_names(node)
        if not names:
            raise KernelError(f"{where} line {node.lineno}: top-level statement that defines no name "
                              "cannot be embedded in a kernel")
        if part.keep is not None and not names & set(part.keep):
            continue
        if names & set(part.drop):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, (ast.Import, ast.ImportFrom)) and _is_internal(inner):
                raise KernelError(f"{where} line {inner.lineno}: a project import inside "
                                  f"{sorted(names)[0]} cannot run in a kernel; move it to the top")
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        while start > 0 and lines[start - 1].lstrip().startswith("#"):
            start -= 1
        result.chunks.append("\n".join(lines[start:node.end_lineno]).rstrip())
        result.defined |= names
        kept_nodes.append(node)
    if part.keep is not None:
        missing = set(part.keep) - result.defined
        if missing:
            raise KernelError(f"{where}: no top-level {', '.join(sorted(missing))} to embed")
    result.used = _used_names(kept_nodes)
    return result


def _import_lines(imports: set, used: set[str]) -> list[str]:
    """isort-style block: stdlib then numpy; `import x` before `from x import y`."""
    def bound(item):
        module, name, asname = item
        return asname or (name if name else module.split(".")[0])

    needed = {item for item in imports if bound(item) in used}
    by_bound: dict[str, tuple] = {}
    for item in sorted(needed, key=str):
        other = by_bound.setdefault(bound(item), item)
        if other != item:
            raise KernelError(f"embedded modules import '{bound(item)}' from two places: {other} and {item}")

    def section(module):
        return 1 if module.split(".")[0] in THIRD_PARTY else 0

    def member_key(text):
        name = text.split(" as ")[0]
        kind = 0 if name.isupper() and len(name) > 1 else (1 if name[:1].isupper() else 2)
        return (kind, name)

    blocks = []
    for sec in (0, 1):
        straight = sorted(
            (f"import {m}" + (f" as {a}" if a else "")) for m, n, a in needed if n is None and section(m) == sec
        )
        froms: dict[str, list[str]] = {}
        for module, name, asname in needed:
            if name is not None and section(module) == sec:
                froms.setdefault(module, []).append(name + (f" as {asname}" if asname else ""))
        from_lines = [f"from {m} import {', '.join(sorted(froms[m], key=member_key))}" for m in sorted(froms)]
        if straight or from_lines:
            blocks.append("\n".join(straight + from_lines))
    return blocks


def _json_literal(name: str, obj) -> str:
    text = json.dumps(obj, indent=2, allow_nan=False)
    literal = f'r"""\n{text}\n"""' if '"""' not in text else repr(text)
    if json.loads(ast.literal_eval(literal)) != obj:  # the embedded copy must read back exactly
        raise KernelError(f"{name} cannot be embedded losslessly")
    return f"{name} = {literal}"


def render_kernel(
    config: dict,
    entry_module: str,
    kernel_info: dict,
    docstring: str,
) -> str:
    """The complete kernel source: docstring, imports, embedded data, experiment code, entry."""
    parts = [*EXPERIMENT_PARTS, Part(entry_module)]
    extracted = [extract(part) for part in parts]

    owner: dict[str, str] = {"load_schema": "the generator", "RUN_RECORD_SCHEMA_JSON": "the generator",
                             "CONFIG_JSON": "the generator", "KERNEL_INFO": "the generator"}
    for item in extracted:
        for name in sorted(item.defined):
            if name in owner:
                raise KernelError(f"'{name}' is defined both in {owner[name]} and {item.part.module}; "
                                  "the flattened kernel needs unique top-level names")
            owner[name] = item.part.module
    for item in extracted:
        for name, origin in item.internal_imports:
            if name not in owner:
                raise KernelError(f"{item.part.module} imports {name} from {origin}, which the kernel "
                                  "does not embed; add it to mnistexp.kernels.build.EXPERIMENT_PARTS")
    if "main" not in owner or owner["main"] != entry_module:
        raise KernelError(f"{entry_module} must define main(config, kernel_info)")

    footer = (
        'if __name__ == "__main__":\n'
        "    _status = main(json.loads(CONFIG_JSON), KERNEL_INFO)\n"
        "    if _status:\n"
        "        raise SystemExit(_status)\n"
    )

    code_sections = []
    for item in extracted:
        relative = source_label(item.part.module)
        what = "" if item.part.keep is None else f" ({', '.join(item.part.keep)})"
        code_sections.append(f"# {'-' * 60} {relative}{what}\n\n" + "\n\n\n".join(item.chunks))
    code = "\n\n\n".join([EMBEDDED_SCHEMA_LOADER.strip(), *code_sections, footer.strip()]) + "\n"
    code_sha = hashlib.sha256(code.encode()).hexdigest()[:16]
    kernel_info = {**kernel_info, "code_sha256": code_sha, "generator": f"mnistexp {__version__}"}
    info_literal = pprint.pformat(kernel_info, indent=1, width=100, sort_dicts=True)
    if ast.literal_eval(info_literal) != kernel_info:
        raise KernelError("KERNEL_INFO must hold only strings, numbers, booleans, lists and dicts")
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    data_block = "\n\n".join([
        "# The resolved experiment config (what config.yaml and any --set overrides gave) and the\n"
        "# run-record schema, embedded as JSON; facts about this kernel for its run record.",
        _json_literal("CONFIG_JSON", config),
        _json_literal("RUN_RECORD_SCHEMA_JSON", schema),
        "KERNEL_INFO = " + info_literal,
    ])
    body = data_block + "\n\n\n" + code

    used = set().union(*(item.used for item in extracted))
    used |= _used_names([ast.parse(EMBEDDED_SCHEMA_LOADER), ast.parse(footer)])
    imports = set().union(*(item.external_imports for item in extracted))
    imports |= {("json", None, None)}
    import_block = "\n\n".join(_import_lines(imports, used))

    header = (
        '"""' + docstring.strip() + "\n\n"
        f"GENERATED by mnistexp {__version__} from config.yaml and experiment/ (code sha256 {code_sha},\n"
        f"config hash {config_hash(config)[:16]}). Do not edit: change config.yaml or the\n"
        "experiment code and regenerate, so this file stays the same experiment as local runs.\n"
        '"""\n\n'
        "from __future__ import annotations\n\n"
    )
    text = header + import_block + "\n\n" + body
    compile(text, "<kernel>", "exec")
    return text


def source_label(module: str) -> str:
    """The repository path of an embedded module, independent of where the checkout lives
    (mnistexp.experiment.data -> experiment/data.py), so kernels regenerate byte-identically."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("experiment", "adapters"):
        parts = parts[1:]
    return "/".join(parts) + ".py"


def source_sha256(kernel_text: str) -> str | None:
    """The code sha256 a kernel's docstring states (None for a file that is not a kernel)."""
    marker = "(code sha256 "
    at = kernel_text.find(marker)
    return kernel_text[at + len(marker): at + len(marker) + 16] if at >= 0 else None


def write_files(out_dir: str | Path, files: dict[str, str]) -> list[Path]:
    """Write every file to a temporary name first, then rename all into place."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KernelError(f"output folder {out} cannot be created ({exc.strerror or exc}); "
                          "pass a writable folder to --out") from None
    staged = []
    try:
        for name, text in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out)
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
            os.chmod(tmp, 0o644)
            staged.append((tmp, out / name))
        for tmp, target in staged:
            os.replace(tmp, target)
    except OSError as exc:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        raise KernelError(f"cannot write the kernel to {out} ({exc.strerror or exc}); "
                          "pass a writable folder to --out") from None
    return [target for _, target in staged]
