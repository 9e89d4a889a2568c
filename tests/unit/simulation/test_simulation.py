"""Physics and bookkeeping tests of the embedded simulation.

Covers the truth-level building blocks (:mod:`thetaflow.simulation.kinematics`), the process
models (:mod:`thetaflow.simulation.generator`), the detector response
(:mod:`thetaflow.simulation.detector`) and the chunk writers
(:mod:`thetaflow.simulation.production`). Every statistical assertion uses a tolerance of
about five standard errors computed from the sample size (plus, where stated, a small
systematic allowance), with fixed seeds, so the tests are deterministic and not flaky.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
import vector
from scipy import stats

from thetaflow.analysis import check_analysis
from thetaflow.core.errors import ConfigError
from thetaflow.core.jagged import Objects
from thetaflow.ingestion.selection import Selection, object_mask
from thetaflow.simulation.detector import ELECTRON_WORKING_POINTS, reconstruct
from thetaflow.simulation.generator import (
    LEPTON_MASS_GEV,
    W_MASS_GEV,
    Z_MASS_GEV,
    Z_WIDTH_GEV,
    complete,
    generate,
    generate_leptons,
)
from thetaflow.simulation.kinematics import (
    Momenta,
    boost_to_lab,
    breit_wigner,
    decay,
    decay_first,
    sample_cos_theta,
    system_momenta,
    system_momentum,
    two_body_decay,
)
from thetaflow.simulation.production import (
    PseudoDataComponent,
    SimulationSettings,
    generate_filtered,
    model_settings,
    simulate_mc_chunk,
    simulate_pseudo_data_chunk,
)

N_SIGMA = 5.0
N_TRUTH = 20_000  # filtered truth events per process model
BTAG_MEDIUM = 0.2783


# --- helpers ------------------------------------------------------------------------------


def truncated_cauchy_quantile(
    p: float, mass: float, width: float, low: float, high: float
) -> float:
    """Quantile ``p`` of a Breit-Wigner (Cauchy) of pole ``mass``, ``width`` truncated to
    [low, high]."""
    lo = math.atan(2.0 * (low - mass) / width)
    hi = math.atan(2.0 * (high - mass) / width)
    return mass + 0.5 * width * math.tan(lo + p * (hi - lo))


def truncated_cauchy_density(x: float, mass: float, width: float, low: float, high: float) -> float:
    lo = math.atan(2.0 * (low - mass) / width)
    hi = math.atan(2.0 * (high - mass) / width)
    return (0.5 * width / ((x - mass) ** 2 + 0.25 * width**2)) / (hi - lo)


def quantile_se(p: float, density: float, n: int) -> float:
    """Asymptotic standard error of the sample p-quantile: sqrt(p(1-p)/n) / f(x_p)."""
    return math.sqrt(p * (1.0 - p) / n) / density


def iqr(x: np.ndarray) -> float:
    q1, q3 = np.quantile(x, [0.25, 0.75])
    return float(q3 - q1)


def pair_mass(a, b) -> np.ndarray:
    return np.asarray((a + b).mass, dtype=float)


def binomial_tolerance(p: float, n: int) -> float:
    return N_SIGMA * math.sqrt(p * (1.0 - p) / n)


def read_tree(path: Path, tree: str = "Events") -> dict[str, ak.Array]:
    with uproot.open(path) as f:
        t = f[tree]
        # a TTree iterates over its branches, not their names
        return {k: t[k].array(library="ak") for k in t.keys()}  # noqa: SIM118


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def analysis(default_analysis):
    return default_analysis


@pytest.fixture(scope="module")
def config(analysis):
    return analysis[0]


@pytest.fixture(scope="module")
def samples(analysis):
    return analysis[1]


@pytest.fixture(scope="module")
def settings(config) -> SimulationSettings:
    return SimulationSettings.from_config({**config["simulation"], "seed": 1})


@pytest.fixture(scope="module")
def models(samples):
    return {
        name: model_settings(samples[name].spec["generate"])
        for name in ("zh", "zz", "zjets", "ttbar")
    }


@pytest.fixture(scope="module")
def truth(settings, models):
    """Filtered truth events of every process model (fixed seeds)."""
    out = {}
    for seed, name in enumerate(("zh", "zz", "zjets", "ttbar"), start=11):
        rng = np.random.default_rng(seed)
        out[name] = generate_filtered(rng, models[name], settings.filter, n_accepted=N_TRUTH)
    return out


@pytest.fixture(scope="module")
def zjets_reco(settings, truth):
    """Detector response of the Z+jets truth (b, c and light jets, electrons and muons)."""
    gen = truth["zjets"].truth
    return gen, reconstruct(np.random.default_rng(99), gen, settings.detector)


# --- kinematics: Breit-Wigner ---------------------------------------------------------------


def test_breit_wigner_stays_inside_the_truncation_window():
    rng = np.random.default_rng(1)
    x = breit_wigner(rng, 91.1876, 2.4952, 50_000, 80.0, 95.0)
    assert x.shape == (50_000,)
    assert x.min() >= 80.0 and x.max() <= 95.0
    # the asymmetric window shifts the median to the truncated-Cauchy median, not the pole
    expected = truncated_cauchy_quantile(0.5, 91.1876, 2.4952, 80.0, 95.0)
    f = truncated_cauchy_density(expected, 91.1876, 2.4952, 80.0, 95.0)
    assert abs(np.median(x) - expected) < N_SIGMA * quantile_se(0.5, f, x.size)


def test_breit_wigner_median_is_the_pole_and_iqr_the_width():
    """A Cauchy of width Γ has median m and interquartile range Γ (wide window)."""
    rng = np.random.default_rng(2)
    mass, width, n = 125.0, 4.0, 100_000
    low, high = mass - 1000 * width, mass + 1000 * width
    x = breit_wigner(rng, mass, width, n, low, high)
    assert x.min() >= low and x.max() <= high
    f_peak = truncated_cauchy_density(mass, mass, width, low, high)
    assert abs(np.median(x) - mass) < N_SIGMA * quantile_se(0.5, f_peak, n)
    f_q = truncated_cauchy_density(mass + width / 2, mass, width, low, high)
    # the two quartiles' errors add at most linearly
    assert abs(iqr(x) - width) < N_SIGMA * 2 * quantile_se(0.25, f_q, n) + 0.005 * width


def test_breit_wigner_follows_the_truncated_cauchy_shape():
    rng = np.random.default_rng(3)
    mass, width, low, high = 80.377, 2.085, 60.0, 90.0
    x = breit_wigner(rng, mass, width, 20_000, low, high)
    lo, hi = np.arctan(2 * (low - mass) / width), np.arctan(2 * (high - mass) / width)
    cdf = lambda v: (np.arctan(2 * (v - mass) / width) - lo) / (hi - lo)  # noqa: E731
    assert stats.kstest(x, cdf).pvalue > 1e-3


def test_breit_wigner_zero_width_is_the_pole_mass():
    x = breit_wigner(np.random.default_rng(4), 172.5, 0.0, 10, 100.0, 200.0)
    np.testing.assert_array_equal(x, np.full(10, 172.5))


# --- kinematics: production angle -----------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "expected_c2"),
    [(0.0, 1.0 / 3.0), (-1.0, 1.0 / 5.0), (2.0, (1 / 3 + 2 / 5) / (1 + 2 / 3))],
)
def test_sample_cos_theta_second_moment(a, expected_c2):
    """⟨cos²θ⟩ = (1/3 + a/5) / (1 + a/3) for a density ∝ 1 + a cos²θ."""
    n = 100_000
    c = sample_cos_theta(np.random.default_rng(5), n, a)
    assert c.shape == (n,)
    assert np.all(np.abs(c) <= 1.0)
    c2 = c * c
    assert abs(c2.mean() - expected_c2) < N_SIGMA * c2.std() / math.sqrt(n)
    assert abs(c.mean()) < N_SIGMA * c.std() / math.sqrt(n)  # symmetric in cos θ


def test_sample_cos_theta_flat_for_a_zero():
    c = sample_cos_theta(np.random.default_rng(6), 20_000, 0.0)
    assert stats.kstest(c, stats.uniform(loc=-1, scale=2).cdf).pvalue > 1e-3


@pytest.mark.parametrize("a", [-1.0001, -2.0])
def test_sample_cos_theta_rejects_negative_density(a):
    with pytest.raises(ValueError, match="must be >= -1"):
        sample_cos_theta(np.random.default_rng(7), 10, a)


# --- kinematics: two-body decay --------------------------------------------------------------


def test_two_body_decay_conserves_mass_and_momentum():
    rng = np.random.default_rng(8)
    n = 5_000
    parent_mass = 172.5 + rng.normal(0, 2.0, n)
    parent = system_momentum(rng, parent_mass, rng.exponential(80.0, n), 1.5)
    m_w = 80.0 + rng.normal(0, 2.0, n)
    d1, d2 = two_body_decay(rng, parent, m_w, 4.78)
    total = d1 + d2
    np.testing.assert_allclose(np.asarray(total.mass), parent_mass, rtol=1e-6)
    scale = np.asarray(parent.E)
    for comp in ("px", "py", "pz", "E"):
        np.testing.assert_allclose(
            np.asarray(getattr(total, comp)),
            np.asarray(getattr(parent, comp)),
            rtol=0,
            atol=1e-9 * scale.max(),
        )
    np.testing.assert_allclose(np.asarray(d1.mass), m_w, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(d2.mass), 4.78, rtol=1e-5)


def test_two_body_decay_rest_frame_momentum_and_angle():
    """In the parent rest frame: |p*| = λ^½(M², m1², m2²)/2M and cos θ* as requested."""
    rng = np.random.default_rng(9)
    n = 2_000
    parent = system_momentum(rng, np.full(n, 125.0), rng.exponential(60.0, n), 1.0)
    cos_theta = rng.uniform(-1, 1, n)
    d1, d2 = two_body_decay(rng, parent, 4.78, 4.78, cos_theta=cos_theta)
    rest = d1.boost_beta3(-parent.to_beta3())
    p_star = math.sqrt(125.0**2 / 4 - 4.78**2)
    np.testing.assert_allclose(np.asarray(rest.mag), p_star, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(rest.pz) / np.asarray(rest.mag), cos_theta, atol=1e-6)


def test_two_body_decay_at_rest_is_back_to_back():
    rng = np.random.default_rng(10)
    parent = vector.array(
        {"px": np.zeros(3), "py": np.zeros(3), "pz": np.zeros(3), "E": np.full(3, Z_MASS_GEV)}
    )
    d1, d2 = two_body_decay(rng, parent, 0.0, 0.0)
    np.testing.assert_allclose(np.asarray(d1.E), Z_MASS_GEV / 2, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(d1.mag), Z_MASS_GEV / 2, rtol=1e-12)
    for comp in ("px", "py", "pz"):
        np.testing.assert_allclose(
            np.asarray(getattr(d1, comp)), -np.asarray(getattr(d2, comp)), atol=1e-12
        )


def test_boost_to_lab_matches_vectors_boost_p4():
    """The closed-form boost is the Lorentz boost vector computes with its general method."""
    rng = np.random.default_rng(12)
    n = 5_000
    parent_mass = rng.uniform(10.0, 500.0, n)
    parent = system_momenta(rng, parent_mass, rng.exponential(100.0, n), 2.0)
    p = rng.normal(0.0, 50.0, (3, n))
    rest = Momenta(p[0], p[1], p[2], np.sqrt((p**2).sum(axis=0) + rng.uniform(0.0, 30.0, n) ** 2))
    ours = boost_to_lab(rest, parent, parent_mass)
    theirs = rest.to_vector().boost_p4(parent.to_vector())
    # agreement to rounding, relative to the boosted energy (a component can be ~0); vector
    # takes the parent's mass from E² - p², which loses ~γ² ε (γ reaches ~10³ here)
    gamma = parent.E / parent_mass
    tolerance = (1e-12 + 1e-13 * gamma**2) * np.asarray(theirs.E)
    for comp in ("px", "py", "pz", "E"):
        deviation = np.abs(getattr(ours, comp) - np.asarray(getattr(theirs, comp)))
        assert np.all(deviation <= tolerance), comp


def test_decay_first_is_the_first_daughter_and_the_parent_minus_it_the_second():
    n = 2_000
    parent_mass = np.full(n, 172.5)
    parent = system_momenta(np.random.default_rng(13), parent_mass, np.full(n, 60.0), 1.5)
    w_mass = breit_wigner(np.random.default_rng(14), W_MASS_GEV, 2.085, n, 40.0, 167.0)
    d1, d2 = decay(np.random.default_rng(15), parent, parent_mass, w_mass, 4.78)
    first = decay_first(np.random.default_rng(15), parent, parent_mass, w_mass, 4.78)
    second = parent - first
    for comp in ("px", "py", "pz", "E"):
        np.testing.assert_array_equal(getattr(first, comp), getattr(d1, comp))
        np.testing.assert_allclose(getattr(second, comp), getattr(d2, comp), rtol=0, atol=1e-9)
    np.testing.assert_allclose(second.mass, 4.78, rtol=1e-6)


# --- generator truth ------------------------------------------------------------------------


def test_generate_leptons_keeps_the_passing_events_with_their_batch_positions(models, settings):
    """The first stage returns the passing events in order with their positions in the batch
    and every event's weight; the second stage completes exactly those events."""
    n = 20_000
    for name in ("ttbar", "zjets"):
        rng = np.random.default_rng(16)
        level = generate_leptons(rng, models[name], n, settings.filter)
        assert level.n_generated == n and level.batch_weights.shape == (n,)
        assert 0 < len(level) < n
        assert np.all(np.diff(level.index) > 0) and level.index[-1] < n
        truth = complete(rng, models[name], level)
        assert len(truth) == len(level)
        assert np.all(settings.filter.passes(truth))
        np.testing.assert_array_equal(truth.gen_weight, level.batch_weights[level.index])
        unfiltered = generate_leptons(np.random.default_rng(17), models[name], 1_000)
        np.testing.assert_array_equal(unfiltered.index, np.arange(1_000))


