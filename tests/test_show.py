"""`mnistexp show`: PNG galleries of predictions, mistakes and activations."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from PIL import Image

from mnistexp.cli import cli
from tests.conftest import TINY


@pytest.fixture(scope="module")
def run_dir(tiny_data_dir, tmp_path_factory):
    results = tmp_path_factory.mktemp("show")
    args = ["run", "--data-dir", str(tiny_data_dir), "--results-dir", str(results), "-q"]
    for item in TINY:
        args += ["--set", item]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return next(p for p in results.iterdir() if p.is_dir())


def test_show_writes_valid_pngs_and_prints_where(run_dir, tiny_data_dir):
    result = CliRunner().invoke(cli, ["show", str(run_dir), "--data-dir", str(tiny_data_dir), "--samples", "10"])
    assert result.exit_code == 0, result.output
    paths = {}
    for kind in ("samples", "misclassified", "activations"):
        path = run_dir / "show" / f"{kind}.png"
        assert str(path) in result.output
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            paths[kind] = image.size
            assert image.format == "PNG"
            assert image.size[0] > 200 and image.size[1] > 100
    # one row per layer (+ the input): the activation figure is taller than wide for 9 layers
    layers = len(json.loads((run_dir / "record.json").read_text())["experiment"]["config"]["model"]["layers"])
    assert paths["activations"][1] > layers * 60


def test_show_fashion_uses_class_names(run_dir, tmp_path, monkeypatch):
    import mnistexp.show as show

    titles = []
    real = show.plot_samples

    def spy(path, images, labels, probabilities, names, n, title):
        titles.extend(names)
        return real(path, images, labels, probabilities, names, n, title)

    monkeypatch.setattr(show, "plot_samples", spy)
    # fashion-mnist test files: the synthetic images, checked by SHA256SUMS rather than published sums
    from tests.conftest import write_idx_dir

    data_dir = write_idx_dir(tmp_path / "fashion")
    result = CliRunner().invoke(cli, ["show", str(run_dir), "--data-dir", str(data_dir), "--dataset",
                                      "fashion-mnist", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "Ankle boot" in titles and "T-shirt/top" in titles
    assert (tmp_path / "out" / "samples.png").stat().st_size > 1000


def test_show_rejects_a_folder_without_record(tmp_path):
    result = CliRunner().invoke(cli, ["show", str(tmp_path)])
    assert result.exit_code == 1 and result.output.startswith("Error:") and "Traceback" not in result.output


def test_show_image_index_out_of_range(run_dir, tiny_data_dir):
    result = CliRunner().invoke(cli, ["show", str(run_dir), "--data-dir", str(tiny_data_dir), "--image", "999"])
    assert result.exit_code == 1 and "--image 999 is out of range" in result.output


@pytest.mark.parametrize("kind, fragment", [
    ("lambda", "refused by Keras safe mode: the model contains a Lambda layer"),
    ("five", "the model outputs shape (5,) per image; expected (10,)"),
])
def test_show_refuses_an_unsafe_or_misshapen_model_in_one_line(run_dir, tiny_data_dir, tmp_path, kind, fragment):
    import shutil

    import keras

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    shutil.rmtree(copy / "show", ignore_errors=True)  # from the gallery tests above
    layers = [keras.layers.Flatten(), keras.layers.Dense(5 if kind == "five" else 10, activation="softmax")]
    if kind == "lambda":
        layers.insert(0, keras.layers.Lambda(lambda x: x + 0))
    keras.Sequential([keras.Input((28, 28, 1)), *layers]).save(copy / "model.keras")
    result = CliRunner().invoke(cli, ["show", str(copy), "--data-dir", str(tiny_data_dir)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith(f"Error: {copy / 'model.keras'}: ") and fragment in result.output
    assert result.output.strip().count("\n") == 0
    assert not (copy / "show").exists()


def test_show_and_evaluate_reuse_the_data_folder_the_run_read(tiny_data_dir, tmp_path, monkeypatch):
    """No --data-dir: the run's own (relative) data folder is used, nothing is downloaded."""
    import shutil

    from click.testing import CliRunner

    from mnistexp.cli import cli
    from tests.conftest import TINY

    shutil.copytree(tiny_data_dir, tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNISTEXP_CACHE_DIR", str(tmp_path / "empty-cache"))  # a download would land here
    argv = ["run", "--data-dir", "data", "--results-dir", "results", "-q", *sum((["--set", s] for s in TINY), [])]
    assert CliRunner().invoke(cli, argv).exit_code == 0
    (run_dir,) = (tmp_path / "results").iterdir()
    monkeypatch.chdir(tmp_path / "results")  # from elsewhere: found beside results/
    shown = CliRunner().invoke(cli, ["show", str(run_dir), "--out", str(tmp_path / "shown")])
    assert shown.exit_code == 0, shown.output
    scored = CliRunner().invoke(cli, ["evaluate", str(run_dir), "--results-dir", str(tmp_path / "results")])
    assert scored.exit_code == 0, scored.output
    assert not (tmp_path / "empty-cache").exists() or not any((tmp_path / "empty-cache").rglob("*.gz"))


def test_show_works_on_a_mixed_precision_model(tiny_data_dir, tmp_path):
    import keras

    args = ["run", "--data-dir", str(tiny_data_dir), "--results-dir", str(tmp_path), "-q",
            "--set", "runtime.mixed_precision=mixed_bfloat16"]
    for item in TINY:
        args += ["--set", item]
    assert CliRunner().invoke(cli, args).exit_code == 0
    # as in a new `mnistexp show` process: the run's bfloat16 policy is not the global one
    assert keras.mixed_precision.global_policy().name == "float32"
    run = next(p for p in tmp_path.iterdir() if p.is_dir())
    result = CliRunner().invoke(cli, ["show", str(run), "--data-dir", str(tiny_data_dir), "--samples", "4"])
    assert result.exit_code == 0, result.output
    with Image.open(run / "show" / "activations.png") as image:
        image.verify()
