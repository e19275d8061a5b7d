"""The model zoo: every configs/*.yaml resolves by name, builds, trains a few steps and saves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnistexp.cli import cli
from mnistexp.experiment.config import ConfigError, load_config
from mnistexp.paths import PACKAGE_DIR
from mnistexp.zoo import resolve_config_arg, zoo_names, zoo_path, zoo_table

REPO = Path(__file__).resolve().parent.parent
EXPECTED = {"canonical", "platform-study-original", "keras-example", "bn-cnn", "cnn9975-lite",
            "cnn9975-lite-aug", "deep-mlp"}


def test_every_zoo_name_resolves_to_a_valid_documented_config():
    assert EXPECTED <= set(zoo_names())
    for row in zoo_table():
        config = load_config(zoo_path(row["name"]))
        assert config["name"] == row["name"]
        assert row["description"], f"{row['name']} has no description"
        assert 0.9 < config["expected_test_accuracy"] < 1.0, f"{row['name']} states no expected accuracy"


def test_canonical_is_the_shipped_config_not_a_copy():
    assert zoo_path("canonical").resolve() == (REPO / "config.yaml").resolve()
    assert not (REPO / "configs" / "canonical.yaml").exists()
    assert (PACKAGE_DIR / "configs" / "bn-cnn.yaml").is_file()  # shipped inside the package


def test_layer_orders_are_the_documented_ones():
    types = {name: [layer["type"] for layer in load_config(zoo_path(name))["model"]["layers"]]
             for name in EXPECTED}
    original = types["platform-study-original"]
    assert original.index("Dense") < original.index("Flatten")  # Dense acts per spatial position
    canonical = types["canonical"]
    assert canonical.index("Flatten") < canonical.index("Dense")
    assert types["keras-example"][:3] == ["Conv2D", "Conv2D", "MaxPooling2D"]
    assert types["bn-cnn"][:3] == ["Conv2D", "BatchNormalization", "ReLU"]
    assert types["cnn9975-lite-aug"][:3] == ["RandomRotation", "RandomZoom", "RandomTranslation"]
    strided = [layer for layer in load_config(zoo_path("cnn9975-lite"))["model"]["layers"] if layer.get("strides") == 2]
    assert len(strided) == 2 and "MaxPooling2D" not in types["cnn9975-lite"]
    units = [layer["units"] for layer in load_config(zoo_path("deep-mlp"))["model"]["layers"] if layer["type"] == "Dense"]
    assert units == [3000, 2500, 2000, 1500, 1000, 500, 10]


def test_unknown_name_and_missing_file_are_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown config 'bn-cn'.*bn-cnn"):
        resolve_config_arg("bn-cn")
    with pytest.raises(ConfigError, match="not found"):
        resolve_config_arg(str(tmp_path / "nope.yaml"))
    own = tmp_path / "bn-cnn"
    own.write_text("name: mine\nmodel: {layers: [{type: Flatten}, {type: Dense, units: 10}]}\n")
    assert resolve_config_arg(str(own)) == own  # an existing file wins over a zoo name
    result = CliRunner().invoke(cli, ["run", "--config", "no-such-model", "--results-dir", str(tmp_path)])
    assert result.exit_code == 1 and "Error: unknown config 'no-such-model'" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_zoo_config_builds_trains_and_saves(name, tiny_data_dir, tmp_path):
    """A short run of each zoo model on tiny data: a few steps (deep-mlp is ~19M weights)."""
    result = CliRunner().invoke(cli, [
        "run", "--config", name, "--data-dir", str(tiny_data_dir), "--results-dir", str(tmp_path), "-q",
        "--set", "train.epochs=1", "--set", "train.batch_size=64", "--set", "data.train_limit=192",
        "--set", "data.validation_split=0.25",
    ])
    assert result.exit_code == 0, result.output
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"] == "completed"
    assert record["experiment"]["name"] == name
    assert record["metrics"]["epochs_run"] == 1 and 0.0 <= record["metrics"]["test_accuracy"] <= 1.0
    assert (run_dir / "model.keras").stat().st_size > 10_000
