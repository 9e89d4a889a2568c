"""What the embedded simulation gives control regions: the hard-process heavy-flavour truth
(``LHE_Nb``/``LHE_Nc``) that splits a sample into fit processes, pseudo-data at true
normalisation factors per process (Poisson thinning), opposite-flavour lepton pairs through
the generator filter (the eμ top region) and a skim that keeps b-tag-inverted events (the
Z+light region).

Statistical assertions allow N_SIGMA = 5 standard errors computed from the sample sizes, at
fixed seeds, as in test_simulation.py.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import awkward as ak
import numpy as np
import pytest
import uproot

from thetaflow.core.config import validate
from thetaflow.core.errors import ConfigError
from thetaflow.core.samples import PROCESS_TRUTH_COLUMNS, Sample, process_masks
from thetaflow.simulation.detector import reconstruct
from thetaflow.simulation.generator import generate
from thetaflow.simulation.production import (
    TRUTH_ONLY_BRANCHES,
    PseudoDataComponent,
    SimulationSettings,
    Skim,
    generate_filtered,
    model_settings,
    simulate_mc_chunk,
    simulate_pseudo_data_chunk,
    thin_to_factors,
)

N_SIGMA = 5.0
FACTORS = {"zjets_hf": 1.25, "zjets_lf": 0.90}
BTAG_MEDIUM = 0.2783


@pytest.fixture(scope="module")
def samples(default_analysis):
    return default_analysis[1]


@pytest.fixture(scope="module")
def settings(default_analysis) -> SimulationSettings:
    return SimulationSettings.from_config({**default_analysis[0]["simulation"], "seed": 3})


@pytest.fixture(scope="module")
def zjets(samples) -> Sample:
    """Z+jets split into Z+hf (a b or c pair) and Z+lf (light) by its LHE truth."""
    spec = copy.deepcopy(dict(samples["zjets"].spec))
    spec["processes"] = {
        "zjets_hf": {"expr": "lhe_nb > 0 or lhe_nc > 0", "label": "Z+hf"},
        "zjets_lf": {"expr": "lhe_nb == 0 and lhe_nc == 0", "label": "Z+lf"},
    }
    return Sample("zjets", spec)


@pytest.fixture(scope="module")
def plain_zjets(zjets):
    """The Z+jets generator as pseudo-data run it: physical flavour mix, unit weights."""
    return dataclasses.replace(
        model_settings(zjets.spec["generate"]),
        generated_flavour_fractions=None,
        negative_weight_fraction=0.0,
    )


# --- LHE heavy-flavour counts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("zz", (2, 0)),  # Z → bb̄ decayed by the matrix-element generator
        ("ttbar", (2, 0)),  # t → Wb in the LHE record
        ("zh", (0, 0)),  # H → bb̄ decayed by the parton shower, after the LHE step
        ("bsm", (0, 0)),  # Y → bb̄: the same logic as the Higgs boson
    ],
)
def test_lhe_counts_of_the_fixed_flavour_models(samples, sample, expected):
    truth = generate(
        np.random.default_rng(1), model_settings(samples[sample].spec["generate"]), 500
    )
    assert np.all(truth.hadron_flavour[:, :2] == 5)  # every model's pair is bb̄
    assert truth.lhe_nb.dtype == truth.lhe_nc.dtype == np.uint8
    assert np.all(truth.lhe_nb == expected[0]) and np.all(truth.lhe_nc == expected[1])


def test_lhe_counts_of_z_jets_follow_the_generated_pair_flavour(samples):
    model = model_settings(samples["zjets"].spec["generate"])
    truth = generate(np.random.default_rng(2), model, 3_000)
    flavour = truth.hadron_flavour[:, 0]
    assert {0, 4, 5} == set(np.unique(flavour).tolist())
    np.testing.assert_array_equal(truth.lhe_nb, np.where(flavour == 5, 2, 0))
    np.testing.assert_array_equal(truth.lhe_nc, np.where(flavour == 4, 2, 0))
    # filtering keeps every event's counts with it
    kept = truth.take(np.arange(len(truth)) % 3 == 0)
    np.testing.assert_array_equal(kept.lhe_nb, truth.lhe_nb[::3])


def test_mc_files_carry_the_lhe_counts(tmp_path, settings, samples):
    path = tmp_path / "zjets.root"
    model = model_settings(samples["zjets"].spec["generate"])
    simulate_mc_chunk(settings, model, "zjets", 0, 1_500, str(path))
    with uproot.open(path) as f:
        tree = f["Events"]
        assert set(PROCESS_TRUTH_COLUMNS.values()) <= set(tree.keys())
        assert tree["LHE_Nb"].typename == tree["LHE_Nc"].typename == "uint8_t"
        nb, nc = (tree[b].array(library="np") for b in ("LHE_Nb", "LHE_Nc"))
        pdg = tree["GenPart_pdgId"].array()
    # GenPart holds the two leptons, then the hard parton pair (the first at slot 2)
    quark = np.abs(ak.to_numpy(pdg[:, 2]))
    np.testing.assert_array_equal(nb, np.where(quark == 5, 2, 0))
    np.testing.assert_array_equal(nc, np.where(quark == 4, 2, 0))
    assert set(PROCESS_TRUTH_COLUMNS.values()) <= set(TRUTH_ONLY_BRANCHES)


# --- pseudo-data at true normalisation factors ------------------------------------------------


def test_thinning_keeps_each_process_with_probability_k_over_k_max(zjets, plain_zjets):
    truth = generate(np.random.default_rng(4), plain_zjets, 20_000)
    component = PseudoDataComponent(zjets, plain_zjets, FACTORS)
    thinned, counts = thin_to_factors(np.random.default_rng(5), component, truth)
    before = process_masks(zjets, {"lhe_nb": truth.lhe_nb, "lhe_nc": truth.lhe_nc})
    after = process_masks(zjets, {"lhe_nb": thinned.lhe_nb, "lhe_nc": thinned.lhe_nc})
    # k_max = k(Z+hf): every Z+hf event is kept, Z+lf ones with probability 0.90 / 1.25
    assert after["zjets_hf"].sum() == before["zjets_hf"].sum() == counts["zjets_hf"].kept
    p = FACTORS["zjets_lf"] / FACTORS["zjets_hf"]
    n_lf = int(before["zjets_lf"].sum())
    assert counts["zjets_lf"].before_thinning == n_lf > 10_000
    assert counts["zjets_lf"].expected == pytest.approx(n_lf * p)
    assert abs(counts["zjets_lf"].kept - n_lf * p) < N_SIGMA * math.sqrt(n_lf * p * (1 - p))
    assert after["zjets_lf"].sum() == counts["zjets_lf"].kept


@pytest.mark.parametrize("k", [1.0, 1.3])
def test_equal_factors_draw_no_random_number(zjets, plain_zjets, k):
    """Nothing to thin: the same events, and the random stream untouched, so pseudo-data at
    unit factors are exactly those of a plain Poisson draw."""
    truth = generate(np.random.default_rng(6), plain_zjets, 500)
    rng = np.random.default_rng(7)
    state = copy.deepcopy(rng.bit_generator.state)
    component = PseudoDataComponent(zjets, plain_zjets, {"zjets_hf": k, "zjets_lf": k})
    thinned, counts = thin_to_factors(rng, component, truth)
    assert thinned is truth and rng.bit_generator.state == state
    assert sum(c.kept for c in counts.values()) == len(truth)


def _pseudo_data(settings, zjets, plain_zjets, factors, seed, path):
    lumi_fb = 0.5  # 75,000 Z+jets produced at k = 1: ~5,600 Z+hf and ~22,600 Z+lf filtered
    component = PseudoDataComponent(zjets, plain_zjets, factors)
    return simulate_pseudo_data_chunk(
        settings, [component], lumi_fb, seed, "data", 0, 1, str(path)
    )["zjets"]


def test_pseudo_data_yields_follow_the_true_factors(tmp_path, settings, zjets, plain_zjets):
    """Z+hf at k = 1.25 and Z+lf at 0.90 against an independent draw at k = 1: the ratio of
    the yields of each process is k within 5 standard errors (Poisson, both draws); the
    same seed gives the same file, and the file carries no truth."""
    scaled = _pseudo_data(settings, zjets, plain_zjets, FACTORS, 1, tmp_path / "k.root")
    nominal = _pseudo_data(settings, zjets, plain_zjets, {}, 2, tmp_path / "one.root")
    assert scaled["expected"] == pytest.approx(1.25 * nominal["expected"])
    for name, k in FACTORS.items():
        n_k = scaled["processes"][name]["kept"]
        n_1 = nominal["processes"][name]["kept"]
        assert n_1 > 5_000 and nominal["processes"][name]["factor"] == 1.0
        ratio = n_k / n_1
        assert abs(ratio - k) < N_SIGMA * ratio * math.sqrt(1 / n_k + 1 / n_1), (name, ratio)
    again = _pseudo_data(settings, zjets, plain_zjets, FACTORS, 1, tmp_path / "again.root")
    assert again == scaled
    with uproot.open(tmp_path / "k.root") as f, uproot.open(tmp_path / "again.root") as g:
        keys = set(f["Events"].keys())
        assert not set(PROCESS_TRUTH_COLUMNS.values()) & keys
        for branch in ("MET_pt", "Jet_pt", "Muon_pt"):
            assert ak.array_equal(f["Events"][branch].array(), g["Events"][branch].array())


# --- the generator filter's lepton flavours -----------------------------------------------------


def _pair_kind(pdg: np.ndarray) -> np.ndarray:
    """0 ee, 1 μμ, 2 eμ."""
    a, b = np.abs(pdg[:, 0]), np.abs(pdg[:, 1])
    return np.where(a != b, 2, np.where(a == 11, 0, 1))


def test_ttbar_makes_ee_mumu_emu_one_to_one_to_two(samples, settings):
    model = model_settings(samples["ttbar"].spec["generate"])
    unfiltered = generate(np.random.default_rng(8), model, 8_000)
    any_flavour = dataclasses.replace(settings.filter, pair_flavours="any")
    filtered = generate_filtered(np.random.default_rng(9), model, any_flavour, n_accepted=4_000)
    for truth in (unfiltered, filtered.truth):
        kinds = _pair_kind(truth.lepton_pdg)
        n = kinds.size
        for kind, p in ((0, 0.25), (1, 0.25), (2, 0.5)):
            share = np.mean(kinds == kind)
            assert abs(share - p) < N_SIGMA * math.sqrt(p * (1 - p) / n), (kind, share)


def test_pair_flavours_any_lets_emu_pass_and_same_does_not(samples, settings):
    model = model_settings(samples["ttbar"].spec["generate"])
    assert settings.filter.pair_flavours == "same"  # the default
    same = generate_filtered(np.random.default_rng(10), model, settings.filter, n_accepted=2_000)
    assert not np.any(_pair_kind(same.truth.lepton_pdg) == 2)
    any_flavour = dataclasses.replace(settings.filter, pair_flavours="any")
    both = generate_filtered(np.random.default_rng(10), model, any_flavour, n_accepted=2_000)
    assert np.any(_pair_kind(both.truth.lepton_pdg) == 2)
    assert np.all(any_flavour.passes(both.truth))
    # eμ doubles the filter efficiency: ratio 2 within the binomial errors of both
    eff_same = len(same.truth) / same.n_generated
    eff_any = len(both.truth) / both.n_generated
    se = 2 * math.sqrt(
        eff_same * (1 - eff_same) / same.n_generated * 4
        + eff_any * (1 - eff_any) / both.n_generated
    )
    assert abs(eff_any / eff_same - 2.0) < N_SIGMA * se / eff_same
    # Z + pair processes make same-flavour pairs only: the choice does not change them
    zh = model_settings(samples["zh"].spec["generate"])
    a = generate_filtered(np.random.default_rng(11), zh, settings.filter, n_accepted=500)
    b = generate_filtered(np.random.default_rng(11), zh, any_flavour, n_accepted=500)
    np.testing.assert_array_equal(a.truth.lepton_pdg, b.truth.lepton_pdg)
    np.testing.assert_array_equal(np.asarray(a.truth.leptons[0].px), b.truth.leptons[0].px)


def test_pair_flavours_is_a_checked_config_key(default_config):
    generator_filter = default_config["simulation"]["generator_filter"]
    assert generator_filter["pair_flavours"] == "same"
    generator_filter["pair_flavours"] = "any"
    settings = SimulationSettings.from_config({**default_config["simulation"], "seed": 1})
    assert settings.filter.pair_flavours == "any"
    generator_filter["pair_flavours"] = "opposite"
    with pytest.raises(ConfigError, match="pair_flavours"):
        validate(default_config, "config.schema.yaml", "config.yaml")


# --- the skim and a b-tag-inverted region --------------------------------------------------------


def test_a_skim_at_btag_min_zero_keeps_every_z_light_event(plain_zjets, settings):
    """Z+light events with two leptons and two jets and no medium b-tag (a Z+lf control
    region): a skim at btag_min 0 keeps every one with a jet inside the b-tag acceptance
    (outside it the score is 0); the default loose-tag skim loses most of them."""
    light = dataclasses.replace(plain_zjets, flavour_fractions={"light": 1.0, "c": 0.0, "b": 0.0})
    truth = generate(np.random.default_rng(12), light, 6_000)
    reco = reconstruct(np.random.default_rng(13), truth, settings.detector)
    jets = reco["Jet"]
    leptons = ak.num(reco["Muon"]) + ak.num(reco["Electron"])
    in_tracker = ak.any(np.abs(jets.eta) < settings.detector.btag.abs_eta_max, axis=1)
    inverted = ak.to_numpy(
        (leptons >= 2)
        & (ak.num(jets) >= 2)
        & in_tracker
        & ~ak.any(jets.btagDeepFlavB > BTAG_MEDIUM, axis=1)
    )
    assert inverted.sum() > 1_000
    open_skim = dataclasses.replace(settings.skim, btag_min=0.0)
    assert np.all(open_skim.passes(reco)[inverted])
    assert settings.skim.btag_min > 0  # the default asks for one loose tag
    assert np.mean(settings.skim.passes(reco)[inverted]) < 0.8
    assert Skim(enabled=False, min_leptons=2, min_jets=2, btag_min=1.0).passes(reco).all()
