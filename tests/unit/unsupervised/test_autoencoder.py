"""Unsupervised stage: autoencoder, score format, blind-search statistics, bad inputs."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from thetaflow.analysis import load_analysis
from thetaflow.core.errors import ConfigError
from thetaflow.core.samples import Sample, pseudo_data_processes
from thetaflow.features.labels import LABEL_BSM
from thetaflow.ml.metrics import auc, weighted_roc
from thetaflow.unsupervised.autoencoder import (
    AnomalyError,
    AutoencoderSettings,
    Standardisation,
    check_bottleneck,
    fit_autoencoder,
    load_autoencoder_fold,
    reconstruct,
    score_autoencoder,
    score_from_error,
    select_training_set,
    sideband_data,
    train_autoencoder_fold,
)
from thetaflow.unsupervised.tails import asimov_significance, tail_counts, tail_threshold

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "config" / "config.yaml"
FEATURES = ["a", "b", "c", "d", "e", "f"]


def background(rng: np.random.Generator, n: int) -> np.ndarray:
    """Six features driven by two latent factors plus small noise: a 2-d manifold."""
    z = rng.normal(size=(n, 2))
    mixing = np.array([[1.0, 0.5, -0.3, 0.8, 0.0, 0.2], [0.0, 0.7, 0.9, -0.4, 1.0, 0.6]])
    return z @ mixing + 0.05 * rng.normal(size=(n, 6))


def anomalies(rng: np.random.Generator, n: int) -> np.ndarray:
    """Off the manifold: independent features of the same overall size."""
    return rng.normal(0.0, 1.0, size=(n, 6))


@pytest.mark.parametrize("kind", ["ae", "vae"])
def test_autoencoder_trained_on_background_scores_injected_anomalies_higher(kind):
    rng = np.random.default_rng(1)
    train, valid = background(rng, 3000), background(rng, 800)
    settings = AutoencoderSettings(
        kind=kind,
        hidden_layers=(16,),
        bottleneck=2,
        epochs=25,
        batch_size=128,
        learning_rate=2.0e-3,
        patience=5,
        kl_weight=0.1,
        error="normalised",
        seed=5,
    )
    result = fit_autoencoder(
        train, np.ones(len(train)), valid, np.ones(len(valid)), FEATURES, settings
    )
    test = np.vstack([background(rng, 1000), anomalies(rng, 1000)])
    labels = np.r_[np.zeros(1000), np.ones(1000)]
    error = reconstruct(
        result.scoring, result.standardisation.transform_array(test, FEATURES), kind
    ).error(settings.kl_weight, settings.error, result.record["feature_scale"])
    score = score_from_error(error, result.reference_error)
    assert ((score >= 0) & (score < 1)).all()
    assert auc(weighted_roc(score, labels)) > 0.9
    # the reference error is the validation median: a typical background event scores ~0.5
    assert 0.3 < np.median(score[labels == 0]) < 0.7


def test_score_is_a_monotone_map_of_the_error():
    error = np.array([0.0, 0.5, 1.0, 2.0, 10.0, 1e3])
    score = score_from_error(error, reference=1.0)
    assert score[2] == pytest.approx(0.5)
    assert np.all(np.diff(score) > 0) and score[-1] < 1.0
    assert score_from_error(np.array([9.0]), 1.0)[0] == pytest.approx(0.9)
    # no saturation: far-tail errors stay distinct (an exponential map would round them to 1)
    assert len(np.unique(score_from_error(np.array([1e3, 1e6, 1e9]), 1.0))) == 3


def test_error_modes_weigh_each_feature_by_its_typical_error():
    from thetaflow.unsupervised.autoencoder import Reconstruction

    rec = Reconstruction(np.array([[1.0, 4.0], [0.5, 8.0]]), np.array([0.0, 2.0]))
    assert rec.error(0.0, "mse") == pytest.approx([2.5, 4.25])
    # feature 2 is always badly reconstructed (typical error 4): in its units, event 1 is typical
    assert rec.error(0.0, "normalised", [1.0, 4.0]) == pytest.approx([1.0, 1.25])
    assert rec.error(0.0, "max", [1.0, 4.0]) == pytest.approx([1.0, 2.0])
    assert rec.error(0.5, "normalised", [1.0, 4.0]) == pytest.approx([1.0, 1.25 + 0.5 * 2.0 / 2])
    with pytest.raises(ValueError, match="unknown error mode"):
        rec.error(0.0, "median", [1.0, 1.0])


def test_constant_features_are_dropped_with_a_note_not_nan(caplog):
    rng = np.random.default_rng(2)
    X = np.column_stack([rng.normal(size=100), np.full(100, 3.0), rng.normal(size=100)])
    with caplog.at_level(logging.WARNING):
        std = Standardisation.fit(X, None, ["x", "const", "y"])
    assert std.dropped == ("const",) and std.features == ("x", "y")
    assert "const" in caplog.text and "dropped" in caplog.text
    out = std.transform_array(X, ["x", "const", "y"])
    assert out.shape == (100, 2) and np.isfinite(out).all()


def test_bottleneck_as_wide_as_the_input_is_refused():
    with pytest.raises(
        ConfigError, match=r"anomaly.model.bottleneck.*bottleneck \(6\) must be narrower.*identity"
    ):
        check_bottleneck(6, 6, "config key 'anomaly.model.bottleneck'")
    with pytest.raises(ConfigError, match=r"config key 'anomaly.model.bottleneck'"):
        load_analysis([CONFIG], overrides={"anomaly": {"model": {"bottleneck": 23}}})
    # after constant features are dropped, the check is repeated on the real width
    rng = np.random.default_rng(3)
    X = np.column_stack([rng.normal(size=(50, 2)), np.ones((50, 1))])
    settings = AutoencoderSettings.from_config(
        load_analysis([CONFIG], overrides={"anomaly": {"model": {"bottleneck": 2}}})[0]
    )
    with pytest.raises(
        ConfigError, match=r"after dropping constant features.*\(2\).*\(2 features\)"
    ):
        fit_autoencoder(X, np.ones(50), X, np.ones(50), ["p", "q", "one"], settings)


def test_autoencoder_is_refused_as_a_supervised_model_name():
    with pytest.raises(ConfigError, match=r"ml.models.autoencoder.*reserved"):
        load_analysis([CONFIG], overrides={"ml": {"models": {"autoencoder": {"family": "bdt"}}}})


def _tables(rng, n_sig=200, n_bkg=2000):
    def frame(sample, label, n, weight):
        return pd.DataFrame(
            {
                "run": np.ones(n, np.uint32),
                "luminosityBlock": np.ones(n, np.uint32),
                "event": np.arange(1, n + 1, dtype=np.uint64),
                "sample": sample,
                "label": np.full(n, label, np.int8),
                "weight": np.full(n, weight),
                "m_bb_gev": rng.uniform(20, 300, n),
                "a": rng.normal(size=n),
            }
        )

    return {
        "sig": frame("sig", 1, n_sig, 1.0),
        "bkg": frame("bkg", 0, n_bkg, 1.0),
        "data": frame("data", -1, 1500, 1.0),
    }


SAMPLES = {
    "sig": Sample("sig", {"kind": "signal"}),
    "bkg": Sample("bkg", {"kind": "background"}),
    "data": Sample("data", {"kind": "data"}),
}


def _config(source: str, ceiling: float = 0.05) -> dict:
    return {
        "ml": {"seed": 1, "folds": 2, "validation_fraction": 0.2},
        "features": ["m_bb_gev", "a"],
        "anomaly": {
            "training": {
                "source": source,
                "sideband_data": "data",
                "signal_region": {"feature": "m_bb_gev", "window_gev": [90.0, 150.0]},
                "max_signal_fraction": ceiling,
                "max_events": 0,
            }
        },
    }


def test_signal_fraction_above_the_ceiling_is_warned(caplog):
    tables = _tables(np.random.default_rng(4))
    with caplog.at_level(logging.WARNING):
        quiet = select_training_set(_config("backgrounds"), SAMPLES, tables, ["a"])
    assert quiet.signal_fraction == 0 and "max_signal_fraction" not in caplog.text
    with caplog.at_level(logging.WARNING):
        mixed = select_training_set(_config("simulation"), SAMPLES, tables, ["a"])
    assert mixed.signal_fraction == pytest.approx(200 / 2200)
    assert (
        "not background-dominated" in caplog.text
        and "anomaly.training.max_signal_fraction" in caplog.text
    )
    sidebands = select_training_set(_config("sidebands", ceiling=0.5), SAMPLES, tables, ["a"])
    inside = sidebands.table["m_bb_gev"].between(90, 150)
    assert (
        not inside.any()
        and (sidebands.table["sample"] == "data").all()
        and (sidebands.table["weight"] == 1).all()
    )


def test_sideband_data_defaults_to_the_main_data_sample():
    config = _config("sidebands")
    assert sideband_data(config, SAMPLES) == "data"
    del config["anomaly"]["training"]["sideband_data"]
    assert sideband_data(config, SAMPLES) == "data"
    no_data = {k: s for k, s in SAMPLES.items() if k != "data"}
    with pytest.raises(ConfigError, match=r"anomaly.training.sideband_data"):
        sideband_data(config, no_data)


@pytest.fixture(scope="module")
def trained_folds(tmp_path_factory):
    """A two-fold toy autoencoder trained through the workflow entry point."""
    tmp = tmp_path_factory.mktemp("ae")
    rng = np.random.default_rng(6)
    samples = {
        "bkg": {
            "kind": "background",
            "xsec_pb": 1.0,
            "generate": {"model": "zjets", "n_events": 10},
        },
        "sig": {"kind": "signal", "xsec_pb": 1.0, "generate": {"model": "zh", "n_events": 10}},
    }
    (tmp / "samples.yaml").write_text(yaml.safe_dump(samples))
    files = {}
    for name, label, X in (("bkg", 0, background(rng, 2500)), ("sig", 1, anomalies(rng, 300))):
        n = len(X)
        frame = pd.DataFrame(
            {
                "run": np.ones(n, np.uint32),
                "luminosityBlock": np.full(n, 2, np.uint32),
                "event": np.arange(1, n + 1, dtype=np.uint64),
                "sample": name,
                "label": np.full(n, label, np.int8),
                "weight": rng.uniform(0.5, 1.5, n),
                **{f: X[:, i].astype(np.float32) for i, f in enumerate(FEATURES)},
            }
        )
        files[name] = str(tmp / f"{name}.parquet")
        frame.to_parquet(files[name])
    config = {
        "samples": str(tmp / "samples.yaml"),
        "features": FEATURES,
        "ml": {"seed": 9, "folds": 2, "validation_fraction": 0.2, "inputs": []},
        "anomaly": {
            "seed": 1,
            "inputs": [],
            "training": {"source": "backgrounds", "max_signal_fraction": 0.05, "max_events": 0},
            "model": {
                "kind": "ae",
                "hidden_layers": [12],
                "bottleneck": 2,
                "epochs": 15,
                "batch_size": 128,
                "learning_rate": 2.0e-3,
                "patience": 5,
                "kl_weight": 0.1,
                "error": "normalised",
            },
        },
    }
    dirs = [str(tmp / f"fold{k}") for k in range(2)]
    for k in range(2):
        train_autoencoder_fold(config, {"bkg": files["bkg"]}, k, dirs[k])
    return config, files, dirs, tmp


def test_scores_have_the_classifier_score_format(trained_folds):
    config, files, dirs, tmp = trained_folds
    outputs = {files[s]: str(tmp / f"score_{s}.parquet") for s in files}
    score_autoencoder(config, dirs, outputs)
    for path in files.values():
        features = pd.read_parquet(path)
        scores = pd.read_parquet(outputs[path])
        assert list(scores.columns) == ["run", "luminosityBlock", "event", "fold", "score"]
        assert len(scores) == len(features)
        assert (scores["event"].to_numpy() == features["event"].to_numpy()).all()
        assert scores["score"].between(0, 1).all() and set(scores["fold"]) == {0, 1}
    bkg = pd.read_parquet(outputs[files["bkg"]])["score"]
    sig = pd.read_parquet(outputs[files["sig"]])["score"]
    assert sig.median() > bkg.quantile(0.9)
    # out-of-fold: each event's fold is the hash of its ids and its score is exactly that
    # fold's network's score of its features; the two networks differ, so swapping them fails
    from thetaflow.ml.folds import assign_folds, event_ids

    models = [load_autoencoder_fold(dirs[k], k, 2, FEATURES) for k in range(2)]
    for path in files.values():
        features = pd.read_parquet(path)
        scores = pd.read_parquet(outputs[path])
        folds = assign_folds(*event_ids(features), config["ml"]["seed"], 2)
        assert (scores["fold"].to_numpy() == folds).all()
        for k in range(2):
            sel = folds == k
            own = models[k].errors_and_scores(features.loc[sel])[1]
            other = models[1 - k].errors_and_scores(features.loc[sel])[1]
            np.testing.assert_allclose(scores["score"][sel], own, rtol=1e-5, atol=1e-7)
            assert np.abs(other - scores["score"][sel].to_numpy()).max() > 1e-3
    record = yaml.safe_load((Path(dirs[0]) / "autoencoder.json").read_text())
    assert record["fold"] == 0 and record["source"] == "backgrounds" and record["n_train"] > 0
    assert set(record["standardisation"]) == {"features", "mean", "scale", "dropped"}


def test_out_of_fold_models_never_saw_the_events_they_score(trained_folds):
    """The fold-k model's recorded training/validation fingerprints are exactly the events of
    the other folds, so no event is scored by a model that saw it."""
    import json

    from thetaflow.ml.folds import assign_folds, ids_checksum, validation_flags

    config, files, dirs, _ = trained_folds
    table = pd.read_parquet(files["bkg"])
    ids = [table[c].to_numpy() for c in ("run", "luminosityBlock", "event")]
    folds = assign_folds(*ids, 9, 2)
    valid = validation_flags(*ids, 9, 0.2)
    for k, directory in enumerate(dirs):
        record = json.loads((Path(directory) / "autoencoder.json").read_text())
        assert record["train_ids"] == ids_checksum(table, (folds != k) & ~valid)
        assert record["valid_ids"] == ids_checksum(table, (folds != k) & valid)


def test_one_fold_autoencoder_is_checked_against_its_fold(trained_folds, tmp_path):
    """The single loader of an autoencoder directory refuses another fold's and names files."""
    _, _, dirs, _ = trained_folds
    model = load_autoencoder_fold(dirs[1], 1, 2, FEATURES)
    assert model.record["fold"] == 1 and model.standardisation.features == tuple(FEATURES)
    with pytest.raises(AnomalyError, match=r"was trained for fold 1 of 2"):
        load_autoencoder_fold(dirs[1], 0, 2, FEATURES)
    with pytest.raises(AnomalyError, match=r"autoencoder fold 0: cannot read .*autoencoder.json"):
        load_autoencoder_fold(tmp_path / "nowhere", 0, 2, FEATURES)
    assert not (Path(dirs[0]).parent / f".{Path(dirs[0]).name}.tmp").exists()


