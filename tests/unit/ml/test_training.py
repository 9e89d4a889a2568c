"""The training job's own work: the table read once, several folds in one process, the start-up
it pays, and the shortcuts of the families that must not change their models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from thetaflow.ml.folds import dataset, fold_sets, ml_inputs
from thetaflow.ml.models import build_classifier
from thetaflow.ml.models.base import Dataset
from thetaflow.ml.record import TRAIN_SCORES, TRAINING_RECORD
from thetaflow.ml.training import (
    TrainingArrays,
    keep_signal_subsample,
    prepare_training_data,
    train_fold,
    train_folds,
)

FEATURES = ["x", "y", "z"]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A 3-fold training table of two toy samples, and its config."""
    tmp = tmp_path_factory.mktemp("training")
    rng = np.random.default_rng(5)
    files = {}
    for name, label, n in (("sig", 1, 900), ("bkg", 0, 2100)):
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
        for i, feature in enumerate(FEATURES):
            frame[feature] = rng.normal(0.8 * label * (i + 1) / 3, 1.0, n).astype(np.float32)
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
            "max_train_events": 1500,
            "models": {
                "lr": {"family": "logistic", "params": {}},
                "nb": {"family": "naive_bayes", "params": {}},
                "box": {"family": "cuts", "params": {"cuts": {"x": [0.0, 9.0]}}},
                "net": {"family": "nn", "params": {"epochs": 3, "hidden_layers": [8]}},
                "trees": {"family": "bdt", "params": {"n_estimators": 20}},
            },
        },
    }
    path = tmp / "training.parquet"
    prepare_training_data(config, files, str(path), str(tmp / "folds.json"))
    return config, path


def test_arrays_give_the_datasets_of_the_table(table):
    """The once-converted arrays give each fold's Dataset exactly as the frame did: values,
    dtypes and the column-major layout the families' float reductions depend on."""
    config, path = table
    inputs = ml_inputs(config)
    frame = pd.read_parquet(path)
    data = TrainingArrays.read(str(path), inputs)
    for k in range(config["ml"]["folds"]):
        sets = fold_sets(data.fold, data.is_validation, k)
        mask = keep_signal_subsample(sets.train, data.is_signal, 1000, k)
        old, new = dataset(frame, mask, inputs), data.dataset(mask)
        for a, b in ((old.X, new.X), (old.y, new.y), (old.w, new.w)):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        assert old.X.flags.f_contiguous and new.X.flags.f_contiguous
        assert old.feature_names == new.feature_names


@pytest.mark.parametrize("model", ["lr", "nb", "box", "net", "trees"])
def test_all_folds_in_one_process_write_what_single_folds_write(table, tmp_path, model):
    config, path = table
    folds = range(config["ml"]["folds"])
    one = {k: str(tmp_path / f"one{k}") for k in folds}
    for k in folds:
        train_fold(config, model, k, str(path), one[k])
    together = {k: str(tmp_path / f"all{k}") for k in folds}
    records = train_folds(config, model, str(path), together)
    assert [r.fold for r in records] == list(folds)
    for k in folds:
        a, b = Path(one[k]), Path(together[k])
        assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
        assert (a / TRAIN_SCORES).read_bytes() == (b / TRAIN_SCORES).read_bytes()
        ra, rb = (json.loads((d / TRAINING_RECORD).read_text()) for d in (a, b))
        for measured in ("train_seconds", "energy"):  # of this machine, not of the model
            ra.pop(measured), rb.pop(measured)
        assert ra == rb


def test_importing_training_skips_the_feature_stage_and_onnx():
    """A training job's start-up: no awkward/vector (the feature stage) and no onnx unless the
    family exports to it."""
    heavy = ["awkward", "vector", "thetaflow.features.compute", "onnx", "tensorflow", "sklearn"]
    code = f"import sys, thetaflow.ml.training; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _toy(n: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.int8)
    X = (rng.normal(size=(n, 4)) + 0.7 * y[:, None]).astype(np.float32)
    return Dataset(X, y, rng.uniform(0.2, 2.0, n), ("a", "b", "c", "d"))


def test_nn_epoch_per_call_trains_the_same_network(monkeypatch):
    """One traced call per epoch (steps_per_execution) gives the weights of one call per batch,
    bit for bit."""
    import keras

    train, valid, test = _toy(3000, 1), _toy(700, 2), _toy(500, 3)
    params = {"epochs": 4, "hidden_layers": [16], "batch_size": 128, "patience": 10}

    def fitted() -> np.ndarray:
        model = build_classifier("net", "nn", params, 11, train.feature_names)
        model.fit(train, valid)
        return model.predict(test.X)

    per_epoch = fitted()
    compile_, asked = keras.Model.compile, []

    def per_batch(self, *args, **kwargs):
        asked.append(kwargs.get("steps_per_execution"))
        return compile_(self, *args, **{**kwargs, "steps_per_execution": 1})

    monkeypatch.setattr(keras.Model, "compile", per_batch)
    per_step = fitted()
    assert asked == [24]  # ceil(3000 / 128): the whole epoch in one call
    np.testing.assert_array_equal(per_epoch, per_step)


def test_svm_calibration_on_blas_decisions_equals_libsvm(monkeypatch):
    """The calibration's BLAS decision values give libsvm's calibrated model to rounding, and
    leave nothing of the shortcut in the saved estimator."""
    from thetaflow.ml.models import svm

    train, valid, test = _toy(1500, 4), _toy(600, 5), _toy(500, 6)
    params = {"max_train_events": 800}
    fast = build_classifier("svm", "svm", params, 2, train.feature_names)
    fast.fit(train, valid)
    svc = fast.estimator.calibrated_classifiers_[0].estimator.estimator[-1]
    assert "decision_function" not in vars(svc)
    monkeypatch.setattr(svm, "decision_function", lambda s, Z: type(s).decision_function(s, Z))
    slow = build_classifier("svm", "svm", params, 2, train.feature_names)
    slow.fit(train, valid)
    monkeypatch.undo()
    np.testing.assert_allclose(fast.predict(test.X), slow.predict(test.X), rtol=0, atol=1e-9)
