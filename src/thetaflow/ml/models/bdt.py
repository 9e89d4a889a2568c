"""Boosted decision trees: XGBoost's histogram method with early stopping.

Training stops when the weighted validation log-loss has not improved for
``early_stopping_rounds`` rounds; the booster is then cut to the best round, so the saved
model (native UBJSON, no pickle), its predictions, its gain importances and its ONNX export
all describe the same ensemble.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from thetaflow.core.io import reading_result
from thetaflow.core.progress import Progress, xgboost_callback
from thetaflow.ml.models._inputs import (
    check_fit_inputs,
    not_fitted,
    require_positive,
    threads,
    unit_mean,
)
from thetaflow.ml.models.base import Classifier, Dataset, FitReport

if TYPE_CHECKING:  # xgboost is imported where used: config checks at parse time stay light
    import xgboost as xgb

log = logging.getLogger(__name__)


class BDT(Classifier):
    """Gradient-boosted trees (``XGBClassifier``, ``tree_method="hist"``).

    The caller may set ``threads`` (int, default 1) before ``fit``/``predict``.
    """

    family: ClassVar[str] = "bdt"
    defaults: ClassVar[Mapping[str, Any]] = {
        "n_estimators": 400,
        "max_depth": 4,
        "learning_rate": 0.1,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 1.0,
        "reg_lambda": 1.0,
        "early_stopping_rounds": 20,
    }
    filename: ClassVar[str] = "model.ubj"

    def __init__(
        self, name: str, params: Mapping[str, Any], seed: int, feature_names: Sequence[str]
    ) -> None:
        super().__init__(name, params, seed, feature_names)
        self._booster: xgb.Booster | None = None

    @classmethod
    def check_params(cls, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The base checks, plus early stopping being on (the booster is cut to its best round)."""
        out = super().check_params(name, params)
        require_positive(cls, name, out, ("n_estimators", "early_stopping_rounds"))
        return out

    @property
    def booster(self) -> xgb.Booster:
        """The fitted booster, cut to the best round."""
        if self._booster is None:
            raise not_fitted(self)
        self._booster.set_param({"nthread": threads(self)})
        return self._booster

    def fit(self, train: Dataset, valid: Dataset) -> FitReport:
        """Boost on ``train`` (weighted), early-stopping on the weighted ``valid`` log-loss."""
        check_fit_inputs(self, train, valid)
        start = time.perf_counter()
        import xgboost as xgb

        clf = xgb.XGBClassifier(
            **self.params,
            objective="binary:logistic",
            tree_method="hist",
            eval_metric="logloss",
            random_state=self.seed,
            n_jobs=threads(self),
            callbacks=[
                xgboost_callback(
                    Progress(log, f"{self.name} boosting", self.params["n_estimators"], "rounds")
                )
            ],
        )
        clf.fit(
            train.X,
            train.y,
            sample_weight=unit_mean(train.w),
            eval_set=[(valid.X, valid.y)],
            sample_weight_eval_set=[unit_mean(valid.w)],
            verbose=False,
        )
        best = int(clf.best_iteration)
        self._booster = clf.get_booster()[: best + 1]
        report = FitReport(
            train_seconds=time.perf_counter() - start,
            n_train=len(train),
            n_valid=len(valid),
            iterations=best + 1,
            extra={"best_valid_logloss": float(clf.best_score)},
        )
        log.info(
            "%s: %d trees (best round), valid logloss %.4f, %.1f s",
            self.name,
            best + 1,
            clf.best_score,
            report.train_seconds,
        )
        return report

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Signal probability of each row."""
        return np.asarray(
            self.booster.inplace_predict(np.ascontiguousarray(X, dtype=np.float32)),
            dtype=np.float64,
        )

    def save(self, directory: Path) -> None:
        """Write ``model.ubj`` (XGBoost's native binary JSON)."""
        directory.mkdir(parents=True, exist_ok=True)
        # the same bytes as Booster.save_model, written by Python: XGBoost's own file stream
        # ignores a failed final flush and leaves a truncated file that looks complete
        (directory / self.filename).write_bytes(self.booster.save_raw(raw_format="ubj"))

    @classmethod
    def load(
        cls,
        directory: Path,
        name: str,
        params: Mapping[str, Any],
        seed: int,
        feature_names: Sequence[str],
    ) -> BDT:
        """Read ``model.ubj``; its feature count must match ``feature_names``."""
        model = cls(name, params, seed, feature_names)
        import xgboost as xgb

        with reading_result(directory / cls.filename):
            booster = xgb.Booster(model_file=directory / cls.filename)
        if booster.num_features() != len(model.feature_names):
            raise ValueError(
                f"model '{name}': {directory / cls.filename} has {booster.num_features()} "
                f"features, expected {len(model.feature_names)}"
            )
        model._booster = booster
        return model

    def feature_importance(self) -> dict[str, float]:
        """XGBoost "gain" (mean loss reduction of a feature's splits), normalised to sum 1.

        The same convention as ``XGBClassifier.feature_importances_``; features never split
        on get 0.
        """
        gain = self.booster.get_score(importance_type="gain")
        values = np.array([gain.get(f"f{i}", 0.0) for i in range(len(self.feature_names))])
        total = values.sum()
        return dict(
            zip(self.feature_names, (values / total if total > 0 else values).tolist(), strict=True)
        )
