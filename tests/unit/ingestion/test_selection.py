"""Object selection, ΔR cleaning and the jet-energy-scale variation on hand-made events."""

from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest

from thetaflow.core.expressions import parse_expression
from thetaflow.core.jagged import Objects
from thetaflow.ingestion.selection import (
    LEPTON_FIELDS,
    TYPE1_JET_PT_MIN_GEV,
    Selection,
    object_mask,
    prepare_chunk,
    select_leptons,
    select_objects,
)

CONFIG = {
    "objects": {
        "muon": "pt > 20",
        "electron": "pt > 20",
        "jet": "pt > 20 and abs(eta) < 2.5",
        "jet_lepton_min_dr": 0.4,
    },
    "cuts": [{"name": "two_leptons", "expr": "n_leptons == 2"}],
}


def muon(pt, eta, phi, charge=-1):
    return {
        "pt": pt,
        "eta": eta,
        "phi": phi,
        "mass": 0.10566,
        "charge": charge,
        "pdgId": 13 * -charge,
    }


def jet(pt, eta, phi, btag=0.1):
    return {"pt": pt, "eta": eta, "phi": phi, "mass": 5.0, "btag": btag}


def collection(events: list[list[dict]], fields) -> Objects:
    array = ak.Array(events)
    return Objects.from_awkward(array, fields)


@pytest.fixture
def chunk():
    """Event 0: a jet 0.08 from a muon across φ = ±π (removed), a jet at ΔR = 0.5 (kept) and
    a 19.5 GeV jet that passes p_T > 20 only after +3 % JES. Event 1: no leptons, jets kept."""
    selection = Selection.from_config(CONFIG)
    muons = collection([[muon(50.0, 0.0, -3.1), muon(30.0, 1.0, 0.0, +1)], []], LEPTON_FIELDS)
    electrons = Objects.from_counts(
        np.zeros(2, np.int64),
        {
            f: np.zeros(0, np.int64 if f in ("charge", "pdgId") else np.float64)
            for f in LEPTON_FIELDS
        },
    )
    jets = collection(
        [
            [jet(60.0, 0.0, 3.1), jet(45.0, 1.5, 0.0, 0.9), jet(19.5, -1.0, 1.0, 0.9)],
            [jet(25.0, 0.0, 0.0), jet(80.0, 0.0, 2.0)],
        ],
        ("pt", "eta", "phi", "mass", "btag"),
    )
    leptons, variables = select_leptons(muons, electrons, selection)
    met = (np.float32([30.0, 10.0]), np.float32([0.5, -1.0]))
    return selection, prepare_chunk(jets, leptons, variables, met, selection)


def test_jets_are_cleaned_against_leptons_across_the_phi_boundary(chunk):
    _, prepared = chunk
    np.testing.assert_array_equal(prepared.clean, [False, True, True, True, True])


def test_lepton_variables_by_hand(chunk):
    _, prepared = chunk
    v = prepared.lepton_variables
    np.testing.assert_array_equal(v["n_leptons"], [2, 0])
    assert v["opposite_sign"].tolist() == [True, False] and v["same_flavour"].tolist() == [
        True,
        False,
    ]
    m = 0.10566
    p = [(50.0 * math.cos(-3.1), 50.0 * math.sin(-3.1), 0.0), (30.0, 0.0, 30.0 * math.sinh(1.0))]
    e = sum(math.sqrt(px * px + py * py + pz * pz + m * m) for px, py, pz in p)
    px, py, pz = (sum(c) for c in zip(*p, strict=True))
    assert v["mll_gev"][0] == pytest.approx(
        math.sqrt(e * e - px * px - py * py - pz * pz), rel=1e-5
    )
    assert v["ptll_gev"][0] == pytest.approx(math.hypot(px, py), rel=1e-5)
    assert v["mll_gev"][1] == 0.0 and v["lep1_pt_gev"].tolist() == [50.0, 0.0]


