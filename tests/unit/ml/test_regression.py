"""b-jet energy regression: the corrected-mass formula and a learnable toy correction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import vector

from thetaflow.ml.regression import (
    PeakSummary,
    apply_bjet_regression,
    corrected_mbb,
    train_bjet_regression,
)


def test_corrected_mass_equals_scaling_the_four_vectors():
    rng = np.random.default_rng(1)
    n = 1000
    j1 = vector.array(
        {
            "pt": rng.uniform(20, 200, n),
            "eta": rng.normal(0, 1, n),
            "phi": rng.uniform(-3, 3, n),
            "mass": rng.uniform(2, 20, n),
        }
    )
    j2 = vector.array(
        {
            "pt": rng.uniform(20, 200, n),
            "eta": rng.normal(0, 1, n),
            "phi": rng.uniform(-3, 3, n),
            "mass": rng.uniform(2, 20, n),
        }
    )
    c1, c2 = rng.uniform(0.8, 1.4, n), rng.uniform(0.8, 1.4, n)
    scaled = vector.array(
        {
            "px": j1.px * c1 + j2.px * c2,
            "py": j1.py * c1 + j2.py * c2,
            "pz": j1.pz * c1 + j2.pz * c2,
            "E": j1.E * c1 + j2.E * c2,
        }
    )
    got = corrected_mbb(
        np.asarray((j1 + j2).mass), np.asarray(j1.mass), np.asarray(j2.mass), c1, c2
    )
    np.testing.assert_allclose(got, np.asarray(scaled.mass), rtol=1e-9)


def test_peak_summary_of_a_gaussian():
    rng = np.random.default_rng(2)
    mass = rng.normal(120.0, 12.0, 200_000)
    summary = PeakSummary.of(mass, np.ones_like(mass))
    assert summary.peak_gev == pytest.approx(120.0, abs=0.2)
    assert summary.resolution == pytest.approx(0.1, rel=0.03)


def toy_frame(n: int, label: int, rng: np.random.Generator) -> pd.DataFrame:
    """Events whose b jets lost 25 % of their p_T when they carry a soft lepton."""
    data = {
        "run": np.ones(n, np.uint32),
        "luminosityBlock": np.ones(n, np.uint32),
        "event": np.arange(1, n + 1, dtype=np.uint64) + 100_000 * label,
        "label": np.full(n, label, np.int8),
        "weight": np.ones(n),
        "met_gev": rng.uniform(0, 60, n),
        "n_jets": np.full(n, 2.0),
    }
    for jet in ("b1", "b2"):
        soft = rng.uniform(size=n) < 0.4
        gen = np.full(n, 60.0)
        reco = gen * np.where(soft, 0.75, 1.0) * rng.normal(1, 0.03, n)
        data |= {
            f"{jet}_pt_gev": reco,
            f"{jet}_eta": rng.normal(0, 1, n),
            f"{jet}_mass_gev": np.zeros(n),
            f"{jet}_soft_lepton": soft.astype(np.int8),
            f"btag_{jet}": rng.uniform(0.3, 1, n),
            f"{jet}_gen_pt_gev": gen,
            f"{jet}_hadron_flavour": np.full(n, 5, np.int8),
        }
    # massless back-to-back jets at η = 0: m = 2 sqrt(pt1 pt2), 120 GeV before any loss
    data["m_bb_gev"] = 2 * np.sqrt(data["b1_pt_gev"] * data["b2_pt_gev"])
    return pd.DataFrame(data)


def trained_toy(
    tmp_path: Path, n: int, seed: int, n_estimators: int
) -> tuple[dict, dict, dict, dict]:
    """Write signal/background toy tables, train the regression; (config, files, outputs,
    summary)."""
    rng = np.random.default_rng(seed)
    files = {}
    for name, label in (("sig", 1), ("bkg", 0)):
        files[name] = str(tmp_path / f"{name}.parquet")
        toy_frame(n, label, rng).to_parquet(files[name])
    repo = Path(__file__).resolve().parents[3]
    config = {
        "samples": str(repo / "config" / "samples_ci.yaml"),
        "regression": {"seed": 5, "params": {"n_estimators": n_estimators, "max_depth": 3}},
    }
    outputs = {
        "model0": str(tmp_path / "m0.ubj"),
        "model1": str(tmp_path / "m1.ubj"),
        "summary": str(tmp_path / "summary.json"),
        "plot": str(tmp_path / "mbb.png"),
    }
    return config, files, outputs, train_bjet_regression(config, files, outputs)


def test_regression_recovers_the_lost_neutrino_energy(tmp_path):
    _, _, _, summary = trained_toy(tmp_path, 6000, seed=3, n_estimators=100)
    assert json.loads((tmp_path / "summary.json").read_text()) == json.loads(json.dumps(summary))
    # the toy loses 25 % on 40 % of jets: the regression restores the 120 GeV peak, narrower
    assert summary["signal_resolution"]["after"] < 0.5 * summary["signal_resolution"]["before"]
    assert (
        abs(summary["signal_peak_gev"]["after"] - 120.0)
        < 2.0
        < abs(summary["signal_peak_gev"]["before"] - 120.0)
    )
    assert (tmp_path / "mbb.png").stat().st_size > 10_000


def test_applied_regression_gives_the_summarised_signal_mass(tmp_path):
    config, files, outputs, summary = trained_toy(tmp_path, 3000, seed=4, n_estimators=50)
    out = str(tmp_path / "sig_regressed.parquet")
    assert (
        apply_bjet_regression(config, [outputs["model0"], outputs["model1"]], files["sig"], out)
        == 3000
    )
    regressed = pd.read_parquet(out)
    assert list(regressed.columns) == ["run", "luminosityBlock", "event", "m_bb_regressed_gev"]
    peak = PeakSummary.of(regressed["m_bb_regressed_gev"].to_numpy(), np.ones(3000)).peak_gev
    assert peak == pytest.approx(summary["signal_peak_gev"]["after"], abs=0.05)