@pytest.mark.parametrize("name", ["ttbar", "zjets"])
def test_filtering_between_the_stages_is_filtering_complete_events(truth, models, settings, name):
    """Filtering on the leptons before the rest is generated gives the distributions (and the
    efficiency) of complete events filtered afterwards: KS tests at fixed seeds."""
    staged = truth[name]
    probe = generate(np.random.default_rng(18), models[name], 150_000)
    passed = settings.filter.passes(probe)
    full = probe.take(passed)
    eff_staged = len(staged.truth) / staged.n_generated
    eff_full = float(passed.mean())
    se = math.sqrt(
        eff_full * (1 - eff_full) / passed.size + eff_staged * (1 - eff_staged) / staged.n_generated
    )
    assert abs(eff_staged - eff_full) < N_SIGMA * se

    def observables(t):
        nu = np.hypot(t.neutrino_px, t.neutrino_py)
        return {
            "lepton pT": np.asarray(t.leptons[0].pt),
            "m_ll": pair_mass(t.leptons[0], t.leptons[1]),
            "b pT": np.asarray(t.partons[0].pt),
            "m_qq": pair_mass(t.partons[0], t.partons[1]),
            "ISR eta": np.asarray(t.partons[2].eta),
            "neutrino pT": nu,
            "same-flavour ee": (np.abs(t.lepton_pdg[:, 0]) == 11).astype(float),
            "weight": t.gen_weight,
        }

    a, b = observables(staged.truth), observables(full)
    for key in a:
        if np.ptp(a[key]) == 0 and np.ptp(b[key]) == 0:
            assert a[key][0] == b[key][0], key
            continue
        assert stats.ks_2samp(a[key], b[key]).pvalue > 1e-3, key