# ----------------------------------------------------------------------------- blind search


def test_asimov_significance_limits():
    assert asimov_significance(0.0, 100.0, 5.0) == 0.0
    # no background uncertainty: sqrt(2((s+b)ln(1+s/b) - s))
    assert asimov_significance(10.0, 100.0) == pytest.approx(
        math.sqrt(2 * (110 * math.log(1.1) - 10))
    )
    # large b, small s: s / sqrt(b + sigma^2)
    assert asimov_significance(30.0, 1e4, 50.0) == pytest.approx(
        30 / math.sqrt(1e4 + 2500), rel=0.01
    )
    assert asimov_significance(-10.0, 100.0) < 0
    # nothing observed: a finite deficit, -sqrt(2b) without background uncertainty
    assert asimov_significance(-100.0, 100.0) == pytest.approx(-math.sqrt(200.0))
    assert math.isfinite(asimov_significance(-100.0, 100.0, 10.0))
    assert asimov_significance(10.0, 100.0, 10.0) < asimov_significance(10.0, 100.0)


def test_tail_threshold_keeps_at_most_the_requested_efficiency():
    scores = np.linspace(0, 1, 1001)
    weights = np.ones_like(scores)
    t = tail_threshold(scores, weights, 0.01)
    assert (scores >= t).sum() == 10
    sm = pd.DataFrame({"score": scores, "weight": weights})
    bsm = pd.DataFrame({"score": np.full(5, 0.999), "weight": np.ones(5)})
    observed = pd.DataFrame({"score": np.r_[scores, np.full(20, 0.9999)]})
    result = tail_counts("ae", "data_bsm", 0.01, sm, bsm, observed, 0.0)
    assert result.expected_sm == 10 and result.observed == 30 and result.excess == 20
    assert result.achieved_efficiency == pytest.approx(10 / 1001)
    assert result.sm_mc_stat == pytest.approx(math.sqrt(10)) and result.expected_bsm == 5
    assert result.observed_significance == pytest.approx(asimov_significance(20, 10, math.sqrt(10)))
    assert 3 < result.observed_significance < asimov_significance(20, 10)  # MC stat counts


