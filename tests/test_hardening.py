"""Issue 13, the reliability matrix: every hostile or faulty input gets one clear line, and nothing leaks.

One row per case: the command line (built in a fresh tmp folder), a fragment of the first
line the user sees, the exit code, and what must and must not be on disk afterwards. Every
row also checks that no traceback is printed. Rows marked `tf` import TensorFlow or train one
tiny epoch; the rest take milliseconds. The planted-secret sweep is at the end of the module.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mnistexp.cli import cli
from mnistexp.compare.synthetic import make_record, write_run
from mnistexp.experiment.data import IDX_NAMES, idx_bytes, load_dataset, read_idx
from mnistexp.experiment.record import read_record
from tests.conftest import SHARED_MNIST, TINY, write_idx_dir

SECRET = "s3cr3t-0123456789abcdef-DO-NOT-LEAK"
PLANTED_ENV = {"COMET_API_KEY": "comet-" + SECRET, "KAGGLE_KEY": "kaggle-" + SECRET,
               "KAGGLE_USERNAME": "user-" + SECRET, "OPENML_APIKEY": "openml-" + SECRET}


@dataclass
class Case:
    id: str
    build: Callable[[Path, Path], list]  # (tmp folder, tiny data folder) -> argv
    first_line: str  # fragment of the first non-empty output line
    exit_code: int
    present: tuple = ()  # paths relative to tmp that must exist afterwards
    absent: tuple = ()  # paths relative to tmp that must not exist afterwards
    check: Callable | None = None  # (tmp, result) -> None: more assertions
    patch: Callable | None = None  # (monkeypatch, tmp) -> None, before the command runs
    marks: tuple = ()
    slow: bool = False  # imports TensorFlow or trains


# ---------------------------------------------------------------- input builders


def _secret_file(tmp: Path) -> Path:
    secret = tmp / "home" / ".kaggle" / "kaggle.json"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text(json.dumps({"username": "alice", "key": SECRET}))
    return secret


def _download(tmp: Path, run_id: str = "run-dl", link: str | None = "history.csv") -> Path:
    """A downloaded kernel output folder; `link` is replaced by a symlink to a secret file."""
    record = make_record(run_id=run_id)
    record["artifacts"] = {"history": "history.csv", "submission": "submission.csv"}
    folder = tmp / "download"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "record.json").write_text(json.dumps(record))
    (folder / "history.csv").write_text("epoch,loss\n1,0.2\n")
    (folder / "submission.csv").write_text("ImageId,Label\n1,7\n")
    if link:
        (folder / link).unlink()
        (folder / link).symlink_to(_secret_file(tmp))
    return folder


def _import_linked(tmp, data):
    return ["import", _download(tmp), "--results-dir", tmp / "results"]


def _import_linked_record(tmp, data):
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "record.json").write_text(json.dumps(make_record(run_id="run-outside")))
    source = tmp / "download" / "sub"
    source.mkdir(parents=True)
    (source / "record.json").symlink_to(elsewhere / "record.json")
    return ["import", tmp / "download", "--results-dir", tmp / "results"]


def _no_secret_in_results(tmp, result):
    for path in (tmp / "results").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def _usual_modes(tmp, result):
    _no_secret_in_results(tmp, result)
    run_dir = tmp / "results" / "run-dl"
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o777 & ~_umask()
    for path in run_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask(), path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _records(tmp: Path, *records) -> Path:
    folder = tmp / "results"
    for record in records:
        write_run(folder, record)
    return folder


def _compare_csv(tmp, data):
    folder = _records(tmp, make_record(seed=1, name='=HYPERLINK("http://evil.example","x")', tags={"note": "@SUM(1)"}),
                      make_record(seed=2, name='=HYPERLINK("http://evil.example","x")', tags={"note": "+cmd|calc"}),
                      make_record(seed=3, name="-2+3", overrides=("train.batch_size=64",)))
    return ["compare", folder, "--by", "tags.note", "-o", tmp / "report.csv"]


def _csv_is_neutralised(tmp, result):
    with open(tmp / "report.csv", newline="", encoding="utf-8") as f:
        cells = [cell for row in csv.reader(f) for cell in row]
    assert any("HYPERLINK" in cell for cell in cells)
    for cell in cells:
        if cell[:1] in ("=", "+", "-", "@"):
            float(cell)  # only a number may start with a sign


def _compare_named(name):
    def build(tmp, data):
        return ["compare", _records(tmp, make_record(seed=1, name=name), make_record(seed=2, name=name))]
    return build


def _literally(text):
    def check(tmp, result):
        assert text in result.output
    return check


def _diff_named(tmp, data):
    folder = _records(tmp, make_record(seed=1, name="[/]", run_id="run-a"),
                      make_record(seed=2, name="[link=https://evil.example]x[/link] [v2]", run_id="run-b"))
    return ["diff", folder / "run-a", folder / "run-b"]


def _compare_unfinished(tmp, data):
    return ["compare", _records(
        tmp, make_record(seed=1, status="interrupted", test_accuracy=None, test_loss=None),
        make_record(seed=2, status="failed", test_accuracy=None, test_loss=None))]


def _statuses_listed(tmp, result):
    assert "interrupted" in result.output and "failed" in result.output


def _nan_record(tmp: Path) -> Path:
    folder = tmp / "results" / "run-nan"
    folder.mkdir(parents=True)
    text = json.dumps(make_record(run_id="run-nan")).replace('"test_loss": 0.03', '"test_loss": NaN')
    assert "NaN" in text
    (folder / "record.json").write_text(text)
    return folder


def _deep_record(tmp: Path) -> Path:
    folder = tmp / "results" / "run-deep"
    folder.mkdir(parents=True)
    (folder / "record.json").write_text('{"schema_version": 1, "x": ' + "[" * 200000 + "]" * 200000 + "}")
    return folder


def _import_nan(tmp, data):
    return ["import", _nan_record(tmp), "--results-dir", tmp / "imported"]


def _import_deep(tmp, data):
    return ["import", _deep_record(tmp), "--results-dir", tmp / "imported"]


def _diff_nan(tmp, data):
    good = write_run(tmp / "results", make_record(run_id="run-good"))
    return ["diff", _nan_record(tmp), Path(good).parent if Path(good).is_file() else good]


def _diff_deep(tmp, data):
    good = write_run(tmp / "results", make_record(run_id="run-good"))
    return ["diff", _deep_record(tmp), Path(good).parent if Path(good).is_file() else good]


def _compare_nan(tmp, data):
    _nan_record(tmp)
    write_run(tmp / "results", make_record(run_id="run-good"))
    return ["compare", tmp / "results"]


def _plots_read_only(tmp, data):
    folder = _records(tmp, make_record(seed=1), make_record(seed=2))
    plots = tmp / "plots"
    plots.mkdir()
    plots.chmod(0o555)
    return ["compare", folder, "--plots", plots, "-f", "csv"]


def _plots_under_a_file(tmp, data):
    folder = _records(tmp, make_record(seed=1), make_record(seed=2))
    (tmp / "blocker").write_text("a file, not a folder")
    return ["compare", folder, "--plots", tmp / "blocker" / "plots", "-f", "csv"]


def _root_ignores_permissions() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


# -- data


def _data(tmp: Path, sums: bool = False) -> Path:
    return write_idx_dir(tmp / "data", n_train=60, n_test=20, sums=sums)


def _flip_gz(tmp, data):
    folder = _data(tmp)
    path = folder / (IDX_NAMES["train_images"] + ".gz")
    raw = bytearray(path.read_bytes())
    raw[40] ^= 0xFF  # inside the deflate stream: zlib.error
    path.write_bytes(bytes(raw))
    return ["data", "info", "--data-dir", folder, "--no-verify"]


def _truncated_npz(tmp, data):
    folder = tmp / "data"
    folder.mkdir()
    dataset = load_dataset(_data(tmp / "src"), verify=False)
    path = folder / "mnist.npz"
    np.savez_compressed(path, x_train=dataset.x_train, y_train=dataset.y_train,
                        x_test=dataset.x_test, y_test=dataset.y_test)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return ["data", "info", "--data-dir", folder, "--no-verify"]


def _binary_sums(tmp, data):
    folder = _data(tmp, sums=True)
    (folder / "SHA256SUMS").write_bytes(b"\xff\xfe\x00\x81 not text\n")
    return ["data", "info", "--data-dir", folder]


def _bad_labels(tmp) -> Path:
    folder = _data(tmp)
    path = folder / (IDX_NAMES["train_labels"] + ".gz")
    labels = read_idx(path).copy()
    labels[5] = 42
    path.write_bytes(gzip.compress(idx_bytes(labels)))
    return folder


def _label_range_info(tmp, data):
    return ["data", "info", "--data-dir", _bad_labels(tmp), "--no-verify"]


def _label_range_run(tmp, data):
    return ["run", "--data-dir", _bad_labels(tmp), "--results-dir", tmp / "results", "-q",
            "--set", "data.verify=false", *_tiny_sets()]


def _tiny_sets():
    return [arg for item in TINY for arg in ("--set", item)]


def _export_interrupted(tmp, data):
    first = write_idx_dir(tmp / "first", n_train=60, n_test=20)
    out = tmp / "out"
    assert CliRunner().invoke(cli, ["data", "export", "--data-dir", first, "--format", "csv", "--out", out]).exit_code == 0
    second = write_idx_dir(tmp / "second", n_train=90, n_test=30)
    return ["data", "export", "--data-dir", second, "--format", "csv", "--out", out, "--force"]


def _interrupt_second_csv(monkeypatch, tmp):
    from mnistexp.experiment import data as data_module

    original, calls = data_module.write_csv, []

    def write_csv(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(data_module, "write_csv", write_csv)


def _export_still_verifies(tmp, result):
    assert load_dataset(tmp / "out").checksums == load_dataset(tmp / "first").checksums
    assert not [p for p in tmp.iterdir() if p.name.startswith(".")]


# -- config and model (all refused by config validation: before TensorFlow, before a run folder)


def _run_config(text: str, *extra):
    def build(tmp, data):
        config = tmp / "my.yaml"
        config.write_text(text)
        return ["run", "--config", config, "--data-dir", data, "--results-dir", tmp / "results", "-q", *extra]
    return build


def _run_set(*items):
    def build(tmp, data):
        return ["run", "--data-dir", data, "--results-dir", tmp / "results", "-q",
                *[arg for item in items for arg in ("--set", item)]]
    return build


LAYERS_5 = """model:
  layers:
    - {type: Flatten}
    - {type: Dense, units: 5, activation: softmax}