def test_generate_filtered_returns_the_requested_accepted_events(truth, settings):
    for name, gen in truth.items():
        assert len(gen.truth) == N_TRUTH, name
        assert gen.n_generated >= N_TRUTH, name
        assert np.all(settings.filter.passes(gen.truth)), name


def test_generate_filtered_needs_exactly_one_count(models, settings):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="exactly one"):
        generate_filtered(rng, models["zh"], settings.filter)
    with pytest.raises(ValueError, match="exactly one"):
        generate_filtered(rng, models["zh"], settings.filter, n_accepted=1, n_generated=1)


def test_unknown_model_is_rejected(models):
    with pytest.raises(ValueError, match="unknown generator model"):
        generate(np.random.default_rng(0), dataclasses.replace(models["zh"], model="wh"), 10)


def test_zh_bb_mass_peaks_at_the_configured_higgs_mass(truth, models, settings, samples):
    configured = samples["zh"].spec["generate"]["higgs_mass_gev"]
    assert configured == 125.0
    t = truth["zh"].truth
    assert np.all(t.hadron_flavour[:, :2] == 5)
    np.testing.assert_array_equal(t.parton_flavour[:, :2], np.tile([5, -5], (len(t), 1)))
    m_bb = pair_mass(t.partons[0], t.partons[1])
    assert abs(np.median(m_bb) - configured) < 0.5
    # Γ_H = 4.1 MeV: practically every event lies within 0.1 GeV of the pole
    assert np.mean(np.abs(m_bb - configured) < 0.1) > 0.95
    # moving the Higgs mass moves the peak with it
    heavy = dataclasses.replace(models["zh"], higgs_mass_gev=150.0)
    gen = generate_filtered(np.random.default_rng(21), heavy, settings.filter, n_accepted=2_000)
    m_heavy = pair_mass(gen.truth.partons[0], gen.truth.partons[1])
    assert abs(np.median(m_heavy) - 150.0) < 0.5