# ----------------------------------------------------------------------------- bsm samples


def test_bsm_process_only_enters_pseudo_data_that_names_it():
    config, samples = load_analysis([CONFIG])
    assert (
        samples["bsm"].is_bsm
        and not samples["bsm"].is_standard_model_mc
        and not samples["bsm"].is_data
    )
    assert "bsm" not in pseudo_data_processes(samples["data"], samples)
    assert "bsm" in pseudo_data_processes(samples["data_bsm"], samples)


def test_bsm_sample_is_refused_as_training_data(tmp_path):
    from thetaflow.ml.folds import TrainingDataError, build_training_table

    frames = _tables(np.random.default_rng(7))
    bsm = frames["sig"].assign(sample="bsm", label=np.int8(LABEL_BSM))
    files = {}
    for name, frame in (("sig", frames["sig"]), ("bkg", frames["bkg"]), ("bsm", bsm)):
        files[name] = str(tmp_path / f"{name}.parquet")
        frame.to_parquet(files[name])
    with pytest.raises(TrainingDataError, match=r"bsm.*kind 'bsm' cannot be used for training"):
        build_training_table(
            files, ["a"], seed=1, folds=2, validation_fraction=0.2, negative_weights="abs"
        )


def test_xzy_generator_makes_a_heavy_resonance():
    from thetaflow.simulation.generator import ModelSettings, generate

    truth = generate(
        np.random.default_rng(8),
        ModelSettings(
            model="xzy", resonance_mass_gev=700.0, resonance_width_gev=20.0, daughter_mass_gev=200.0
        ),
        4000,
    )
    bb = truth.partons[0] + truth.partons[1]
    llbb = truth.leptons[0] + truth.leptons[1] + bb
    assert np.median(np.asarray(bb.mass)) == pytest.approx(200.0, abs=5.0)
    assert np.median(np.asarray(llbb.mass)) == pytest.approx(700.0, abs=15.0)
    assert (truth.hadron_flavour[:, :2] == 5).all()
