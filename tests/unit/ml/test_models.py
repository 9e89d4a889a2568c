"""Every classifier family on a small weighted toy: separation, persistence, seeding, checks.

The toy is two 6-d unit Gaussians whose means differ by 0.6 in every coordinate (the
optimal AUC is Φ(0.6·√6/√2) ≈ 0.86), with random positive weights. Hyperparameters are
reduced where the defaults would only cost time; the file runs in well under a minute.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from thetaflow.ml.models import (
    FAMILIES,
    Classifier,
    Dataset,
    ModelConfigError,
    build_classifier,
    load_classifier,
)
from thetaflow.ml.models.onnx_export import export_onnx, onnx_scores

FEATURES = tuple(f"f{i}" for i in range(6))
SEED = 7
# Cheaper than the defaults, same code paths.
PARAMS: dict[str, dict[str, Any]] = {
    "bdt": {"n_estimators": 150},
    "nn": {"epochs": 12, "hidden_layers": [32, 32], "batch_size": 256, "learning_rate": 3.0e-3},
    "svm": {"max_train_events": 1000},
    "logistic": {},
    "knn": {"n_neighbors": 30, "max_train_events": 2000},
    "random_forest": {"n_estimators": 40, "max_depth": 8},
    "naive_bayes": {},
    "cuts": {"cuts": {"f0": [0.3, 1.0e9], "f1": [0.3, 1.0e9], "f2": [-1.0e9, 5.0]}},
}
MIN_AUC = {"cuts": 0.6}
TOLERANCE = {"nn": 1e-6}


def toy(n: int, seed: int) -> Dataset:
    """``n`` events, half signal (mean shifted by 0.6), weights uniform in [0.2, 2]."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.int64)
    X = rng.normal(size=(n, len(FEATURES))) + 0.6 * y[:, None]
    return Dataset(X.astype(np.float32), y, rng.uniform(0.2, 2.0, n), FEATURES)


TRAIN, VALID, TEST = toy(2400, 1), toy(800, 2), toy(800, 3)


def fit(family: str, seed: int = SEED) -> Classifier:
    model = build_classifier(f"toy_{family}", family, PARAMS[family], seed, FEATURES)
    model.fit(TRAIN, VALID)
    return model


@pytest.fixture(scope="module")
def fitted() -> dict[str, Classifier]:
    """One fitted model per family, shared by the tests that only read it."""
    return {family: fit(family) for family in FAMILIES}


def check_close(a: np.ndarray, b: np.ndarray, family: str) -> None:
    np.testing.assert_allclose(a, b, rtol=0, atol=TOLERANCE.get(family, 0.0))


def test_every_family_is_tested() -> None:
    assert set(PARAMS) == set(FAMILIES)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_beats_random(fitted: dict[str, Classifier], family: str) -> None:
    scores = fitted[family].predict(TEST.X)
    assert scores.shape == (len(TEST),) and scores.dtype == np.float64
    assert np.all((scores >= 0) & (scores <= 1))
    auc = roc_auc_score(TEST.y, scores, sample_weight=TEST.w)
    assert auc > MIN_AUC.get(family, 0.75), f"{family}: weighted AUC {auc:.3f}"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_save_load_round_trip(fitted: dict[str, Classifier], family: str, tmp_path: Path) -> None:
    model = fitted[family]
    model.save(tmp_path)
    loaded = load_classifier(tmp_path, model.name, family, PARAMS[family], SEED, FEATURES)
    assert type(loaded) is type(model)
    check_close(loaded.predict(TEST.X), model.predict(TEST.X), family)
    assert loaded.feature_importance() == model.feature_importance()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_same_seed_same_predictions(fitted: dict[str, Classifier], family: str) -> None:
    check_close(fit(family).predict(TEST.X), fitted[family].predict(TEST.X), family)


@pytest.mark.parametrize("family", ["bdt", "random_forest"])
def test_feature_importance_normalised(fitted: dict[str, Classifier], family: str) -> None:
    importance = fitted[family].feature_importance()
    assert importance is not None and tuple(importance) == FEATURES
    assert sum(importance.values()) == pytest.approx(1.0)
    assert max(importance, key=importance.__getitem__) in FEATURES


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_unknown_hyperparameter(family: str) -> None:
    with pytest.raises(ModelConfigError, match=r"model 'm'.*unknown hyperparameter 'nonsense'"):
        build_classifier("m", family, {"nonsense": 1}, SEED, FEATURES)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_wrong_type(family: str) -> None:
    key, default = next(iter(FAMILIES[family].defaults.items()))
    wrong = 3.5 if isinstance(default, str) else "three"
    with pytest.raises(ModelConfigError, match=rf"model 'm'.*hyperparameter '{key}' must be"):
        build_classifier("m", family, {key: wrong}, SEED, FEATURES)


