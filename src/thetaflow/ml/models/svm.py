"""RBF support-vector machine with Platt-calibrated probabilities.

Kernel SVM training scales as O(n²)–O(n³) in the number of events (and prediction as the
number of support vectors), so the SVM is fitted on at most ``max_train_events`` events,
drawn with probability proportional to the training weight: the unweighted fit on this
importance resample follows the weighted distribution. Its decision function is then
mapped to a probability by a weighted sigmoid (Platt) fit on the validation set, with the
fitted SVM frozen.

Prediction evaluates the RBF kernel against the support vectors with scikit-learn's BLAS
``rbf_kernel`` in blocks of events instead of ``SVC.decision_function``: libsvm loops over
every (event, support vector) pair in C and is ~8x slower, which made the SVM the most
expensive model to score and evaluate. The result equals libsvm's to ~1e-12 (tested). The
calibration's decision values on the validation set are computed the same way.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from thetaflow.ml.models._inputs import require_positive, unit_mean, weighted_resample
from thetaflow.ml.models.base import Dataset, ModelConfigError
from thetaflow.ml.models.sklearn_models import SklearnClassifier

if TYPE_CHECKING:  # scikit-learn is imported where used (light config checks at parse time)
    from sklearn.base import BaseEstimator

log = logging.getLogger(__name__)

GAMMAS = ("scale", "auto")

#: Events per kernel block: (block x support vectors) float64 kernel values, ~100 MB at 5,000 SVs.
KERNEL_BLOCK = 2500


class SVM(SklearnClassifier):
    """StandardScaler + ``SVC(kernel="rbf")`` on a weighted resample, sigmoid-calibrated."""

    family: ClassVar[str] = "svm"
    defaults: ClassVar[Mapping[str, Any]] = {"C": 1.0, "gamma": "scale", "max_train_events": 5000}
    trusted_types: ClassVar[frozenset[str]] = frozenset(
        {
            "sklearn.calibration._CalibratedClassifier",
            "sklearn.calibration._SigmoidCalibration",
        }
    )

    @classmethod
    def check_params(cls, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The base checks, plus a positive event budget and a named ``gamma`` rule."""
        out = super().check_params(name, params)
        require_positive(cls, name, out, ("max_train_events",))
        if out["gamma"] not in GAMMAS:
            raise ModelConfigError(
                f"model '{name}' (family '{cls.family}'): hyperparameter 'gamma' must be one of "
                f"{', '.join(GAMMAS)}, got {out['gamma']!r}"
            )
        return out

    def _fit_estimator(
        self, train: Dataset, valid: Dataset
    ) -> tuple[BaseEstimator, dict[str, Any]]:
        idx = weighted_resample(train.w, self.params["max_train_events"], self.seed)
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.frozen import FrozenEstimator
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        svm = make_pipeline(
            StandardScaler(),
            SVC(
                kernel="rbf", C=self.params["C"], gamma=self.params["gamma"], random_state=self.seed
            ),
        )
        svm.fit(train.X[idx], train.y[idx])
        log.debug(
            "%s: SVM fitted on %d resampled events, calibrating on %d",
            self.name,
            len(idx),
            len(valid),
        )
        calibrated = CalibratedClassifierCV(FrozenEstimator(svm), method="sigmoid")
        svc = svm[-1]
        # the calibration's decision values from the blockwise BLAS kernel, as predict computes
        # them, instead of libsvm's per-pair loop (3/4 of the fit's CPU on 30,000 validation
        # events); the instance attribute is removed again before the model is saved
        svc.decision_function = lambda Z, **_: decision_function(svc, Z)
        try:
            with warnings.catch_warnings():
                # The frozen SVM is not refitted, so it not taking weights is intended.
                warnings.filterwarnings(
                    "ignore",
                    message="Since FrozenEstimator does not appear to accept sample_weight",
                )
                calibrated.fit(valid.X, valid.y, sample_weight=unit_mean(valid.w))
        finally:
            del svc.decision_function
        return calibrated, {"n_resampled": len(idx), "n_support": int(svc.n_support_.sum())}

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Calibrated signal probability: the mean over the calibrated classifiers (one for the
        frozen SVM) of the sigmoid of the SVM decision function, computed blockwise with BLAS."""
        probabilities = []
        for calibrated in self.estimator.calibrated_classifiers_:
            pipeline = calibrated.estimator.estimator  # FrozenEstimator → StandardScaler + SVC
            scaler, svc = pipeline[0], pipeline[-1]
            decision = decision_function(svc, scaler.transform(X))
            probabilities.append(calibrated.calibrators[0].predict(decision))
        return np.asarray(np.mean(probabilities, axis=0, dtype=np.float64))


def decision_function(svc: BaseEstimator, Z: np.ndarray) -> np.ndarray:
    """A fitted binary RBF ``SVC``'s decision function on standardised ``Z``, blockwise with BLAS
    (libsvm's ``SVC.decision_function`` to ~1e-12)."""
    from sklearn.metrics.pairwise import rbf_kernel

    decision = np.empty(len(Z))
    for start in range(0, len(Z), KERNEL_BLOCK):
        block = rbf_kernel(Z[start : start + KERNEL_BLOCK], svc.support_vectors_, gamma=svc._gamma)
        decision[start : start + KERNEL_BLOCK] = block @ svc.dual_coef_[0] + svc.intercept_[0]
    return decision
