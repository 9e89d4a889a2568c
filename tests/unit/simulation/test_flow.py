"""Tests of the conditional flow (:mod:`thetaflow.simulation.flow`) and the jet fast simulation
built on it (:mod:`thetaflow.simulation.fastsim`).

Flows are tiny and trained for a few epochs on a few thousand rows: the assertions are about
the transform (exact inverse, normalised density), the conditioning (the width of a toy jet
response follows the embedded detector's resolution with p_T), seeds, the ``.keras`` round
trip, the fast jets' schema and bookkeeping, and the validation statistics.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import awkward as ak
import keras
import numpy as np
import pytest
import uproot

from thetaflow.core.errors import ConfigError
from thetaflow.core.samples import load_samples
from thetaflow.simulation.detector import Detector
from thetaflow.simulation.fastsim import (
    Acceptance,
    FastSimInputError,
    FastSimSettings,
    JetFastSim,
    check,
    classifier_two_sample_test,
    decode_targets,
    encode_targets,
    fastsim_jets,
    jet_training_set,
    load_model,
    simulate_fastsim_chunk,
    simulate_training_events,
    train_jet_fastsim,
    validate,
)
from thetaflow.simulation.flow import (
    ConditionalFlow,
    TrainingSettings,
    coupling_masks,
    fit_model,
    negative_log_likelihood,
)
from thetaflow.simulation.production import SimulationSettings, model_settings, simulate_mc_chunk

TOY_PT_RANGE_GEV = (20.0, 400.0)
TOY_ROWS = 4000


def _resolution(pt: np.ndarray, jet: object) -> np.ndarray:
    """The embedded detector's relative jet energy resolution at η = 0 (E = p_T)."""
    return np.sqrt(jet.stochastic**2 / pt + jet.constant**2 + (jet.noise_gev / pt) ** 2)


def _toy(rng: np.random.Generator, n: int, jet: object) -> tuple[np.ndarray, np.ndarray]:
    """x = (response, a second coordinate correlated with it), c = log p_T."""
    log_pt = rng.uniform(*np.log(TOY_PT_RANGE_GEV), n)
    pt = np.exp(log_pt)
    response = 1.0 + _resolution(pt, jet) * rng.standard_normal(n)
    other = 0.5 * response + 0.2 * rng.standard_normal(n)
    x = np.stack([response, other], axis=1).astype(np.float32)
    return x, log_pt[:, None].astype(np.float32)


def _train_toy(x: np.ndarray, c: np.ndarray, seed: int, epochs: int) -> ConditionalFlow:
    keras.utils.set_random_seed(seed)
    flow = ConditionalFlow(
        x.mean(0), x.std(0), c.mean(0), c.std(0), coupling_layers=2, hidden_units=(32,), bins=8
    )
    settings = TrainingSettings(epochs=epochs, batch_size=400, learning_rate=1e-2)
    zeros = np.zeros(len(x), np.float32)
    rng = np.random.default_rng(seed)
    fit_model(flow, (x, c), zeros, settings, negative_log_likelihood, rng)
    return flow


@pytest.fixture(scope="module")
def jet_response(default_analysis: tuple[dict, dict]) -> object:
    return Detector.from_config(default_analysis[0]["simulation"]["detector"]).jet


@pytest.fixture(scope="module")
def toy(jet_response: object) -> tuple[ConditionalFlow, np.ndarray, np.ndarray]:
    x, c = _toy(np.random.default_rng(1), TOY_ROWS, jet_response)
    return _train_toy(x, c, seed=3, epochs=10), x, c


def test_masks_alternate_and_cover_every_coordinate() -> None:
    masks = coupling_masks(4, 4)
    assert masks[0] == [1, 1, 0, 0] and masks[1] == [0, 0, 1, 1]
    # every coordinate is transformed (mask 0) by some layer and conditions (1) another
    for i in range(4):
        assert {m[i] for m in masks} == {0, 1}
    assert coupling_masks(1, 3) == [[0], [0], [0]]


