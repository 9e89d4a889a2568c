"""PCA (fitted on training folds only) and clustering diagnostics, with their bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from thetaflow.analysis import load_analysis
from thetaflow.core.errors import ConfigError
from thetaflow.ml.folds import ids_checksum
from thetaflow.unsupervised.diagnostics import (
    DiagnosticsError,
    fit_pca,
    knee_index,
    purity,
    run_clustering,
    run_pca,
    stratified_subsample,
    training_fold_mask,
)

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "config" / "config.yaml"
INPUTS = ["x", "y", "z"]


def _frame(rng: np.random.Generator, sample: str, n: int, shift: float) -> pd.DataFrame:
    x = rng.normal(shift, 1.0, n)
    return pd.DataFrame(
        {
            "run": np.ones(n, np.uint32),
            "luminosityBlock": np.full(n, 3, np.uint32),
            "event": np.arange(1, n + 1, dtype=np.uint64) + (0 if sample == "bkg" else 50_000),
            "sample": sample,
            "label": np.int8(0 if sample == "bkg" else 1),
            "weight": rng.uniform(0.5, 1.5, n),
            "x": x,
            "y": 0.8 * x + rng.normal(0, 0.3, n),
            "z": rng.normal(-shift, 2.0, n),
        }
    )


@pytest.fixture()
def setup(tmp_path):
    rng = np.random.default_rng(0)
    samples = {
        "bkg": {
            "kind": "background",
            "xsec_pb": 1.0,
            "generate": {"model": "zjets", "n_events": 10},
        },
        "sig": {"kind": "signal", "xsec_pb": 1.0, "generate": {"model": "zh", "n_events": 10}},
        "bsm": {"kind": "bsm", "xsec_pb": 1.0, "generate": {"model": "xzy", "n_events": 10}},
    }
    (tmp_path / "samples.yaml").write_text(yaml.safe_dump(samples))
    files = {}
    for name, n, shift in (("bkg", 3000, 0.0), ("sig", 800, 2.0), ("bsm", 400, 5.0)):
        files[name] = str(tmp_path / f"{name}.parquet")
        _frame(rng, name, n, shift).to_parquet(files[name])
    config = {
        "samples": str(tmp_path / "samples.yaml"),
        "features": INPUTS,
        "ml": {"seed": 4, "folds": 3, "validation_fraction": 0.2, "inputs": []},
        "diagnostics": {
            "seed": 2,
            "pca": {"fold": 1, "loadings_components": 2, "points_per_process": 2000},
            "clustering": {
                "subsample": 600,
                "kmeans": {"k": 0, "k_range": [2, 4]},
                "dbscan": {"eps": 0.0, "min_samples": 8},
            },
        },
    }
    return config, files, tmp_path


def _outputs(tmp: Path, names: tuple[str, ...]) -> dict[str, str]:
    return {n: str(tmp / f"{n}.{'json' if n == 'summary' else 'png'}") for n in names}


def test_pca_is_fitted_on_the_training_folds_only(setup):
    config, files, tmp = setup
    outputs = _outputs(tmp, ("summary", "scree", "projections", "loadings"))
    summary = run_pca(config, files, outputs)
    known = pd.concat([pd.read_parquet(files[s]) for s in ("bkg", "sig")], ignore_index=True)
    train = training_fold_mask(known, config, 1)
    # the recorded fingerprint is exactly the known-physics events of the other folds
    assert summary["fit_ids"] == ids_checksum(known, train) and summary["n_fit"] == int(train.sum())
    expected = fit_pca(known.loc[train], INPUTS)
    assert np.allclose(summary["explained_variance_ratio"], expected.explained_variance_ratio)
    # changing the held-out fold (or the never-fitted BSM sample) leaves the fit unchanged...
    shifted = known.copy()
    shifted.loc[~train, INPUTS] *= 50.0
    again = fit_pca(shifted.loc[training_fold_mask(shifted, config, 1)], INPUTS)
    assert np.allclose(again.components, expected.components)
    for name in ("bkg", "sig"):
        frame = pd.read_parquet(files[name])
        frame.loc[~training_fold_mask(frame, config, 1), INPUTS] *= 50.0
        frame.to_parquet(files[name])
    bsm = pd.read_parquet(files["bsm"])
    bsm[INPUTS] *= 100.0
    bsm.to_parquet(files["bsm"])
    rerun = run_pca(config, files, outputs)
    assert np.allclose(rerun["explained_variance_ratio"], summary["explained_variance_ratio"])
    # ...while changing a training-fold event changes it
    assert not np.allclose(
        fit_pca(
            known.loc[train].assign(z=lambda f: f["x"] + 0.1 * f["z"]), INPUTS
        ).explained_variance_ratio,
        expected.explained_variance_ratio,
    )
    assert all(Path(p).stat().st_size > 5_000 for k, p in outputs.items() if k != "summary")


def test_clustering_reports_purity_and_noise(setup):
    """Three processes, BSM 5σ away from the other two (which overlap): k-means separates
    BSM, and the reported purity, composition, ε and noise are those of the subsample."""
    from sklearn.cluster import KMeans
    from sklearn.neighbors import NearestNeighbors

    from thetaflow.unsupervised.autoencoder import Standardisation

    config, files, tmp = setup
    outputs = _outputs(tmp, ("summary", "kmeans_selection", "kmeans_composition", "dbscan"))
    summary = run_clustering(config, files, outputs)
    assert summary["subsample"]["events"] == 600
    assert summary["subsample"]["per_process"] == {"bkg": 200, "sig": 200, "bsm": 200}
    km = summary["kmeans"]
    # k is the best silhouette in the range
    assert set(km["silhouette"]) == {"2", "3", "4"}
    assert km["k"] == int(max(km["silhouette"], key=km["silhouette"].__getitem__))
    assert km["k_from"] == "best silhouette over k in [2, 4]"
    # the same subsample, standardised, clustered again: the same purity and composition
    table = pd.concat([pd.read_parquet(f) for f in files.values()], ignore_index=True)
    sub = stratified_subsample(table, 600, config["diagnostics"]["seed"])
    X = Standardisation.fit(sub[INPUTS].to_numpy(float), None, INPUTS).transform(sub)
    labels = KMeans(n_clusters=km["k"], n_init=4, random_state=2).fit(X.astype(float)).labels_
    assert km["purity"] == pytest.approx(purity(labels, sub["sample"].to_numpy()))
    for row in km["composition"].values():
        assert sum(row.values()) == pytest.approx(1.0)
    # BSM is separated: one cluster is mostly BSM, and no background shares it
    assert max(row["bsm"] for row in km["composition"].values()) > 0.75
    assert min(row["bkg"] for row in km["composition"].values()) < 0.01
    # BSM alone is well separated, so two clusters win; far above chance (1/3), and with
    # k = 2 and three equal processes 2/3 is the most possible
    assert km["k"] == 2 and 0.6 < km["purity"] <= 2 / 3 + 1e-12
    # DBSCAN: ε is the knee of the 8-distance curve; noise points are never core points
    db = summary["dbscan"]
    kdist = np.sort(NearestNeighbors(n_neighbors=8).fit(X).kneighbors(X)[0][:, -1])
    assert db["eps"] == pytest.approx(kdist[knee_index(kdist)])
    assert 0 < db["noise_fraction"] <= np.mean(kdist > db["eps"]) + 1e-12
    assert db["noise_fraction"] < 0.2  # the knee leaves the dense bulk inside ε
    assert db["overall_composition"] == pytest.approx({"bkg": 1 / 3, "sig": 1 / 3, "bsm": 1 / 3})
    assert sum(db["noise_composition"].values()) == pytest.approx(1.0)
    assert json.loads(Path(outputs["summary"]).read_text())["dbscan"]["eps_from"] == (
        "knee of the 8-distance curve"
    )


def test_too_few_events_for_the_subsample_or_k_is_a_clear_error(setup):
    config, files, tmp = setup
    outputs = _outputs(tmp, ("summary", "kmeans_selection", "kmeans_composition", "dbscan"))
    config["diagnostics"]["clustering"]["subsample"] = 10_000
    with pytest.raises(
        DiagnosticsError, match=r"diagnostics.clustering.subsample.*10000 events.*only 4200"
    ):
        run_clustering(config, files, outputs)
    table = pd.read_parquet(files["sig"])
    with pytest.raises(DiagnosticsError, match="subsample"):
        stratified_subsample(table, len(table) + 1, 0)
    with pytest.raises(
        ConfigError, match=r"diagnostics.clustering.kmeans.k'.*not below the subsample of 4000"
    ):
        load_analysis([CONFIG], overrides={"diagnostics": {"clustering": {"kmeans": {"k": 4000}}}})
    with pytest.raises(ConfigError, match=r"diagnostics.clustering.kmeans.k_range"):
        load_analysis(
            [CONFIG], overrides={"diagnostics": {"clustering": {"kmeans": {"k_range": [5, 3]}}}}
        )


def test_knee_and_purity():
    # slow rise over 90 points then a steep one: the knee is the last point of the slow part
    curve = np.r_[np.linspace(0, 1, 90), np.linspace(2, 20, 10)]
    assert knee_index(curve) == 89
    assert knee_index(curve[::-1]) == 89  # the curve is sorted first
    # a right angle at index 30 of 41: flat, then a straight rise
    assert knee_index(np.r_[np.zeros(30), np.linspace(0, 10, 11)]) == 30
    assert knee_index(np.ones(7)) == 3  # flat: no knee, the middle
    assert purity(np.array([0, 0, 1, 1]), np.array(["a", "a", "a", "b"])) == 0.75
    assert purity(np.array([0, 0, 1, 1]), np.array(["a", "a", "b", "b"])) == 1.0
    assert purity(np.zeros(6, int), np.array(list("aabbcc"))) == pytest.approx(1 / 3)