def test_nominal_and_varied_jets(chunk):
    selection, prepared = chunk
    nominal = select_objects(prepared, selection)
    assert ak.to_list(nominal.jets.unflatten(nominal.jets["pt"])) == [
        [45.0],
        [80.0, 25.0],
    ]  # p_T-ordered
    np.testing.assert_array_equal(nominal.variables["n_jets"], [1, 2])
    np.testing.assert_array_equal(nominal.variables["btag_second"], [-1.0, 0.1])
    up = select_objects(prepared, selection, 1.03)
    pts = ak.to_list(up.jets.unflatten(up.jets["pt"]))
    assert pts[0] == pytest.approx([45.0 * 1.03, 19.5 * 1.03], rel=1e-6)  # the 19.5 GeV jet enters
    assert (
        up.variables["btag_max"][0] == up.variables["btag_second"][0] == 0.9
    )  # a tie counts twice
    assert up.variables["ht_gev"][0] == pytest.approx((45.0 + 19.5) * 1.03, rel=1e-6)
    # MET absorbs -3 % of the p_T of the jets that are not the muon (the 60 GeV jet is)
    jets = [(45.0, 0.0), (19.5, 1.0)]
    mx = 30.0 * math.cos(0.5) - sum(0.03 * pt * math.cos(phi) for pt, phi in jets)
    my = 30.0 * math.sin(0.5) - sum(0.03 * pt * math.sin(phi) for pt, phi in jets)
    assert up.met_pt[0] == pytest.approx(math.hypot(mx, my), rel=1e-5)
    assert up.met_phi[0] == pytest.approx(math.atan2(my, mx), abs=1e-5)


def test_jes_moves_met_through_the_type1_jets_only():
    """A jet on a lepton (the lepton's own deposit in real NanoAOD) and a jet below the type-1
    threshold leave MET alone; a jet the selection rejects (forward, |η| = 3.5) still moves
    it, as type-1 MET corrects every jet above the threshold."""
    selection = Selection.from_config(CONFIG)
    muons = collection([[muon(50.0, 0.0, 0.0), muon(40.0, 0.5, 2.0, +1)]], LEPTON_FIELDS)
    electrons = Objects.from_counts(
        np.zeros(1, np.int64),
        {
            f: np.zeros(0, np.int64 if f in ("charge", "pdgId") else np.float64)
            for f in LEPTON_FIELDS
        },
    )
    below = TYPE1_JET_PT_MIN_GEV - 3.0
    jets = collection(
        [
            [
                jet(52.0, 0.05, 0.02),  # the leading muon
                jet(70.0, -1.0, -2.0),  # selected
                jet(40.0, 3.5, 1.0),  # forward: not selected, in type-1 MET
                jet(below, 1.5, 0.5),  # below the type-1 threshold
            ]
        ],
        ("pt", "eta", "phi", "mass", "btag"),
    )
    leptons, variables = select_leptons(muons, electrons, selection)
    met = (np.float32([20.0]), np.float32([1.0]))
    prepared = prepare_chunk(jets, leptons, variables, met, selection)
    for factor in (1.05, 0.95):
        varied = select_objects(prepared, selection, factor)
        type1 = [(70.0, -2.0), (40.0, 1.0)]
        mx = 20.0 * math.cos(1.0) - sum((factor - 1) * pt * math.cos(phi) for pt, phi in type1)
        my = 20.0 * math.sin(1.0) - sum((factor - 1) * pt * math.sin(phi) for pt, phi in type1)
        assert varied.met_pt[0] == pytest.approx(math.hypot(mx, my), rel=1e-5)
        assert varied.met_phi[0] == pytest.approx(math.atan2(my, mx), abs=1e-5)
        assert varied.variables["met_gev"][0] == varied.met_pt[0]
    nominal = select_objects(prepared, selection)
    assert nominal.met_pt[0] == pytest.approx(20.0) and nominal.met_phi[0] == pytest.approx(1.0)


def test_object_cut_with_a_reduction_acts_per_event():
    jets = collection(
        [[jet(100.0, 0, 0), jet(40.0, 0, 1), jet(60.0, 0, 2)], [], [jet(10.0, 0, 0)]], ("pt",)
    )
    mask = object_mask(jets, parse_expression("pt > 0.5 * max(pt)"))
    np.testing.assert_array_equal(mask, [True, False, True, True])
    per_event = object_mask(jets, parse_expression("count(pt > 50) >= 2"))
    np.testing.assert_array_equal(per_event, [True, True, True, False])
