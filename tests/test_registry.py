"""The platform registry (adapters/__init__.py): one table, read without importing platforms,
plus third-party platforms through the `mnistexp.platforms` entry-point group."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from mnistexp import adapters
from tests.conftest import REPO, TINY

TOY = textwrap.dedent('''
    """A third-party platform: one module, registered by its own package's entry point."""
    import json

    import click

    from mnistexp.adapters.base import Adapter

    INSTALL_HINT = "pip install toyplat"


    class ToyAdapter(Adapter):
        name = "toy"
        cli_options = [click.Option(["--toy-log"], default=None, help="Where toy writes its epochs.")]

        def log_epoch(self, epoch, row):
            with open(self.options["toy_log"], "a") as f:
                f.write(json.dumps({"epoch": epoch, "loss": row["loss"]}) + "\\n")

        def finish(self, record):
            return {"toy": "logged"}


    ADAPTER = ToyAdapter
''')


def _plugin_path(tmp_path):
    """A site folder holding the toy module and its dist-info with the entry point, as pip leaves it."""
    site = tmp_path / "site"
    (site / "toyplat-1.0.dist-info").mkdir(parents=True)
    (site / "toyplat.py").write_text(TOY)
    (site / "toyplat-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: toyplat\nVersion: 1.0\n")
    (site / "toyplat-1.0.dist-info" / "entry_points.txt").write_text("[mnistexp.platforms]\ntoy = toyplat\n")
    return site


def test_every_table_entry_declares_what_the_table_says():
    for name, entry in adapters.PLATFORMS.items():
        module = adapters.load_platform(name)
        assert hasattr(module, "ADAPTER") == entry.runs_here, name
        assert hasattr(module, "KERNEL_COMMAND") == entry.kernel, name
        assert hasattr(module, "COMMAND") == entry.commands, name
        if entry.runs_here:
            assert module.ADAPTER.name == name
        assert entry.description


def test_top_level_help_imports_no_platform():
    code = ("import sys\nfrom mnistexp.cli import cli\ntry:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
            "loaded = [m for m in sys.modules if m.startswith('mnistexp.adapters.') and m != 'mnistexp.adapters']\n"
            "heavy = [m for m in ('numpy', 'tensorflow', 'comet_ml', 'openml', 'mlflow', 'kaggle') if m in sys.modules]\n"
            "assert not loaded and not heavy, (loaded, heavy)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    for name in adapters.platform_names(commands=True):
        assert name in done.stdout


def test_a_third_party_platform_registers_through_an_entry_point(tmp_path, tiny_data_dir):
    env = {**os.environ, "PYTHONPATH": str(_plugin_path(tmp_path)), "TF_CPP_MIN_LOG_LEVEL": "3"}
    helped = subprocess.run([sys.executable, "-m", "mnistexp.cli", "run", "--help"], capture_output=True,
                            text=True, env=env, cwd=REPO)
    assert helped.returncode == 0, helped.stderr
    assert "toy" in helped.stdout and "--toy-log" in helped.stdout
    log = tmp_path / "toy.jsonl"
    argv = [sys.executable, "-m", "mnistexp.cli", "run", "--platform", "toy", "--toy-log", str(log),
            "--data-dir", str(tiny_data_dir), "--results-dir", str(tmp_path / "results"), "-q"]
    for item in TINY:
        argv += ["--set", item]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    (record_path,) = (tmp_path / "results").glob("*/record.json")
    record = json.loads(record_path.read_text())
    assert record["platform"] == "toy" and record["status"] == "completed"
    assert record["platform_info"]["toy"] == "logged"
    assert [json.loads(line)["epoch"] for line in log.read_text().splitlines()] == [1]
    foreign = subprocess.run([sys.executable, "-m", "mnistexp.cli", "run", "--toy-log", "x"], capture_output=True,
                             text=True, env=env, cwd=REPO)
    assert foreign.returncode == 2 and "applies to --platform toy only" in foreign.stderr