@pytest.mark.parametrize("name", ["zh", "zz", "zjets"])
def test_dilepton_mass_is_the_z_line_shape(truth, settings, name):
    """m_ℓℓ follows the Z Breit-Wigner inside the generator filter's m_ℓℓ window.

    A Cauchy's IQR is Γ_Z = 2.495 GeV; the filter truncates it to [66, 116] GeV, which
    narrows the IQR to about 2.38 GeV. The expectation is computed for that truncation.
    """
    t = truth[name].truth
    np.testing.assert_array_equal(t.lepton_pdg[:, 0], -t.lepton_pdg[:, 1])  # ℓ⁻ℓ⁺, same flavour
    m_ll = pair_mass(t.leptons[0], t.leptons[1])
    low, high = settings.filter.mll_min_gev, settings.filter.mll_max_gev
    assert m_ll.min() > low and m_ll.max() < high
    n = m_ll.size
    median = truncated_cauchy_quantile(0.5, Z_MASS_GEV, Z_WIDTH_GEV, low, high)
    f_med = truncated_cauchy_density(median, Z_MASS_GEV, Z_WIDTH_GEV, low, high)
    assert abs(np.median(m_ll) - median) < N_SIGMA * quantile_se(0.5, f_med, n) + 0.02
    assert abs(np.median(m_ll) - Z_MASS_GEV) < 0.1
    expected_iqr = truncated_cauchy_quantile(
        0.75, Z_MASS_GEV, Z_WIDTH_GEV, low, high
    ) - truncated_cauchy_quantile(0.25, Z_MASS_GEV, Z_WIDTH_GEV, low, high)
    f_q = truncated_cauchy_density(Z_MASS_GEV + Z_WIDTH_GEV / 2, Z_MASS_GEV, Z_WIDTH_GEV, low, high)
    # 0.05 GeV allows for the mild m_ℓℓ dependence of the lepton p_T / p_T^ℓℓ filter cuts
    assert abs(iqr(m_ll) - expected_iqr) < N_SIGMA * 2 * quantile_se(0.25, f_q, n) + 0.05
    assert abs(iqr(m_ll) - Z_WIDTH_GEV) < 0.3


def test_lepton_flavours_are_universal(truth):
    for name in ("zh", "zz", "zjets"):
        is_mu = np.abs(truth[name].truth.lepton_pdg[:, 0]) == 13
        assert abs(is_mu.mean() - 0.5) < binomial_tolerance(0.5, is_mu.size), name


def test_zz_bb_mass_peaks_at_the_z_mass(truth):
    t = truth["zz"].truth
    assert np.all(t.hadron_flavour[:, :2] == 5)
    m_bb = pair_mass(t.partons[0], t.partons[1])
    # no filter acts on the bb̄ pair: a Breit-Wigner truncated to [40, 200] GeV
    f_med = truncated_cauchy_density(Z_MASS_GEV, Z_MASS_GEV, Z_WIDTH_GEV, 40.0, 200.0)
    assert abs(np.median(m_bb) - Z_MASS_GEV) < N_SIGMA * quantile_se(0.5, f_med, m_bb.size) + 0.05
    assert abs(iqr(m_bb) - Z_WIDTH_GEV) < 0.2


def test_zjets_flavour_fractions_and_importance_weights(truth, models):
    """Unweighted: the generated (HF-enriched) mix; gen_weight-weighted: the physical mix."""
    model = models["zjets"]
    assert model.generated_flavour_fractions is not None
    t = truth["zjets"].truth
    flav = t.hadron_flavour[:, 0]
    np.testing.assert_array_equal(t.hadron_flavour[:, 0], t.hadron_flavour[:, 1])
    w = t.gen_weight
    n = flav.size
    codes = {"b": 5, "c": 4, "light": 0}
    gen_total = sum(model.generated_flavour_fractions.values())
    phys_total = sum(model.flavour_fractions.values())
    for name, code in codes.items():
        is_f = flav == code
        p_gen = model.generated_flavour_fractions[name] / gen_total
        p_phys = model.flavour_fractions[name] / phys_total
        assert abs(is_f.mean() - p_gen) < binomial_tolerance(p_gen, n), name
        # importance weight |w| = p_physical / p_generated for every event of that flavour
        np.testing.assert_allclose(np.abs(w[is_f]), p_phys / p_gen, rtol=1e-12)
        # ratio estimator R = Σ w·1_f / Σ w and its delta-method standard error
        r = w[is_f].sum() / w.sum()
        se = math.sqrt(np.sum((w * (is_f - r)) ** 2)) / abs(w.sum())
        assert abs(r - p_phys) < N_SIGMA * se, (name, r, p_phys, se)
    frac_negative = np.mean(w < 0)
    p_neg = model.negative_weight_fraction
    assert abs(frac_negative - p_neg) < binomial_tolerance(p_neg, n)


