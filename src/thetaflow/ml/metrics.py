"""Classifier evaluation with physics weights: ROC, AUC, KS overtraining test, importances.

Everything here is a pure function of arrays (scores, labels, weights) so it can be tested on
hand-made inputs and reused by every model family. Physics weights from NLO generators can be
negative for a fraction of events; the ROC and KS functions accept them (see
:func:`weighted_roc` for how the curve is kept a valid efficiency curve), while a class whose
total weight is not positive is an error, because no efficiency can be defined for it.

The workflow asks for one :class:`ModelMetrics` per trained model (built by
:func:`score_summary`), gathers them with :func:`metrics_table` into the comparison CSV, and
compares every classifier with the best single input feature
(:func:`best_single_feature_auc`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import special

__all__ = [
    "ImportanceResult",
    "KsResult",
    "ModelMetrics",
    "Roc",
    "ScoredSample",
    "WORKING_POINTS",
    "auc",
    "best_single_feature_auc",
    "effective_sample_size",
    "metrics_table",
    "permutation_importance",
    "score_summary",
    "signal_efficiency_at",
    "single_feature_aucs",
    "weighted_ks",
    "weighted_roc",
]

#: Background efficiencies at which the workflow quotes the signal efficiency.
WORKING_POINTS: tuple[float, float] = (0.01, 0.10)


class Roc(NamedTuple):
    """A receiver operating characteristic curve.

    Point ``i`` is the selection ``score >= thresholds[i]``. The first point has threshold
    ``+inf`` (nothing selected, efficiencies 0), the last one the lowest score (everything
    selected, efficiencies 1). Both efficiency arrays are non-decreasing and lie in [0, 1].

    Attributes:
        background_efficiency: weighted fraction of background passing each threshold.
        signal_efficiency: weighted fraction of signal passing each threshold.
        thresholds: the score thresholds, strictly decreasing.
    """

    background_efficiency: np.ndarray
    signal_efficiency: np.ndarray
    thresholds: np.ndarray


class KsResult(NamedTuple):
    """Result of a weighted two-sample Kolmogorov–Smirnov test.

    Attributes:
        statistic: largest absolute difference between the two weighted empirical CDFs.
        pvalue: asymptotic p-value from the Kolmogorov distribution with ``n = na·nb/(na+nb)``.
        n_eff_a: effective sample size ``(Σw)²/Σw²`` of the first sample.
        n_eff_b: effective sample size of the second sample.
    """

    statistic: float
    pvalue: float
    n_eff_a: float
    n_eff_b: float


class ImportanceResult(NamedTuple):
    """Permutation importance of one feature.

    Attributes:
        mean_auc_drop: mean over repeats of (baseline AUC − AUC with the column permuted).
        std: standard deviation of the drop over repeats (``ddof=0``, as scikit-learn).
    """

    mean_auc_drop: float
    std: float


class ScoredSample(NamedTuple):
    """Classifier scores of one data split with their truth labels and weights.

    Attributes:
        scores: classifier output per event.
        labels: 1 for signal, 0 for background.
        weights: per-event (physics) weights; may contain negative values.
    """

    scores: np.ndarray
    labels: np.ndarray
    weights: np.ndarray

    def of_class(self, label: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and weights of the events with ``labels == label``."""
        mask = np.asarray(self.labels) == label
        return np.asarray(self.scores)[mask], np.asarray(self.weights)[mask]


# ----------------------------------------------------------------------------- helpers


