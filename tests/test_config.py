"""Config loading, overrides and validation: every mistake is one line naming the key."""

from pathlib import Path

import pytest

from mnistexp.experiment.config import (
    CANONICAL_LAYERS,
    ConfigError,
    estimate_params,
    load_config,
    resolve_config,
)

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
        ("train.epoch=3", "unknown config key 'train.epoch'; did you mean train.epochs?"),
        ("train.epochs=three", "config key 'train.epochs' must be an integer, got 'three'"),
        ("train.epochs=0", "config key 'train.epochs' must be a positive integer"),
        ("train.batch_size=1.5", "config key 'train.batch_size' must be an integer"),
        ("data.validation_split=1.5", "config key 'data.validation_split' must be a fraction in [0, 1)"),
        ("train.optimizer=adamm", "config key 'train.optimizer' must be one of adam,"),
        ("data.dataset=cifar", "config key 'data.dataset' must be one of mnist, fashion-mnist"),
        ("train.shuffle=maybe", "config key 'train.shuffle' must be true or false"),
        ("runtime.backend=pytorch", "config key 'runtime.backend' must be one of auto, tensorflow, jax"),
        ("runtime.jit_compile=sometimes", "config key 'runtime.jit_compile' must be true, false or auto"),
        ("runtime.mixed_precision=fp16", "config key 'runtime.mixed_precision' must be one of auto, float32,"),
        ("train.epochs", "must look like KEY=VALUE"),
    ],
)
def test_bad_overrides_name_the_key_and_what_was_expected(override, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(CANONICAL, [override])
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "key, suggestion",
    [
        ("train.epochz", "did you mean train.epochs?"),
        ("train.batchsize", "train.batch_size"),
        ("epochs", "did you mean train.epochs?"),
        ("data.validation_splitt", "data.validation_split"),
        ("model.layer", "model.layers"),
    ],
)
def test_unknown_key_suggests_the_closest_keys(key, suggestion):
    for source in ("file", "override"):
        with pytest.raises(ConfigError) as info:
            if source == "file":
                resolve_config(_nested(key, 3))
            else:
                resolve_config({}, [f"{key}=3"])
        message = str(info.value)
        assert f"unknown config key '{key}'" in message and suggestion in message
        assert "runtime.inter_op_threads" not in message  # not the list of all 36 keys


def test_unknown_key_without_a_close_match_names_the_sections():
    with pytest.raises(ConfigError, match=r"dotted paths under data, model, runtime, train"):
        resolve_config({}, ["zzzz=1"])


def _nested(key: str, value) -> dict:
    raw: dict = {}
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return raw


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


def test_partial_config_with_only_epochs_is_the_canonical_experiment(tmp_path):
    path = tmp_path / "short.yaml"
    path.write_text("train:\n  epochs: 2\n")
    config = load_config(path)
    canonical = load_config(CANONICAL)
    assert config["train"]["epochs"] == 2
    assert config["model"] == canonical["model"]
    assert config["data"] == canonical["data"]


def test_invalid_value_in_a_partial_config_is_reported(tmp_path):
    path = tmp_path / "short.yaml"
    path.write_text("train:\n  epochs: -1\n")
    with pytest.raises(ConfigError, match=r"^config key 'train.epochs' must be a positive integer, got -1$"):
        load_config(path)


