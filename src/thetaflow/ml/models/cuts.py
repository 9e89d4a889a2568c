"""Rectangular-cut baseline: the cut-based analysis the classifiers are compared with.

Each cut is a window ``low <= x < high`` on one feature. The score of an event is the
fraction of the windows it falls in, so 1.0 means it passes every cut; being a score in
[0, 1] like the others, the baseline sits in every ROC curve and comparison table. Nothing
is learned: ``fit`` only checks that the cut features are inputs of the model.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from thetaflow.core.io import read_json, reading_result
from thetaflow.ml.models._inputs import check_fit_inputs
from thetaflow.ml.models.base import Classifier, Dataset, FitReport, ModelConfigError

log = logging.getLogger(__name__)


class Cuts(Classifier):
    """Fraction of the ``cuts`` windows (feature name → [low, high]) an event passes."""

    family: ClassVar[str] = "cuts"
    defaults: ClassVar[Mapping[str, Any]] = {
        "cuts": {"m_bb_gev": [90.0, 150.0], "pt_ll_gev": [100.0, 1.0e9]},
    }
    filename: ClassVar[str] = "cuts.json"

    def __init__(
        self, name: str, params: Mapping[str, Any], seed: int, feature_names: Sequence[str]
    ) -> None:
        super().__init__(name, params, seed, feature_names)
        self.windows = {
            str(f): (float(lo), float(hi)) for f, (lo, hi) in self.params["cuts"].items()
        }

    @classmethod
    def check_params(cls, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The base checks, plus every cut being a ``[low, high]`` pair with ``low < high``."""
        out = super().check_params(name, params)
        cuts = out["cuts"]
        if not cuts:
            raise ModelConfigError(
                f"model '{name}' (family '{cls.family}'): hyperparameter 'cuts' is empty"
            )
        for feature, window in cuts.items():
            ok = (
                isinstance(window, (list, tuple))
                and len(window) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in window)
                and not any(math.isnan(v) for v in window)
                and window[0] < window[1]
            )
            if not ok:
                raise ModelConfigError(
                    f"model '{name}' (family '{cls.family}'): hyperparameter 'cuts' entry "
                    f"'{feature}' must be [low, high] with low < high, got {window!r}"
                )
        return out

    def _columns(self) -> list[int]:
        """Column index of each cut feature; every one must be an input of the model."""
        missing = [f for f in self.windows if f not in self.feature_names]
        if missing:
            raise ModelConfigError(
                f"model '{self.name}' (family '{self.family}'): cut feature(s) "
                f"{', '.join(missing)} not among the inputs {', '.join(self.feature_names)}"
            )
        return [self.feature_names.index(f) for f in self.windows]

    def fit(self, train: Dataset, valid: Dataset) -> FitReport:
        """Check the inputs and that every cut feature is one of them; nothing is trained."""
        start = time.perf_counter()
        check_fit_inputs(self, train, valid)
        self._columns()
        return FitReport(
            train_seconds=time.perf_counter() - start, n_train=len(train), n_valid=len(valid)
        )

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Fraction of the cuts each row passes (1.0 = passes all)."""
        passed = np.zeros(len(X), dtype=np.float64)
        for column, (lo, hi) in zip(self._columns(), self.windows.values(), strict=True):
            passed += (X[:, column] >= lo) & (X[:, column] < hi)
        return passed / len(self.windows)

    def save(self, directory: Path) -> None:
        """Write the windows as ``cuts.json``."""
        directory.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"cuts": {f: [lo, hi] for f, (lo, hi) in self.windows.items()}}, indent=2)
        (directory / self.filename).write_text(text + "\n")

    @classmethod
    def load(
        cls,
        directory: Path,
        name: str,
        params: Mapping[str, Any],
        seed: int,
        feature_names: Sequence[str],
    ) -> Cuts:
        """Read ``cuts.json``; the saved windows replace those in ``params``."""
        path = directory / cls.filename
        saved = read_json(path)
        with reading_result(path):
            cuts = saved["cuts"]
        model = cls(name, {**params, "cuts": cuts}, seed, feature_names)
        model._columns()
        log.debug("%s: loaded %d cuts from %s", name, len(model.windows), directory)
        return model
