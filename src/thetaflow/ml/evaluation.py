"""Workflow entry points of the model evaluation and the cross-model comparison.

Evaluation uses the out-of-fold (test) scores of every simulated event of the training
table, with physics weights: each fold's model scores only its own fold. Those are the scores
the scoring job already wrote for the training samples' nominal tables (and their scoring
time, for the inference time per event), checked id by id against the table: the evaluation
does not score the training table again. The training scores saved next to each fold's model
feed the Kolmogorov–Smirnov overtraining test. Only the feature importances need the models
themselves (each model's built-in importance, and fold 0's model scoring a permuted sample).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from thetaflow.core.errors import ThetaflowError
from thetaflow.core.io import atomic_path, read_json, read_table, write_json
from thetaflow.features.labels import LABEL_SIGNAL
from thetaflow.ml.folds import ID_COLUMNS, ml_inputs
from thetaflow.ml.metrics import (
    ModelMetrics,
    Roc,
    ScoredSample,
    auc,
    best_single_feature_auc,
    permutation_importance,
    score_summary,
    weighted_roc,
)
from thetaflow.ml.plots import plot_comparison, plot_importances, plot_overtraining, plot_roc_curves
from thetaflow.ml.record import TRAIN_SCORES, TrainingRecord
from thetaflow.ml.scoring import FoldModels, load_fold_models, recorded_scoring_seconds

log = logging.getLogger(__name__)

IMPORTANCE_EVENTS = 10_000
ROC_POINTS = 400


class EvaluationError(ThetaflowError, RuntimeError):
    """The score files do not cover the training table's events; the message names them."""


def _test_sample(table: pd.DataFrame, score_files: Mapping[str, str]) -> ScoredSample:
    """The out-of-fold scores of the training table's events, read from the score files.

    The table holds each sample's nominal feature table in its row order, as does that
    sample's score file (``score_files``: sample → file). Ids and folds are compared row by
    row, so scores of other events or of another fold assignment are refused, not mismatched.
    """
    samples = table["sample"].to_numpy()
    unscored = sorted(set(pd.unique(samples)) - set(score_files))
    if unscored:
        raise EvaluationError(f"no score file for sample(s) {', '.join(unscored)}")
    scores = np.full(len(table), np.nan)
    for sample, path in score_files.items():
        rows = np.flatnonzero(samples == sample)
        scored = read_table(path, columns=[*ID_COLUMNS, "fold", "score"])
        if len(scored) != rows.size or not all(
            np.array_equal(scored[c].to_numpy(), table[c].to_numpy()[rows])
            for c in (*ID_COLUMNS, "fold")
        ):
            raise EvaluationError(
                f"{path}: not the scores of the {rows.size} events of sample '{sample}' in the "
                "training table with its fold assignment; rerun the score rule"
            )
        scores[rows] = scored["score"].to_numpy()
    return ScoredSample(
        scores, (table["label"].to_numpy() == LABEL_SIGNAL).astype(int), table["weight"].to_numpy()
    )


def _train_sample(model_dirs: Sequence[str]) -> ScoredSample:
    frames = [read_table(Path(d) / TRAIN_SCORES) for d in model_dirs]
    train = pd.concat(frames, ignore_index=True)
    return ScoredSample(
        train["score"].to_numpy(),
        (train["label"].to_numpy() == LABEL_SIGNAL).astype(int),
        train["weight"].to_numpy(),
    )


def _thin_roc(
    scores: np.ndarray, labels: np.ndarray, weights: np.ndarray
) -> dict[str, list[float]]:
    """The ROC at ≤ ROC_POINTS points, log-spaced in background efficiency (for the JSON)."""
    roc = weighted_roc(scores, labels, weights)
    grid = np.unique(np.concatenate([[0.0], np.logspace(-5, 0, ROC_POINTS)]))
    return {
        "background_efficiency": grid.tolist(),
        "signal_efficiency": np.interp(
            grid, roc.background_efficiency, roc.signal_efficiency
        ).tolist(),
    }