def test_zjets_without_enrichment_has_unit_weights(models, settings):
    plain = dataclasses.replace(
        models["zjets"], generated_flavour_fractions=None, negative_weight_fraction=0.0
    )
    gen = generate_filtered(np.random.default_rng(31), plain, settings.filter, n_accepted=5_000)
    np.testing.assert_array_equal(gen.truth.gen_weight, 1.0)
    flav = gen.truth.hadron_flavour[:, 0]
    assert abs(np.mean(flav == 0) - 0.8) < binomial_tolerance(0.8, flav.size)


def test_ttbar_leptons_opposite_charge_and_neutrino_met(truth):
    t = truth["ttbar"].truth
    pdg = t.lepton_pdg
    assert np.all(pdg[:, 0] * pdg[:, 1] < 0)
    assert np.all(pdg[:, 0] < 0)  # t → W⁺ → ℓ⁺ (negative PDG id)
    np.testing.assert_array_equal(t.parton_flavour[:, :2], np.tile([5, -5], (len(t), 1)))
    nu_pt = np.hypot(t.neutrino_px, t.neutrino_py)
    assert np.all(nu_pt > 0)
    # two neutrinos of ~M_W/2 each in their W rest frames: tens of GeV of true MET
    assert 20.0 < np.median(nu_pt) < W_MASS_GEV
    for name in ("zh", "zz", "zjets"):
        assert np.all(truth[name].truth.neutrino_px == 0) and np.all(
            truth[name].truth.neutrino_py == 0
        )


def test_ttbar_gen_met_includes_the_w_neutrinos(truth, settings):
    gen = truth["ttbar"].truth
    reco = reconstruct(np.random.default_rng(41), gen, settings.detector)
    # GenMET = W neutrinos + semileptonic-decay neutrinos (those run along their jets)
    gj = reco["GenJet"]
    sl_px = ak.to_numpy(ak.sum(gj.nuPt * np.cos(gj.phi), axis=1))
    sl_py = ak.to_numpy(ak.sum(gj.nuPt * np.sin(gj.phi), axis=1))
    only_gen_jets = ak.to_numpy(ak.num(gj)) == 3  # every truth parton became a GenJet
    px = gen.neutrino_px + sl_px
    py = gen.neutrino_py + sl_py
    np.testing.assert_allclose(
        reco["GenMET_pt"][only_gen_jets], np.hypot(px, py)[only_gen_jets], rtol=1e-6, atol=1e-4
    )  # GenMET is stored as float32, as in NanoAOD


# --- detector -------------------------------------------------------------------------------


def test_btag_efficiency_matches_the_logit_normal_model(zjets_reco, config):
    _, reco = zjets_reco
    cfg = config["simulation"]["detector"]["btag"]
    jets = reco["Jet"]
    eta = ak.to_numpy(ak.flatten(jets.eta))
    score = ak.to_numpy(ak.flatten(jets.btagDeepFlavB))
    flav = ak.to_numpy(ak.flatten(jets.hadronFlavour))
    inside = np.abs(eta) < cfg["abs_eta_max"]
    assert np.all(score[~inside] == 0.0)  # no tracker, no b-tag
    assert np.all((score[inside] > 0) & (score[inside] < 1))
    logit_wp = math.log(BTAG_MEDIUM / (1 - BTAG_MEDIUM))
    for name, code in (("b", 5), ("c", 4), ("light", 0)):
        sel = inside & (flav == code)
        n = int(sel.sum())
        assert n > 2_000, name
        expected = 1.0 - stats.norm.cdf(
            (logit_wp - cfg[name]["logit_mean"]) / cfg[name]["logit_sigma"]
        )
        eff = float(np.mean(score[sel] > BTAG_MEDIUM))
        assert abs(eff - expected) < binomial_tolerance(expected, n), (name, eff, expected)


def test_lepton_reconstruction_efficiency_and_acceptance(zjets_reco, config):
    truth_events, reco = zjets_reco
    det = config["simulation"]["detector"]
    eta = np.stack([np.asarray(p.eta) for p in truth_events.leptons], axis=1)
    pdg = np.abs(truth_events.lepton_pdg)
    for name, code in (("Muon", 13), ("Electron", 11)):
        cfg = det[name.lower()]
        coll = reco[name]
        n_truth = int(((pdg == code) & (np.abs(eta) < cfg["abs_eta_max"])).sum())
        n_reco = int(ak.sum(ak.num(coll)))
        # filtered truth leptons have p_T > 15 GeV, far above the storage threshold
        assert abs(n_reco / n_truth - cfg["efficiency"]) < binomial_tolerance(
            cfg["efficiency"], n_truth
        ), name
        assert ak.all(np.abs(coll.pdgId) == code)
        assert ak.all(np.abs(coll.eta) < cfg["abs_eta_max"])
        assert ak.all(coll.charge == -np.sign(coll.pdgId))
        assert ak.all(coll.pt[:, 1:] <= coll.pt[:, :-1])  # sorted by p_T
    muons = reco["Muon"]
    eff = det["muon"]["id_efficiency"]
    n_reco = int(ak.sum(ak.num(muons)))
    assert abs(ak.sum(muons.tightId) / n_reco - eff) < binomial_tolerance(eff, n_reco)


def test_electron_id_working_points_are_nested_with_the_configured_efficiencies(zjets_reco, config):
    """cutBased counts the working points passed (0-4); cutBased >= k has the efficiency
    configured for working point k."""
    ladder = config["simulation"]["detector"]["electron"]["id_efficiency"]
    cut_based = ak.to_numpy(ak.flatten(zjets_reco[1]["Electron"].cutBased))
    n = len(cut_based)
    assert n > 10_000
    assert set(np.unique(cut_based)) <= {0, 1, 2, 3, 4}
    for k, wp in enumerate(ELECTRON_WORKING_POINTS, start=1):
        eff = float(np.mean(cut_based >= k))
        assert abs(eff - ladder[wp]) < binomial_tolerance(ladder[wp], n), (wp, eff)


