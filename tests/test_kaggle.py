"""The Kaggle kernel run as Kaggle would run it, its metadata checked by the kaggle package, push/pull."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from mnistexp.adapters.kaggle import kernel as kaggle
from mnistexp.adapters.kaggle.entry import find_kaggle_data
from mnistexp.cli import cli
from mnistexp.experiment.config import load_config
from mnistexp.experiment.data import DataError, write_csv
from mnistexp.experiment.record import read_record
from tests.conftest import REPO, TINY, synthetic_digits, write_idx_dir
from tests.contract import Launch, PlatformContract, cli_argv

SECRET = "sekret-d41d8cd98f00"


def write_digit_recognizer(folder: Path, n_train: int = 300, n_test: int = 40) -> Path:
    """The competition's layout: train.csv (label,pixel0..783) and an unlabelled test.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    x, y = synthetic_digits(n_train, seed=5)
    write_csv(folder / "train.csv", x, y)
    x_test, _ = synthetic_digits(n_test, seed=6)
    with open(folder / "test.csv", "w", encoding="utf-8") as f:
        f.write(",".join(f"pixel{i}" for i in range(784)) + "\n")
        np.savetxt(f, x_test.reshape(n_test, -1), fmt="%d", delimiter=",")
    return folder


def run_kernel(kernel: Path, input_root: Path, working: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
    env.update(
        MNISTEXP_KAGGLE_INPUT=str(input_root), MNISTEXP_KAGGLE_WORKING=str(working),
        TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH="",
        # credentials present in the environment must never reach the record
        KAGGLE_KEY=SECRET, KAGGLE_USER_SECRETS_TOKEN=SECRET, KAGGLE_KERNEL_RUN_TYPE="Batch",
    )
    return subprocess.run([sys.executable, str(kernel)], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=600)


@pytest.fixture(scope="module")
def kaggle_run(tmp_path_factory):
    """A tiny-config competition-mode kernel run once in a Kaggle-like layout: /kaggle/input, /kaggle/working."""
    root = tmp_path_factory.mktemp("kaggle")
    input_root = root / "kaggle" / "input"
    write_digit_recognizer(input_root / "digit-recognizer")
    kernel_dir = root / "kernel"
    kaggle.generate_kaggle(load_config(REPO / "config.yaml", TINY), kernel_dir, user="tester",
                           dataset_sources=(), competition="digit-recognizer")
    working = root / "kaggle" / "working"
    done = run_kernel(kernel_dir / kaggle.CODE_FILE, input_root, working, cwd=root)
    return SimpleNamespace(root=root, input=input_root, working=working, done=done)


def test_kernel_writes_a_valid_kaggle_record_and_submission(kaggle_run):
    assert kaggle_run.done.returncode == 0, kaggle_run.done.stderr[-2000:]
    record = read_record(kaggle_run.working / "record.json")  # schema-validated
    assert record["platform"] == "kaggle" and record["status"] == "completed"
    assert record["data"]["test_split"] == "holdout"
    assert record["data"]["n_test"] == 30  # the last 10% of 300 labelled rows
    assert "held out" in record["platform_info"]["test_split_note"]
    hardware = record["platform_info"]["hardware"]
    assert hardware["accelerator"] == "cpu" and hardware["cpu_count"] >= 1
    assert record["platform_info"]["kernel"]["file"] == kaggle.CODE_FILE
    assert record["tags"]["platform"] == "kaggle"
    assert record["metrics"]["epochs_run"] == 1 and 0 <= record["metrics"]["test_accuracy"] <= 1
    for name in record["artifacts"].values():
        assert (kaggle_run.working / name).is_file(), name
    lines = (kaggle_run.working / "submission.csv").read_text().splitlines()
    assert lines[0] == "ImageId,Label" and len(lines) == 41
    assert [int(line.split(",")[0]) for line in lines[1:]] == list(range(1, 41))
    assert all(line.split(",")[1] in "0123456789" for line in lines[1:])
    assert "Traceback" not in kaggle_run.done.stderr


def test_kernel_output_holds_no_secret(kaggle_run):
    for path in kaggle_run.working.iterdir():
        if path.suffix in (".json", ".csv"):
            assert SECRET not in path.read_text(), path.name
    assert SECRET not in (REPO / "platforms" / "kaggle" / kaggle.CODE_FILE).read_text()


def test_kernel_record_is_comparable_with_a_local_run(kaggle_run, tmp_path):
    results = tmp_path / "results"
    data_dir = kaggle_run.input / "digit-recognizer"
    local = CliRunner().invoke(cli, ["run", "--config", str(REPO / "config.yaml"), "--data-dir", str(data_dir),
                                     "--set", "data.verify=false", *sum((["--set", o] for o in TINY), []),
                                     "--results-dir", str(results), "-q"])
    assert local.exit_code == 0, local.output
    local_record = read_record(next(results.glob("*/record.json")))
    kernel_record = read_record(kaggle_run.working / "record.json")
    assert kernel_record["experiment"]["fingerprint"] == local_record["experiment"]["fingerprint"]
    assert kernel_record["data"]["checksums"] == local_record["data"]["checksums"]
    assert set(kernel_record) == set(local_record)
    for section in ("data", "metrics", "timings", "environment"):
        assert set(kernel_record[section]) == set(local_record[section]), section

    imported = CliRunner().invoke(cli, ["import", str(kaggle_run.working), "--results-dir", str(results)])
    assert imported.exit_code == 0, imported.output
    assert imported.output.startswith("imported ") and "kaggle" in imported.output
    compare_py = REPO / "mnistexp" / "commands" / "compare.py"
    if compare_py.is_file():
        report = CliRunner().invoke(cli, ["compare", str(results), "--format", "json"])
        assert report.exit_code == 0, report.output
        groups = json.loads(report.output[report.output.index("{"):])["groups"]
        assert len(groups) == 1
        assert {row["value"] for row in groups[0]["rows"]} == {"kaggle", "local"}


def test_kernel_without_data_says_what_to_attach(tmp_path):
    kernel = REPO / "platforms" / "kaggle" / kaggle.CODE_FILE
    (tmp_path / "input").mkdir()
    done = run_kernel(kernel, tmp_path / "input", tmp_path / "working", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert done.stderr.startswith("Error: ") and kaggle.DEFAULT_DATASET in done.stderr
    assert "--competition digit-recognizer" in done.stderr
    assert not (tmp_path / "working" / "record.json").exists()


def test_default_kernel_reads_the_official_mnist_split_not_the_competition(tmp_path):
    write_digit_recognizer(tmp_path / "digit-recognizer", n_train=30, n_test=5)
    write_idx_dir(tmp_path / "datasets" / "someone" / "mnist", n_train=30, n_test=10, sums=False)
    assert find_kaggle_data(tmp_path) == (tmp_path / "datasets" / "someone" / "mnist", None)
    only_competition = tmp_path / "c"
    write_digit_recognizer(only_competition / "digit-recognizer", n_train=30, n_test=5)
    with pytest.raises(DataError, match="official test split"):
        find_kaggle_data(only_competition)


def test_competition_mode_trains_on_its_train_csv(tmp_path):
    write_digit_recognizer(tmp_path / "competitions" / "digit-recognizer", n_train=30, n_test=5)
    write_idx_dir(tmp_path / "datasets" / "someone" / "mnist", n_train=30, n_test=10, sums=False)
    data_dir, competition_test = find_kaggle_data(tmp_path, mode="competition")
    assert data_dir == tmp_path / "competitions" / "digit-recognizer"
    assert competition_test == data_dir / "test.csv"


def test_competition_record_says_it_is_a_different_experiment(kaggle_run):
    record = read_record(kaggle_run.working)
    assert record["platform_info"]["mode"] == "competition"
    assert "different experiment" in record["platform_info"]["experiment_note"]


def test_default_metadata_attaches_the_mnist_data_set(tmp_path):
    result = CliRunner().invoke(cli, ["kernel", "kaggle", "--out", str(tmp_path), "--kaggle-user", "tester"])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / kaggle.METADATA_FILE).read_text())
    assert meta["dataset_sources"] == [kaggle.DEFAULT_DATASET] and meta["competition_sources"] == []
    result = CliRunner().invoke(cli, ["kernel", "kaggle", "--out", str(tmp_path), "--kaggle-user", "tester",
                                      "--competition", "digit-recognizer"])
    meta = json.loads((tmp_path / kaggle.METADATA_FILE).read_text())
    assert meta["competition_sources"] == ["digit-recognizer"] and meta["dataset_sources"] == []
    assert "'mode': 'competition'" in (tmp_path / kaggle.CODE_FILE).read_text()


