"""The nn family's optimiser from config, and the optimiser study on a toy training table."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from thetaflow.analysis import load_analysis
from thetaflow.core.errors import ConfigError
from thetaflow.ml import checks as ml_checks
from thetaflow.ml.models.base import ModelConfigError
from thetaflow.ml.models.nn import OPTIMIZERS, NeuralNet, check_optimizer, make_optimizer
from thetaflow.ml.optimiser_study import StudySettings, optimiser_study
from thetaflow.ml.training import prepare_training_data

REPO = Path(__file__).resolve().parents[3]
FEATURES = ["x", "y", "z"]

# name -> (Keras class, momentum, nesterov) of the optimiser built at momentum 0.5
EXPECTED = {
    "sgd": (keras.optimizers.SGD, 0.0, False),
    "sgd_momentum": (keras.optimizers.SGD, 0.5, False),
    "nesterov": (keras.optimizers.SGD, 0.5, True),
    "adagrad": (keras.optimizers.Adagrad, None, None),
    "adadelta": (keras.optimizers.Adadelta, None, None),
    "rmsprop": (keras.optimizers.RMSprop, 0.5, None),
    "adam": (keras.optimizers.Adam, None, None),
}


def test_every_optimiser_is_tested():
    assert set(EXPECTED) == set(OPTIMIZERS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_name_builds_its_keras_optimiser_with_its_settings(name):
    cls, momentum, nesterov = EXPECTED[name]
    spec = {"name": name} | ({"momentum": 0.5} if OPTIMIZERS[name].momentum is not None else {})
    optimizer = make_optimizer(check_optimizer(spec, "model 'net'"), 0.025)
    assert type(optimizer) is cls
    assert float(optimizer.learning_rate) == pytest.approx(0.025)
    if momentum is not None:
        assert optimizer.momentum == momentum
    if nesterov is not None:
        assert optimizer.nesterov is nesterov


def test_momentum_defaults_and_the_default_network_is_adam_at_its_learning_rate():
    assert check_optimizer({"name": "nesterov"}, "m") == {"name": "nesterov", "momentum": 0.9}
    assert check_optimizer({"name": "rmsprop"}, "m") == {"name": "rmsprop", "momentum": 0.0}
    net = NeuralNet("net", {}, 1, FEATURES)
    assert net.params["optimizer"] == {"name": "adam"}
    compiled = net._build(np.zeros((4, 3), np.float32))
    assert type(compiled.optimizer) is keras.optimizers.Adam
    assert float(compiled.optimizer.learning_rate) == pytest.approx(1.0e-3)


@pytest.mark.parametrize(
    ("optimizer", "key", "detail"),
    [
        ({"name": "adamw"}, "optimizer.name", "adamw"),
        ({}, "optimizer.name", "None"),
        ({"name": "adam", "momentum": 0.9}, "optimizer.momentum", "'adam'"),
        ({"name": "sgd_momentum", "momentum": 1.0}, "optimizer.momentum", "[0, 1)"),
        ({"name": "nesterov", "momentum": "high"}, "optimizer.momentum", "'high'"),
        ({"name": "sgd", "lr": 0.1}, "optimizer.lr", "allowed"),
        ("adam", "'optimizer'", "dict"),
    ],
)
def test_a_bad_optimiser_names_the_model_and_the_key(optimizer, key, detail):
    with pytest.raises(ModelConfigError) as err:
        NeuralNet.check_params("net", {"optimizer": optimizer})
    assert "model 'net'" in str(err.value) and key in str(err.value) and detail in str(err.value)


def test_a_bad_model_optimiser_stops_the_config_check_naming_the_key():
    net = {"family": "nn", "params": {"optimizer": {"name": "sgdd"}}}
    config = {"features": FEATURES, "ml": {"inputs": [], "models": {"net": net}}}
    with pytest.raises(ConfigError, match=r"'ml\.models\.net\.params'.*optimizer\.name.*sgdd"):
        ml_checks.check(config, {})


def test_an_unknown_study_optimiser_stops_the_analysis_before_any_job():
    override = {"ml": {"optimiser_study": {"optimizers": [{"name": "adam"}, {"name": "lbfgs"}]}}}
    with pytest.raises(ConfigError) as err:
        load_analysis([REPO / "config" / "config.yaml"], override)
    message = str(err.value)
    assert "'ml.optimiser_study.optimizers[1].name'" in message
    assert "optimizer.name" in message and "lbfgs" in message


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A 3-fold training table of two toy samples (signal shifted in x, y, z), and its config
    with the optimiser study."""
    tmp = tmp_path_factory.mktemp("optimiser_study")
    rng = np.random.default_rng(11)
    files = {}
    for name, label, n in (("sig", 1, 1500), ("bkg", 0, 3000)):
        frame = pd.DataFrame(
            {
                "run": np.ones(n, np.uint32),
                "luminosityBlock": np.ones(n, np.uint32),
                "event": np.arange(1, n + 1, dtype=np.uint64) + (0 if label else 100_000),
                "sample": name,
                "label": np.full(n, label, np.int8),
                "weight": rng.uniform(0.05, 0.2, n),
            }
        )
        for feature in FEATURES:
            frame[feature] = rng.normal(0.8 * label, 1.0, n).astype(np.float32)
        files[name] = str(tmp / f"{name}.parquet")
        frame.to_parquet(files[name])
    config = {
        "features": FEATURES,
        "ml": {
            "seed": 3,
            "folds": 3,
            "validation_fraction": 0.25,
            "negative_weights": "abs",
            "inputs": [],
            "max_train_events": 0,
            "models": {
                # no early stopping or rate reduction: every curve has `epochs` points
                "net": {
                    "family": "nn",
                    "params": {
                        "hidden_layers": [16],
                        "batch_size": 128,
                        "patience": 50,
                        "lr_patience": 50,
                    },
                },
            },
            "optimiser_study": {
                "model": "net",
                "fold": 1,
                "epochs": 6,
                "max_train_events": 2000,
                "optimizers": [
                    {"name": "sgd", "learning_rate": 0.05},
                    {"name": "nesterov", "learning_rate": 0.01, "momentum": 0.8},
                    {"name": "adam", "learning_rate": 0.003},
                ],
            },
        },
    }
    path = tmp / "training.parquet"
    prepare_training_data(config, files, str(path), str(tmp / "folds.json"))
    return config, path


