"""The one run lifecycle: a single copy, no import cycles, and a killed run is recognisable."""

from __future__ import annotations

import ast
import json
import signal
import time
from pathlib import Path

from click.testing import CliRunner

from mnistexp.cli import cli
from tests.conftest import REPO, TINY
from tests.contract import Launch, run_argv

PACKAGE_DIRS = {"mnistexp": REPO / "mnistexp", "mnistexp.experiment": REPO / "experiment",
                "mnistexp.adapters": REPO / "adapters"}


def project_modules() -> dict[str, Path]:
    modules = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules that `name` imports anywhere in its file (function-level imports too)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def test_there_is_no_import_cycle():
    modules = project_modules()
    graph = {name: imports_of(name, path, set(modules)) for name, path in modules.items()}
    cycles = []

    def visit(node, stack, on_stack, done):
        on_stack.add(node)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt in on_stack:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in done:
                visit(nxt, stack, on_stack, done)
        stack.pop()
        on_stack.discard(node)
        done.add(node)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [], set(), done)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_training_loop_exists_once():
    """Only the lifecycle drives fit/evaluate/close for a run; the runner, the kernels' runtime and
    the BEAT run use it instead of carrying their own copy."""
    callers = []
    for name, path in project_modules().items():
        tree = ast.parse(path.read_text())
        called = {n.func.id if isinstance(n.func, ast.Name) else getattr(n.func, "attr", None)
                  for n in ast.walk(tree) if isinstance(n, ast.Call)}
        if {"train_model", "predict_proba"} <= called:
            callers.append(name)
    # adapters.beat.code_train is the BEAT algorithm's source (it runs inside BEAT's executor,
    # without our packages); mnistexp.evaluate re-scores saved models, it does not train.
    assert set(callers) <= {"mnistexp.experiment.lifecycle", "mnistexp.adapters.beat.code_train"}, callers
    for module in ("mnistexp/runner.py", "mnistexp/kernels/runtime.py", "adapters/beat/run.py"):
        text = (REPO / module).read_text()
        assert "new_record" in text, f"{module} does not start its record from the lifecycle"
        assert "def _close" not in text or module == "adapters/beat/run.py"


def test_a_killed_run_is_reported_abandoned(tiny_data_dir, tmp_path):
    results = tmp_path / "results"
    run = Launch(run_argv("local", tiny_data_dir, results, ["train.epochs=300", "train.batch_size=8"]), results)
    proc = run.popen()
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            found = run.records()
            if found and json.loads(found[0].read_text()).get("history"):
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    record = json.loads(run.records()[0].read_text())
    assert record["status"] == "running"  # nobody could close it
    assert record["process"]["pid"] == proc.pid and record["process"]["host"]
    result = CliRunner().invoke(cli, ["compare", str(results)])
    assert result.exit_code == 0, result.output
    assert "abandoned" in result.output
    assert "running" not in result.output.replace("running)", "")


def test_nan_loss_is_a_failed_run_with_one_error_line(tiny_data_dir, tmp_path):
    argv = ["run", "--data-dir", str(tiny_data_dir), "--results-dir", str(tmp_path), "-q"]
    for item in [*TINY, "train.learning_rate=1e12"]:
        argv += ["--set", item]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith("Error: the training loss became nan")
    (record_path,) = tmp_path.glob("*/record.json")
    record = json.loads(record_path.read_text())  # strict JSON: no NaN was written
    assert record["status"] == "failed" and record["error"].startswith("diverged:")
    assert record["metrics"]["test_accuracy"] is None


def test_a_stop_during_garbage_collection_is_kept_not_printed_and_ends_the_run():
    # Python prints and drops an exception raised inside a gc callback (JAX registers one when
    # Keras imports it): the handler must remember the stop there, and the run raise it after.
    import gc
    import os
    import sys

    import pytest

    from mnistexp.experiment.hooks import RunInterrupted
    from mnistexp.experiment.lifecycle import StopSignals

    def send_sigint(phase, info):
        if phase == "start":
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # Python runs the handler at its next check, still in this callback

    printed = []
    hook = sys.unraisablehook
    sys.unraisablehook = printed.append
    try:
        with pytest.raises(RunInterrupted), StopSignals():
            gc.callbacks.append(send_sigint)
            try:
                gc.collect()
            finally:
                gc.callbacks.remove(send_sigint)
            assert StopSignals.requested == "interrupted by the user (Ctrl-C)"
            StopSignals.check()
    finally:
        sys.unraisablehook = hook
    assert printed == []
    assert not [cb for cb in gc.callbacks if getattr(cb, "__qualname__", "").startswith("_gc_mark")]