def test_kernel_on_keras_2_stops_with_one_line_naming_the_versions(tmp_path):
    fake = tmp_path / "fake"
    (fake / "keras").mkdir(parents=True)
    (fake / "keras" / "__init__.py").write_text("__version__ = '2.15.0'\n")
    (fake / "keras-2.15.0.dist-info").mkdir()  # what pip leaves: the kernel reads the version from it
    (fake / "keras-2.15.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: keras\nVersion: 2.15.0\n")
    (tmp_path / "input").mkdir()
    env = {**os.environ, "PYTHONPATH": str(fake), "MNISTEXP_KAGGLE_INPUT": str(tmp_path / "input"),
           "MNISTEXP_KAGGLE_WORKING": str(tmp_path / "working")}
    done = subprocess.run([sys.executable, str(REPO / "platforms" / "kaggle" / kaggle.CODE_FILE)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert "needs Keras 3" in done.stderr and "2.15.0" in done.stderr and "2.16" in done.stderr
    assert not (tmp_path / "working").exists()


@pytest.mark.realdata
def test_kernel_on_a_kaggle_layout_of_real_mnist_has_the_local_fingerprint(shared_mnist, tmp_path):
    input_root = tmp_path / "kaggle" / "input"
    shutil.copytree(shared_mnist, input_root / "mnist-dataset")  # /kaggle/input/<dataset>/
    overrides = ["train.epochs=1", "data.train_limit=2000"]
    config = load_config(REPO / "config.yaml", overrides)
    kaggle.generate_kaggle(config, tmp_path / "kernel", user="tester")
    done = run_kernel(tmp_path / "kernel" / kaggle.CODE_FILE, input_root, tmp_path / "working", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    record = read_record(tmp_path / "working")
    local = CliRunner().invoke(cli, ["run", "--data-dir", str(shared_mnist), "--results-dir",
                                     str(tmp_path / "results"), "-q", *sum((["--set", o] for o in overrides), [])])
    assert local.exit_code == 0, local.output
    (local_record,) = (tmp_path / "results").glob("*/record.json")
    assert record["experiment"]["fingerprint"] == read_record(local_record)["experiment"]["fingerprint"]
    assert record["data"]["checksums"] == read_record(local_record)["data"]["checksums"]
    assert record["data"]["test_split"] == "official"


# ---------------------------------------------------------------- the kaggle package


def _kaggle_api_class():
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        module = pytest.importorskip("kaggle.api.kaggle_api_extended")
    return module.KaggleApi


class _FakeClient:
    """Stands in for the HTTP client: captures the request kaggle's own push code built."""

    def __init__(self, sink):
        from kagglesdk.kernels.types.kernels_api_service import ApiSaveKernelResponse

        def save_kernel(request):
            sink.append(request)
            response = ApiSaveKernelResponse()
            response.url = "https://www.kaggle.com/code/" + request.slug
            response.version_number = 3
            return response

        self.kernels = SimpleNamespace(kernels_api_client=SimpleNamespace(save_kernel=save_kernel))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def offline_api(username="alice"):
    api = _kaggle_api_class()()
    api.config_values = {"username": username}
    api.sent = []
    api.build_kaggle_client = lambda: _FakeClient(api.sent)
    return api


def test_committed_metadata_passes_the_kaggle_package_checks():
    api = offline_api()
    folder = REPO / "platforms" / "kaggle"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        api.kernels_push(str(folder))  # kaggle's own validation, then the (fake) upload
    assert "does not resolve" not in printed.getvalue()  # title slugifies to the id
    meta = json.loads((folder / kaggle.METADATA_FILE).read_text())
    assert set(meta) >= set(kaggle.METADATA_KEYS)
    request = api.sent[0]
    assert request.slug == meta["id"] and request.new_title == meta["title"]
    assert request.language == "python" and request.kernel_type == "script"
    assert request.enable_internet is False and request.is_private is True
    assert list(request.competition_data_sources) == []
    assert list(request.dataset_data_sources) == [kaggle.DEFAULT_DATASET]
    assert request.text == (folder / kaggle.CODE_FILE).read_text()
    from slugify import slugify

    assert slugify(meta["title"]) == meta["id"].split("/")[1]


def test_push_uses_the_signed_in_user_and_leaves_the_committed_files(monkeypatch):
    api = offline_api("alice")
    monkeypatch.setattr("mnistexp.adapters.kaggle.api.kaggle_api", lambda: api)
    before = (REPO / "platforms" / "kaggle" / kaggle.METADATA_FILE).read_text()
    result = CliRunner().invoke(cli, ["kaggle", "push", "--kernel-dir", str(REPO / "platforms" / "kaggle")])
    assert result.exit_code == 0, result.output
    assert api.sent[0].slug == "alice/mnistexp-canonical"
    assert "pushed alice/mnistexp-canonical (version 3)" in result.output
    assert "mnistexp kaggle pull alice/mnistexp-canonical" in result.output
    assert (REPO / "platforms" / "kaggle" / kaggle.METADATA_FILE).read_text() == before


def test_push_without_credentials_is_one_clear_line(tmp_path):
    pytest.importorskip("kaggle")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE")}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / ".config"))
    mnistexp = shutil.which("mnistexp") or pytest.skip("mnistexp entry point not on PATH")
    done = subprocess.run([mnistexp, "kaggle", "push"], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("Error: Kaggle credentials not found")
    assert done.stderr.strip().count("\n") == 0 and "Authentication required" not in done.stdout


def test_push_without_generated_kernel_says_how_to_make_it(tmp_path):
    result = CliRunner().invoke(cli, ["kaggle", "push", "--kernel-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "mnistexp kernel kaggle" in result.output and "Traceback" not in result.output


class _FakePullApi:
    def __init__(self, source: Path, state: str = "COMPLETE"):
        self.source, self.state = source, state

    def kernels_status(self, kernel):
        return SimpleNamespace(status=SimpleNamespace(name=self.state))

    def kernels_output(self, kernel, path, force=False, quiet=True):
        for item in self.source.iterdir():
            shutil.copy2(item, Path(path) / item.name)
        (Path(path) / (kernel.split("/")[1] + ".log")).write_text("kernel log\n")
        return [], None


def test_pull_imports_the_kernel_output(kaggle_run, tmp_path, monkeypatch):
    monkeypatch.setattr("mnistexp.adapters.kaggle.api.kaggle_api", lambda: _FakePullApi(kaggle_run.working))
    results = tmp_path / "results"
    args = ["kaggle", "pull", "tester/mnistexp-canonical", "--results-dir", str(results)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    run_dir = next(results.iterdir())
    record = read_record(run_dir)
    assert record["platform"] == "kaggle"
    assert record["platform_info"]["imported"]["source"] == "kaggle kernel tester/mnistexp-canonical"
    for name in ("submission.csv", "history.csv", "mnistexp-canonical.log"):
        assert (run_dir / name).is_file(), name
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0 and again.output.startswith("already present")


def test_pull_of_a_running_kernel_waits(tmp_path, monkeypatch):
    monkeypatch.setattr("mnistexp.adapters.kaggle.api.kaggle_api", lambda: _FakePullApi(tmp_path, "RUNNING"))
    result = CliRunner().invoke(cli, ["kaggle", "pull", "tester/mnistexp-canonical",
                                      "--results-dir", str(tmp_path / "r")])
    assert result.exit_code == 1 and "is running; pull again" in result.output
    assert not (tmp_path / "r").exists()


def test_pull_rejects_a_malformed_kernel_id(tmp_path):
    result = CliRunner().invoke(cli, ["kaggle", "pull", "just-a-slug"])
    assert result.exit_code == 2 and "owner/kernel-slug" in result.output


class TestKaggleContract(PlatformContract):
    """The generated kernel, run in a Kaggle-like /kaggle/input + /kaggle/working layout."""

    platform = "kaggle"

    @pytest.fixture
    def sdk_modules(self):
        return ["kaggle"]

    @pytest.fixture
    def launch(self, tmp_path, tiny_data_dir):
        count = iter(range(1000))

        def make(overrides, data_dir=tiny_data_dir):
            root = tmp_path / f"kaggle-{next(count)}"
            input_root = root / "input"
            input_root.mkdir(parents=True)
            if Path(data_dir).is_dir():
                shutil.copytree(data_dir, input_root / "mnist")
            kaggle.generate_kaggle(load_config(REPO / "config.yaml", list(overrides)), root / "kernel", user="tester")
            env = {"MNISTEXP_KAGGLE_INPUT": str(input_root), "MNISTEXP_KAGGLE_WORKING": str(root / "working"),
                   "PYTHONPATH": ""}
            return Launch([sys.executable, str(root / "kernel" / kaggle.CODE_FILE)], root / "working", env, root)

        return make

    def sdk_launch(self, launch, tmp_path):
        return Launch(cli_argv("kaggle", "pull", "tester/mnistexp-canonical", "--results-dir",
                               str(tmp_path / "results")), tmp_path / "results")