def test_electron_id_efficiency_at_the_selections_working_point(zjets_reco, config):
    """The selection's electron cut keeps the configured ID efficiency of the working point it
    asks for (the ID failures once spread over cutBased 1-3, so ``cutBased >= 3`` kept 0.947
    instead of 0.92): electrons passing the cut with their own cutBased over those passing it
    with the tightest cutBased."""
    ladder = config["simulation"]["detector"]["electron"]["id_efficiency"]
    selection = Selection.from_config(config["selection"])
    electrons = zjets_reco[1]["Electron"]
    objects = Objects.from_awkward(electrons, electrons.fields)
    cut_based = objects["cutBased"]

    def passes(value: np.ndarray) -> np.ndarray:
        return object_mask(objects.with_columns({"cutBased": value}), selection.electron)

    denominator = passes(np.full_like(cut_based, 4))
    n = int(denominator.sum())
    assert n > 5_000
    # the working point: the loosest cutBased the cut accepts
    loosest = min(k for k in range(5) if passes(np.full_like(cut_based, k))[denominator].all())
    assert loosest == 3  # medium in the default selection
    expected = ladder[ELECTRON_WORKING_POINTS[loosest - 1]]
    eff = float(np.mean(passes(cut_based)[denominator]))
    assert abs(eff - expected) < binomial_tolerance(expected, n), (eff, expected)


def test_electron_id_working_points_must_be_nested(config, samples):
    """A tight working point more efficient than medium stops the parse step."""
    bad = copy.deepcopy(config)
    bad["simulation"]["detector"]["electron"]["id_efficiency"]["tight"] = 0.95
    with pytest.raises(ConfigError, match=r"simulation.detector.electron.id_efficiency'"):
        check_analysis(bad, samples)


def test_jet_response_and_resolution(zjets_reco, config):
    """Reco/GenJet p_T of matched jets: mean 1, width σ(E) = a/√E ⊕ b ⊕ N/E from config."""
    _, reco = zjets_reco
    cfg = config["simulation"]["detector"]["jet"]
    jets = reco["Jet"]
    matched = jets[jets.genJetIdx >= 0]
    gen = reco["GenJet"][matched.genJetIdx]
    assert ak.all(gen.hadronFlavour == matched.hadronFlavour)
    dphi = (matched.phi - gen.phi + np.pi) % (2 * np.pi) - np.pi
    assert ak.all(
        np.hypot(matched.eta - gen.eta, dphi) < 12 * math.sqrt(2) * cfg["angular_resolution"]
    )
    gen_pt = ak.to_numpy(ak.flatten(gen.pt))
    response = ak.to_numpy(ak.flatten(matched.pt)) / gen_pt
    energy = gen_pt * np.cosh(ak.to_numpy(ak.flatten(gen.eta)))
    sigma = np.sqrt(
        cfg["stochastic"] ** 2 / energy + cfg["constant"] ** 2 + (cfg["noise_gev"] / energy) ** 2
    )
    hard = gen_pt > 50.0  # far above the 15 GeV storage threshold: no selection bias
    n = int(hard.sum())
    assert n > 5_000
    pull = (response[hard] - 1.0) / sigma[hard]
    assert abs(pull.mean()) < N_SIGMA / math.sqrt(n)
    assert abs(pull.std() - 1.0) < N_SIGMA / math.sqrt(2 * n) + 0.02
    # at E ≈ 100 GeV the relative width is √(1/100 + 0.05² + 0.03²) ≈ 11.6 %
    window = hard & (energy > 90) & (energy < 110)
    expected = math.sqrt(
        cfg["stochastic"] ** 2 / 100 + cfg["constant"] ** 2 + (cfg["noise_gev"] / 100) ** 2
    )
    assert abs(response[window].mean() - 1.0) < N_SIGMA * expected / math.sqrt(window.sum())
    assert abs(response[window].std() / expected - 1.0) < 0.1


# --- chunk files: reproducibility and bookkeeping --------------------------------------------


@pytest.fixture(scope="module")
def mc_files(tmp_path_factory, settings, models):
    """Two identical zh chunks, one with another seed, and a Z+jets chunk (weighted)."""
    d = tmp_path_factory.mktemp("mc")
    out = {}
    for label, seed, sample, n in (
        ("a", 1, "zh", 1500),
        ("b", 1, "zh", 1500),
        ("seed2", 2, "zh", 1500),
        ("zjets", 1, "zjets", 3000),
    ):
        path = d / f"{label}.root"
        info = simulate_mc_chunk(
            dataclasses.replace(settings, seed=seed), models[sample], sample, 0, n, str(path)
        )
        out[label] = (path, info)
    return out


def test_same_config_gives_identical_files(mc_files):
    a = read_tree(mc_files["a"][0])
    b = read_tree(mc_files["b"][0])
    assert set(a) == set(b)
    assert len(a["run"]) > 0
    for branch in a:
        assert ak.array_equal(a[branch], b[branch]), branch
    ra, rb = read_tree(mc_files["a"][0], "Runs"), read_tree(mc_files["b"][0], "Runs")
    assert set(ra) == {"run", "genEventCount", "genEventSumw", "genEventSumw2"}
    for branch in ra:
        assert ak.array_equal(ra[branch], rb[branch]), branch


def test_another_seed_gives_other_events(mc_files):
    a = read_tree(mc_files["a"][0])
    c = read_tree(mc_files["seed2"][0])
    n = min(len(a["MET_pt"]), len(c["MET_pt"]))
    assert not np.array_equal(ak.to_numpy(a["MET_pt"][:n]), ak.to_numpy(c["MET_pt"][:n]))
    assert not np.array_equal(
        ak.to_numpy(ak.flatten(a["Jet_pt"]))[:n], ak.to_numpy(ak.flatten(c["Jet_pt"]))[:n]
    )


