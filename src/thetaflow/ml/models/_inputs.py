"""Checks and preparation of the inputs every family shares.

Kept in one private module so that the families reject bad inputs and hyperparameters
with the same messages (NaN/inf counted, model and key named) and treat weights the same
way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from thetaflow.ml.models.base import Classifier, Dataset, ModelConfigError


def check_fit_inputs(model: Classifier, train: Dataset, valid: Dataset) -> None:
    """Reject data a fit must not see: wrong columns, NaN/inf features, bad weights.

    Raises:
        ValueError: the column names differ from the model's ``feature_names``, ``X``
            holds non-finite values (counted in the message) or a weight is negative or
            all weights are zero.
    """
    for what, data in (("training", train), ("validation", valid)):
        if data.feature_names != model.feature_names:
            raise ValueError(
                f"model '{model.name}': {what} columns {list(data.feature_names)} differ from "
                f"the model's features {list(model.feature_names)}"
            )
        check_finite(model.name, data.X, what)
        if np.any(data.w < 0) or not np.sum(data.w) > 0:
            raise ValueError(
                f"model '{model.name}': {what} weights must be non-negative with a positive sum"
            )


def check_finite(name: str, X: np.ndarray, what: str) -> None:
    """Raise a ValueError counting the NaN and inf entries of ``X`` if there are any."""
    if np.isfinite(X).all():
        return
    n_nan = int(np.isnan(X).sum())
    n_inf = int(np.isinf(X).sum())
    rows = int((~np.isfinite(X)).any(axis=1).sum())
    raise ValueError(
        f"model '{name}': {what} features hold {n_nan + n_inf} non-finite values "
        f"({n_nan} NaN, {n_inf} inf) in {rows} of {len(X)} events"
    )


def unit_mean(w: np.ndarray) -> np.ndarray:
    """Weights rescaled to mean 1 (float64).

    Physics weights can be tiny (xsec·lumi/Σw); hyperparameters such as XGBoost's
    ``min_child_weight`` or a regularisation strength are on the scale of one event, so
    every family trains on weights of mean 1.
    """
    w = np.asarray(w, dtype=np.float64)
    return w / w.mean()


def weighted_resample(w: np.ndarray, n_max: int, seed: int) -> np.ndarray:
    """Indices of ``min(n_max, len(w))`` events drawn with replacement, probability ∝ ``w``.

    Importance resampling: an unweighted fit on the drawn events follows the weighted
    distribution, for estimators that take no weights or whose cost grows with the number
    of events (kernel SVM, kNN).
    """
    n = min(int(n_max), len(w))
    p = np.asarray(w, dtype=np.float64)
    return np.random.default_rng(seed).choice(len(w), size=n, replace=True, p=p / p.sum())


def threads(model: Classifier) -> int:
    """The thread count the caller set as ``model.threads`` (1 when unset)."""
    return max(1, int(getattr(model, "threads", 1)))


def not_fitted(model: Classifier) -> RuntimeError:
    """The error for using a model before ``fit`` or ``load``."""
    return RuntimeError(
        f"model '{model.name}' (family '{model.family}') is not fitted; call fit or load first"
    )


def require_positive(
    cls: type[Classifier], name: str, params: Mapping[str, Any], keys: tuple[str, ...]
) -> None:
    """Raise ModelConfigError naming the model and key if one of ``keys`` is below 1."""
    for key in keys:
        if params[key] < 1:
            raise ModelConfigError(
                f"model '{name}' (family '{cls.family}'): hyperparameter '{key}' must be >= 1, "
                f"got {params[key]!r}"
            )
