"""The CodaLab kernel run in a CodaLab-like working dir, and every `cl` command line mnistexp builds."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from mnistexp.adapters.codalab import kernel as codalab
from mnistexp.cli import cli
from mnistexp.experiment.config import load_config
from mnistexp.experiment.record import read_record
from tests.conftest import REPO, TINY, write_idx_dir
from tests.contract import Launch, PlatformContract

PLATFORM_DIR = REPO / "platforms" / "codalab"

# The options of the cl subcommands mnistexp uses (cl help upload / run / info / download).
CL_OPTIONS = {
    "upload": {"-n": "name", "-d": "text", "-w": "text"},
    "run": {"-n": "name", "-d": "text", "-w": "text", "--request-docker-image": "image",
            "--request-cpus": "int", "--request-gpus": "int", "--request-memory": "size",
            "--request-disk": "size", "--request-time": "time"},
    "info": {"-f": "text"},
    "download": {"-o": "text"},
}
CHECKS = {
    "name": codalab.NAME_RE, "image": codalab.IMAGE_RE, "int": re.compile(r"^[0-9]+$"),
    "size": codalab.SIZE_RE, "time": codalab.TIME_RE, "text": re.compile(r"^.+$"),
}
TARGET_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.\-]*:(0x[0-9a-f]{32}|[a-zA-Z_][a-zA-Z0-9_.\-]*)$")


def check_cl_argv(argv: list[str]) -> list[str]:
    """Assert argv is a well-formed cl call; return its positional arguments."""
    assert argv[0] == "cl" and argv[1] in CL_OPTIONS, argv
    options, positional, i = CL_OPTIONS[argv[1]], [], 2
    while i < len(argv):
        if argv[i].startswith("-"):
            assert argv[i] in options, f"unknown cl {argv[1]} option {argv[i]}"
            assert CHECKS[options[argv[i]]].match(argv[i + 1]), f"{argv[i]} {argv[i + 1]!r}"
            i += 2
        else:
            positional.append(argv[i])
            i += 1
    if argv[1] == "run":
        *targets, command = positional
        assert len(targets) == 2 and all(TARGET_RE.match(t) for t in targets), targets
        assert shlex.split(command) == ["python3", codalab.CODE_FILE]
        assert {t.split(":")[0] for t in targets} == {"mnist", codalab.CODE_FILE}
    else:
        assert len(positional) == 1, positional
    return positional


FAKE_CL = '''#!{python}
"""A stand-in for the CodaLab CLI: logs its argv, answers like cl."""
import json, os, shutil, sys, hashlib
args = sys.argv[1:]
with open(os.environ["FAKE_CL_LOG"], "a") as f:
    f.write(json.dumps(args) + "\\n")
if args[0] in ("upload", "run"):
    print("0x" + hashlib.md5(" ".join(args).encode()).hexdigest())
elif args[0] == "info":
    print(os.environ.get("FAKE_CL_STATE", "ready"))
elif args[0] == "download":
    shutil.copytree(os.environ["FAKE_CL_BUNDLE"], args[args.index("-o") + 1])
'''


@pytest.fixture
def fake_cl(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "cl"
    script.write_text(FAKE_CL.format(python=sys.executable))
    script.chmod(0o755)
    log = tmp_path / "cl.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CL_LOG", str(log))

    def calls():
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return SimpleNamespace(calls=calls, log=log)


def run_kernel(kernel: Path, workdir: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, MNISTEXP_CODALAB_WORKDIR=str(workdir), TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH="")
    return subprocess.run([sys.executable, str(kernel)], capture_output=True, text=True, env=env,
                          cwd=kernel.parent, timeout=600)


@pytest.fixture(scope="module")
def codalab_run(tmp_path_factory):
    """A tiny-config kernel run once in a CodaLab-like bundle dir with ./mnist mounted."""
    root = tmp_path_factory.mktemp("codalab")
    kernel_dir = root / "kernel"
    config = load_config(REPO / "config.yaml", TINY)
    codalab.generate_codalab(config, kernel_dir, codalab.default_settings(config))
    workdir = root / "bundle"
    write_idx_dir(workdir / "mnist")  # the data dependency, with its SHA256SUMS
    shutil.copy2(kernel_dir / codalab.CODE_FILE, workdir / codalab.CODE_FILE)
    done = run_kernel(kernel_dir / codalab.CODE_FILE, workdir)
    return SimpleNamespace(root=root, workdir=workdir, done=done, kernel_dir=kernel_dir)


def test_kernel_writes_a_valid_codalab_record(codalab_run):
    assert codalab_run.done.returncode == 0, codalab_run.done.stderr[-2000:]
    record = read_record(codalab_run.workdir / "record.json")
    assert record["platform"] == "codalab" and record["status"] == "completed"
    assert record["data"]["test_split"] == "official" and record["data"]["n_test"] == 80
    info = record["platform_info"]
    assert info["data_dependency"] == "mnist"
    meta = json.loads((codalab_run.kernel_dir / codalab.METADATA_FILE).read_text())
    assert info["requested"] == meta["request"]
    assert info["hardware"]["accelerator"] == "cpu" and info["hardware"]["memory_gb"] > 0
    for name in record["artifacts"].values():
        assert (codalab_run.workdir / name).is_file(), name


def test_kernel_record_is_comparable_with_a_local_run(codalab_run, tmp_path):
    results = tmp_path / "results"
    local = CliRunner().invoke(cli, ["run", "--config", str(REPO / "config.yaml"),
                                     "--data-dir", str(codalab_run.workdir / "mnist"),
                                     *sum((["--set", o] for o in TINY), []), "--results-dir", str(results), "-q"])
    assert local.exit_code == 0, local.output
    local_record = read_record(next(results.glob("*/record.json")))
    kernel_record = read_record(codalab_run.workdir / "record.json")
    assert kernel_record["experiment"]["fingerprint"] == local_record["experiment"]["fingerprint"]
    imported = CliRunner().invoke(cli, ["import", str(codalab_run.workdir), "--results-dir", str(results)])
    assert imported.exit_code == 0, imported.output
    if (REPO / "mnistexp" / "commands" / "compare.py").is_file():
        report = CliRunner().invoke(cli, ["compare", str(results), "--format", "json"])
        assert report.exit_code == 0, report.output
        groups = json.loads(report.output[report.output.index("{"):])["groups"]
        assert len(groups) == 1 and {r["value"] for r in groups[0]["rows"]} == {"codalab", "local"}


def test_kernel_without_the_dependency_names_it(tmp_path):
    done = run_kernel(PLATFORM_DIR / codalab.CODE_FILE, tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("Error: ") and done.stderr.strip().count("\n") == 0
    assert "mounted as 'mnist'" in done.stderr
    assert not (tmp_path / "record.json").exists()


# ---------------------------------------------------------------- cl command lines


def test_builders_make_valid_cl_lines():
    settings = codalab.default_settings(load_config(REPO / "config.yaml"))
    uuid = "0x" + "a" * 32
    check_cl_argv(codalab.cl_upload_data("/data/mnist", settings))
    check_cl_argv(codalab.cl_upload_kernel("platforms/codalab/mnistexp_codalab.py", settings, "main"))
    check_cl_argv(codalab.cl_run(uuid, uuid, settings))
    check_cl_argv(codalab.cl_run("mnist", "mnistexp_codalab.py", settings, "main"))
    assert check_cl_argv(codalab.cl_state(uuid)) == [uuid]
    assert check_cl_argv(codalab.cl_download(uuid, "/tmp/x")) == [uuid]


def test_committed_commands_sh_runs_the_builders_lines(tmp_path, fake_cl, tiny_data_dir):
    script = PLATFORM_DIR / codalab.COMMANDS_FILE
    done = subprocess.run(["sh", str(script), str(tiny_data_dir)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    _, settings = codalab.read_metadata(PLATFORM_DIR)
    calls = [["cl", *args] for args in fake_cl.calls()]
    assert calls == [
        codalab.cl_upload_data(str(tiny_data_dir), settings),
        codalab.cl_upload_kernel(f"{PLATFORM_DIR}/{codalab.CODE_FILE}", settings),
        codalab.cl_run(settings.data_dependency, settings.kernel_bundle, settings),
    ]
    for argv in calls:
        check_cl_argv(argv)
    assert "--request-docker-image tensorflow/tensorflow:" in script.read_text()


def test_submit_uploads_then_runs_by_uuid(fake_cl, tiny_data_dir):
    result = CliRunner().invoke(cli, ["codalab", "submit", "--data-dir", str(tiny_data_dir),
                                      "--kernel-dir", str(PLATFORM_DIR)])
    assert result.exit_code == 0, result.output
    calls = [["cl", *args] for args in fake_cl.calls()]
    assert [c[1] for c in calls] == ["upload", "upload", "run"]
    for argv in calls:
        check_cl_argv(argv)
    assert calls[0][2] == str(tiny_data_dir)
    assert calls[1][2] == str(PLATFORM_DIR / codalab.CODE_FILE)
    uuids = [re.findall(r"0x[0-9a-f]{32}", line)[0] for line in result.output.splitlines()
             if line.startswith("started") or "codalab pull" in line]
    assert calls[2][2].startswith("mnist:0x") and calls[2][3].startswith(codalab.CODE_FILE + ":0x")
    assert uuids and f"mnistexp codalab pull {uuids[-1]}" in result.output


def test_submit_dry_run_needs_no_cl(tmp_path, monkeypatch, tiny_data_dir):
    monkeypatch.setenv("PATH", str(tmp_path))
    result = CliRunner().invoke(cli, ["codalab", "submit", "--dry-run", "--data-dir", str(tiny_data_dir),
                                      "--kernel-dir", str(PLATFORM_DIR)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 3
    for line in lines:
        check_cl_argv(shlex.split(line))


def test_submit_without_cl_says_how_to_install_it(tmp_path, monkeypatch, tiny_data_dir):
    monkeypatch.setenv("PATH", str(tmp_path))
    result = CliRunner().invoke(cli, ["codalab", "submit", "--data-dir", str(tiny_data_dir),
                                      "--kernel-dir", str(PLATFORM_DIR)])
    assert result.exit_code == 1
    assert "`cl` is not on PATH" in result.output and "Run on CodaLab" in result.output


def test_submit_refuses_a_folder_without_mnist(tmp_path, fake_cl):
    result = CliRunner().invoke(cli, ["codalab", "submit", "--data-dir", str(tmp_path),
                                      "--kernel-dir", str(PLATFORM_DIR)])
    assert result.exit_code == 1 and "no MNIST files" in result.output
    assert fake_cl.calls() == []


def test_pull_downloads_and_imports_the_bundle(codalab_run, fake_cl, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_CL_BUNDLE", str(codalab_run.workdir))
    (codalab_run.workdir / "stdout").write_text("training log\n")
    results = tmp_path / "results"
    bundle = "0x" + "b" * 32
    result = CliRunner().invoke(cli, ["codalab", "pull", bundle, "--results-dir", str(results)])
    assert result.exit_code == 0, result.output
    calls = [["cl", *args] for args in fake_cl.calls()]
    assert calls[0] == codalab.cl_state(bundle) and calls[1][:3] == ["cl", "download", bundle]
    for argv in calls:
        check_cl_argv(argv)
    run_dir = next(results.iterdir())
    record = read_record(run_dir)
    assert record["platform"] == "codalab"
    assert record["platform_info"]["imported"]["source"] == f"codalab bundle {bundle}"
    assert (run_dir / "stdout").is_file() and (run_dir / "history.csv").is_file()
    assert not (run_dir / "mnist").exists()  # the data dependency is not copied


def test_pull_of_an_unfinished_bundle_waits(fake_cl, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_CL_STATE", "running")
    result = CliRunner().invoke(cli, ["codalab", "pull", "mnistexp-canonical", "--results-dir", str(tmp_path / "r")])
    assert result.exit_code == 1 and "is running, not finished" in result.output
    assert [c[0] for c in fake_cl.calls()] == ["info"]


class TestCodalabContract(PlatformContract):
    """The generated kernel, run in a CodaLab-like bundle folder with the data mounted as ./mnist.

    CodaLab's SDK is the `cl` CLI in its own virtualenv (no Python module here): its absence is
    tested by test_submit_without_cl_says_how_to_install_it."""

    platform = "codalab"

    @pytest.fixture
    def launch(self, tmp_path, tiny_data_dir):
        count = iter(range(1000))

        def make(overrides, data_dir=tiny_data_dir):
            root = tmp_path / f"codalab-{next(count)}"
            config = load_config(REPO / "config.yaml", list(overrides))
            codalab.generate_codalab(config, root / "kernel", codalab.default_settings(config))
            workdir = root / "bundle"
            workdir.mkdir(parents=True)
            if Path(data_dir).is_dir():
                shutil.copytree(data_dir, workdir / "mnist")
            env = {"MNISTEXP_CODALAB_WORKDIR": str(workdir), "PYTHONPATH": ""}
            return Launch([sys.executable, str(root / "kernel" / codalab.CODE_FILE)], workdir, env, root)

        return make