def evaluate_model(
    config: Mapping,
    model: str,
    model_dirs: Sequence[str],
    table_path: str,
    scores_dir: str,
    score_files: Mapping[str, str],
    outputs: Mapping[str, str],
) -> ModelMetrics:
    """Workflow entry point: metrics JSON, ROC, overtraining and importance figures.

    ``score_files`` are the scoring job's nominal score files of the training samples, keyed
    by sample, inside its output directory ``scores_dir``.
    """
    inputs = ml_inputs(config)
    table = read_table(
        table_path, columns=[*ID_COLUMNS, "sample", "fold", "label", "weight", *inputs]
    )
    test = _test_sample(table, score_files)
    train = _train_sample(model_dirs)
    records = [TrainingRecord.read(d) for d in model_dirs]
    metrics = score_summary(
        model,
        train,
        test,
        train_seconds=float(np.mean([r.train_seconds for r in records])),
        inference_seconds=recorded_scoring_seconds(scores_dir, score_files.values()),
    )
    fold_models = load_fold_models(config, model, model_dirs)
    importance = _importances(config, fold_models, table, inputs)
    builtin = [m.feature_importance() for m in fold_models.models]
    known = [b for b in builtin if b is not None]
    builtin_mean = (
        {f: float(np.mean([b[f] for b in known])) for f in inputs}
        if len(known) == len(builtin)
        else None
    )
    roc = weighted_roc(test.scores, test.labels, test.weights)
    document = {
        **metrics.as_row(),
        "family": config["ml"]["models"][model]["family"],
        "train_seconds_per_fold": [r.train_seconds for r in records],
        "n_train_per_fold": [r.n_train for r in records],
        "permutation_importance": {f: r._asdict() for f, r in importance.items()},
        "builtin_importance": builtin_mean,
        "roc": _thin_roc(test.scores, test.labels, test.weights),
    }
    write_json(outputs["metrics"], document)
    rlabel = f"{model}, test folds"
    plot_roc_curves({model: roc}, outputs["roc"], rlabel=rlabel)
    plot_overtraining(
        train,
        test,
        metrics.ks_signal,
        metrics.ks_background,
        outputs["overtraining"],
        model=model,
        rlabel=rlabel,
    )
    plot_importances(
        {f: r.mean_auc_drop for f, r in importance.items()},
        outputs["importance"],
        f"{model}: permutation importance",
        errors={f: r.std for f, r in importance.items()},
        rlabel=rlabel,
    )
    log.info(
        "%s: AUC %.4f, ε_S(1%%) %.3f, ε_S(10%%) %.3f",
        model,
        metrics.auc,
        metrics.sig_eff_at_1pct,
        metrics.sig_eff_at_10pct,
    )
    return metrics


def _importances(
    config: Mapping, fold_models: FoldModels, table: pd.DataFrame, inputs: Sequence[str]
) -> dict:
    """Permutation importance of fold 0's model on a seeded sample of its own test fold."""
    test0 = np.flatnonzero(table["fold"].to_numpy() == 0)
    rng = np.random.default_rng(int(config["ml"]["seed"]))
    rows = rng.choice(test0, size=min(IMPORTANCE_EVENTS, test0.size), replace=False)
    part = table.iloc[rows]
    return permutation_importance(
        fold_models.models[0].predict,
        part[list(inputs)].to_numpy(dtype=np.float32),
        (part["label"].to_numpy() == LABEL_SIGNAL).astype(int),
        part["weight"].to_numpy(),
        inputs,
        seed=int(config["ml"]["seed"]),
    )


def compare_models(
    config: Mapping, metrics_paths: Sequence[str], table_path: str, outputs: Mapping[str, str]
) -> pd.DataFrame:
    """Workflow entry point: one table and figure across all models, best single feature."""
    documents = [read_json(p) for p in metrics_paths]
    table = read_table(table_path)
    inputs = ml_inputs(config)
    labels = (table["label"].to_numpy() == LABEL_SIGNAL).astype(int)
    feature, feature_auc = best_single_feature_auc(
        table[list(inputs)].to_numpy(dtype=np.float64), labels, table["weight"].to_numpy(), inputs
    )
    rows = pd.DataFrame(
        [{k: v for k, v in d.items() if not isinstance(v, (dict, list))} for d in documents]
    )
    rows = rows.sort_values("auc", ascending=False).reset_index(drop=True)
    rows["auc_minus_best_single_feature"] = rows["auc"] - feature_auc
    rows["best_single_feature"] = feature
    write_csv(rows, outputs["table"])
    plot_comparison(
        rows, outputs["figure"], best_single_feature_auc=feature_auc, best_single_feature=feature
    )
    rocs = {d["model"]: _roc_from_json(d["roc"]) for d in documents}
    reference = weighted_roc(
        table[feature].to_numpy(dtype=np.float64)
        * (1 if _direction(table, feature, labels) else -1),
        labels,
        table["weight"].to_numpy(),
    )
    plot_roc_curves(
        rocs,
        outputs["roc"],
        reference=reference,
        reference_label=f"best single feature ({feature})",
    )
    log.info(
        "best single feature %s, AUC %.4f; models:\n%s",
        feature,
        feature_auc,
        rows[["model", "auc"]],
    )
    return rows


def _direction(table: pd.DataFrame, feature: str, labels: np.ndarray) -> bool:
    """Whether larger values of ``feature`` are more signal-like."""
    return (
        auc(
            weighted_roc(
                table[feature].to_numpy(dtype=np.float64), labels, table["weight"].to_numpy()
            )
        )
        >= 0.5
    )


def _roc_from_json(roc: Mapping[str, list[float]]) -> Roc:
    bkg = np.asarray(roc["background_efficiency"])
    return Roc(bkg, np.asarray(roc["signal_efficiency"]), np.full(bkg.size, np.nan))


def write_csv(frame: pd.DataFrame, output: str) -> None:
    """Write ``frame`` as CSV atomically."""
    with atomic_path(output) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
