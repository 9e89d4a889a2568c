"""Classifier families and the registry the workflow builds models from.

A model in the config is ``{family: <name>, params: {...}}``; :func:`build_classifier`
turns it into an unfitted :class:`Classifier`, :func:`load_classifier` reads one written by
``save``. ONNX export lives in :mod:`thetaflow.ml.models.onnx_export`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from thetaflow.ml.models.base import Classifier, Dataset, FitReport, ModelConfigError
from thetaflow.ml.models.bdt import BDT
from thetaflow.ml.models.cuts import Cuts
from thetaflow.ml.models.nn import NeuralNet
from thetaflow.ml.models.sklearn_models import KNN, Logistic, NaiveBayes, RandomForest
from thetaflow.ml.models.svm import SVM

log = logging.getLogger(__name__)

FAMILIES: dict[str, type[Classifier]] = {
    cls.family: cls for cls in (BDT, NeuralNet, SVM, Logistic, KNN, RandomForest, NaiveBayes, Cuts)
}


def family_class(name: str, family: str) -> type[Classifier]:
    """The class of ``family``; raises ModelConfigError naming model and family if unknown."""
    try:
        return FAMILIES[family]
    except KeyError:
        raise ModelConfigError(
            f"model '{name}': unknown family '{family}'; available: {', '.join(sorted(FAMILIES))}"
        ) from None


def build_classifier(
    name: str, family: str, params: Mapping[str, Any], seed: int, feature_names: Sequence[str]
) -> Classifier:
    """An unfitted classifier of ``family`` with checked ``params``."""
    return family_class(name, family)(name, params, seed, feature_names)


def load_classifier(
    directory: Path,
    name: str,
    family: str,
    params: Mapping[str, Any],
    seed: int,
    feature_names: Sequence[str],
) -> Classifier:
    """A classifier of ``family`` read from ``directory`` (written by its ``save``)."""
    model = family_class(name, family).load(Path(directory), name, params, seed, feature_names)
    log.debug("loaded model '%s' (%s) from %s", name, family, directory)
    return model


__all__ = [
    "FAMILIES",
    "Classifier",
    "Dataset",
    "FitReport",
    "ModelConfigError",
    "build_classifier",
    "family_class",
    "load_classifier",
]
