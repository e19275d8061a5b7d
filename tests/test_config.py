"""Config loading, overrides and validation: every mistake is one line naming the key."""

from pathlib import Path

import pytest

from mnistexp.experiment.config import VALID_KEYS, ConfigError, load_config, resolve_config

REPO = Path(__file__).resolve().parent.parent
CANONICAL = REPO / "config.yaml"


def test_canonical_config_is_the_platform_study_cnn():
    config = load_config(CANONICAL)
    types = [layer["type"] for layer in config["model"]["layers"]]
    assert types == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Dropout", "Flatten",
                     "Dense", "Dropout", "Dense"]
    layers = config["model"]["layers"]
    assert (layers[0]["filters"], layers[2]["filters"], layers[6]["units"], layers[8]["units"]) == (32, 64, 128, 10)
    assert (layers[4]["rate"], layers[7]["rate"]) == (0.25, 0.5)
    assert config["train"]["optimizer"] == "adam" and config["train"]["batch_size"] == 128
    assert 12 <= config["train"]["epochs"] <= 15


def test_overrides_are_typed_and_applied():
    config = load_config(CANONICAL, ["train.epochs=3", "data.train_limit=500", "train.learning_rate=1e-3",
                                     "data.train_limit=null"])
    assert config["train"]["epochs"] == 3
    assert config["data"]["train_limit"] is None  # the later override wins
    assert isinstance(config["train"]["learning_rate"], float)


def test_int_given_for_float_key_is_accepted_as_float():
    config = load_config(CANONICAL, ["train.learning_rate=1"])
    assert config["train"]["learning_rate"] == 1.0 and isinstance(config["train"]["learning_rate"], float)


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("train.epoch=3", "unknown config key 'train.epoch'; valid keys: "),
        ("train.epochs=three", "config key 'train.epochs' must be an integer, got 'three'"),
        ("train.epochs=0", "config key 'train.epochs' must be a positive integer"),
        ("train.batch_size=1.5", "config key 'train.batch_size' must be an integer"),
        ("data.validation_split=1.5", "config key 'data.validation_split' must be a fraction in [0, 1)"),
        ("train.optimizer=adamm", "config key 'train.optimizer' must be one of adam,"),
        ("data.dataset=cifar", "config key 'data.dataset' must be one of mnist, fashion-mnist"),
        ("train.shuffle=maybe", "config key 'train.shuffle' must be true or false"),
        ("train.epochs", "must look like KEY=VALUE"),
    ],
)
def test_bad_overrides_name_the_key_and_what_was_expected(override, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(CANONICAL, [override])
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_unknown_key_lists_every_valid_key():
    with pytest.raises(ConfigError) as info:
        resolve_config({"train": {"epochz": 3}})
    assert "train.epochz" in str(info.value)
    assert all(key in str(info.value) for key in VALID_KEYS)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("train: [1, 2", "is not valid YAML"),
        ("- just\n- a list\n", "must hold a mapping"),
        ("model:\n  layers:\n    - {type: Dense3D, units: 3}\n", "model.layers[0].type' must be one of"),
        ("model:\n  layers:\n    - {units: 3}\n", "model.layers[0]' must be a mapping with a 'type'"),
        ("model:\n  layers: []\n", "config key 'model.layers' must be a non-empty list"),
        ("model:\n  input_shape: [28, 28, 0]\n  layers:\n    - {type: Flatten}\n", "model.input_shape"),
    ],
)
def test_bad_config_files(tmp_path, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert fragment in str(info.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_partial_config_gets_defaults(tmp_path):
    path = tmp_path / "mlp.yaml"
    path.write_text("name: mlp\nmodel:\n  layers:\n    - {type: Flatten}\n    - {type: Dense, units: 10, activation: softmax}\n")
    config = load_config(path)
    assert config["train"]["batch_size"] == 128 and config["data"]["dataset"] == "mnist"
    assert config["name"] == "mlp"
