"""Features and feature tables on hand-made events with hand-computed four-vector values.

The events are built by :func:`thetaflow.ingestion.ingest.output_record` (the exact record ingestion
writes) and round-tripped through parquet as in the workflow. Every expected value is
computed here from explicit formulas (p_x = p_T cos φ, p_z = p_T sinh η, ...), independently
of ``vector``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from types import SimpleNamespace

import awkward as ak
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from thetaflow.core.errors import ConfigError, CorruptResultError
from thetaflow.core.jagged import Objects
from thetaflow.features.checks import check
from thetaflow.features.compute import (
    EVENT_COLUMNS,
    FEATURES,
    LABEL_BACKGROUND,
    LABEL_DATA,
    LABEL_SIGNAL,
    WEIGHT_SYSTEMATICS,
    BTagCalibration,
    EventObjects,
    build_features,
    compute_features,
    feature_table,
    higgs_jet_indices,
    lepton_efficiency_factor,
)
from thetaflow.ingestion.cutflow import Cutflow, CutRow
from thetaflow.ingestion.ingest import EventColumns, output_record, region_labels
from thetaflow.ingestion.nanoaod import branch_maps

M_MU, M_E = 0.10566, 0.000511
WP = 0.2783
EFF = {"b": 0.75, "c": 0.15, "light": 0.01}
SF_UNC = {"b": 0.04, "c": 0.08, "light": 0.15}
SYSTS = {
    "btag": {"working_point": WP, "abs_eta_max": 2.5, "efficiency": EFF, "uncertainty": SF_UNC},
    "lepton_eff": {"muon": 0.01, "electron": 0.02},
}
WEIGHT_COLUMNS = [
    f"weight_{s}_{d}"
    for s in ("btag_hf", "btag_light", "lepton_eff_muon", "lepton_eff_electron")
    for d in ("up", "down")
]
RTOL = 2e-5  # inputs are float32 and vector computes in float32


def lepton(pt, eta, phi, pdg):
    mass = M_MU if abs(pdg) == 13 else M_E
    return {
        "pt": pt,
        "eta": eta,
        "phi": phi,
        "mass": mass,
        "charge": -int(np.sign(pdg)),
        "pdgId": pdg,
    }


def jet(pt, eta, phi, mass, btag, flav, gen_pt, n_mu=0, n_el=0):
    return {
        "pt": pt,
        "eta": eta,
        "phi": phi,
        "mass": mass,
        "btag": btag,
        "hadron_flavour": flav,
        "gen_pt": gen_pt,
        "n_muons": n_mu,
        "n_electrons": n_el,
    }


# Event 0: textbook. Two massless jets of p_T 50 at η = 0, back to back → m_bb = 100 GeV,
#          p_T^bb = 0; equal p_T, so b1 is the higher-tag jet. μ⁻μ⁺.
# Event 1: three jets; the two highest b-tags (0.95, 0.60) are the 3rd and 2nd in p_T, the
#          leading jet (p_T 120) is untagged. b1 = the p_T-70 c jet (tag 0.60), b2 = the
#          p_T-45 b jet (tag 0.95). Δφ(b1, b2) = 4.5 wraps to 4.5 - 2π. e⁻e⁺.
# Event 2: four jets; Higgs candidates are jets 0 (b, tag 0.80) and 3 (light mistag, 0.85);
#          μ⁺e⁻ with φ = ±3.0 (Δφ wraps to 2π - 6). A third lepton is dropped by ingestion.
EVENTS = [
    {
        "leptons": [lepton(60.0, 0.0, 0.0, 13), lepton(40.0, 0.0, math.pi / 2, -13)],
        "jets": [
            jet(50.0, 0.0, 0.0, 0.0, 0.9, 5, 55.0, n_mu=1),
            jet(50.0, 0.0, math.pi, 0.0, 0.7, 5, 48.0),
        ],
        "met": (25.0, 1.0),
        "gen_weight": 1.0,
        "extra_weight": 1.0,
        "region": "sr",
        "lhe_nb": 2,
        "lhe_nc": 0,
    },
    {
        "leptons": [lepton(80.0, 1.2, -0.4, 11), lepton(35.0, -0.3, 2.2, -11)],
        "jets": [
            jet(120.0, 0.3, 1.0, 10.0, 0.05, 0, 118.0),
            jet(70.0, 1.1, 2.5, 8.0, 0.60, 4, 75.0, n_el=1),
            jet(45.0, -1.2, -2.0, 6.0, 0.95, 5, 52.0, n_mu=1),
        ],
        "met": (40.0, -2.0),
        "gen_weight": -8.0,
        "extra_weight": 1.1,
        "region": "cr_top",
        "lhe_nb": 0,
        "lhe_nc": 1,
    },
    {
        "leptons": [
            lepton(55.0, -2.0, 3.0, -13),
            lepton(30.0, 2.1, -3.0, 11),
            lepton(12.0, 0.5, 0.5, 13),
        ],
        "jets": [
            jet(150.0, -0.5, 0.2, 15.0, 0.80, 5, 160.0),
            jet(90.0, 0.8, -1.5, 9.0, 0.10, 0, 88.0),
            jet(40.0, 2.0, 2.8, 5.0, 0.30, 0, 38.0),
            jet(22.0, -2.3, -0.7, 3.0, 0.85, 0, 30.0, n_el=1),
        ],
        "met": (10.0, 0.5),
        "gen_weight": 0.6,
        "extra_weight": 0.9,
        "region": "sr",
        "lhe_nb": 1,
        "lhe_nc": 1,
    },
]
HIGGS_JETS = [(0, 1), (1, 2), (0, 3)]  # (b1, b2) indices into each event's jets, by hand
REGIONS = ("sr", "cr_top")  # the analysis regions the events are labelled with


def _record(events_spec) -> ak.Array:
    """The per-event record exactly as ingestion writes it, via its own output_record."""
    n = len(events_spec)
    ids = {
        "run": np.ones(n, np.uint32),
        "luminosityBlock": np.full(n, 3, np.uint32),
        "event": np.arange(101, 101 + n, dtype=np.uint64),
    }
    leptons = ak.Array([e["leptons"] for e in events_spec])
    jets = ak.Array([e["jets"] for e in events_spec])
    objects = SimpleNamespace(
        leptons=Objects.from_awkward(leptons, leptons.fields),
        jets=Objects.from_awkward(jets, jets.fields),
        met_pt=np.array([e["met"][0] for e in events_spec]),
        met_phi=np.array([e["met"][1] for e in events_spec]),
    )
    mask = np.ones(n, bool)
    event = EventColumns(
        ids=ids,
        gen_weight=np.array([e["gen_weight"] for e in events_spec], dtype=np.float64),
        met_pt=objects.met_pt,
        met_phi=objects.met_phi,
        truth={
            "lhe_nb": np.array([e["lhe_nb"] for e in events_spec], np.int8),
            "lhe_nc": np.array([e["lhe_nc"] for e in events_spec], np.int8),
        },
    )
    extra_weight = np.array([e["extra_weight"] for e in events_spec], dtype=np.float64)
    regions = np.array([REGIONS.index(e["region"]) for e in events_spec])
    return output_record(event, objects, mask, extra_weight, region_labels(REGIONS, regions))


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> ak.Array:
    """Hand-made events, written and read back like ``results/events/*.parquet``."""
    path = tmp_path_factory.mktemp("ev") / "events.parquet"
    pq.write_table(ak.to_arrow_table(_record(EVENTS), extensionarray=False), path)
    return ak.from_parquet(path)


# --- hand computations ----------------------------------------------------------------------


def f32(x) -> float:
    """The value as stored (float32), back in float64 for the hand computation."""
    return float(np.float32(x))


def four(obj) -> np.ndarray:
    pt, eta, phi, m = (f32(obj[k]) for k in ("pt", "eta", "phi", "mass"))
    px, py, pz = pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)
    return np.array([px, py, pz, math.sqrt(px * px + py * py + pz * pz + m * m)])


def inv_mass(p) -> float:
    return math.sqrt(max(p[3] ** 2 - p[0] ** 2 - p[1] ** 2 - p[2] ** 2, 0.0))


def pt_of(p) -> float:
    return math.hypot(p[0], p[1])


def wrap(dphi: float) -> float:
    return (dphi + math.pi) % (2 * math.pi) - math.pi


def delta_r(a, b) -> float:
    return math.hypot(f32(a["eta"]) - f32(b["eta"]), wrap(f32(a["phi"]) - f32(b["phi"])))


def expected_features(ev, higgs) -> dict[str, float]:
    l1, l2 = ev["leptons"][:2]
    b1, b2 = ev["jets"][higgs[0]], ev["jets"][higgs[1]]
    z = four(l1) + four(l2)
    h = four(b1) + four(b2)
    return {
        "m_bb_gev": inv_mass(h),
        "pt_bb_gev": pt_of(h),
        "dr_bb": delta_r(b1, b2),
        "deta_bb": abs(f32(b1["eta"]) - f32(b2["eta"])),
        "m_ll_gev": inv_mass(z),
        "pt_ll_gev": pt_of(z),
        "dphi_zh": abs(wrap(math.atan2(z[1], z[0]) - math.atan2(h[1], h[0]))),
        "pt_balance": pt_of(h) / pt_of(z),
        "m_llbb_gev": inv_mass(z + h),
        "dr_ll": delta_r(l1, l2),
        "met_gev": f32(ev["met"][0]),
        "ht_gev": sum(f32(j["pt"]) for j in ev["jets"]),
        "n_jets": len(ev["jets"]),
        "btag_b1": f32(b1["btag"]),
        "btag_b2": f32(b2["btag"]),
        "lep1_pt_gev": f32(l1["pt"]),
        "lep1_eta": f32(l1["eta"]),
        "lep2_pt_gev": f32(l2["pt"]),
        "lep2_eta": f32(l2["eta"]),
        "b1_pt_gev": f32(b1["pt"]),
        "b1_eta": f32(b1["eta"]),
        "b2_pt_gev": f32(b2["pt"]),
        "b2_eta": f32(b2["eta"]),
    }


# --- the record layout -----------------------------------------------------------------------


def test_hand_made_events_have_the_ingest_layout(events):
    assert events.fields == [
        "run",
        "luminosityBlock",
        "event",
        "region",
        "lhe_nb",
        "lhe_nc",
        "gen_weight",
        "extra_weight",
        "leptons",
        "jets",
        "met_pt",
        "met_phi",
    ]
    assert tuple(events.fields) == EVENT_COLUMNS  # what the feature job requires
    assert events.leptons.fields == ["pt", "eta", "phi", "mass", "charge", "pdg_id"]
    assert events.jets.fields == [
        "pt",
        "eta",
        "phi",
        "mass",
        "btag",
        "hadron_flavour",
        "gen_pt",
        "n_muons",
        "n_electrons",
    ]
    assert ak.to_list(ak.num(events.leptons)) == [2, 2, 2]  # ingestion keeps the two leading
    assert ak.to_list(ak.num(events.jets)) == [2, 3, 4]


# --- features ---------------------------------------------------------------------------------


def test_every_registered_feature_is_checked_here():
    names = set(expected_features(EVENTS[0], HIGGS_JETS[0]))
    assert names == set(FEATURES)
    assert FEATURES["n_jets"].integer and not FEATURES["m_bb_gev"].integer
    for feature in FEATURES.values():
        n, lo, hi = feature.bins
        assert n > 0 and hi > lo and feature.label


def test_textbook_values(events):
    """Closed forms, on the library's features of event 0 (and the hand helper agrees):
    back-to-back massless jets of p_T 50 at η = 0 have m = 2·50 = 100 GeV, p_T^bb = 0 and
    ΔR = π; leptons at η = 0 and Δφ = π/2 have p·p = 0."""
    got = {
        name: float(values[0]) for name, values in compute_features(events, list(FEATURES)).items()
    }
    helper = expected_features(EVENTS[0], HIGGS_JETS[0])
    e1, e2 = math.hypot(60.0, M_MU), math.hypot(40.0, M_MU)
    closed = {
        "m_bb_gev": (100.0, 1e-6, 0.0),
        "pt_bb_gev": (0.0, 0.0, 1e-4),
        "dr_bb": (math.pi, 1e-6, 0.0),
        "deta_bb": (0.0, 0.0, 1e-7),
        # m² = m1² + m2² + 2(E1E2 - p1·p2) with p1·p2 = 0
        "m_ll_gev": (math.sqrt(2 * M_MU**2 + 2 * e1 * e2), 1e-6, 0.0),
        "pt_ll_gev": (math.hypot(60.0, 40.0), 1e-6, 0.0),
        "dr_ll": (math.pi / 2, 1e-6, 0.0),
        "pt_balance": (0.0, 0.0, 1e-5),
        "ht_gev": (100.0, 1e-7, 0.0),
        "met_gev": (25.0, 1e-7, 0.0),
        "n_jets": (2.0, 0.0, 0.0),
    }
    for name, (value, rel, abs_) in closed.items():
        assert got[name] == pytest.approx(value, rel=max(rel, RTOL), abs=abs_), name
        assert helper[name] == pytest.approx(value, rel=max(rel, RTOL), abs=abs_), name
    # m_llbb: Z (p_T (60, 40)) + a Higgs at rest of mass 100: m² = (E_Z + 100)² - |p_Z|²
    e_z = e1 + e2
    p_z2 = 60.0**2 + 40.0**2
    assert got["m_llbb_gev"] == pytest.approx(math.sqrt((e_z + 100.0) ** 2 - p_z2), rel=RTOL)


@pytest.mark.parametrize("i", range(len(EVENTS)))
def test_features_match_hand_computation(events, i):
    got = compute_features(events, list(FEATURES))
    expected = expected_features(EVENTS[i], HIGGS_JETS[i])
    for name, value in expected.items():
        assert got[name].dtype == np.float32, name
        if i == 0 and name == "dphi_zh":
            # p_T^bb = 0: the azimuth of the Higgs candidate is undefined; only the range
            assert 0.0 <= got[name][i] <= math.pi
            continue
        assert got[name][i] == pytest.approx(value, rel=RTOL, abs=1e-4), (name, got[name][i], value)


def test_higgs_candidates_are_the_two_highest_btag_jets_b1_harder(events):
    assert ak.to_list(higgs_jet_indices(events)) == [list(h) for h in HIGGS_JETS]
    got = compute_features(events, ["btag_b1", "btag_b2", "b1_pt_gev", "b2_pt_gev"])
    # event 1: the leading jet (p_T 120, tag 0.05) is not a candidate; b1 is the p_T-70 jet
    # although its tag (0.60) is below b2's (0.95)
    assert got["b1_pt_gev"][1] == pytest.approx(70.0)
    assert got["btag_b1"][1] == pytest.approx(0.60)
    assert got["b2_pt_gev"][1] == pytest.approx(45.0)
    assert got["btag_b2"][1] == pytest.approx(0.95)
    assert np.all(got["b1_pt_gev"] >= got["b2_pt_gev"])


def test_compute_features_on_no_events(events):
    got = compute_features(events[:0], list(FEATURES))
    assert set(got) == set(FEATURES)
    assert all(v.shape == (0,) and v.dtype == np.float32 for v in got.values())


# --- weight variations ---------------------------------------------------------------------------


def untagged(flavour: str, sign: int) -> float:
    """Weight ratio (1 − SF·ε)/(1 − ε) of an untagged jet, SF = 1 + sign·δ."""
    sf = 1 + sign * SF_UNC[flavour]
    return (1 - sf * EFF[flavour]) / (1 - EFF[flavour])


def btag_factors(events, sign):
    """(heavy-flavour, light) event weight ratios of the b-tag scale factors."""
    objects = EventObjects.from_events(events)
    return tuple(
        WEIGHT_SYSTEMATICS[name].factor(objects, SYSTS["btag"], sign)
        for name in ("btag_hf", "btag_light")
    )


def test_btag_weights_of_tagged_and_untagged_jets_by_hand(events):
    b, c, light = (SF_UNC[k] for k in ("b", "c", "light"))
    for sign in (1, -1):
        hf, lf = btag_factors(events, sign)
        # event 0: two tagged b jets; event 1: tagged c and b, an untagged light jet;
        # event 2: a tagged b jet, tagged light jets (0.30, 0.85) and an untagged one (0.10)
        expected_hf = [(1 + sign * b) ** 2, (1 + sign * c) * (1 + sign * b), 1 + sign * b]
        expected_lf = [
            1.0,
            untagged("light", sign),
            (1 + sign * light) ** 2 * untagged("light", sign),
        ]
        np.testing.assert_allclose(hf, expected_hf, rtol=1e-12)
        np.testing.assert_allclose(lf, expected_lf, rtol=1e-12)


def test_btag_scale_factor_up_lowers_the_weight_of_failing_tags(tmp_path):
    """A higher scale factor makes a tag more likely, so an event whose b jets fail the tag
    loses weight (the Π(1 ± δ) of the tagged jets alone moved it the wrong way); a jet outside
    the tracker cannot be tagged and keeps weight 1."""
    spec = [
        dict(EVENTS[0], jets=[jet(50.0, 0.0, 0.0, 0.0, 0.1, 5, 55.0)] * 2),
        dict(
            EVENTS[0],
            jets=[
                jet(50.0, 0.0, 0.0, 0.0, 0.9, 5, 55.0),
                jet(40.0, 2.7, 1.0, 0.0, 0.0, 5, 45.0),
            ],
        ),
    ]
    path = tmp_path / "ev.parquet"
    pq.write_table(ak.to_arrow_table(_record(spec), extensionarray=False), path)
    events = ak.from_parquet(path)
    up, _ = btag_factors(events, 1)
    down, _ = btag_factors(events, -1)
    assert up[0] == pytest.approx(untagged("b", 1) ** 2, rel=1e-12)
    assert up[0] < 1.0 < down[0]
    np.testing.assert_allclose([up[1], down[1]], [1 + SF_UNC["b"], 1 - SF_UNC["b"]], rtol=1e-12)


def test_btag_weights_give_the_tag_rates_of_the_scaled_efficiency():
    """Reweighting reproduces a simulation whose efficiency is SF·ε: toy events of three jets
    (b, b, c or b, light, light) tagged with the efficiencies; the weighted yield with at least
    two tags matches its probability under SF·ε, and up/down bracket the nominal yield."""
    rng = np.random.default_rng(5)
    n = 200_000
    flavours = np.where(rng.uniform(size=(n, 1)) < 0.5, [[5, 5, 4]], [[5, 0, 0]])
    eff = np.select([flavours == 5, flavours == 4], [EFF["b"], EFF["c"]], EFF["light"])
    tagged = rng.uniform(size=(n, 3)) < eff
    jets = Objects.from_counts(
        np.full(n, 3),
        {
            "hadron_flavour": flavours.ravel(),
            "eta": np.zeros(3 * n),
            "btag": np.where(tagged, 0.9, 0.1).ravel(),
        },
    )
    passed = tagged.sum(axis=1) >= 2
    calibration = BTagCalibration.from_config(SYSTS["btag"])
    yields = {}
    for sign in (1, -1):
        for group, flavour_names in (("hf", ("b", "c")), ("light", ("light",))):
            w = calibration.event_factor(jets, flavour_names, sign)[passed]
            unc = np.array([SF_UNC[k] if k in flavour_names else 0.0 for k in ("b", "c", "light")])
            scaled = np.select(
                [flavours == 5, flavours == 4],
                [EFF["b"] * (1 + sign * unc[0]), EFF["c"] * (1 + sign * unc[1])],
                EFF["light"] * (1 + sign * unc[2]),
            )
            expected = probability_of_two_tags(scaled).sum()
            assert abs(w.sum() - expected) < 5 * math.sqrt((w**2).sum()), (group, sign)
            yields[group, sign] = w.sum()
    nominal = passed.sum()
    for group in ("hf", "light"):
        assert yields[group, 1] > nominal > yields[group, -1], group


def probability_of_two_tags(eff: np.ndarray) -> np.ndarray:
    """Per event (rows of three jets): probability that at least two jets are tagged."""
    e1, e2, e3 = eff.T
    none = (1 - e1) * (1 - e2) * (1 - e3)
    one = e1 * (1 - e2) * (1 - e3) + (1 - e1) * e2 * (1 - e3) + (1 - e1) * (1 - e2) * e3
    return 1 - none - one


def test_default_btag_efficiencies_are_the_simulations(default_config):
    """The configured efficiencies are those of the detector's logit-normal discriminant at
    the working point (rounded), and the working point is the selection's (v9's medium)."""
    btag = default_config["systematics"]["weight"]["btag"]
    model = default_config["simulation"]["detector"]["btag"]
    logit_wp = math.log(btag["working_point"] / (1 - btag["working_point"]))
    for flavour in ("b", "c", "light"):
        m = model[flavour]
        expected = 0.5 * math.erfc((logit_wp - m["logit_mean"]) / (m["logit_sigma"] * math.sqrt(2)))
        assert btag["efficiency"][flavour] == pytest.approx(expected, rel=0.01), flavour
    # the selection cuts on the medium working point of the file's tagger: for the embedded
    # simulation (NanoAOD v9, DeepJet) the one of the weight systematic
    cuts = {c["name"]: c["expr"] for c in default_config["selection"]["cuts"]}
    assert "btag_max > btag_wp_medium" in cuts.values()
    assert branch_maps()["v9"].btag.working_points["medium"] == btag["working_point"]


def test_btag_scale_factor_that_makes_a_tag_certain_is_a_config_error(default_config):
    default_config["systematics"]["weight"]["btag"]["efficiency"]["b"] = 0.97
    with pytest.raises(ConfigError, match=r"systematics.weight.btag'.*b jets"):
        check(default_config, {})


def test_lepton_efficiency_weights_per_flavour(events):
    """Muon and electron efficiencies are separate nuisance parameters: each moves only the
    events with leptons of its flavour (μμ, ee, μe)."""
    mu, el = SYSTS["lepton_eff"]["muon"], SYSTS["lepton_eff"]["electron"]
    leptons = EventObjects.from_events(events).leptons
    for sign in (1, -1):
        np.testing.assert_allclose(
            lepton_efficiency_factor(leptons, 13, mu, sign),
            [(1 + sign * mu) ** 2, 1.0, 1 + sign * mu],
            rtol=1e-12,
        )
        np.testing.assert_allclose(
            lepton_efficiency_factor(leptons, 11, el, sign),
            [1.0, (1 + sign * el) ** 2, 1 + sign * el],
            rtol=1e-12,
        )


# --- feature tables -------------------------------------------------------------------------------


def _table(events, kind="signal", norm=0.25, systs=SYSTS):
    return feature_table(
        events,
        sample="zh",
        kind=kind,
        norm_factor=norm,
        feature_names=list(FEATURES),
        weight_systematics=systs,
    )


EXPECTED_COLUMNS = (
    ["run", "luminosityBlock", "event", "sample", "label", "region", "lhe_nb", "lhe_nc"]
    + [*FEATURES, "weight", "gen_weight"]
    + WEIGHT_COLUMNS
    + [
        f"{b}_{c}"
        for b in ("b1", "b2")
        for c in ("gen_pt_gev", "mass_gev", "soft_lepton", "hadron_flavour")
    ]
)


def test_feature_table_weights_labels_and_systematics(events):
    table = _table(events, norm=0.25)
    assert table.column_names == EXPECTED_COLUMNS
    t = table.to_pydict()
    assert t["sample"] == ["zh"] * 3
    assert t["label"] == [LABEL_SIGNAL] * 3
    # ingestion's region label and process truth, carried as they are (not ML inputs)
    assert t["region"] == [e["region"] for e in EVENTS] == ["sr", "cr_top", "sr"]
    assert t["lhe_nb"] == [e["lhe_nb"] for e in EVENTS]
    assert t["lhe_nc"] == [e["lhe_nc"] for e in EVENTS]
    assert (
        t["event"] == [101, 102, 103]
        and t["run"] == [1, 1, 1]
        and t["luminosityBlock"] == [3, 3, 3]
    )
    weight = np.array([0.25 * e["gen_weight"] * e["extra_weight"] for e in EVENTS])
    np.testing.assert_allclose(t["weight"], weight, rtol=1e-12)
    np.testing.assert_allclose(t["gen_weight"], [e["gen_weight"] for e in EVENTS])
    mu, el = SYSTS["lepton_eff"]["muon"], SYSTS["lepton_eff"]["electron"]
    for d, s in (("up", 1), ("down", -1)):
        hf, lf = btag_factors(events, s)
        muon = np.array([(1 + s * mu) ** 2, 1.0, 1 + s * mu])
        electron = np.array([1.0, (1 + s * el) ** 2, 1 + s * el])
        for name, factor in (
            ("btag_hf", hf),
            ("btag_light", lf),
            ("lepton_eff_muon", muon),
            ("lepton_eff_electron", electron),
        ):
            np.testing.assert_allclose(t[f"weight_{name}_{d}"], weight * factor, rtol=1e-12)
    # features in the table are those of compute_features
    for name, values in compute_features(events, list(FEATURES)).items():
        np.testing.assert_array_equal(table[name].to_numpy(), values)


def test_feature_table_truth_columns_follow_b1_b2(events):
    t = _table(events).to_pydict()
    b1 = [EVENTS[i]["jets"][h[0]] for i, h in enumerate(HIGGS_JETS)]
    b2 = [EVENTS[i]["jets"][h[1]] for i, h in enumerate(HIGGS_JETS)]
    for name, jets in (("b1", b1), ("b2", b2)):
        np.testing.assert_allclose(t[f"{name}_gen_pt_gev"], [j["gen_pt"] for j in jets], rtol=1e-6)
        np.testing.assert_allclose(t[f"{name}_mass_gev"], [j["mass"] for j in jets], rtol=1e-6)
        assert t[f"{name}_hadron_flavour"] == [j["hadron_flavour"] for j in jets]
        assert t[f"{name}_soft_lepton"] == [int(j["n_muons"] + j["n_electrons"] > 0) for j in jets]


def test_feature_table_background_label(events):
    t = _table(events, kind="background").to_pydict()
    assert t["label"] == [LABEL_BACKGROUND] * 3


def test_feature_table_data_is_unweighted(events):
    table = _table(events, kind="data", norm=0.25)
    t = table.to_pydict()
    assert t["label"] == [LABEL_DATA] * 3
    np.testing.assert_array_equal(t["weight"], 1.0)
    for col in WEIGHT_COLUMNS:
        np.testing.assert_array_equal(t[col], t["weight"])


def test_feature_table_without_weight_systematics(events):
    table = _table(events, systs={"btag": SYSTS["btag"]})
    assert {"weight_btag_hf_up", "weight_btag_light_down"} <= set(table.column_names)
    assert not any(c.startswith("weight_lepton") for c in table.column_names)
    assert not any(c.startswith("weight_") for c in _table(events, systs={}).column_names)


def test_feature_table_of_no_events_has_every_column(events):
    full = _table(events)
    empty = _table(events[:0])
    assert empty.num_rows == 0
    assert empty.column_names == EXPECTED_COLUMNS
    assert empty.schema == full.schema
    assert _table(events[:0], kind="data").column_names == EXPECTED_COLUMNS


# --- workflow entry point -------------------------------------------------------------------------


def test_build_features_uses_the_cutflow_normalisation(tmp_path, events, default_config):
    config = default_config
    ev_path, cf_path, out = (
        tmp_path / "ev.parquet",
        tmp_path / "cutflow.json",
        tmp_path / "features.parquet",
    )
    pq.write_table(ak.to_arrow_table(_record(EVENTS), extensionarray=False), ev_path)
    cutflow = Cutflow(
        sample="zjets",
        is_data=False,
        files=["zjets.root"],
        events_read=3,
        non_finite_events=0,
        sumw_read=3.0,
        events_generated=None,
        sumw_generated=None,
        sumw=3.0,
        sumw_source="Events.genWeight",
        xsec_pb=1.0,
        lumi_fb=1.0,
        norm_factor=0.125,
        selected={"nominal": 3},
        cutflow={"nominal": [CutRow("all", 3, 3.0, 0.375)]},
        regions={"nominal": [CutRow("inclusive", 3, 3.0, 0.375)]},
    )
    cf_path.write_text(json.dumps(cutflow.to_json()))
    rows = build_features(config, "zjets", str(ev_path), str(cf_path), str(out))
    assert rows == 3
    table = pq.read_table(out)
    assert table.column_names[: 8 + len(config["features"])] == [
        "run",
        "luminosityBlock",
        "event",
        "sample",
        "label",
        "region",
        "lhe_nb",
        "lhe_nc",
        *config["features"],
    ]
    np.testing.assert_allclose(
        table["weight"].to_numpy(),
        [0.125 * e["gen_weight"] * e["extra_weight"] for e in EVENTS],
        rtol=1e-12,
    )
    assert table["label"].to_pylist() == [LABEL_BACKGROUND] * 3
    # the region names are strings, stored dictionary-encoded
    assert table.schema.field("region").type == pa.string()
    assert table["region"].to_pylist() == ["sr", "cr_top", "sr"]
    assert pq.ParquetFile(out).metadata.row_group(0).column(5).has_dictionary_page
    # events written before the analysis had regions are refused, naming the file
    old = ak.without_field(ak.without_field(_record(EVENTS), "region"), "lhe_nb")
    pq.write_table(ak.to_arrow_table(old, extensionarray=False), ev_path)
    with pytest.raises(CorruptResultError, match=r"ev\.parquet.*no column\(s\) lhe_nb, region"):
        build_features(config, "zjets", str(ev_path), str(cf_path), str(out))
    # an event without a Higgs candidate (one jet) is refused with a message naming the sample
    bad = [dict(EVENTS[0], jets=EVENTS[0]["jets"][:1])]
    pq.write_table(ak.to_arrow_table(_record(bad), extensionarray=False), ev_path)
    with pytest.raises(ValueError, match="zjets.*fewer than two leptons or two jets"):
        build_features(config, "zjets", str(ev_path), str(cf_path), str(out))


def test_a_feature_job_does_not_import_pandas(tmp_path):
    # pyarrow imports pandas on its first pa.array call: 0.3 s of a feature job's time
    ev_path = tmp_path / "ev.parquet"
    pq.write_table(ak.to_arrow_table(_record(EVENTS), extensionarray=False), ev_path)
    code = (
        "import sys, awkward as ak\n"
        "from thetaflow.features.compute import FEATURES, feature_table\n"
        f"events = ak.from_parquet({str(ev_path)!r})\n"
        "table = feature_table(events, sample='zh', kind='signal', norm_factor=1.0,"
        " feature_names=list(FEATURES), weight_systematics={})\n"
        "assert table.num_rows == 3 and table['sample'].to_pylist() == ['zh'] * 3\n"
        "assert 'pandas' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