def test_sampling_inverts_the_density_transform(toy: tuple) -> None:
    flow, x, c = toy
    z, _ = flow.to_latent(x[:2000], c[:2000])
    back = keras.ops.convert_to_numpy(flow.from_latent(z, c[:2000]))
    np.testing.assert_allclose(back, x[:2000], atol=1e-5)
    # the trained flow maps the data to roughly a standard normal
    z = keras.ops.convert_to_numpy(z)
    assert np.all(np.abs(z.mean(0)) < 0.15) and np.all(np.abs(z.std(0) - 1.0) < 0.15)


def test_density_integrates_to_one(toy: tuple) -> None:
    """∫ p(x | c) dx = E_q[p / q] by importance sampling from a wide Gaussian q."""
    flow, x, _ = toy
    rng = np.random.default_rng(5)
    mean, std = x.mean(0), 3.0 * x.std(0)
    n = 100_000
    sample = (mean + std * rng.standard_normal((n, 2))).astype(np.float32)
    log_q = (-0.5 * ((sample - mean) / std) ** 2 - np.log(std * math.sqrt(2 * math.pi))).sum(1)
    for log_pt in np.log([30.0, 250.0]):
        c = np.full((n, 1), log_pt, np.float32)
        log_p = keras.ops.convert_to_numpy(flow.log_prob(sample, c))
        ratio = np.exp(log_p - log_q)
        assert abs(ratio.mean() - 1.0) < 5 * ratio.std() / math.sqrt(n) + 0.02


def test_response_width_follows_the_detector_resolution(toy: tuple, jet_response: object) -> None:
    flow, _, _ = toy
    rng = np.random.default_rng(11)
    widths = {}
    for pt in (30.0, 300.0):
        c = np.full((20_000, 1), math.log(pt), np.float32)
        z = rng.standard_normal((20_000, 2)).astype(np.float32)
        response = keras.ops.convert_to_numpy(flow.from_latent(z, c))[:, 0]
        widths[pt] = response.std()
        expected = float(_resolution(np.array(pt), jet_response))
        assert abs(response.mean() - 1.0) < 0.3 * expected
        assert widths[pt] == pytest.approx(expected, rel=0.2)
    assert widths[30.0] > 2.0 * widths[300.0]