@pytest.mark.parametrize(
    ("family", "params", "key"),
    [
        ("bdt", {"early_stopping_rounds": 0}, "early_stopping_rounds"),
        ("svm", {"gamma": "wide"}, "gamma"),
        ("random_forest", {"max_samples": 0.0}, "max_samples"),
        ("random_forest", {"max_samples": 1.5}, "max_samples"),
        ("svm", {"max_train_events": 0}, "max_train_events"),
        ("knn", {"n_neighbors": 0}, "n_neighbors"),
        ("nn", {"hidden_layers": []}, "hidden_layers"),
        ("nn", {"dropout": 1.0}, "dropout"),
        ("cuts", {"cuts": {"f0": [2.0, 1.0]}}, "cuts"),
    ],
)
def test_bad_value(family: str, params: dict[str, Any], key: str) -> None:
    with pytest.raises(ModelConfigError, match=rf"model 'm'.*hyperparameter '{key}'"):
        build_classifier("m", family, params, SEED, FEATURES)


def test_unknown_family() -> None:
    with pytest.raises(
        ModelConfigError, match=r"model 'm': unknown family 'gbdt'; available: bdt, cuts"
    ):
        build_classifier("m", "gbdt", {}, SEED, FEATURES)
    with pytest.raises(ModelConfigError, match="unknown family 'gbdt'"):
        load_classifier(Path("."), "m", "gbdt", {}, SEED, FEATURES)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_non_finite_inputs_rejected(family: str) -> None:
    X = TRAIN.X.copy()
    X[3, 1] = X[10, 2] = np.nan
    X[10, 4] = np.inf
    bad = Dataset(X, TRAIN.y, TRAIN.w, FEATURES)
    model = build_classifier("m", family, PARAMS[family], SEED, FEATURES)
    with pytest.raises(
        ValueError, match=r"model 'm': training .* 3 non-finite values \(2 NaN, 1 inf\) in 2 of"
    ):
        model.fit(bad, VALID)


def test_svm_blas_kernel_equals_libsvm(fitted: dict[str, Classifier]) -> None:
    """The blockwise BLAS decision function reproduces scikit-learn's libsvm prediction, also
    across block boundaries."""
    from thetaflow.ml.models import svm

    X = np.concatenate([TEST.X] * 4)  # 3,200 events: more than one kernel block
    assert len(X) > svm.KERNEL_BLOCK
    np.testing.assert_allclose(
        fitted["svm"].predict(X), fitted["svm"].estimator.predict_proba(X)[:, 1], rtol=0, atol=1e-10
    )


def test_cuts_missing_feature() -> None:
    model = build_classifier("box", "cuts", {"cuts": {"m_bb_gev": [90.0, 150.0]}}, SEED, FEATURES)
    with pytest.raises(ModelConfigError, match=r"model 'box'.*m_bb_gev"):
        model.fit(TRAIN, VALID)


def test_cuts_score_is_fraction_passed() -> None:
    model = build_classifier(
        "box", "cuts", {"cuts": {"f0": [0.0, 1.0], "f1": [0.0, 1.0e9]}}, SEED, FEATURES
    )
    X = np.zeros((3, 6), dtype=np.float32)
    X[:, 0] = [0.5, 0.5, 2.0]
    X[:, 1] = [1.0, -1.0, -1.0]
    np.testing.assert_array_equal(model.predict(X), [1.0, 0.5, 0.0])


def test_skops_load_refuses_types_outside_allow_list(
    fitted: dict[str, Classifier], tmp_path: Path
) -> None:
    """A forest's file holds tree objects that naive Bayes does not allow."""
    fitted["random_forest"].save(tmp_path)
    with pytest.raises(
        ValueError, match=r"not allowed for family 'naive_bayes'.*sklearn.tree._tree.Tree"
    ):
        load_classifier(tmp_path, "m", "naive_bayes", {}, SEED, FEATURES)


@pytest.mark.parametrize("family", ["bdt", "nn"])
def test_onnx_export_matches(fitted: dict[str, Classifier], family: str, tmp_path: Path) -> None:
    """Exported from a reloaded model, as a separate workflow job would."""
    model = fitted[family]
    model.save(tmp_path / "model")
    loaded = load_classifier(tmp_path / "model", model.name, family, PARAMS[family], SEED, FEATURES)
    export_onnx(loaded, tmp_path / "model.onnx")
    scores = onnx_scores(tmp_path / "model.onnx", TEST.X)
    np.testing.assert_allclose(scores, model.predict(TEST.X), rtol=0, atol=1e-5)


def test_onnx_export_other_family_rejected(fitted: dict[str, Classifier], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"model 'toy_svm': family 'svm' has no ONNX export"):
        export_onnx(fitted["svm"], tmp_path / "svm.onnx")