"""
LAYERS_HUGE = """model:
  layers:
    - {type: Flatten}
    - {type: Dense, units: 2000000000, activation: relu}
    - {type: Dense, units: 10, activation: softmax}
"""


# -- evaluate


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory):
    """Keras files a user might hand to evaluate: wrong shapes, a Lambda, custom code."""
    import zipfile

    import keras

    folder = tmp_path_factory.mktemp("models")

    def save(name, input_shape, *layers):
        model = keras.Sequential([keras.Input(input_shape), *layers])
        model.save(folder / name)

    save("five.keras", (28, 28, 1), keras.layers.Flatten(), keras.layers.Dense(5, activation="softmax"))
    save("rgb.keras", (32, 32, 3), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax"))
    save("lambda.keras", (28, 28, 1), keras.layers.Lambda(lambda x: x * 2), keras.layers.Flatten(),
         keras.layers.Dense(10, activation="softmax"))
    save("plain.keras", (28, 28, 1), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax"))
    with zipfile.ZipFile(folder / "plain.keras") as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    config["config"]["layers"][1].update(class_name="MyEvilLayer", module="evil.module")
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(folder / "custom.keras", "w") as archive:
        for name, payload in files.items():
            archive.writestr(name, payload)
    (folder / "junk.keras").write_text("not a zip")
    return folder


def _evaluate(model_name, *extra):
    def build(tmp, data):
        return ["evaluate", Path(os.environ["H13_MODELS"]) / model_name, "--dataset", "mnist", "--data-dir", data,
                "--results-dir", tmp / "results", *extra]
    return build


def _evaluate_name(name):
    def build(tmp, data):
        return ["evaluate", tmp / "model.keras", "--data-dir", data, "--results-dir", tmp / "results" / "r",
                "--name", name]
    return build


# -- the lead's runner cases: out of disk, Ctrl-C, pre-flight


def _disk_full(monkeypatch, tmp):
    from mnistexp.experiment import lifecycle

    def save_model(path, model):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(lifecycle, "save_model", save_model)


def _failed_record_kept(tmp, result):
    (run_dir,) = [p for p in (tmp / "results").iterdir() if p.is_dir()]
    record = read_record(run_dir)
    assert record["status"] == "failed" and "No space left on device" in (record["error"] or "")


def _ctrl_c_after_epoch_one(monkeypatch, tmp):
    from mnistexp.experiment import lifecycle

    def write_history_csv(path, history):
        raise KeyboardInterrupt

    monkeypatch.setattr(lifecycle, "write_history_csv", write_history_csv)


def _interrupted_once(tmp, result):
    line = next(line for line in result.output.splitlines() if line.strip())
    assert line.lower().count("interrupted") == 1, line
    (run_dir,) = [p for p in (tmp / "results").iterdir() if p.is_dir()]
    assert read_record(run_dir)["status"] == "interrupted"


def _partial_config_run(tmp, data):
    config = tmp / "short.yaml"
    config.write_text("train:\n  epochs: 1\n  batch_size: 32\n")
    return ["run", "--config", config, "--data-dir", data, "--results-dir", tmp / "results", "-q"]


def _canonical_model_trained(tmp, result):
    from mnistexp.experiment.config import CANONICAL_LAYERS

    (run_dir,) = [p for p in (tmp / "results").iterdir() if p.is_dir()]
    record = read_record(run_dir)
    assert record["status"] == "completed" and record["experiment"]["config"]["model"]["layers"] == CANONICAL_LAYERS


def _nothing_under(relative):
    def check(tmp, result):
        folder = tmp / relative
        assert not folder.exists() or not any(folder.iterdir()), list(folder.iterdir())
    return check


FASHION = SHARED_MNIST.parent / "fashion-mnist"
needs_fashion = pytest.mark.skipif(not (FASHION / "t10k-labels-idx1-ubyte.gz").is_file(),
                                   reason="real Fashion-MNIST not found")


CASES = [
    # ---- data loss and security
    Case("import-linked-artifact", _import_linked, "Warning: ", 0,
         present=("results/run-dl/record.json", "results/run-dl/submission.csv"),
         absent=("results/run-dl/history.csv",), check=_usual_modes),
    Case("import-linked-record", _import_linked_record, "only links, not followed", 1,
         absent=("results/run-outside",)),
    Case("compare-csv-injection", _compare_csv, "", 0, present=("report.csv",), check=_csv_is_neutralised),
    Case("compare-markup-close-tag", _compare_named("[/]"), "", 0, check=_literally("[/]")),
    Case("compare-markup-link", _compare_named("[link=https://evil.example]click[/link]"), "", 0,
         check=_literally("[link=https://evil.example]")),
    Case("compare-markup-v2", _compare_named("exp [v2]"), "", 0, check=_literally("[v2]")),
    Case("diff-markup", _diff_named, "", 0, check=lambda tmp, r: ("[/]" in r.output and "[v2]" in r.output)
         or pytest.fail(r.output)),
    Case("compare-no-completed-run", _compare_unfinished, "", 0, check=_statuses_listed),
    Case("export-force-interrupted", _export_interrupted, "Aborted", 1, patch=_interrupt_second_csv,
         check=_export_still_verifies),
    Case("evaluate-name-traversal", _evaluate_name("../../x"), "comparison name '../../x' must be a plain name", 1,
         absent=("x.json", "results/x.json", "results/r/comparisons")),
    Case("evaluate-name-separator", _evaluate_name("a/b"), "must be a plain name", 1,
         absent=("results/r/comparisons",)),
    Case("evaluate-name-absolute", _evaluate_name("/tmp/h13-evil"), "must be a plain name", 1,
         absent=("results/r/comparisons",), check=lambda tmp, r: not Path("/tmp/h13-evil.json").exists()
         or pytest.fail("written outside")),
    # ---- data: one line naming the file and the fix
    Case("gzip-flipped-bytes", _flip_gz, "train-images-idx3-ubyte.gz: corrupt or truncated gzip file; download it again", 1),
    Case("npz-truncated", _truncated_npz, "mnist.npz: not a readable .npz file", 1),
    Case("sha256sums-not-utf8", _binary_sums, "SHA256SUMS: not a text file; write it with `sha256sum", 1),
    Case("label-out-of-range-info", _label_range_info, "label(s) out of range (largest 42); mnist has 10 classes", 1),
    Case("label-out-of-range-run", _label_range_run, "label(s) out of range", 1,
         check=_nothing_under("results"), slow=True),
    # ---- config and model: refused before anything is written
    Case("batch-size-overflow", _run_set("train.batch_size=" + "9" * 40),
         "config key 'train.batch_size' must be an integer up to 2147483647", 1, absent=("results",)),
    Case("last-layer-units", _run_config(LAYERS_5), "'model.layers[1].units' must be 10, the number of mnist classes",
         1, absent=("results",)),
    Case("layer-too-big", _run_config(LAYERS_HUGE), "(Dense) has 1,570,000,000,000 weights, more than", 1,
         absent=("results",)),
    Case("activations-too-big", _run_set("train.batch_size=5000000"), "(Conv2D) outputs 26x26x32 values per image",
         1, absent=("results",)),
    Case("partial-config-invalid-value", _run_config("train:\n  epochs: -1\n"),
         "config key 'train.epochs' must be a positive integer, got -1", 1, absent=("results",)),
    Case("set-typo", _run_set("train.epoch=3"), "did you mean train.epochs?", 1, absent=("results",)),
    Case("partial-config-accepted", _partial_config_run, "", 0, check=_canonical_model_trained, slow=True),
    # ---- the strict reader everywhere
    Case("import-nan", _import_nan, "run-nan/record.json", 1, absent=("imported",)),
    Case("import-deep-nesting", _import_deep, "run-deep/record.json", 1, absent=("imported",)),
    Case("diff-nan", _diff_nan, "run-nan/record.json", 1),
    Case("diff-deep-nesting", _diff_deep, "run-deep/record.json", 1),
    Case("compare-skips-nan", _compare_nan, "Warning: ", 0, check=_literally("run-nan")),
    Case("compare-plots-read-only", _plots_read_only, "Error: ", 1,
         marks=(pytest.mark.skipif(_root_ignores_permissions(), reason="root writes into read-only folders"),)),
    Case("compare-plots-under-a-file", _plots_under_a_file, "Error: ", 1,
         check=lambda tmp, r: (tmp / "blocker").read_text() == "a file, not a folder" or pytest.fail("changed")),
    # ---- evaluate on models it cannot score
    Case("evaluate-wrong-output", _evaluate("five.keras"), "five.keras: the model outputs shape (5,) per image; "
         "expected (10,)", 1, absent=("results/comparisons",), slow=True),
    Case("evaluate-wrong-input", _evaluate("rgb.keras"), "rgb.keras: the model expects input of shape (32, 32, 3)",
         1, absent=("results/comparisons",), slow=True),
    Case("evaluate-lambda", _evaluate("lambda.keras"), "refused by Keras safe mode: the model contains a Lambda layer",
         1, absent=("results/comparisons",), slow=True),
    Case("evaluate-custom-code", _evaluate("custom.keras"), "uses custom code (MyEvilLayer)", 1,
         absent=("results/comparisons",), slow=True),
    Case("evaluate-not-a-model", _evaluate("junk.keras"), "junk.keras: not a readable .keras file", 1,
         absent=("results/comparisons",), slow=True),
    # ---- the lead's runner changes
    Case("out-of-disk-saving-model", _run_set(*TINY), "No space left on device", 1, patch=_disk_full,
         check=_failed_record_kept, slow=True),
    Case("ctrl-c-says-interrupted-once", _run_set(*TINY), "nterrupted", 130, patch=_ctrl_c_after_epoch_one,
         check=_interrupted_once, slow=True),
]


@pytest.fixture
def models_env(request, monkeypatch):
    if "evaluate-" in request.node.callspec.id and "name" not in request.node.callspec.id:
        monkeypatch.setenv("H13_MODELS", str(request.getfixturevalue("bad_models")))


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_hostile_input(case, tmp_path, tiny_data_dir, monkeypatch, models_env):
    monkeypatch.chdir(tmp_path)  # a stray relative path would land here, where it is seen
    argv = [str(a) for a in case.build(tmp_path, tiny_data_dir)]
    if case.patch:
        case.patch(monkeypatch, tmp_path)
    result = CliRunner().invoke(cli, argv)
    output = result.output
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in output.splitlines() if line.strip()]
    if case.first_line:
        assert lines and case.first_line in lines[0], output
    if case.exit_code:
        assert result.exit_code == case.exit_code, output
        errors = [line for line in lines if line.startswith("Error:")]
        assert len(errors) <= 1 and all(len(line) < 600 for line in errors), output
    else:
        assert result.exit_code == 0, output
    for relative in case.present:
        assert (tmp_path / relative).exists(), relative
    for relative in case.absent:
        assert not (tmp_path / relative).exists(), relative
    if case.check:
        case.check(tmp_path, result)


# ---------------------------------------------------------------- before TensorFlow is imported


def _cli_in_subprocess(tmp_path: Path, *argv) -> tuple[subprocess.CompletedProcess, bool]:
    """Run the CLI in a fresh interpreter; report whether TensorFlow got imported."""
    marker = tmp_path / "tf-imported"
    code = ("import atexit, sys\n"
            f"atexit.register(lambda: open({str(marker)!r}, 'w').write(str('tensorflow' in sys.modules)))\n"
            "from mnistexp.cli import main\n"
            f"sys.argv = ['mnistexp', *{[str(a) for a in argv]!r}]\n"
            "main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return proc, marker.read_text() == "True"


@pytest.mark.parametrize("case", ["missing", "wrong-dataset"])
def test_data_dir_problems_are_reported_before_tensorflow_loads(tmp_path, case):
    if case == "missing":
        args, fragment = ["--data-dir", tmp_path / "nowhere"], "does not exist; pass a folder with the"
    else:
        if not (FASHION / "t10k-labels-idx1-ubyte.gz").is_file():
            pytest.skip("real Fashion-MNIST not found")
        args, fragment = ["--data-dir", FASHION], "these are the Fashion-MNIST files, not MNIST; pass --dataset fashion-mnist"
    proc, tf_imported = _cli_in_subprocess(tmp_path, "run", *args, "--results-dir", tmp_path / "results")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1 and fragment in lines[0], proc.stderr
    assert not tf_imported, "the data folder should be checked before TensorFlow is imported"
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


@pytest.mark.parametrize("overrides, fragment", [
    (["train.epoch=3"], "did you mean train.epochs?"),
    (["train.batch_size=" + "9" * 40], "must be an integer up to 2147483647"),
])
def test_config_errors_need_no_tensorflow(tmp_path, tiny_data_dir, overrides, fragment):
    sets = [arg for item in overrides for arg in ("--set", item)]
    proc, tf_imported = _cli_in_subprocess(tmp_path, "run", "--data-dir", tiny_data_dir, "--results-dir",
                                           tmp_path / "results", *sets)
    assert proc.returncode == 1 and fragment in proc.stderr and not tf_imported


# ---------------------------------------------------------------- planted secrets


def test_planted_secrets_never_reach_any_written_file(tmp_path, tiny_data_dir, monkeypatch, bad_models):
    """Secrets in the environment and behind a symlink, through run, import, evaluate and compare."""
    for name, value in PLANTED_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results"
    runner = CliRunner()
    steps = [
        ["run", "--data-dir", tiny_data_dir, "--results-dir", results, "-q", *_tiny_sets()],
        ["import", _download(tmp_path), "--results-dir", results],
    ]
    for argv in steps:
        result = runner.invoke(cli, [str(a) for a in argv])
        assert result.exit_code == 0, result.output
    run_dir = next(p for p in results.iterdir() if p.is_dir() and (p / "model.keras").is_file())
    for argv in (["evaluate", run_dir, "--data-dir", tiny_data_dir, "--results-dir", results, "--name", "sweep"],
                 ["compare", results, "-o", results / "report.html"],
                 ["compare", results, "-o", results / "report.json"],
                 ["compare", results, "-o", results / "report.csv"]):
        result = runner.invoke(cli, [str(a) for a in argv])
        assert result.exit_code == 0, result.output
        assert SECRET not in result.output
    written = [p for p in results.rglob("*") if p.is_file()]
    assert {"record.json", "model.keras", "sweep.json", "report.html", "report.csv"} <= {p.name for p in written}
    for path in written:
        data = path.read_bytes()
        assert SECRET.encode() not in data, f"a planted secret leaked into {path}"
        for name in PLANTED_ENV:
            assert name.encode() not in data, f"{name} (an environment dump?) in {path}"