def _as_1d(name: str, values: ArrayLike, dtype: type = np.float64) -> np.ndarray:
    arr: np.ndarray = np.asarray(values, dtype=dtype)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _check_inputs(
    scores: ArrayLike, labels: ArrayLike, weights: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate and convert (scores, labels, weights) to float, bool, float arrays."""
    s = _as_1d("scores", scores)
    raw_labels = np.asarray(labels)
    if raw_labels.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {raw_labels.shape}")
    w = np.ones_like(s) if weights is None else _as_1d("weights", weights)
    if not (len(s) == len(raw_labels) == len(w)):
        raise ValueError(
            f"scores, labels and weights differ in length: {len(s)}, {len(raw_labels)}, {len(w)}"
        )
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    if not np.isfinite(w).all():
        raise ValueError("weights contain NaN or infinite values")
    if not np.isin(raw_labels, (0, 1)).all():
        raise ValueError("labels must be 0 (background) or 1 (signal)")
    return s, raw_labels.astype(bool), w


def effective_sample_size(weights: ArrayLike) -> float:
    """Kish effective sample size ``(Σw)² / Σw²``.

    It is the number of unweighted events that would give the same relative statistical
    uncertainty on the sum of weights; it equals ``len(weights)`` for unit weights.
    Returns 0 for an empty or all-zero sample.
    """
    w = _as_1d("weights", weights)
    sw2 = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / sw2 if sw2 > 0 else 0.0


# ----------------------------------------------------------------------------- ROC


def weighted_roc(scores: ArrayLike, labels: ArrayLike, weights: ArrayLike | None = None) -> Roc:
    """Weighted ROC curve of a score where larger values mean more signal-like.

    Events are sorted by decreasing score and the signal and background weights are
    summed cumulatively; events with equal scores form one group (one threshold), so the
    curve does not depend on the order of ties. The efficiencies are the cumulative sums
    divided by each class's total weight. With positive weights this is exactly
    ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``.

    Negative weights (NLO generators) can make a cumulative sum dip or overshoot. The
    efficiencies are therefore clipped into [0, 1] and then replaced by their running
    maximum along decreasing threshold, i.e. the efficiency quoted at a threshold is the
    largest one reached at any tighter threshold. This keeps the curve a valid,
    monotonic efficiency curve (needed by :func:`auc` and :func:`signal_efficiency_at`),
    leaves it untouched when all weights are positive, and moves it by at most the size
    of the negative-weight fluctuation otherwise.

    Args:
        scores: classifier output per event (NaN is rejected, ±inf is allowed).
        labels: 1 for signal, 0 for background.
        weights: per-event weights; ``None`` means unit weights.

    Returns:
        The :class:`Roc`, starting at (0, 0) with threshold ``+inf``.

    Raises:
        ValueError: on mismatched or invalid inputs, or when a class has a non-positive
            total weight.
    """
    s, is_sig, w = _check_inputs(scores, labels, weights)
    order = np.argsort(s, kind="mergesort")[::-1]
    s_sorted = s[order]
    sig_w = np.where(is_sig, w, 0.0)[order]
    bkg_w = np.where(is_sig, 0.0, w)[order]
    # last index of each group of equal scores
    ends = (
        np.r_[np.flatnonzero(np.diff(s_sorted)), len(s_sorted) - 1] if len(s) else np.array([], int)
    )
    cum_sig = np.cumsum(sig_w)[ends]
    cum_bkg = np.cumsum(bkg_w)[ends]
    total_sig = cum_sig[-1] if len(ends) else 0.0
    total_bkg = cum_bkg[-1] if len(ends) else 0.0
    if not total_sig > 0:
        raise ValueError(f"signal total weight must be positive, got {total_sig}")
    if not total_bkg > 0:
        raise ValueError(f"background total weight must be positive, got {total_bkg}")

    def efficiency(cum: np.ndarray, total: float) -> np.ndarray:
        eff = np.r_[0.0, cum / total]
        return np.maximum.accumulate(np.clip(eff, 0.0, 1.0))

    return Roc(
        background_efficiency=efficiency(cum_bkg, total_bkg),
        signal_efficiency=efficiency(cum_sig, total_sig),
        thresholds=np.r_[np.inf, s_sorted[ends]],
    )


def auc(roc: Roc) -> float:
    """Area under the ROC curve: trapezoid rule in background efficiency.

    1 for a perfectly separating score, 0.5 for a constant (or random) one, 0 for a
    perfectly reversed one.
    """
    return float(np.trapezoid(roc.signal_efficiency, roc.background_efficiency))


def signal_efficiency_at(roc: Roc, background_efficiency: float) -> float:
    """Signal efficiency at a given background efficiency, by linear interpolation.

    The interpolation is along the ROC segment that contains ``background_efficiency``;
    where the curve is vertical there (several points with that exact background
    efficiency), the highest signal efficiency is returned, i.e. the best selection with
    that background efficiency.

    Args:
        roc: curve from :func:`weighted_roc`.
        background_efficiency: working point in [0, 1], e.g. 0.01 or 0.10.

    Raises:
        ValueError: if the working point is outside [0, 1].
    """
    x = float(background_efficiency)
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"background efficiency must be in [0, 1], got {x}")
    fpr, tpr = roc.background_efficiency, roc.signal_efficiency
    hi = int(np.searchsorted(fpr, x, side="right"))  # first point with fpr > x
    if hi >= len(fpr):
        return float(tpr[-1])
    lo = hi - 1  # last point with fpr <= x (exists: fpr[0] == 0)
    x0, x1, y0, y1 = fpr[lo], fpr[hi], tpr[lo], tpr[hi]
    return float(y0 + (y1 - y0) * (x - x0) / (x1 - x0))


# ----------------------------------------------------------------------------- KS test


def _weighted_ecdf(values: np.ndarray, weights: np.ndarray, at: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    cum = np.r_[0.0, np.cumsum(weights[order])]
    return cum[np.searchsorted(values[order], at, side="right")] / cum[-1]


def weighted_ks(a: ArrayLike, wa: ArrayLike | None, b: ArrayLike, wb: ArrayLike | None) -> KsResult:
    """Two-sample Kolmogorov–Smirnov test between two weighted samples.

    Used as the TMVA-style overtraining check (train vs test scores of one class). The
    statistic is the largest absolute difference between the weighted empirical CDFs,
    evaluated at every observed value; for unit weights it equals
    ``scipy.stats.ks_2samp(a, b).statistic``. The p-value is the asymptotic one,
    ``P(K > sqrt(n)·D)`` with ``K`` Kolmogorov-distributed (``scipy.special.kolmogorov``),
    where ``n = na·nb/(na+nb)`` combines the Kish effective sample sizes
    ``(Σw)²/Σw²`` of the two samples, so weighting reduces the statistical power as it
    should. Like every KS test it is conservative for discrete (tied) scores.

    Args:
        a: first sample.
        wa: weights of ``a`` (``None``: unit weights).
        b: second sample.
        wb: weights of ``b`` (``None``: unit weights).

    Raises:
        ValueError: on NaN values, mismatched lengths, or a non-positive total weight.
    """
    xa, xb = _as_1d("a", a), _as_1d("b", b)
    ua = np.ones_like(xa) if wa is None else _as_1d("wa", wa)
    ub = np.ones_like(xb) if wb is None else _as_1d("wb", wb)
    for name, x, w in (("a", xa, ua), ("b", xb, ub)):
        if len(x) != len(w):
            raise ValueError(f"sample {name} has {len(x)} values but {len(w)} weights")
        if np.isnan(x).any() or not np.isfinite(w).all():
            raise ValueError(f"sample {name} contains NaN values or non-finite weights")
        if not np.sum(w) > 0:
            raise ValueError(f"sample {name} must have a positive total weight")
    at = np.union1d(xa, xb)
    statistic = float(np.max(np.abs(_weighted_ecdf(xa, ua, at) - _weighted_ecdf(xb, ub, at))))
    na, nb = effective_sample_size(ua), effective_sample_size(ub)
    n = na * nb / (na + nb)
    pvalue = float(special.kolmogorov(math.sqrt(n) * statistic))
    return KsResult(statistic=statistic, pvalue=pvalue, n_eff_a=na, n_eff_b=nb)


# ----------------------------------------------------------------------------- importances


def permutation_importance(
    predict: Callable[[np.ndarray], ArrayLike],
    X: np.ndarray,
    y: ArrayLike,
    w: ArrayLike | None,
    feature_names: Sequence[str],
    seed: int,
    repeats: int = 3,
) -> dict[str, ImportanceResult]:
    """Permutation importance: the weighted-AUC drop when one input column is shuffled.

    Shuffling a column breaks its relation with the label (and with the other columns)
    while keeping its distribution, so the AUC drop measures how much the model relies on
    it. It works for every model family alike, unlike built-in importances. Each feature
    gets its own random stream (``np.random.default_rng`` on a child of
    ``SeedSequence(seed)``), so the result for one feature does not depend on the others.

    Args:
        predict: maps an (n, d) feature array to n scores.
        X: features, shape (n, d), columns in ``feature_names`` order (not modified).
        y: labels, 1 signal / 0 background.
        w: per-event weights (``None``: unit weights).
        feature_names: names of the columns of ``X``.
        seed: seed of the permutations.
        repeats: permutations per feature, averaged.

    Returns:
        ``{feature: ImportanceResult}`` in ``feature_names`` order.
    """
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != len(feature_names):
        raise ValueError(f"X has shape {X.shape} but {len(feature_names)} feature names were given")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    baseline = auc(weighted_roc(np.asarray(predict(X)).ravel(), y, w))
    work = X.copy()
    streams = np.random.SeedSequence(seed).spawn(len(feature_names))
    out: dict[str, ImportanceResult] = {}
    for j, (name, stream) in enumerate(zip(feature_names, streams, strict=True)):
        rng = np.random.default_rng(stream)
        drops = np.empty(repeats)
        for r in range(repeats):
            work[:, j] = rng.permutation(X[:, j])
            drops[r] = baseline - auc(weighted_roc(np.asarray(predict(work)).ravel(), y, w))
        work[:, j] = X[:, j]
        out[name] = ImportanceResult(mean_auc_drop=float(drops.mean()), std=float(drops.std()))
    return out


def single_feature_aucs(
    X: np.ndarray, y: ArrayLike, w: ArrayLike | None, feature_names: Sequence[str]
) -> dict[str, float]:
    """AUC of each feature used directly as a score, as ``max(AUC, 1 − AUC)``.

    A feature can be larger for signal or for background; either way it separates as well,
    hence the symmetrisation. NaN values (a feature undefined for an event) are ranked
    below every other value, as one group.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(feature_names):
        raise ValueError(f"X has shape {X.shape} but {len(feature_names)} feature names were given")
    out: dict[str, float] = {}
    for j, name in enumerate(feature_names):
        col = np.where(np.isnan(X[:, j]), -np.inf, X[:, j])
        value = auc(weighted_roc(col, y, w))
        out[name] = max(value, 1.0 - value)
    return out


def best_single_feature_auc(
    X: np.ndarray, y: ArrayLike, w: ArrayLike | None, feature_names: Sequence[str]
) -> tuple[str, float]:
    """The single input feature that separates best, and its AUC (see :func:`single_feature_aucs`).

    It is the baseline a trained classifier has to beat to be worth its complexity.
    Ties go to the first feature in ``feature_names`` order.
    """
    aucs = single_feature_aucs(X, y, w, feature_names)
    if not aucs:
        raise ValueError("no features given")
    name = max(aucs, key=aucs.__getitem__)
    return name, aucs[name]


# ----------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class ModelMetrics:
    """Test-set performance of one trained model, one row of the comparison table.

    Attributes:
        model: model name (the config key).
        auc: weighted ROC AUC on the test set.
        sig_eff_at_1pct: signal efficiency at 1 % background efficiency.
        sig_eff_at_10pct: signal efficiency at 10 % background efficiency.
        ks_signal: KS test of train vs test signal scores (overtraining check).
        ks_background: KS test of train vs test background scores.
        train_seconds: wall time of the fit.
        inference_seconds_per_event: wall time of scoring the test set, per event.
        n_test: number of test events.
    """

    model: str
    auc: float
    sig_eff_at_1pct: float
    sig_eff_at_10pct: float
    ks_signal: KsResult
    ks_background: KsResult
    train_seconds: float
    inference_seconds_per_event: float
    n_test: int

    def as_row(self) -> dict[str, float | int | str]:
        """Flat record for a table: the KS results become ``ks_<class>_<field>`` columns."""
        row: dict[str, float | int | str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, KsResult):
                for key, item in value._asdict().items():
                    row[f"{f.name}_{key}"] = item
            else:
                row[f.name] = value
        return row


def score_summary(
    model: str,
    train: ScoredSample,
    test: ScoredSample,
    *,
    train_seconds: float,
    inference_seconds: float,
) -> ModelMetrics:
    """Compute the :class:`ModelMetrics` of one model from its train and test scores.

    Args:
        model: model name.
        train: scores on the training set (only used for the KS overtraining tests).
        test: scores on the test set (ROC, AUC, working points).
        train_seconds: wall time of the fit.
        inference_seconds: total wall time of scoring the test set.
    """
    roc = weighted_roc(test.scores, test.labels, test.weights)
    ks = {}
    for label in (1, 0):
        tr_s, tr_w = train.of_class(label)
        te_s, te_w = test.of_class(label)
        ks[label] = weighted_ks(tr_s, tr_w, te_s, te_w)
    n_test = len(test.scores)
    return ModelMetrics(
        model=model,
        auc=auc(roc),
        sig_eff_at_1pct=signal_efficiency_at(roc, WORKING_POINTS[0]),
        sig_eff_at_10pct=signal_efficiency_at(roc, WORKING_POINTS[1]),
        ks_signal=ks[1],
        ks_background=ks[0],
        train_seconds=float(train_seconds),
        inference_seconds_per_event=float(inference_seconds) / n_test if n_test else math.nan,
        n_test=n_test,
    )


def metrics_table(metrics: Sequence[ModelMetrics]) -> pd.DataFrame:
    """One row per model (see :meth:`ModelMetrics.as_row`), sorted by AUC, best first.

    Ties in AUC keep the input order; the index is reset. Duplicate model names raise,
    since each row of the comparison CSV must identify one model.
    """
    names = [m.model for m in metrics]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate model names: {', '.join(duplicates)}")
    columns: list[str] = []
    for f in dataclasses.fields(ModelMetrics):
        if f.name in ("ks_signal", "ks_background"):
            columns += [f"{f.name}_{key}" for key in KsResult._fields]
        else:
            columns.append(f.name)
    table = pd.DataFrame([m.as_row() for m in metrics], columns=columns)
    return table.sort_values("auc", ascending=False, kind="stable").reset_index(drop=True)
