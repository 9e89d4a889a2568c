"""Structure of the feature space per process: PCA and clustering diagnostics.

* PCA of the standardised inputs, fitted with physics weights (|w|) on the *training folds*
  of one fold (``diagnostics.pca.fold``: every simulated known-physics event whose fold is
  not that one), so the held-out fold it is shown on played no part in the fit; scree plot,
  the first two components per process (BSM process included, though never fitted),
  loadings of the input features.
* k-means with k from config or chosen by the silhouette score over a range (elbow and
  silhouette plots), cluster composition per process and purity; DBSCAN with ε and
  min-samples from config or ε from the knee of the k-distance curve, the noise fraction
  and its composition. Both run on a seeded subsample, stratified by process (an equal
  share of each process, so rare processes are visible): silhouette and DBSCAN cost grows
  as n², and a few thousand events show the structure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# scikit-learn (clustering) and matplotlib (plots) are imported where used: this module's
# config checks run at every workflow parse
from thetaflow.core.errors import ConfigError, ThetaflowError
from thetaflow.core.io import read_table, write_json
from thetaflow.core.samples import load_samples
from thetaflow.ml.folds import ID_COLUMNS, assign_folds, event_ids, ids_checksum, ml_inputs
from thetaflow.unsupervised.autoencoder import Standardisation, anomaly_inputs

log = logging.getLogger(__name__)


class DiagnosticsError(ThetaflowError, ValueError):
    """Too few events or inconsistent settings; the message names the config key."""


def diagnostics_settings(config: Mapping) -> Mapping:
    """The validated ``diagnostics`` section (defaults filled by the schema)."""
    return config["diagnostics"]


def diagnostic_inputs(config: Mapping) -> list[str]:
    """Inputs: the autoencoder's if configured, else the classifiers'."""
    if "anomaly" in config:
        return anomaly_inputs(config)
    return ml_inputs(config)


def check_diagnostics_config(config: Mapping) -> None:
    """Settings checks that need no data; errors name the key."""
    spec = diagnostics_settings(config)
    if not 0 <= spec["pca"]["fold"] < config["ml"]["folds"]:
        raise ConfigError(
            f"config key 'diagnostics.pca.fold': must be in [0, ml.folds = {config['ml']['folds']})"
        )
    lo, hi = spec["clustering"]["kmeans"]["k_range"]
    if not 2 <= lo <= hi:
        raise ConfigError(
            "config key 'diagnostics.clustering.kmeans.k_range': need 2 <= low <= high, "
            f"got {[lo, hi]}"
        )
    k = spec["clustering"]["kmeans"]["k"]
    n = spec["clustering"]["subsample"]
    for key, value in (
        ("kmeans.k", k),
        ("kmeans.k_range", hi),
        ("dbscan.min_samples", spec["clustering"]["dbscan"]["min_samples"]),
    ):
        if value >= n:
            raise ConfigError(
                f"config key 'diagnostics.clustering.{key}': {value} is not below the subsample of "
                f"{n} events (diagnostics.clustering.subsample)"
            )


# ----------------------------------------------------------------------------- PCA


@dataclass(frozen=True)
class PcaResult:
    """A weighted PCA of standardised features."""

    standardisation: Standardisation
    components: np.ndarray  # (n_components, d): rows are unit eigenvectors, by decreasing variance
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Projections of the rows of ``frame`` on every component."""
        return self.standardisation.transform(frame).astype(np.float64) @ self.components.T


def fit_pca(frame: pd.DataFrame, features: Sequence[str]) -> PcaResult:
    """Weighted (|w|) PCA of the standardised ``features`` of ``frame`` (constant ones dropped)."""
    w = np.abs(frame["weight"].to_numpy(dtype=np.float64))
    std = Standardisation.fit(frame[list(features)].to_numpy(dtype=np.float64), w, features)
    X = std.transform(frame).astype(np.float64)
    cov = (X * w[:, None]).T @ X / w.sum()
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, vectors = np.clip(values[order], 0.0, None), vectors[:, order].T
    # a fixed sign convention: the largest loading of each component is positive
    signs = np.sign(vectors[np.arange(len(vectors)), np.argmax(np.abs(vectors), axis=1)])
    vectors = vectors * signs[:, None]
    return PcaResult(std, vectors, values, values / values.sum())


def training_fold_mask(frame: pd.DataFrame, config: Mapping, fold: int) -> np.ndarray:
    """Events of the training folds of ``fold`` (fold != ``fold``)."""
    return assign_folds(*event_ids(frame), config["ml"]["seed"], config["ml"]["folds"]) != fold