def test_chunks_are_independent_streams(tmp_path, settings, models):
    small = dataclasses.replace(settings, events_per_chunk=400)
    info = [
        simulate_mc_chunk(small, models["zh"], "zh", k, 700, str(tmp_path / f"c{k}.root"))
        for k in (0, 1)
    ]
    assert [i["filtered"] for i in info] == [400, 300]  # the last chunk takes the remainder
    c0, c1 = read_tree(tmp_path / "c0.root"), read_tree(tmp_path / "c1.root")
    assert set(ak.to_list(c0["luminosityBlock"])) == {1} and set(
        ak.to_list(c1["luminosityBlock"])
    ) == {2}
    assert not np.array_equal(ak.to_numpy(c0["MET_pt"][:50]), ak.to_numpy(c1["MET_pt"][:50]))
    with pytest.raises(ValueError, match="beyond"):
        simulate_mc_chunk(small, models["zh"], "zh", 2, 700, str(tmp_path / "c2.root"))


def test_runs_tree_bookkeeping_unit_weights(mc_files, settings, models):
    path, info = mc_files["a"]
    events = read_tree(path)
    runs = read_tree(path, "Runs")
    n_written = len(events["run"])
    count = int(runs["genEventCount"][0])
    assert info["written"] == n_written
    assert info["filtered"] == 1500
    assert info["generated"] == count
    assert n_written <= info["filtered"] <= count
    # ZH has unit weights: Σw = Σw² = number generated (filter + skim included)
    assert float(runs["genEventSumw"][0]) == count
    assert float(runs["genEventSumw2"][0]) == count
    np.testing.assert_array_equal(ak.to_numpy(events["genWeight"]), 1.0)
    # event numbers index the filtered events: unique, increasing, within 1..filtered
    ev = ak.to_numpy(events["event"])
    assert (
        np.all(np.diff(ev.astype(np.int64)) > 0) and ev.min() >= 1 and ev.max() <= info["filtered"]
    )
    # the filter efficiency implied by the Runs tree agrees with an independent estimate
    eff_runs = info["filtered"] / count
    probe = generate(np.random.default_rng(51), models["zh"], 20_000)
    eff_probe = float(np.mean(settings.filter.passes(probe)))
    se = math.sqrt(eff_probe * (1 - eff_probe) * (1 / 20_000 + 1 / count))
    assert abs(eff_runs - eff_probe) < N_SIGMA * se


def test_runs_tree_bookkeeping_weighted_sample(mc_files, models):
    """Z+jets: Σw/N and Σw²/N over *all* generated events match the weight model."""
    path, info = mc_files["zjets"]
    events = read_tree(path)
    runs = read_tree(path, "Runs")
    count = int(runs["genEventCount"][0])
    sumw = float(runs["genEventSumw"][0])
    sumw2 = float(runs["genEventSumw2"][0])
    assert (
        len(events["run"])
        == info["written"]
        <= info["filtered"]
        == 3000
        <= count
        == info["generated"]
    )
    model = models["zjets"]
    phys = {
        k: v / sum(model.flavour_fractions.values()) for k, v in model.flavour_fractions.items()
    }
    gen = {
        k: v / sum(model.generated_flavour_fractions.values())
        for k, v in model.generated_flavour_fractions.items()
    }
    sign = 1.0 - 2.0 * model.negative_weight_fraction
    mean_w = sign * sum(phys.values())  # Σ_f g_f · p_f/g_f
    mean_w2 = sum(phys[f] ** 2 / gen[f] for f in phys)
    mean_w4 = sum(phys[f] ** 4 / gen[f] ** 3 for f in phys)
    assert abs(sumw / count - mean_w) < N_SIGMA * math.sqrt((mean_w2 - mean_w**2) / count)
    assert abs(sumw2 / count - mean_w2) < N_SIGMA * math.sqrt((mean_w4 - mean_w2**2) / count)
    # written weights are the per-flavour importance weights, signed
    allowed = {round(s * phys[f] / gen[f], 5) for f in phys for s in (1, -1)}
    assert set(np.round(ak.to_numpy(events["genWeight"]).astype(float), 5)) <= allowed
    assert float(np.sum(ak.to_numpy(events["genWeight"]) ** 2)) <= sumw2 * (1 + 1e-6)


def test_mc_file_has_nanoaod_branches(mc_files):
    with uproot.open(mc_files["a"][0]) as f:
        keys = set(f["Events"].keys())
        assert {"Runs", "Events"} <= {k.split(";")[0] for k in f}
    for branch in (
        "run",
        "luminosityBlock",
        "event",
        "genWeight",
        "nMuon",
        "Muon_pt",
        "Muon_tightId",
        "nElectron",
        "Electron_cutBased",
        "nJet",
        "Jet_btagDeepFlavB",
        "Jet_genJetIdx",
        "Jet_hadronFlavour",
        "nGenJet",
        "GenJet_nuPt",
        "nGenPart",
        "GenPart_pdgId",
        "MET_pt",
        "MET_phi",
        "GenMET_pt",
    ):
        assert branch in keys, branch
    with uproot.open(mc_files["a"][0]) as f:
        assert f["Events"]["Jet_pt"].typename.endswith("float[]")  # float32 as in NanoAOD


# --- pseudo-data ------------------------------------------------------------------------------


def _components(samples, models, names, mu=1.0):
    """Pseudo-data components at unit normalisation factors, signal at ``mu``."""
    return [
        PseudoDataComponent(samples[n], models[n], {n: mu if samples[n].kind == "signal" else 1.0})
        for n in names
    ]


