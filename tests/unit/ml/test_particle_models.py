"""The particle-list families (Deep Sets, transformer): permutation invariance, blindness to
padding, learning from one object, save/load, configuration errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from thetaflow.features.objects import JET_FIELDS, ObjectArrays, ObjectLayout
from thetaflow.ml.models.base import Dataset, ModelConfigError
from thetaflow.ml.models.deepsets import DeepSets
from thetaflow.ml.models.transformer import Transformer

LAYOUT = ObjectLayout(2, 6)
BTAG = list(JET_FIELDS).index("btag")
#: tiny networks, a few epochs: enough for the toy, about a second of training each
FAMILIES = {
    "deepsets": (DeepSets, {"phi_layers": [16, 16], "hidden_layers": [16]}),
    "transformer": (
        Transformer,
        {"embed_dim": 16, "num_heads": 2, "n_blocks": 2, "ff_dim": 16, "hidden_layers": [16]},
    ),
}
TRAINING = {"epochs": 3, "batch_size": 64, "learning_rate": 0.01, "dropout": 0.0}


def toy(n: int, seed: int) -> tuple[ObjectArrays, np.ndarray]:
    """Two leptons and 2-6 jets per event; the classes differ only in one jet's b-tag score:
    every background jet scores below 0.6, one jet (in a random slot) of a signal event above
    0.8. Padded slots are zeros, as in the object tables."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(np.int8)
    n_jets = rng.integers(2, LAYOUT.max_jets + 1, n)
    lepton_mask = np.ones((n, LAYOUT.max_leptons), bool)
    jet_mask = np.arange(LAYOUT.max_jets)[None, :] < n_jets[:, None]
    shape = (n, LAYOUT.max_leptons)
    leptons = np.stack(
        [
            rng.exponential(50.0, shape) + 20.0,
            rng.normal(0.0, 1.2, shape),
            rng.uniform(-np.pi, np.pi, shape),
            np.full(shape, 0.1),
            rng.choice([-1.0, 1.0], shape),
            rng.choice([11.0, 13.0], shape),
        ],
        axis=-1,
    )
    shape = (n, LAYOUT.max_jets)
    jets = np.stack(
        [
            rng.exponential(50.0, shape) + 20.0,
            rng.normal(0.0, 1.5, shape),
            rng.uniform(-np.pi, np.pi, shape),
            rng.exponential(10.0, shape),
            0.6 * rng.random(shape),
        ],
        axis=-1,
    )
    signal = np.flatnonzero(y == 1)
    tagged = (rng.random(len(signal)) * n_jets[signal]).astype(int)
    jets[signal, tagged, BTAG] = 0.8 + 0.2 * rng.random(len(signal))
    jets[~jet_mask] = 0.0
    met = np.stack([rng.exponential(30.0, n), rng.uniform(-np.pi, np.pi, n)], axis=1)
    arrays = ObjectArrays(
        leptons.astype(np.float32),
        lepton_mask,
        jets.astype(np.float32),
        jet_mask,
        met.astype(np.float32),
    )
    return arrays, y


def dataset(arrays: ObjectArrays, y: np.ndarray) -> Dataset:
    return Dataset(arrays.to_matrix(), y, np.ones(len(y)), LAYOUT.columns)


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def fitted(request):
    """One small model of each family trained on the toy (shared by the tests below)."""
    cls, params = FAMILIES[request.param]
    model = cls("toy", {**params, **TRAINING}, seed=11, feature_names=LAYOUT.columns)
    report = model.fit(dataset(*toy(1000, 1)), dataset(*toy(300, 2)))
    assert 1 <= report.iterations <= TRAINING["epochs"]
    return model


@pytest.fixture(scope="module")
def test_events() -> tuple[ObjectArrays, np.ndarray]:
    return toy(400, 3)


def _permuted(values: np.ndarray, mask: np.ndarray, order: np.ndarray):
    return (
        np.take_along_axis(values, order[..., None], axis=1),
        np.take_along_axis(mask, order, axis=1),
    )


def test_score_is_invariant_under_reordering_the_objects(fitted, test_events):
    arrays, _ = test_events
    rng = np.random.default_rng(5)
    n = len(arrays)
    # a random order of each event's slots, objects and padding alike
    lepton_order = np.argsort(rng.random((n, LAYOUT.max_leptons)), axis=1)
    jet_order = np.argsort(rng.random((n, LAYOUT.max_jets)), axis=1)
    shuffled = ObjectArrays(
        *_permuted(arrays.leptons, arrays.lepton_mask, lepton_order),
        *_permuted(arrays.jets, arrays.jet_mask, jet_order),
        arrays.met,
    )
    assert not np.array_equal(shuffled.to_matrix(), arrays.to_matrix())
    before = fitted.predict(arrays.to_matrix())
    after = fitted.predict(shuffled.to_matrix())
    assert before.std() > 0.05  # a model that scores events differently
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-6)


@pytest.mark.parametrize("padding", ["random", "huge", "nan"])
def test_padded_slot_values_do_not_change_the_score(fitted, test_events, padding):
    arrays, _ = test_events
    rng = np.random.default_rng(6)
    fill = {
        "random": lambda shape: rng.normal(0.0, 50.0, shape),
        "huge": lambda shape: np.full(shape, 3.0e38),
        "nan": lambda shape: np.full(shape, np.nan),
    }[padding]
    jets = arrays.jets.copy()
    padded = ~arrays.jet_mask
    jets[padded] = fill(jets[padded].shape)
    changed = ObjectArrays(arrays.leptons, arrays.lepton_mask, jets, arrays.jet_mask, arrays.met)
    np.testing.assert_allclose(
        fitted.predict(changed.to_matrix()), fitted.predict(arrays.to_matrix()), rtol=0, atol=1e-6
    )


def test_learns_a_difference_in_one_object(fitted, test_events):
    arrays, y = test_events
    assert roc_auc_score(y, fitted.predict(arrays.to_matrix())) > 0.85


def test_save_and_load_give_identical_scores(fitted, test_events, tmp_path):
    X = test_events[0].to_matrix()
    fitted.save(tmp_path)
    assert (tmp_path / "model.keras").is_file()
    loaded = type(fitted).load(tmp_path, "toy", fitted.params, fitted.seed, LAYOUT.columns)
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_flat_features_are_refused(family):
    cls, params = FAMILIES[family]
    with pytest.raises(
        ModelConfigError, match=f"model 'x' \\(family '{family}'\\) reads the object"
    ):
        cls("x", params, 1, ["m_bb_gev", "pt_ll_gev"])


@pytest.mark.parametrize(
    ("cls", "params", "message"),
    [
        (DeepSets, {"phi_layers": []}, "'phi_layers' must be a non-empty list"),
        (DeepSets, {"pooling": "max"}, "'pooling' must be one of sum, mean"),
        (Transformer, {"embed_dim": 30, "num_heads": 4}, "'embed_dim' \\(30\\) must be a multiple"),
        (Transformer, {"n_blocks": 0}, "'n_blocks' must be >= 1"),
        (Transformer, {"heads": 2}, "unknown hyperparameter 'heads'"),
    ],
)
def test_bad_hyperparameters_name_the_key(cls, params, message):
    with pytest.raises(ModelConfigError, match=message):
        cls("x", params, 1, LAYOUT.columns)
