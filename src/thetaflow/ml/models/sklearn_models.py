"""scikit-learn families: logistic regression, kNN, random forest, Gaussian naive Bayes.

:class:`SklearnClassifier` holds what they share: timing, input checks, ``predict_proba``
and persistence with skops (``model.skops``), which stores the estimator without pickle.
Loading trusts only the types skops reports as untrusted *and* the family lists in its
explicit ``trusted_types`` allow-list; anything else in the file is refused.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

# scikit-learn and skops are imported where used: validating a model config (at every
# workflow parse) must not pay for importing them (benchmarks/dag_construction.py)
if TYPE_CHECKING:
    from sklearn.base import BaseEstimator

from thetaflow.core.io import reading_result
from thetaflow.ml.models._inputs import (
    check_fit_inputs,
    not_fitted,
    require_positive,
    threads,
    unit_mean,
    weighted_resample,
)
from thetaflow.ml.models.base import Classifier, Dataset, FitReport, ModelConfigError

log = logging.getLogger(__name__)


class SklearnClassifier(Classifier):
    """A family whose model is one fitted scikit-learn estimator with ``predict_proba``.

    Subclasses implement :meth:`_fit_estimator` and list in ``trusted_types`` the
    non-default types their saved estimator contains. The caller may set ``threads``
    (int, default 1) before ``fit``.
    """

    filename: ClassVar[str] = "model.skops"
    trusted_types: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self, name: str, params: Mapping[str, Any], seed: int, feature_names: Sequence[str]
    ) -> None:
        super().__init__(name, params, seed, feature_names)
        self._estimator: BaseEstimator | None = None

    @property
    def estimator(self) -> BaseEstimator:
        """The fitted scikit-learn estimator."""
        if self._estimator is None:
            raise not_fitted(self)
        return self._estimator

    @abc.abstractmethod
    def _fit_estimator(
        self, train: Dataset, valid: Dataset
    ) -> tuple[BaseEstimator, dict[str, Any]]:
        """The fitted estimator and the family's extras for the :class:`FitReport`."""

    def fit(self, train: Dataset, valid: Dataset) -> FitReport:
        """Check the inputs, fit, and report the wall time."""
        check_fit_inputs(self, train, valid)
        start = time.perf_counter()
        self._estimator, extra = self._fit_estimator(train, valid)
        report = FitReport(
            train_seconds=time.perf_counter() - start,
            n_train=len(train),
            n_valid=len(valid),
            extra=extra,
        )
        log.info(
            "%s (%s): fitted in %.1f s %s", self.name, self.family, report.train_seconds, extra
        )
        return report

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Probability of class 1 (signal) for each row."""
        return np.asarray(self.estimator.predict_proba(X)[:, 1], dtype=np.float64)

    def save(self, directory: Path) -> None:
        """Write ``model.skops``."""
        directory.mkdir(parents=True, exist_ok=True)
        import skops.io as sio

        sio.dump(self.estimator, directory / self.filename)

    @classmethod
    def load(
        cls,
        directory: Path,
        name: str,
        params: Mapping[str, Any],
        seed: int,
        feature_names: Sequence[str],
    ) -> SklearnClassifier:
        """Read ``model.skops``, trusting only the family's allow-listed types.

        Raises:
            ValueError: the file holds a type outside ``trusted_types``, or was fitted on a
                different number of features.
        """
        model = cls(name, params, seed, feature_names)
        path = directory / cls.filename
        import skops.io as sio

        with reading_result(path):
            untrusted = sio.get_untrusted_types(file=path)
        refused = sorted(set(untrusted) - cls.trusted_types)
        if refused:
            raise ValueError(
                f"model '{name}': {path} holds types not allowed for family '{cls.family}': "
                f"{refused}"
            )
        with reading_result(path):
            estimator = sio.load(path, trusted=untrusted)
        if estimator.n_features_in_ != len(model.feature_names):
            raise ValueError(
                f"model '{name}': {path} was fitted on {estimator.n_features_in_} features, "
                f"expected {len(model.feature_names)}"
            )
        model._estimator = estimator
        return model


class Logistic(SklearnClassifier):
    """Standardised inputs into a weighted L2 logistic regression: the linear baseline."""

    family: ClassVar[str] = "logistic"
    defaults: ClassVar[Mapping[str, Any]] = {"C": 1.0, "max_iter": 1000}

    def _fit_estimator(
        self, train: Dataset, valid: Dataset
    ) -> tuple[BaseEstimator, dict[str, Any]]:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        pipe = make_pipeline(
            StandardScaler(),
            LogisticRegression(
                C=self.params["C"], max_iter=self.params["max_iter"], random_state=self.seed
            ),
        )
        w = unit_mean(train.w)
        pipe.fit(
            train.X, train.y, standardscaler__sample_weight=w, logisticregression__sample_weight=w
        )
        return pipe, {"iterations": int(pipe[-1].n_iter_.max())}


class KNN(SklearnClassifier):
    """k nearest neighbours on standardised inputs, fitted on a weighted resample.

    kNN takes no event weights, and its prediction cost grows with the number of stored
    events, so it stores at most ``max_train_events`` events drawn with probability
    proportional to the weight (the unweighted neighbourhoods then follow the weighted
    distribution).
    """

    family: ClassVar[str] = "knn"
    defaults: ClassVar[Mapping[str, Any]] = {"n_neighbors": 50, "max_train_events": 20000}
    trusted_types: ClassVar[frozenset[str]] = frozenset(
        {
            "sklearn.metrics._dist_metrics.EuclideanDistance64",
            "sklearn.neighbors._ball_tree.BallTree",
            "sklearn.neighbors._kd_tree.KDTree",
        }
    )

    @classmethod
    def check_params(cls, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The base checks, plus positive ``n_neighbors`` and event budget."""
        out = super().check_params(name, params)
        require_positive(cls, name, out, ("n_neighbors", "max_train_events"))
        return out

    def _fit_estimator(
        self, train: Dataset, valid: Dataset
    ) -> tuple[BaseEstimator, dict[str, Any]]:
        idx = weighted_resample(train.w, self.params["max_train_events"], self.seed)
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        pipe = make_pipeline(
            StandardScaler(),
            KNeighborsClassifier(n_neighbors=self.params["n_neighbors"], n_jobs=threads(self)),
        )
        pipe.fit(train.X[idx], train.y[idx])
        return pipe, {"n_resampled": len(idx)}

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Signal fraction among the k nearest stored events, with the caller's ``threads``."""
        self.estimator.set_params(kneighborsclassifier__n_jobs=threads(self))
        return super().predict(X)