def test_pseudo_data_has_no_truth_and_poisson_counts(tmp_path, settings, samples, models):
    lumi_fb = 0.002  # expected 300 Z+jets and 78 tt̄ produced events
    comps = _components(samples, models, ["zjets", "ttbar"])
    written, produced = [], []
    for seed in (1, 2, 3):
        path = tmp_path / f"data{seed}.root"
        counts = simulate_pseudo_data_chunk(settings, comps, lumi_fb, seed, "data", 0, 1, str(path))
        for comp in comps:
            c = counts[comp.name]
            assert c["expected"] == pytest.approx(comp.xsec_pb * 1000.0 * lumi_fb)
            assert abs(c["produced"] - c["expected"]) < N_SIGMA * math.sqrt(c["expected"])
            assert c["written"] <= c["produced"]
        produced.append(tuple(counts[c.name]["produced"] for c in comps))
        with uproot.open(path) as f:
            assert "Runs" not in {k.split(";")[0] for k in f}
            tree = f["Events"]
            keys = set(tree.keys())
            written.append(tree.num_entries)
            assert tree.num_entries == sum(counts[c.name]["written"] for c in comps)
            assert np.array_equal(
                tree["event"].array(library="np"), np.arange(1, tree.num_entries + 1)
            )
        assert "genWeight" not in keys
        assert not any(
            k.startswith(("GenJet", "nGenJet", "GenPart", "nGenPart", "GenDressedLepton", "GenMET"))
            for k in keys
        )
        assert not {"Jet_hadronFlavour", "Jet_partonFlavour", "Jet_genJetIdx"} & keys
        assert {"Muon_pt", "Electron_pt", "Jet_pt", "Jet_btagDeepFlavB", "MET_pt"} <= keys
    # the Poisson draws differ from seed to seed
    assert len(set(produced)) > 1
    assert len(set(written)) > 1
    # same seed, same file
    again = tmp_path / "again.root"
    simulate_pseudo_data_chunk(settings, comps, lumi_fb, 1, "data", 0, 1, str(again))
    a, b = read_tree(tmp_path / "data1.root"), read_tree(again)
    assert set(a) == set(b) and all(ak.array_equal(a[k], b[k]) for k in a)


def test_pseudo_data_with_a_process_of_zero_expected_events(tmp_path, settings, samples, models):
    comps = _components(samples, models, ["zh", "zjets"], mu=0.0)  # background-only: μ = 0
    counts = simulate_pseudo_data_chunk(
        settings, comps, 0.002, 1, "data", 0, 1, str(tmp_path / "bonly.root")
    )
    assert counts["zh"]["produced"] == 0 and counts["zh"]["written"] == 0
    assert uproot.open(tmp_path / "bonly.root")["Events"].num_entries == counts["zjets"]["written"]


# --- reading back with coffea -------------------------------------------------------------------


def test_file_reads_back_with_coffea_nanoevents(mc_files):
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    path = mc_files["a"][0]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Missing cross-reference")
        events = NanoEventsFactory.from_root(
            {str(path): "Events"}, schemaclass=NanoAODSchema, mode="eager"
        ).events()
    raw = read_tree(path)
    assert len(events) == len(raw["run"]) > 0
    assert {"pt", "eta", "phi", "mass", "charge", "pdgId", "tightId", "pfRelIso04_all"} <= set(
        events.Muon.fields
    )
    assert {"pt", "eta", "phi", "mass", "charge", "pdgId", "cutBased", "pfRelIso03_all"} <= set(
        events.Electron.fields
    )
    assert {
        "pt",
        "eta",
        "phi",
        "mass",
        "btagDeepFlavB",
        "hadronFlavour",
        "genJetIdx",
        "jetId",
        "puId",
        "nMuons",
        "nElectrons",
    } <= set(events.Jet.fields)
    assert ak.all(np.abs(events.Muon.pdgId) == 13) and ak.all(np.abs(events.Electron.pdgId) == 11)
    # the skim: ≥ 2 leptons, ≥ 2 jets, one loose b-tag
    assert ak.all(ak.num(events.Muon) + ak.num(events.Electron) >= 2)
    assert ak.all(ak.num(events.Jet) >= 2)
    assert ak.all(ak.any(events.Jet.btagDeepFlavB > 0.0490, axis=1))
    # Jet → GenJet link
    jets = events.Jet
    gen = jets.matched_gen
    has_gen = jets.genJetIdx >= 0
    assert ak.all(ak.is_none(gen, axis=1) == ~has_gen)
    matched = jets[has_gen]
    linked = events.GenJet[matched.genJetIdx]
    assert ak.all(ak.flatten(matched.matched_gen.pt == linked.pt))
    assert ak.all(ak.flatten(matched.matched_gen.hadronFlavour == matched.hadronFlavour))
    # ZH: most jets with a GenJet come from the H → bb̄ decay
    assert ak.mean(ak.flatten(matched.hadronFlavour == 5)) > 0.5
    np.testing.assert_allclose(ak.to_numpy(events.MET.pt), ak.to_numpy(raw["MET_pt"]))
    np.testing.assert_array_equal(ak.to_numpy(events.genWeight), 1.0)


def test_reco_leptons_carry_their_pdg_mass(zjets_reco):
    """Masses come from E² - p² of boosted truth four-vectors, so the electron's 0.511 MeV
    carries float64 cancellation error ~ ε·E²/m (≲ 10 keV up to TeV energies)."""
    _, reco = zjets_reco
    np.testing.assert_allclose(
        ak.to_numpy(ak.flatten(reco["Muon"].mass)), LEPTON_MASS_GEV[13], rtol=1e-4
    )
    np.testing.assert_allclose(
        ak.to_numpy(ak.flatten(reco["Electron"].mass)), LEPTON_MASS_GEV[11], atol=1e-5
    )