def test_same_seed_same_flow_other_seed_other_flow(toy: tuple) -> None:
    _, x, c = toy
    first, again = (_train_toy(x[:500], c[:500], seed=3, epochs=1) for _ in range(2))
    for a, b in zip(first.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    other = _train_toy(x[:500], c[:500], seed=4, epochs=1)
    assert not np.array_equal(first.get_weights()[0], other.get_weights()[0])


# --------------------------------------------------------------------------- fast simulation


@pytest.fixture(scope="module")
def simulation(default_analysis: tuple[dict, dict]) -> SimulationSettings:
    config = default_analysis[0]
    return SimulationSettings.from_config(
        {**config["simulation"], "seed": config["seeds"]["simulation"]}
    )


@pytest.fixture(scope="module")
def zjets_events(default_analysis: tuple[dict, dict], simulation: SimulationSettings) -> dict:
    samples = load_samples(default_analysis[0])
    return simulate_training_events(simulation, samples["zjets"], 1500, seed=8)


@pytest.fixture(scope="module")
def trained(zjets_events: dict) -> JetFastSim:
    settings = FastSimSettings(
        sample="zjets",
        training_events=1500,
        seed=21,
        coupling_layers=2,
        hidden_units=(16,),
        spline_bins=6,
        epochs=2,
        batch_size=512,
        learning_rate=5e-3,
    )
    return train_jet_fastsim(jet_training_set(zjets_events, "zjets"), settings).model


def test_training_set_matches_jets_to_genjets(zjets_events: dict) -> None:
    data = jet_training_set(zjets_events, "zjets")
    n_jets = int(ak.sum(ak.num(zjets_events["Jet"])))
    n_matched = int(data.reconstructed.sum())
    # every reco jet is either the one match of its GenJet or unmatched
    assert n_matched + len(data.unmatched["pt"]) == n_jets
    assert int(data.unmatched_counts.sum()) == len(data.unmatched["pt"])
    np.testing.assert_array_equal(
        data.matched["hadronFlavour"], data.gen["hadronFlavour"][data.reconstructed]
    )
    # unmatched: the detector's pile-up jets (flavour 0) and the few hard jets whose GenJet
    # fell below its 10 GeV threshold
    assert np.mean(data.unmatched["hadronFlavour"] == 0) > 0.9
    assert data.aux_fields == ("jetId", "puId", "nMuons", "nElectrons")


def test_encoding_round_trip(zjets_events: dict) -> None:
    data = jet_training_set(zjets_events, "zjets")
    gen = {f: v[data.reconstructed].astype(np.float64) for f, v in data.gen.items()}
    reco = data.matched
    acceptance = Acceptance.of(reco["pt"], reco["eta"], reco["btagDeepFlavB"])
    assert acceptance.tracker_abs_eta_max == pytest.approx(2.5, abs=0.02)
    x = encode_targets(gen, reco, acceptance, np.random.default_rng(0))
    back = decode_targets(x, gen, acceptance)
    np.testing.assert_allclose(back["pt"], reco["pt"], rtol=1e-5)
    np.testing.assert_allclose(back["eta"], reco["eta"], atol=1e-5)
    dphi = np.mod(back["phi"] - reco["phi"] + np.pi, 2 * np.pi) - np.pi
    assert np.all(np.abs(dphi) < 1e-5)
    np.testing.assert_allclose(back["btagDeepFlavB"], reco["btagDeepFlavB"], atol=1e-5)


def test_fast_jets_have_the_full_schema_and_bookkeeping(
    trained: JetFastSim, zjets_events: dict
) -> None:
    fast = fastsim_jets(trained, zjets_events, np.random.default_rng(4))
    full_jets, jets = zjets_events["Jet"], fast["Jet"]
    assert str(jets.type.content) == str(full_jets.type.content)
    assert len(jets) == len(full_jets)
    pt = jets.pt
    assert ak.all(pt[:, 1:] <= pt[:, :-1])  # sorted by p_T, as NanoAOD
    assert ak.min(pt) > trained.acceptance.pt_threshold_gev
    assert ak.max(abs(jets.eta)) <= trained.acceptance.abs_eta_max
    outside = abs(jets.eta) >= trained.acceptance.tracker_abs_eta_max
    assert ak.all(jets.btagDeepFlavB[outside] == 0)
    # a matched jet carries its GenJet's flavour; the others come from the pile-up pool
    idx = jets.genJetIdx
    matched = idx >= 0
    gen_flavour = zjets_events["GenJet"].hadronFlavour[ak.where(matched, idx, 0)[matched]]
    assert ak.all(jets.hadronFlavour[matched] == gen_flavour)
    pool_pt = trained.tables.pool[:, trained.pool_fields.index("pt")]
    assert np.isin(ak.to_numpy(ak.flatten(jets.pt[~matched])), pool_pt.astype(np.float32)).all()
    # the MET moved by the change in the jets only; the rest is the full event's
    assert fast["Muon"] is zjets_events["Muon"]
    assert not np.array_equal(fast["MET_pt"], zjets_events["MET_pt"])
    assert fast["MET_pt"].dtype == zjets_events["MET_pt"].dtype
    # the multiplicities agree within statistics
    n_full, n_fast = int(ak.sum(ak.num(full_jets))), int(ak.sum(ak.num(jets)))
    assert abs(n_fast - n_full) < 5 * math.sqrt(n_full)


def test_save_load_round_trip(trained: JetFastSim, zjets_events: dict, tmp_path: Path) -> None:
    path = tmp_path / "fastsim.keras"
    trained.save(str(path))
    loaded = load_model(str(path))
    assert loaded.acceptance == trained.acceptance
    assert loaded.jet_fields == trained.jet_fields
    for name in ("aux_cdf", "pool", "unmatched_cdf"):
        np.testing.assert_array_equal(getattr(loaded.tables, name), getattr(trained.tables, name))
    a = fastsim_jets(trained, zjets_events, np.random.default_rng(9))["Jet"]
    b = fastsim_jets(loaded, zjets_events, np.random.default_rng(9))["Jet"]
    assert ak.to_list(a) == ak.to_list(b)


def test_fastsim_chunk_is_written_like_the_full_one(
    trained: JetFastSim,
    default_analysis: tuple[dict, dict],
    simulation: SimulationSettings,
    tmp_path: Path,
) -> None:
    """Same truth, bookkeeping, branches and leptons as the full chunk; other jets."""
    zjets = load_samples(default_analysis[0])["zjets"]
    generate = {**zjets.spec["generate"], "n_events": 600}
    sample = dataclasses.replace(zjets, spec={**zjets.spec, "generate": generate})
    settings = dataclasses.replace(simulation, events_per_chunk=600)
    paths = {kind: str(tmp_path / f"{kind}.root") for kind in ("full", "fast")}
    full = simulate_mc_chunk(settings, model_settings(generate), "zjets", 0, 600, paths["full"])
    fast = simulate_fastsim_chunk(settings, sample, trained, 0, paths["fast"])
    assert (fast["filtered"], fast["generated"]) == (full["filtered"], full["generated"])
    with uproot.open(paths["full"]) as f, uproot.open(paths["fast"]) as g:
        assert set(f["Events"].keys()) == set(g["Events"].keys())
        runs_full, runs_fast = (t["Runs"].arrays(library="np") for t in (f, g))
        for key, values in runs_full.items():
            np.testing.assert_array_equal(values, runs_fast[key])
        a, b = (t["Events"].arrays(["event", "Muon_pt", "Jet_pt"]) for t in (f, g))
    common, ia, ib = np.intersect1d(a.event, b.event, return_indices=True)
    assert len(common) > 0.5 * min(len(a), len(b))
    assert ak.all(a.Muon_pt[ia] == b.Muon_pt[ib])
    assert ak.to_list(a.Jet_pt[ia]) != ak.to_list(b.Jet_pt[ib])


def test_missing_condition_branch_is_named(zjets_events: dict) -> None:
    events = dict(zjets_events)
    genjets = events["GenJet"]
    events["GenJet"] = ak.zip(
        {f: genjets[f] for f in genjets.fields if f != "hadronFlavour"}, depth_limit=2
    )
    with pytest.raises(FastSimInputError, match="GenJet_hadronFlavour"):
        jet_training_set(events, "zjets")


def test_fastsim_of_data_or_unknown_sample_is_rejected(default_analysis: tuple[dict, dict]) -> None:
    config, samples = default_analysis
    for name, message in (("data", "data sample"), ("nope", "not in the sample list")):
        bad = {**config, "fastsim": {"sample": name}}
        with pytest.raises(ConfigError, match=f"fastsim.sample.*{message}"):
            check(bad, samples)
    check({**config, "fastsim": {"sample": "zjets"}}, samples)


# --------------------------------------------------------------------------- validation


def test_identical_samples_are_indistinguishable() -> None:
    rng = np.random.default_rng(2)
    n = 1500
    table = {"a": rng.normal(size=n), "b": rng.exponential(size=n), "event": np.arange(n * 1.0)}
    # the same rows twice, paired: no classifier can tell them apart, and W1 is 0
    same = validate(table, dict(table), seed=1, group="event")
    assert same.c2st.auc == pytest.approx(0.5, abs=1e-12)
    assert all(d.wasserstein == 0.0 for d in same.distances.values())
    # two independent draws of one distribution: AUC within the null spread, W1 small
    other = {"a": rng.normal(size=n), "b": rng.exponential(size=n)}
    draws = validate({k: table[k] for k in "ab"}, other, seed=1)
    assert abs(draws.c2st.auc - 0.5) < 4 * draws.c2st.null_std
    assert all(d.relative < 0.1 for d in draws.distances.values())


def test_a_shifted_sample_is_detected() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(size=(1500, 2))
    b = rng.normal(size=(1500, 2)) + [0.6, 0.0]
    test = classifier_two_sample_test(a, b, seed=1)
    assert test.auc > 0.5 + 5 * test.null_std
    result = validate({"x": a[:, 0]}, {"x": b[:, 0]}, seed=1)
    assert result.distances["x"].wasserstein == pytest.approx(0.6, abs=0.1)


def test_settings_from_config_shape() -> None:
    settings = FastSimSettings.from_config(
        {
            "sample": "zjets",
            "training_events": 100,
            "seed": 1,
            "coupling_layers": 4,
            "hidden_units": [64, 64],
            "spline_bins": 8,
            "epochs": 3,
            "batch_size": 256,
            "learning_rate": 0.001,
        }
    )
    assert settings.hidden_units == (64, 64)
    assert dataclasses.replace(settings, seed=2).training() == settings.training()
