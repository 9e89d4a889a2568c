"""b-jet energy regression: a correction factor per Higgs-candidate jet, and the corrected m_bb.

The target is the ratio of the jet's generator-level p_T *including* the neutrinos of
semileptonic b decays (``b*_gen_pt_gev``) to its reconstructed p_T: jets that lost a neutrino
(a soft lepton in the jet, MET along it) are scaled up. An xgboost regressor learns it from
jet and event quantities. It is trained out-of-fold on two hash halves of the simulated
b jets, so no jet is corrected by a model that saw it.

The corrected dijet mass needs no azimuth: scaling each jet's four-momentum by c_i gives
m² = c1²m1² + c2²m2² + c1c2(m_bb² − m1² − m2²).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xgboost as xgb

from thetaflow.core.io import atomic_path, read_table, reading_result, write_json, write_table
from thetaflow.core.samples import load_samples
from thetaflow.features.labels import LABEL_SIGNAL
from thetaflow.ml.folds import ID_COLUMNS, event_hash, event_ids
from thetaflow.ml.plots import plot_mass_comparison
from thetaflow.simulation.generator import ModelSettings

log = logging.getLogger(__name__)

JET_INPUTS = ("pt_gev", "eta", "mass_gev", "soft_lepton", "btag")
EVENT_INPUTS = ("met_gev", "n_jets")
HALF_SALT = 0xB1E7
TARGET_RANGE = (0.3, 3.0)
MASS_WINDOW_GEV = (50.0, 200.0)


def _jet_column(jet: str, name: str) -> str:
    return f"btag_{jet}" if name == "btag" else f"{jet}_{name}"


def jet_matrix(frame: pd.DataFrame, jet: str) -> np.ndarray:
    """Regression inputs of jet ``b1`` or ``b2`` of every event (float32)."""
    columns = [_jet_column(jet, n) for n in JET_INPUTS] + list(EVENT_INPUTS)
    return frame[columns].to_numpy(dtype=np.float32)


def halves(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """Hash half (0 or 1) of each event: the regression of half h is applied to half 1-h."""
    return (event_hash(*event_ids(frame), seed, HALF_SALT) % np.uint64(2)).astype(np.int8)


def training_jets(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs, target, half-index rows) of the true b jets with a generator match."""
    X, y, rows = [], [], []
    for jet in ("b1", "b2"):
        target = frame[f"{jet}_gen_pt_gev"].to_numpy() / frame[f"{jet}_pt_gev"].to_numpy()
        ok = (frame[f"{jet}_hadron_flavour"].to_numpy() == 5) & np.isfinite(target)
        ok &= (target > TARGET_RANGE[0]) & (target < TARGET_RANGE[1])
        X.append(jet_matrix(frame, jet)[ok])
        y.append(target[ok])
        rows.append(np.flatnonzero(ok))
    return np.concatenate(X), np.concatenate(y), np.concatenate(rows)


def corrected_mbb(
    m_bb: np.ndarray, m1: np.ndarray, m2: np.ndarray, c1: np.ndarray, c2: np.ndarray
) -> np.ndarray:
    """Dijet mass after scaling the two jets' four-momenta by c1 and c2."""
    m_sq = c1**2 * m1**2 + c2**2 * m2**2 + c1 * c2 * (m_bb**2 - m1**2 - m2**2)
    return np.sqrt(np.clip(m_sq, 0.0, None))


@dataclass(frozen=True)
class PeakSummary:
    """Peak position (median in the mass window) and relative core resolution of m_bb."""

    peak_gev: float
    resolution: float

    @classmethod
    def of(cls, mass: np.ndarray, weight: np.ndarray) -> PeakSummary:
        """Weighted median and half the 16–84 % interquantile range over the median."""
        ok = (mass > MASS_WINDOW_GEV[0]) & (mass < MASS_WINDOW_GEV[1])
        m, w = mass[ok], np.abs(weight[ok])
        order = np.argsort(m)
        cdf = np.cumsum(w[order]) / w.sum()
        q16, q50, q84 = np.interp([0.16, 0.5, 0.84], cdf, m[order])
        return cls(float(q50), float((q84 - q16) / 2 / q50))


def fit_regressor(X: np.ndarray, y: np.ndarray, params: Mapping, seed: int) -> xgb.XGBRegressor:
    """xgboost regression of the correction factor with early stopping on 20 % of the jets."""
    valid = np.random.default_rng(seed).uniform(size=len(y)) < 0.2
    model = xgb.XGBRegressor(
        tree_method="hist", random_state=seed, n_jobs=1, early_stopping_rounds=20, **params
    )
    model.fit(X[~valid], y[~valid], eval_set=[(X[valid], y[valid])], verbose=False)
    return model


