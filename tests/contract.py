"""The contract every platform keeps, as an abstract test class (like fsspec's abstract tests).

A platform's test module subclasses PlatformContract, sets `platform` (its registry name)
and supplies two fixtures:

    launch -> make(overrides, data_dir) -> Launch
        how to run the tiny experiment with these config overrides on this platform as a
        subprocess: argv, env, cwd and the folder in which the run's record appears (results
        folder or kernel working folder); a fresh folder for every call
    sdk_modules -> list[str]
        the platform SDK's top-level modules (blocked to test the missing-SDK path; [] if none)

and gets the common checks: help without the SDK, the missing-SDK message, a failed
pre-flight writes nothing, option ownership, the same fingerprint as a local run of the
same config, a valid record, no secret in any written file, and the failed / interrupted
statuses (a diverging run and SIGTERM).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mnistexp import adapters
from mnistexp.experiment.config import load_config
from mnistexp.experiment.data import load_dataset
from mnistexp.experiment.record import experiment_fingerprint, read_record, validate_record
from mnistexp.paths import default_config_path
from tests.conftest import REPO, TINY

# Planted in every launched run's environment; none may appear in any file the run writes.
PLANTED_SECRETS = {
    "COMET_API_KEY": "planted-comet-key-7f3a9",
    "KAGGLE_KEY": "planted-kaggle-key-51c2e",
    "KAGGLE_API_TOKEN": "planted-kaggle-token-b8d04",
    "MLFLOW_TRACKING_PASSWORD": "planted-mlflow-password-2e6f1",
    "MLFLOW_TRACKING_TOKEN": "planted-mlflow-token-a91c7",
    "OPENML_APIKEY": "planted-openml-key-c4d88",
    "AWS_SECRET_ACCESS_KEY": "planted-aws-secret-9b0e3",
}
DIVERGING = ["train.learning_rate=1e12"]  # Adam with this step size overflows to NaN at once


@dataclass
class Launch:
    argv: list[str]
    out_dir: Path  # where the run's record.json appears (possibly in a run-id subfolder)
    env: dict = field(default_factory=dict)
    cwd: Path | None = None

    def popen(self, extra_env: dict | None = None) -> subprocess.Popen:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **PLANTED_SECRETS, **self.env, **(extra_env or {})}
        return subprocess.Popen(self.argv, cwd=self.cwd or REPO, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def run(self, timeout: float = 300, extra_env: dict | None = None) -> subprocess.CompletedProcess:
        proc = self.popen(extra_env)
        out, err = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(self.argv, proc.returncode, out, err)

    def records(self) -> list[Path]:
        if not self.out_dir.exists():
            return []
        return sorted(self.out_dir.glob("record.json")) + sorted(self.out_dir.glob("*/record.json"))


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "mnistexp.cli", *args]


def run_argv(platform: str, data_dir, results_dir, overrides, *extra: str) -> list[str]:
    """`mnistexp run` for a run-here platform, quiet, with --set overrides."""
    argv = cli_argv("run", "--platform", platform, "--data-dir", str(data_dir), "--results-dir",
                    str(results_dir), "-q", *extra)
    for item in overrides:
        argv += ["--set", item]
    return argv


def run_here_launcher(platform: str, tmp_path: Path, default_data_dir, *extra: str, env: dict | None = None,
                      cwd: Path | None = None):
    """The `launch` fixture's value for a run-here platform: `mnistexp run --platform P ... EXTRA`,
    each call into a fresh results folder."""
    count = iter(range(1000))

    def make(overrides, data_dir=default_data_dir):
        results = tmp_path / f"results-{next(count)}"
        return Launch(run_argv(platform, data_dir, results, overrides, *extra), results, dict(env or {}), cwd)

    return make


def one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert "Traceback" not in stderr, stderr
    assert lines, "no error message"
    return lines[-1]


def files_with(folder: Path, needles: list[str]) -> list[str]:
    """Files under `folder` (zip members included) that contain any of `needles`."""
    hits = []
    encoded = [n.encode() for n in needles]
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if any(n in data for n in encoded):
            hits.append(str(path))
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    if any(n in archive.read(name) for n in encoded):
                        hits.append(f"{path}!{name}")
    return hits


class PlatformContract:
    """Subclass with `platform = "<name>"` and the fixtures `launch` and `sdk_modules`."""

    platform: str = ""

    @pytest.fixture
    def launch(self):  # pragma: no cover - every platform overrides it
        raise NotImplementedError("a platform test module must supply the `launch` fixture")

    @pytest.fixture
    def sdk_modules(self) -> list[str]:
        return []

    @property
    def entry(self):
        return adapters.platforms()[self.platform]

    def test_registered(self):
        assert self.platform in adapters.platforms(), f"{self.platform} is not in adapters.PLATFORMS"
        module = adapters.load_platform(self.platform)
        assert self.entry.runs_here == hasattr(module, "ADAPTER")
        assert self.entry.kernel == hasattr(module, "KERNEL_COMMAND")
        assert self.entry.commands == hasattr(module, "COMMAND")

    def test_help_works_without_the_sdk(self, sdk_modules):
        commands = []
        if self.entry.runs_here:
            commands.append(["run", "--help"])
        if self.entry.kernel:
            commands.append(["kernel", self.platform, "--help"])
        if self.entry.commands:
            commands.append([self.platform, "--help"])
        code = (
            "import sys\n"
            f"for name in {sdk_modules!r}:\n    sys.modules[name] = None\n"
            "from click.testing import CliRunner\nfrom mnistexp.cli import cli\n"
            f"for args in {commands!r}:\n"
            "    result = CliRunner().invoke(cli, args)\n"
            "    assert result.exit_code == 0, (args, result.output)\n"
            "    assert 'Usage:' in result.output\n"
            "assert 'tensorflow' not in sys.modules, 'help imported TensorFlow'\n"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
        assert done.returncode == 0, done.stderr

    def test_missing_sdk_is_one_line_and_writes_nothing(self, sdk_modules, launch, tmp_path):
        if not sdk_modules:
            pytest.skip(f"{self.platform} needs no SDK in this environment")
        blocker = tmp_path / "sdk-blocker"
        blocker.mkdir()
        (blocker / "sitecustomize.py").write_text(
            "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in sdk_modules))
        run = self.sdk_launch(launch, tmp_path)
        done = run.run(extra_env={"PYTHONPATH": str(blocker)})
        assert done.returncode != 0
        line = one_error_line(done.stderr)
        assert "install" in line.lower(), line
        assert not run.records()

    def sdk_launch(self, launch, tmp_path) -> Launch:
        """The command that needs the SDK (a run-there platform overrides it: e.g. its push)."""
        return launch(TINY)

    def test_failed_preflight_writes_nothing(self, launch, tmp_path):
        run = launch(TINY, data_dir=tmp_path / "no-such-data")
        done = run.run()
        assert done.returncode != 0
        line = one_error_line(done.stderr)
        assert "no-such-data" in line or "data" in line.lower(), line  # names the missing data
        assert not run.records()

    def test_options_belong_to_their_platform(self):
        if not self.entry.runs_here:
            pytest.skip("a run-there platform has no `run` options")
        options = adapters.adapter_class(self.platform).cli_options
        if not options:
            pytest.skip(f"{self.platform} declares no options of its own")
        from click.testing import CliRunner

        from mnistexp.cli import cli

        others = [n for n in adapters.platform_names(runs_here=True) if n != self.platform]
        for option in options:
            sharing = [n for n in others if any(option.opts[0] in o.opts for o in adapters.adapter_class(n).cli_options)]
            foreign = next(n for n in others if n not in sharing)
            value = [] if option.is_flag else ["1"]
            result = CliRunner().invoke(cli, ["run", "--platform", foreign, option.opts[0], *value])
            assert result.exit_code == 2, result.output
            assert "applies to --platform" in result.output and self.platform in result.output, result.output

    def test_run_completes_with_a_valid_record_and_the_local_fingerprint(self, launch, tiny_data_dir):
        run = launch(TINY)
        done = run.run()
        assert done.returncode == 0, done.stderr[-3000:]
        records = run.records()
        assert len(records) == 1, records
        record = read_record(records[0])
        validate_record(record)
        assert record["status"] == "completed"
        assert record["platform"] == self.platform
        assert record["process"]["pid"] > 0 and record["process"]["heartbeat_at"]
        config = load_config(default_config_path(), list(TINY))
        data = load_dataset(tiny_data_dir, dataset="mnist", verify=False)
        assert record["experiment"]["fingerprint"] == experiment_fingerprint(config, data.checksums), (
            "not the same experiment as a local run of the same config")
        leaked = files_with(records[0].parent, list(PLANTED_SECRETS.values()))
        assert not leaked, f"secret written to {leaked}"
        assert not any(v in done.stdout + done.stderr for v in PLANTED_SECRETS.values())

    def test_diverging_run_ends_failed_with_a_reason(self, launch):
        run = launch([*TINY, *DIVERGING])
        done = run.run()
        assert done.returncode != 0
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
        records = run.records()
        assert len(records) == 1, done.stderr[-3000:]
        record = read_record(records[0])
        assert record["status"] == "failed"
        assert record["error"].startswith("diverged:"), record["error"]
        assert "learning_rate" in record["error"]

    def training(self, run: Launch) -> bool:
        """True once the run is inside training (a platform that logs no epochs overrides it)."""
        return _has_epoch(run)

    def test_sigterm_ends_interrupted_within_seconds(self, launch):
        run = launch(["train.epochs=300", "train.batch_size=8"])
        proc = run.popen()
        try:
            deadline = time.time() + 180
            while time.time() < deadline and not self.training(run):
                time.sleep(0.2)
            assert run.records(), "no epoch finished: " + (proc.stderr.read() if proc.poll() is not None else "")
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)
            stopped_after = time.monotonic() - sent
        finally:
            proc.kill()
        assert proc.returncode != 0
        record = read_record(run.records()[0])
        assert record["status"] == "interrupted"
        assert "SIGTERM" in record["error"]
        # 2 s on a quiet machine; generous here because the suite may share its cores
        assert stopped_after < 10, f"took {stopped_after:.1f} s to stop"


def _has_epoch(run: Launch) -> bool:
    for path in run.records():
        try:
            if json.loads(path.read_text()).get("history"):
                return True
        except (OSError, ValueError):
            pass  # being replaced this instant
    return False
