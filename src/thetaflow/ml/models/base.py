"""The small interface every classifier family implements, and the data it sees.

A family is one module in this package with a class that subclasses :class:`Classifier`
and is registered in :data:`thetaflow.ml.models.FAMILIES`. The workflow only ever calls
``fit``, ``predict``, ``save``, ``load`` and ``feature_importance``, so adding a model is a
config entry, and adding a family is one module.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from thetaflow.core.errors import ThetaflowError


class ModelConfigError(ThetaflowError, ValueError):
    """A model's config entry is wrong; the message names the model and the key."""


@dataclass(frozen=True)
class Dataset:
    """Inputs of one training/validation/test set.

    Attributes:
        X: features, float32, shape (n, d), columns in ``feature_names`` order.
        y: class labels, 1 signal / 0 background.
        w: non-negative training weights (physics weights, classes balanced).
        feature_names: names of the columns of ``X``.
    """

    X: np.ndarray
    y: np.ndarray
    w: np.ndarray
    feature_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class FitReport:
    """What a fit reports: wall time, iterations/epochs used, and family extras."""

    train_seconds: float = 0.0
    n_train: int = 0
    n_valid: int = 0
    iterations: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Classifier(abc.ABC):
    """A binary classifier producing a signal score in [0, 1].

    Subclasses declare ``family`` and ``defaults`` (every accepted hyperparameter with its
    default value and hence its type); :meth:`__init__` rejects unknown keys and wrong types
    with a message naming the model and the key.
    """

    family: ClassVar[str]
    defaults: ClassVar[Mapping[str, Any]]
    #: CPU threads for fit/predict, set by the caller before use (read by the families that
    #: run multi-threaded; 1 unless set)
    threads: int = 1

    def __init__(
        self, name: str, params: Mapping[str, Any], seed: int, feature_names: Sequence[str]
    ) -> None:
        self.name = name
        self.seed = int(seed)
        self.feature_names = tuple(feature_names)
        self.params = self.check_params(name, params)

    @classmethod
    def check_params(cls, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``params``; unknown keys or wrong types raise."""
        out = dict(cls.defaults)
        for key, value in params.items():
            if key not in cls.defaults:
                raise ModelConfigError(
                    f"model '{name}' (family '{cls.family}'): unknown hyperparameter '{key}'; "
                    f"allowed: {', '.join(sorted(cls.defaults))}"
                )
            default = cls.defaults[key]
            if not _same_kind(default, value):
                raise ModelConfigError(
                    f"model '{name}' (family '{cls.family}'): hyperparameter '{key}' must be "
                    f"{type(default).__name__} like its default {default!r}, got {value!r}"
                )
            out[key] = value
        return out

    @abc.abstractmethod
    def fit(self, train: Dataset, valid: Dataset) -> FitReport:
        """Train on ``train``; use ``valid`` for early stopping / calibration."""

    @abc.abstractmethod
    def predict(self, X: np.ndarray) -> np.ndarray:
        """Signal score in [0, 1] for each row of ``X`` (float64, shape (n,))."""

    @abc.abstractmethod
    def save(self, directory: Path) -> None:
        """Write the model in its native, non-pickle format into ``directory``."""

    @classmethod
    @abc.abstractmethod
    def load(
        cls,
        directory: Path,
        name: str,
        params: Mapping[str, Any],
        seed: int,
        feature_names: Sequence[str],
    ) -> Classifier:
        """Read a model written by :meth:`save`."""

    def feature_importance(self) -> dict[str, float] | None:
        """Built-in importances (e.g. gain for trees), normalised to sum 1; None if none."""
        return None


def _same_kind(default: Any, value: Any) -> bool:
    """Whether ``value`` has the type of ``default`` (ints allowed for floats; lists, tuples)."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    if default is None:
        return True
    return isinstance(value, type(default))