def test_spec_defaults_are_config_yaml():
    """A key left out of a config file keeps exactly the value config.yaml gives it."""
    import yaml

    canonical = yaml.safe_load(CANONICAL.read_text())
    assert canonical["model"]["layers"] == CANONICAL_LAYERS
    defaults = resolve_config({})
    for section in ("data", "model", "train", "runtime"):
        assert defaults[section] == load_config(CANONICAL)[section], section


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("train.batch_size=100000000000000000000000000000", "'train.batch_size' must be an integer up to 2147483647"),
        ("runtime.eval_batch_size=4294967296", "'runtime.eval_batch_size' must be an integer up to 2147483647"),
        ("train.seed=99999999999999", "'train.seed' must be an integer up to 4294967295"),
        ("train.learning_rate=.inf", "'train.learning_rate' must be a finite number"),
        ("train.learning_rate=1e999", "'train.learning_rate' must be a finite number"),
        ("train.learning_rate=.nan", "'train.learning_rate' must be a finite number"),
        ("train.momentum=" + "9" * 400, "'train.momentum' must be a finite number"),
    ],
)
def test_out_of_bound_numbers_are_one_line(override, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(CANONICAL, [override])
    assert fragment in str(info.value)
    assert "\n" not in str(info.value) and len(str(info.value)) < 200


def _with_layers(*layers, **config) -> dict:
    return {"model": {"layers": list(layers)}, **config}


DENSE10 = {"type": "Dense", "units": 10, "activation": "softmax"}


@pytest.mark.parametrize(
    "raw, fragment",
    [
        (_with_layers({"type": "Flatten"}, {"type": "Dense", "units": 5, "activation": "softmax"}),
         "config key 'model.layers[1].units' must be 10, the number of mnist classes (the model outputs 5"),
        (_with_layers({"type": "Flatten"}, {"type": "Dense", "units": 12}, {"type": "Activation", "activation": "softmax"}),
         "'model.layers[1].units' must be 10, the number of"),
        (_with_layers({"type": "Flatten"}, {"type": "Dense", "units": 3, "activation": "softmax"},
                      data={"dataset": "fashion-mnist"}), "number of fashion-mnist classes"),
        (_with_layers({"type": "Conv2D", "filters": 10, "kernel_size": 3}), "ends with output shape 26x26x10 per image"),
        (_with_layers({"type": "Flatten"}, {"type": "Dense", "units": 2**31 - 1}, DENSE10),
         "config key 'model.layers[1]' (Dense) has 1,685,774,662,895 weights, more than 2,147,483,648"),
        (_with_layers({"type": "Conv2D", "filters": 100000, "kernel_size": 3}, {"type": "Flatten"}, DENSE10),
         "config key 'model.layers[0]' (Conv2D) outputs 26x26x100000 values per image"),
        (_with_layers({"type": "Flatten"}, {"type": "Dense", "units": "ten"}, DENSE10),
         "config key 'model.layers[1].units' (Dense) must be a positive integer"),
        (_with_layers({"type": "Conv2D", "filters": 8, "kernel_size": 0}, {"type": "Flatten"}, DENSE10),
         "'model.layers[0].kernel_size' (Conv2D) must be a positive integer"),
        (_with_layers(*[{"type": "MaxPooling2D", "pool_size": 2}] * 5, {"type": "Flatten"}, DENSE10),
         "'model.layers[4]' (MaxPooling2D) would shrink the 1x1 feature maps to nothing"),
        (_with_layers({"type": "Reshape", "target_shape": [10, 10]}, {"type": "Flatten"}, DENSE10),
         "'model.layers[0]' (Reshape) cannot reshape 28x28x1 (784 values) to 10x10"),
    ],
)
def test_impossible_models_are_refused_before_any_build(raw, fragment):
    with pytest.raises(ConfigError) as info:
        resolve_config(raw)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_huge_batch_size_against_the_canonical_model_is_refused():
    with pytest.raises(ConfigError, match=r"model.layers\[0\]' \(Conv2D\) outputs 26x26x32 values per image"):
        resolve_config({}, ["train.batch_size=10000000"])


def test_estimate_params_counts_like_keras_for_the_canonical_cnn():
    # 320 + 18,496 + 204,928 + 1,290: the platform-study CNN's published weight count
    assert estimate_params(resolve_config({})["model"]) == 225_034
    # a layer the calculator does not follow gives None rather than a guess
    assert estimate_params({"input_shape": [28, 28, 1], "layers": [{"type": "Conv2D", "filters": 4,
                                                                    "kernel_size": 3, "data_format": "channels_first"}]}) is None


def test_estimate_params_matches_keras_for_every_zoo_model():
    pytest.importorskip("keras")
    from mnistexp.experiment.model import build_model
    from mnistexp.zoo import zoo_names, zoo_path

    for name in zoo_names():
        config = load_config(zoo_path(name))
        assert estimate_params(config["model"]) == build_model(config["model"], config["train"]).count_params(), name


@pytest.mark.parametrize("error", [MemoryError, OverflowError])
def test_a_model_that_exhausts_memory_at_build_is_one_config_line(monkeypatch, error):
    keras = pytest.importorskip("keras")
    from mnistexp.experiment.model import build_model

    def sequential(*args, **kwargs):
        raise error("cannot allocate")

    monkeypatch.setattr(keras, "Sequential", sequential)
    config = resolve_config({})
    with pytest.raises(ConfigError, match=rf"too large for this machine's memory \({error.__name__}\); use fewer"):
        build_model(config["model"], config["train"])
