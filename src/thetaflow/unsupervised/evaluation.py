"""How well the anomaly score separates the known signal (and the unknown BSM process).

All numbers use the out-of-fold scores (every event scored by the autoencoder that never saw
it) and the physics weights: ROC and AUC of the known signal against the backgrounds (and
of the blind search's BSM process, if simulated), signal efficiency at background
efficiency 10⁻² and 10⁻³, the significance improvement ε_S/√ε_B there, score distributions
per process and the per-feature reconstruction error (which features make events anomalous).
ROC, AUC and working points come from :mod:`thetaflow.ml.metrics`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from thetaflow.core.io import read_table, write_json
from thetaflow.core.samples import load_samples
from thetaflow.features.labels import LABEL_BACKGROUND, LABEL_BSM, LABEL_SIGNAL
from thetaflow.ml.folds import ID_COLUMNS
from thetaflow.ml.metrics import Roc, auc, signal_efficiency_at, weighted_roc
from thetaflow.ml.plots import plot_roc_curves
from thetaflow.unsupervised.autoencoder import anomaly_inputs, load_fold_autoencoders, out_of_fold
from thetaflow.unsupervised.plots import plot_feature_errors, plot_score_distributions

log = logging.getLogger(__name__)

#: Background efficiencies at which the anomaly score is quoted (rare-signal working points).
ANOMALY_WORKING_POINTS: tuple[float, float] = (1e-2, 1e-3)


def working_point_metrics(roc: Roc, points: Sequence[float] = ANOMALY_WORKING_POINTS) -> dict:
    """AUC, and per working point ε_S and the significance improvement ε_S/√ε_B."""
    out: dict = {"auc": auc(roc)}
    for eb in points:
        es = signal_efficiency_at(roc, eb)
        out[f"signal_efficiency_at_{eb:g}"] = es
        out[f"significance_improvement_at_{eb:g}"] = es / math.sqrt(eb)
    return out


def per_feature_errors(
    frame: pd.DataFrame,
    squared: np.ndarray,
    features: Sequence[str],
    groups: Mapping[str, np.ndarray],
) -> pd.DataFrame:
    """Weighted mean of per-feature squared errors (``squared``) per event group."""
    w = np.abs(frame["weight"].to_numpy())
    rows = {}
    for name, mask in groups.items():
        if mask.any() and w[mask].sum() > 0:
            rows[name] = np.average(squared[mask], axis=0, weights=w[mask])
    return pd.DataFrame(rows, index=list(features))


def evaluate_autoencoder(
    config: Mapping,
    score_files: Mapping[str, str],
    feature_files: Mapping[str, str],
    model_dirs: Sequence[str],
    outputs: Mapping[str, str],
) -> dict:
    """Workflow entry point: metrics JSON and the figures of the anomaly score."""

    samples = load_samples(config)
    inputs = anomaly_inputs(config)
    frames = []
    for sample, path in feature_files.items():
        features = read_table(path, columns=[*ID_COLUMNS, "label", "weight", *inputs])
        scores = read_table(score_files[sample])
        if (
            len(scores) != len(features)
            or not (scores["event"].to_numpy() == features["event"].to_numpy()).all()
        ):
            raise ValueError(f"{score_files[sample]}: rows do not match the feature table {path}")
        frames.append(features.assign(sample=sample, score=scores["score"].to_numpy()))
    table = pd.concat(frames, ignore_index=True)
    labels = table["label"].to_numpy()
    weight = table["weight"].to_numpy()
    score = table["score"].to_numpy()
    background = labels == LABEL_BACKGROUND
    metrics: dict = {"score": "error / (error + reference_error)"}
    rocs = {}
    for name, label in (("known signal", LABEL_SIGNAL), ("bsm", LABEL_BSM)):
        sel = background | (labels == label)
        if (labels == label).any():
            roc = weighted_roc(score[sel], (labels[sel] == label).astype(int), weight[sel])
            metrics["known_signal" if label == LABEL_SIGNAL else "bsm"] = working_point_metrics(roc)
            bsm_names = [s for s in feature_files if samples[s].is_bsm]
            rocs[name if label == LABEL_SIGNAL else f"BSM ({', '.join(bsm_names)})"] = roc
    plot_roc_curves(rocs, outputs["roc"], rlabel="autoencoder, out-of-fold")
    processes = {samples[s].label: (table["sample"] == s).to_numpy() for s in feature_files}
    plot_score_distributions(
        score,
        weight,
        processes,
        outputs["distributions"],
        colors=[samples[s].spec.get("color") for s in feature_files],
    )
    # which features make events anomalous: per-feature squared errors, each from its fold's model
    models = load_fold_autoencoders(config, model_dirs)
    metrics["training"] = _training_summary([m.record for m in models])
    kept = list(models[0].standardisation.features)
    squared = np.empty((len(table), len(kept)))
    folds = out_of_fold(config, models, table)["fold"].to_numpy()
    for k, model in enumerate(models):
        sel = folds == k
        if sel.any():
            # in units of the fold's typical (validation) error of each feature
            squared[sel] = model.reconstruct(table.loc[sel]).squared_error / np.asarray(
                model.record["feature_scale"]
            )
    tail = background & (score >= _weighted_quantile(score[background], weight[background], 0.99))
    groups = {
        "backgrounds": background,
        "backgrounds, top 1 % score": tail,
        "known signal": labels == LABEL_SIGNAL,
    }
    if (labels == LABEL_BSM).any():
        groups["BSM"] = labels == LABEL_BSM
    errors = per_feature_errors(table, squared, kept, groups)
    plot_feature_errors(errors, outputs["feature_errors"])
    metrics["feature_errors"] = {col: errors[col].to_dict() for col in errors.columns}
    metrics["mean_score"] = {
        s: float(np.average(score[m], weights=np.abs(weight[m])))
        for s, m in ((s, (table["sample"] == s).to_numpy()) for s in feature_files)
        if m.any()
    }
    write_json(outputs["metrics"], metrics)
    log.info(
        "autoencoder: AUC known signal %.3f%s",
        metrics.get("known_signal", {}).get("auc", float("nan")),
        f", BSM {metrics['bsm']['auc']:.3f}" if "bsm" in metrics else "",
    )
    return metrics


def _training_summary(records: Sequence[Mapping]) -> dict:
    """What the fold autoencoders' training records say, for the metrics JSON."""
    return {
        "kind": records[0]["kind"],
        "source": records[0]["source"],
        "signal_fraction": records[0]["signal_fraction"],
        "dropped_constant_features": records[0]["standardisation"]["dropped"],
        "train_seconds": [r["train_seconds"] for r in records],
        "epochs_run": [r["epochs_run"] for r in records],
        "n_train": [r["n_train"] for r in records],
    }


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cum = np.cumsum(np.abs(weights)[order])
    return float(values[order][min(np.searchsorted(cum, q * cum[-1]), len(values) - 1)])
