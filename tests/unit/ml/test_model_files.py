"""Model files under write and read failures: a save that fails midway, through the
training's atomic directory, leaves no model directory; a truncated model file (XGBoost UBJ,
skops, cuts.json, Keras) stops its loader with a CorruptResultError naming the file and the
rule that rebuilds it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from thetaflow.core import paths
from thetaflow.core.errors import CorruptResultError
from thetaflow.core.io import atomic_directory
from thetaflow.ml.models import FAMILIES, build_classifier, load_classifier
from thetaflow.ml.models.base import Classifier, Dataset

FEATURES = ("f0", "f1", "f2")
PARAMS = {
    "bdt": {"n_estimators": 20},
    "logistic": {},
    "cuts": {"cuts": {"f0": [0.3, 1.0e9], "f1": [0.3, 1.0e9]}},
    "nn": {"epochs": 1, "hidden_layers": [4], "batch_size": 64},
}


def toy(n: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.int64)
    X = rng.normal(size=(n, len(FEATURES))) + 0.6 * y[:, None]
    return Dataset(X.astype(np.float32), y, np.ones(n), FEATURES)


@pytest.fixture(scope="module")
def fitted() -> dict[str, Classifier]:
    """One small fitted model per file format (UBJ, skops, JSON, Keras)."""
    models = {}
    for family, params in PARAMS.items():
        models[family] = build_classifier(family, family, params, 3, FEATURES)
        models[family].fit(toy(400, 1), toy(200, 2))
    return models


def saved(model: Classifier, root: Path) -> Path:
    """``model`` saved where the train rule writes fold 0 of it."""
    directory = root / paths.MODEL_DIR.format(model=model.family, fold=0)
    with atomic_directory(directory) as tmp:
        model.save(tmp)
    return directory


def load(model: Classifier, directory: Path) -> Classifier:
    return load_classifier(directory, model.family, model.family, PARAMS[model.family], 3, FEATURES)


@pytest.mark.parametrize("family", sorted(PARAMS))
def test_truncated_model_file_names_file_corruption_and_rule(family, fitted, tmp_path):
    model = fitted[family]
    directory = saved(model, tmp_path)
    np.testing.assert_array_equal(
        load(model, directory).predict(toy(50, 3).X), model.predict(toy(50, 3).X)
    )
    neighbour = saved(fitted["cuts" if family != "cuts" else "bdt"], tmp_path)
    before = {p: p.read_bytes() for p in neighbour.rglob("*")}
    bad = directory / type(model).filename
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptResultError) as caught:
        load(model, directory)
    message = str(caught.value)
    assert message.startswith(f"{bad} is corrupt or unreadable (")
    assert f"delete {directory} and rerun snakemake" in message
    assert message.endswith("snakemake --forcerun train")
    assert bad.read_bytes() == data[: len(data) // 2]
    assert {p: p.read_bytes() for p in neighbour.rglob("*")} == before


@pytest.mark.parametrize("family", sorted(PARAMS))
def test_a_save_failing_midway_leaves_no_model(family, fitted, tmp_path, file_size_limit):
    model = fitted[family]
    size = (saved(model, tmp_path / "full") / type(model).filename).stat().st_size
    for after_bytes in (0, size // 2, size - 1):
        target = tmp_path / "results" / "models" / family / "fold0"
        with (
            pytest.raises(OSError),
            file_size_limit(after_bytes),
            atomic_directory(target) as tmp,
        ):
            model.save(tmp)
        assert list(target.parent.iterdir()) == []  # neither the model nor a temporary


def test_every_file_format_is_tested():
    assert {
        type(build_classifier(f, f, PARAMS.get(f, {}), 0, FEATURES)).filename for f in PARAMS
    } == {FAMILIES[f].filename for f in FAMILIES}