def run_pca(config: Mapping, feature_files: Mapping[str, str], outputs: Mapping[str, str]) -> dict:
    """Workflow entry point: PCA fitted on the training folds; scree, projections, loadings."""
    # matplotlib deferred: this module is imported when the workflow parses (config checks)
    from thetaflow.unsupervised.plots import plot_loadings, plot_pca_projections, plot_scree

    start = time.perf_counter()
    samples = load_samples(config)
    spec = diagnostics_settings(config)["pca"]
    inputs = diagnostic_inputs(config)
    table = _read(feature_files, inputs)
    train = training_fold_mask(table, config, spec["fold"])
    fit_on = train & table["sample"].map(lambda s: samples[s].is_standard_model_mc).to_numpy()
    pca = fit_pca(table.loc[fit_on], inputs)
    held_out = table.loc[~train]
    projections = pca.transform(held_out)[:, :2]
    rng = np.random.default_rng(diagnostics_settings(config)["seed"])
    shown = {}
    for sample in feature_files:
        idx = np.flatnonzero((held_out["sample"] == sample).to_numpy())
        if len(idx) > spec["points_per_process"]:
            idx = rng.choice(idx, spec["points_per_process"], replace=False)
        shown[samples[sample].label] = (projections[idx], samples[sample].spec.get("color"))
    plot_scree(pca.explained_variance_ratio, outputs["scree"])
    plot_pca_projections(shown, pca.explained_variance_ratio[:2], outputs["projections"])
    n_load = min(spec["loadings_components"], len(pca.components))
    plot_loadings(pca.components[:n_load], list(pca.standardisation.features), outputs["loadings"])
    cumulative = np.cumsum(pca.explained_variance_ratio)
    summary = {
        "fitted_on": (
            f"simulated known physics of the training folds of fold {spec['fold']} "
            f"(fold != {spec['fold']}), |w|"
        ),
        "fold": spec["fold"],
        "n_fit": int(fit_on.sum()),
        "fit_ids": ids_checksum(table, fit_on),
        "shown_on": f"held-out fold {spec['fold']} ({int((~train).sum())} events)",
        "features": list(pca.standardisation.features),
        "dropped_constant_features": list(pca.standardisation.dropped),
        "explained_variance_ratio": pca.explained_variance_ratio.tolist(),
        "components_for_90_percent": int(np.searchsorted(cumulative, 0.9) + 1),
        "loadings": {
            f"pc{i + 1}": dict(
                zip(pca.standardisation.features, pca.components[i].tolist(), strict=True)
            )
            for i in range(n_load)
        },
        "seconds": time.perf_counter() - start,
    }
    write_json(outputs["summary"], summary)
    log.info(
        "PCA: %d events fitted, first two components explain %.1f %%",
        summary["n_fit"],
        100 * cumulative[min(1, len(cumulative) - 1)],
    )
    return summary


# ----------------------------------------------------------------------------- clustering