def test_the_study_gives_one_loss_curve_per_optimiser_and_adams_decreases(table, tmp_path):
    config, path = table
    outputs = {"json": str(tmp_path / "study.json"), "figure": str(tmp_path / "study.png")}
    result = optimiser_study(config, str(path), outputs)

    assert [run.optimizer["name"] for run in result.runs] == ["sgd", "nesterov", "adam"]
    assert result.runs[1].optimizer == {"name": "nesterov", "momentum": 0.8}
    assert [run.learning_rate for run in result.runs] == [0.05, 0.01, 0.003]
    assert all(len(run.valid_loss) == 6 for run in result.runs)
    adam = result.runs[2].valid_loss
    assert adam[-1] < adam[0] and np.all(np.diff(adam) < 1e-3)  # falls, at most flattening
    assert result.runs[2].best_epoch == int(np.argmin(adam)) + 1
    for run in result.runs:
        assert 0.65 < run.valid_auc < 0.9  # the toy's optimal AUC is Φ(0.8·√3/√2) ≈ 0.86
    assert 1500 < result.n_train <= 2000 and 0 < result.n_valid <= 500

    written = json.loads(Path(outputs["json"]).read_text())
    assert written == json.loads(json.dumps(result.to_json()))
    assert [run["label"] for run in written["runs"]][1] == "nesterov (lr 0.01, m 0.8)"
    assert Path(outputs["figure"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.json", "study.png"]


def test_a_failed_figure_write_leaves_neither_output(table, tmp_path, file_size_limit):
    config, path = table
    config = copy.deepcopy(config)
    config["ml"]["optimiser_study"] |= {"epochs": 1, "optimizers": [{"name": "adam"}]}
    outputs = {"json": str(tmp_path / "study.json"), "figure": str(tmp_path / "study.png")}
    with file_size_limit(2000), pytest.raises(OSError):
        optimiser_study(config, str(path), outputs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("study", "key"),
    [
        ({"model": "trees"}, "'ml.optimiser_study.model'"),
        ({"model": "absent"}, "'ml.optimiser_study.model'"),
        ({"fold": 3}, "'ml.optimiser_study.fold'"),
        (
            {"optimizers": [{"name": "adagrad", "momentum": 0.5}]},
            "'ml.optimiser_study.optimizers[0].momentum'",
        ),
        (
            {"optimizers": [{"name": "sgd", "learning_rate": 0}]},
            "'ml.optimiser_study.optimizers[0]'",
        ),
    ],
)
def test_bad_study_settings_name_the_key(table, study, key):
    config = copy.deepcopy(table[0])
    config["ml"]["models"]["trees"] = {"family": "bdt", "params": {}}
    config["ml"]["optimiser_study"] |= study
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace(".", r"\.")):
        StudySettings.from_config(config)
