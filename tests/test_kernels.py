"""The kernel generator: committed kernels are current, embed the experiment code verbatim, lint clean."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from mnistexp.adapters.codalab import kernel as codalab
from mnistexp.adapters.kaggle import kernel as kaggle
from mnistexp.cli import cli
from mnistexp.experiment.config import load_config
from mnistexp.kernels.build import KernelError, module_path, render_kernel
from tests.conftest import REPO

PLATFORMS = REPO / "platforms"


def regenerate(tmp_path):
    """Both kernels regenerated from config.yaml with the options the committed metadata records."""
    config = load_config(REPO / "config.yaml")
    meta = json.loads((PLATFORMS / "kaggle" / kaggle.METADATA_FILE).read_text())
    kaggle.generate_kaggle(
        config, tmp_path / "kaggle", user=meta["id"].split("/")[0], gpu=meta["enable_gpu"],
        dataset_sources=meta["dataset_sources"], competition=(meta["competition_sources"] or [None])[0],
    )
    _, settings = codalab.read_metadata(PLATFORMS / "codalab")
    codalab.generate_codalab(config, tmp_path / "codalab", settings)
    return tmp_path


def test_committed_kernels_are_current(tmp_path):
    fresh = regenerate(tmp_path)
    for platform, files in (
        ("kaggle", (kaggle.CODE_FILE, kaggle.METADATA_FILE)),
        ("codalab", (codalab.CODE_FILE, codalab.METADATA_FILE, codalab.COMMANDS_FILE)),
    ):
        for name in files:
            committed = PLATFORMS / platform / name
            assert committed.is_file(), f"{committed} missing; run `mnistexp kernel {platform}`"
            assert committed.read_text() == (fresh / platform / name).read_text(), (
                f"{committed} is stale: config.yaml or experiment/ changed; run `mnistexp kernel {platform}` "
                "and commit the result"
            )


def _top_level_source(module: str, name: str) -> str:
    path = module_path(module)
    source = path.read_text()
    for node in ast.parse(source).body:
        if getattr(node, "name", None) == name:
            return ast.get_source_segment(source, node)
    raise AssertionError(f"{name} not in {module}")


@pytest.mark.parametrize("kernel", ["kaggle/mnistexp_kaggle.py", "codalab/mnistexp_codalab.py"])
def test_kernel_embeds_the_experiment_code_verbatim(kernel):
    text = (PLATFORMS / kernel).read_text()
    for module, name in (
        ("mnistexp.experiment.data", "load_dataset"),
        ("mnistexp.experiment.data", "holdout_split"),
        ("mnistexp.experiment.data", "content_sha256"),
        ("mnistexp.experiment.data", "prepare_arrays"),
        ("mnistexp.experiment.model", "build_model"),
        ("mnistexp.experiment.train", "train_model"),
        ("mnistexp.experiment.record", "experiment_fingerprint"),
        ("mnistexp.experiment.record", "experiment_part"),
        ("mnistexp.experiment.lifecycle", "run_lifecycle"),  # the one run loop, not a copy
        ("mnistexp.experiment.lifecycle", "new_record"),
    ):
        assert _top_level_source(module, name) in text, f"{module}.{name} is not embedded verbatim"
    tree = ast.parse(text)
    top_imports = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top_imports |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            top_imports.add((node.module or "").split(".")[0])
    # Only the standard library and numpy at import time: TF/Keras load inside the functions.
    assert top_imports - set(sys.stdlib_module_names) == {"numpy"}
    assert "from mnistexp" not in text and "import mnistexp" not in text
    assert not any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(tree))
    config = json.loads(ast.literal_eval(next(
        n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "CONFIG_JSON")))
    assert config == load_config(REPO / "config.yaml")


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff not installed")
def test_generated_kernels_are_clean_python():
    files = [str(PLATFORMS / "kaggle" / kaggle.CODE_FILE), str(PLATFORMS / "codalab" / codalab.CODE_FILE)]
    done = subprocess.run(
        ["ruff", "check", "--isolated", "--select", "E,F,W,I,B,UP", "--ignore", "E501,B008",
         "--target-version", "py310", *files],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout


def _entry_module(tmp_path, monkeypatch, name, body):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_flattener_refuses_a_name_defined_twice(tmp_path, monkeypatch):
    entry = _entry_module(tmp_path, monkeypatch, "entry_collides", """
        def load_dataset(path):
            return path


        def main(config, kernel_info):
            return 0
    """)
    with pytest.raises(KernelError, match="'load_dataset' is defined both in"):
        render_kernel(load_config(REPO / "config.yaml"), entry, {}, "doc")


def test_flattener_refuses_a_project_import_inside_a_function(tmp_path, monkeypatch):
    entry = _entry_module(tmp_path, monkeypatch, "entry_nested_import", """
        def main(config, kernel_info):
            from mnistexp.experiment.data import read_idx

            return read_idx
    """)
    with pytest.raises(KernelError, match="project import inside main"):
        render_kernel(load_config(REPO / "config.yaml"), entry, {}, "doc")


def test_kernel_kaggle_cli_writes_kernel_with_overrides_and_user(tmp_path):
    out = tmp_path / "k"
    result = CliRunner().invoke(cli, ["kernel", "kaggle", "--out", str(out), "--kaggle-user", "alice",
                                      "--config", str(REPO / "config.yaml"), "--set", "train.epochs=2",
                                      "--gpu", "--dataset-source", "someone/mnist-npz"])
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "kernel-metadata.json").read_text())
    assert meta["id"] == "alice/mnistexp-canonical"
    assert meta["enable_gpu"] is True and meta["enable_internet"] is False
    assert meta["dataset_sources"] == ["someone/mnist-npz"]
    assert meta["competition_sources"] == []
    assert '"epochs": 2' in (out / "mnistexp_kaggle.py").read_text()


@pytest.mark.parametrize("args, message", [
    (["--set", "train.epochs=zero"], "train.epochs"),
    (["--kaggle-user", "bad user"], "--kaggle-user"),
    (["--dataset-source", "no-slash"], "owner/dataset-slug"),
    (["--competition", "titanic"], "--competition"),
])
def test_kernel_kaggle_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "k"
    result = CliRunner().invoke(cli, ["kernel", "kaggle", "--out", str(out), "--kaggle-user", "alice", *args])
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--memory", "8GB"], "memory request"),
    (["--time", "two hours"], "time request"),
    (["--data-bundle", "1bad"], "data dependency"),
    (["--docker-image", "Not An Image"], "docker image"),
])
def test_kernel_codalab_bad_request_is_one_line_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "c"
    result = CliRunner().invoke(cli, ["kernel", "codalab", "--out", str(out), *args])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and message in result.output
    assert not out.exists()


def test_kernel_codalab_gpu_request_uses_gpu_image(tmp_path):
    result = CliRunner().invoke(cli, ["kernel", "codalab", "--out", str(tmp_path), "--gpus", "1",
                                      "--memory", "16g"])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "codalab.json").read_text())
    assert meta["request"]["docker_image"] == codalab.GPU_IMAGE
    assert meta["request"]["gpus"] == 1 and meta["request"]["memory"] == "16g"
    assert "--request-gpus 1" in (tmp_path / "commands.sh").read_text()


def test_help_imports_neither_tensorflow_nor_kaggle():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from mnistexp.cli import cli\n"
        "for args in (['--help'], ['kaggle', '--help'], ['codalab', '--help'], ['kernel', 'kaggle', '--help'],"
        " ['import', '--help']):\n"
        "    assert CliRunner().invoke(cli, args).exit_code == 0, args\n"
        "bad = [m for m in ('tensorflow', 'keras', 'kaggle') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