def regressed_mbb(frame: pd.DataFrame, models: Sequence[xgb.XGBRegressor], seed: int) -> np.ndarray:
    """m_bb of every event with both jets corrected by the model of the other hash half."""
    half = halves(frame, seed)
    corrections = {}
    for jet in ("b1", "b2"):
        Xj = jet_matrix(frame, jet)
        c = np.ones(len(frame))
        for h in (0, 1):
            sel = half == 1 - h  # model h was trained on half h only
            if sel.any():
                c[sel] = models[h].predict(Xj[sel])
        corrections[jet] = c
    return corrected_mbb(
        frame["m_bb_gev"].to_numpy(),
        frame["b1_mass_gev"].to_numpy(),
        frame["b2_mass_gev"].to_numpy(),
        corrections["b1"],
        corrections["b2"],
    )


def apply_bjet_regression(
    config: Mapping, model_paths: Sequence[str], features_path: str, output: str
) -> int:
    """Workflow entry point: the regressed m_bb (``m_bb_regressed_gev``) of one sample/variation."""
    models = []
    for path in model_paths:
        model = xgb.XGBRegressor()
        with reading_result(path):
            model.load_model(path)
        models.append(model)
    frame = read_table(features_path)
    out = frame[list(ID_COLUMNS)].copy()
    out["m_bb_regressed_gev"] = regressed_mbb(
        frame, models, int(config["regression"]["seed"])
    ).astype(np.float32)
    write_table(output, out)
    log.info("%s: regressed m_bb of %d events", features_path, len(out))
    return len(out)


def train_bjet_regression(
    config: Mapping, feature_files: Mapping[str, str], outputs: Mapping[str, str]
) -> dict:
    """Workflow entry point: two out-of-fold regressors, m_bb before/after on the signal."""
    settings = config["regression"]
    seed = int(settings["seed"])
    frame = pd.concat([read_table(p) for p in feature_files.values()], ignore_index=True)
    half = halves(frame, seed)
    X, y, rows = training_jets(frame)
    models = [
        fit_regressor(X[half[rows] == h], y[half[rows] == h], settings["params"], seed + h)
        for h in (0, 1)
    ]
    m_corr = regressed_mbb(frame, models, seed)
    signal = frame["label"].to_numpy() == LABEL_SIGNAL
    weight = frame["weight"].to_numpy()
    before = PeakSummary.of(frame["m_bb_gev"].to_numpy()[signal], weight[signal])
    after = PeakSummary.of(m_corr[signal], weight[signal])
    for h, model in enumerate(models):
        with atomic_path(outputs[f"model{h}"]) as tmp:
            model.save_model(tmp)
            # XGBoost's file stream ignores a failed final flush: a truncated file fails here
            xgb.Booster(model_file=tmp)
    summary = {
        "signal_peak_gev": {"before": before.peak_gev, "after": after.peak_gev},
        "signal_resolution": {"before": before.resolution, "after": after.resolution},
        "higgs_mass_gev": _higgs_mass(config),
        "training_jets": int(len(y)),
        "inputs": [*JET_INPUTS, *EVENT_INPUTS],
        "best_iterations": [int(m.best_iteration) for m in models],
    }
    write_json(outputs["summary"], summary)
    plot_mass_comparison(
        {"reconstructed": frame["m_bb_gev"].to_numpy()[signal], "regressed": m_corr[signal]},
        weight[signal],
        outputs["plot"],
        summaries={
            "reconstructed": (before.peak_gev, before.resolution),
            "regressed": (after.peak_gev, after.resolution),
        },
    )
    log.info(
        "m_bb peak %.1f -> %.1f GeV, resolution %.3f -> %.3f",
        before.peak_gev,
        after.peak_gev,
        before.resolution,
        after.resolution,
    )
    return summary


def _higgs_mass(config: Mapping) -> float | None:
    """The simulated Higgs mass, if the signal is generated (recorded with the summary)."""
    for sample in load_samples(config).values():
        generate = sample.spec.get("generate", {})
        if generate.get("model") == "zh":
            # the generator's default (samples schema: no defaults inside oneOf branches)
            return float(generate.get("higgs_mass_gev", ModelSettings.higgs_mass_gev))
    return None