def stratified_subsample(table: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """An equal share of ``size`` per sample (all of a smaller sample), seeded.

    Raises:
        DiagnosticsError: if all samples together hold fewer than ``size`` events.
    """
    if len(table) < size:
        raise DiagnosticsError(
            f"config key 'diagnostics.clustering.subsample': asks for {size} events, the samples "
            f"hold only {len(table)}; lower it"
        )
    rng = np.random.default_rng(seed)
    groups = {
        s: np.flatnonzero((table["sample"] == s).to_numpy()) for s in table["sample"].unique()
    }
    chosen, left = [], size
    for i, (_, idx) in enumerate(sorted(groups.items(), key=lambda kv: len(kv[1]))):
        share = left // (len(groups) - i)
        take = min(share, len(idx))
        chosen.append(rng.choice(idx, take, replace=False))
        left -= take
    return table.iloc[np.sort(np.concatenate(chosen))].reset_index(drop=True)


def knee_index(values: np.ndarray) -> int:
    """Knee of an increasing curve: the point farthest below the chord from first to last.

    The k-distance curve of DBSCAN rises slowly through dense regions and steeply into
    noise; its knee is the usual choice of ε.
    """
    y = np.sort(np.asarray(values, dtype=np.float64))
    if len(y) < 3 or y[-1] == y[0]:
        return len(y) // 2
    x = np.linspace(0.0, 1.0, len(y))
    return int(np.argmax(x - (y - y[0]) / (y[-1] - y[0])))


def composition(labels: np.ndarray, processes: np.ndarray) -> pd.DataFrame:
    """Fraction of each process in each cluster (rows clusters, columns processes)."""
    table = pd.crosstab(pd.Series(labels, name="cluster"), pd.Series(processes, name="process"))
    return table.div(table.sum(axis=1), axis=0)


def purity(labels: np.ndarray, processes: np.ndarray) -> float:
    """Share of events belonging to the majority process of their cluster."""
    counts = pd.crosstab(labels, processes)
    return float(counts.max(axis=1).sum() / counts.to_numpy().sum())


def choose_k(
    X: np.ndarray, k_range: Sequence[int], seed: int
) -> tuple[dict[int, float], dict[int, float]]:
    """Inertia (elbow) and silhouette score of k-means for every k in the range."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    inertia, silhouette = {}, {}
    for k in range(k_range[0], k_range[1] + 1):
        model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(X)
        inertia[k] = float(model.inertia_)
        silhouette[k] = float(silhouette_score(X, model.labels_, random_state=seed))
    return inertia, silhouette


def run_clustering(
    config: Mapping, feature_files: Mapping[str, str], outputs: Mapping[str, str]
) -> dict:
    """Workflow entry point: k-means and DBSCAN on a stratified subsample; figures, summary."""
    from sklearn.cluster import DBSCAN, KMeans
    from sklearn.neighbors import NearestNeighbors

    # matplotlib deferred: this module is imported when the workflow parses (config checks)
    from thetaflow.unsupervised.plots import (
        plot_cluster_composition,
        plot_dbscan,
        plot_kmeans_selection,
    )

    start = time.perf_counter()
    samples = load_samples(config)
    settings = diagnostics_settings(config)
    spec, seed = settings["clustering"], settings["seed"]
    inputs = diagnostic_inputs(config)
    table = stratified_subsample(_read(feature_files, inputs), spec["subsample"], seed)
    std = Standardisation.fit(table[inputs].to_numpy(dtype=np.float64), None, inputs)
    X = std.transform(table).astype(np.float64)
    processes = table["sample"].map(lambda s: samples[s].label).to_numpy()
    k_lo, k_hi = spec["kmeans"]["k_range"]
    for key, k in (("kmeans.k", spec["kmeans"]["k"]), ("kmeans.k_range", k_hi)):
        if k >= len(X):
            raise DiagnosticsError(
                f"config key 'diagnostics.clustering.{key}': k = {k} needs more than {len(X)} "
                "events"
            )
    inertia, silhouette = choose_k(X, (k_lo, k_hi), seed)
    k = spec["kmeans"]["k"] or max(silhouette, key=silhouette.__getitem__)
    kmeans = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(X)
    km_comp = composition(kmeans.labels_, processes)
    plot_kmeans_selection(inertia, silhouette, k, outputs["kmeans_selection"])
    plot_cluster_composition(km_comp, f"k-means, k = {k}", outputs["kmeans_composition"])
    min_samples = spec["dbscan"]["min_samples"]
    if min_samples >= len(X):
        raise DiagnosticsError(
            f"config key 'diagnostics.clustering.dbscan.min_samples': {min_samples} needs more "
            f"than {len(X)} events"
        )
    distances = NearestNeighbors(n_neighbors=min_samples).fit(X).kneighbors(X)[0][:, -1]
    kdist = np.sort(distances)
    eps = spec["dbscan"]["eps"] or float(kdist[knee_index(kdist)])
    db = DBSCAN(eps=eps, min_samples=min_samples).fit(X)
    noise = db.labels_ == -1
    overall = pd.Series(processes).value_counts(normalize=True)
    noise_comp = (
        pd.Series(processes[noise]).value_counts(normalize=True) if noise.any() else overall * 0
    )
    plot_dbscan(kdist, eps, overall, noise_comp, float(noise.mean()), outputs["dbscan"])
    summary: dict[str, Any] = {
        "subsample": {
            "events": len(X),
            "per_process": table["sample"].value_counts().to_dict(),
            "reason": "silhouette and DBSCAN cost O(n^2); stratified so every process is visible",
        },
        "features": list(std.features),
        "dropped_constant_features": list(std.dropped),
        "kmeans": {
            "k": int(k),
            "k_from": "config"
            if spec["kmeans"]["k"]
            else f"best silhouette over k in [{k_lo}, {k_hi}]",
            "inertia": {str(i): v for i, v in inertia.items()},
            "silhouette": {str(i): v for i, v in silhouette.items()},
            "purity": purity(kmeans.labels_, processes),
            "composition": {str(c): row.to_dict() for c, row in km_comp.iterrows()},
        },
        "dbscan": {
            "eps": eps,
            "eps_from": "config"
            if spec["dbscan"]["eps"]
            else f"knee of the {min_samples}-distance curve",
            "min_samples": min_samples,
            "clusters": int(len(set(db.labels_) - {-1})),
            "noise_fraction": float(noise.mean()),
            "noise_composition": noise_comp.to_dict(),
            "overall_composition": overall.to_dict(),
            "purity_without_noise": purity(db.labels_[~noise], processes[~noise])
            if (~noise).any()
            else None,
        },
        "seconds": time.perf_counter() - start,
    }
    write_json(outputs["summary"], summary)
    log.info(
        "clustering: k-means k=%d purity %.3f; DBSCAN eps=%.3f, %d clusters, noise %.3f",
        k,
        summary["kmeans"]["purity"],
        eps,
        summary["dbscan"]["clusters"],
        summary["dbscan"]["noise_fraction"],
    )
    return summary


def _read(feature_files: Mapping[str, str], inputs: Sequence[str]) -> pd.DataFrame:
    frames = [
        read_table(path, columns=[*ID_COLUMNS, "weight", *inputs]).assign(sample=sample)
        for sample, path in feature_files.items()
    ]
    return pd.concat(frames, ignore_index=True)