class RandomForest(SklearnClassifier):
    """A weighted random forest; importances are the impurity decrease.

    ``max_samples`` is the fraction of the training set each tree's bootstrap draws: below 1
    the trees are cheaper and less correlated (on the default analysis 0.5 trains in 60 % of
    the time with the same AUC).
    """

    family: ClassVar[str] = "random_forest"
    defaults: ClassVar[Mapping[str, Any]] = {
        "n_estimators": 200,
        "max_depth": 12,
        "min_samples_leaf": 20,
        "max_features": "sqrt",
        "max_samples": 1.0,
    }
    trusted_types: ClassVar[frozenset[str]] = frozenset({"sklearn.tree._tree.Tree"})

    @classmethod
    def check_params(cls, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The base checks, plus a bootstrap fraction in (0, 1]."""
        out = super().check_params(name, params)
        if not 0 < out["max_samples"] <= 1:
            raise ModelConfigError(
                f"model '{name}' (family '{cls.family}'): hyperparameter 'max_samples' must be "
                f"in (0, 1], got {out['max_samples']!r}"
            )
        return out

    def _fit_estimator(
        self, train: Dataset, valid: Dataset
    ) -> tuple[BaseEstimator, dict[str, Any]]:
        from sklearn.ensemble import RandomForestClassifier

        forest = RandomForestClassifier(**self.params, n_jobs=threads(self), random_state=self.seed)
        forest.fit(train.X, train.y, sample_weight=unit_mean(train.w))
        return forest, {"mean_depth": float(np.mean([t.get_depth() for t in forest.estimators_]))}

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Mean tree probability of signal, with the caller's ``threads``."""
        self.estimator.set_params(n_jobs=threads(self))
        return super().predict(X)

    def feature_importance(self) -> dict[str, float]:
        """Mean decrease in impurity, normalised to sum 1."""
        values = np.asarray(self.estimator.feature_importances_, dtype=np.float64)
        total = values.sum()
        return dict(
            zip(self.feature_names, (values / total if total > 0 else values).tolist(), strict=True)
        )


class NaiveBayes(SklearnClassifier):
    """Gaussian naive Bayes with event weights: per-class, per-feature Gaussians."""

    family: ClassVar[str] = "naive_bayes"
    defaults: ClassVar[Mapping[str, Any]] = {"var_smoothing": 1.0e-9}

    def _fit_estimator(
        self, train: Dataset, valid: Dataset
    ) -> tuple[BaseEstimator, dict[str, Any]]:
        from sklearn.naive_bayes import GaussianNB

        nb = GaussianNB(var_smoothing=self.params["var_smoothing"])
        nb.fit(train.X, train.y, sample_weight=unit_mean(train.w))
        return nb, {}
