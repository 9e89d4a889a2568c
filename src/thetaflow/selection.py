"""Object and event selection on NanoEvents, driven by expressions from config.

Object cuts (``selection.objects``) are expressions over one collection's NanoAOD fields
(``pt``, ``eta``, ``tightId``...). Event cuts (``selection.cuts``) are expressions over the
event variables in :data:`EVENT_VARIABLES`, computed here from the selected objects with
``vector`` four-vectors. Jets are cleaned against the selected leptons (ΔR) and sorted by
p_T; the jet-energy-scale variation scales jet p_T and mass and propagates to MET.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import awkward as ak
import numpy as np
import vector

from thetaflow.expressions import Expression, parse_expression

vector.register_awkward()

EVENT_VARIABLES: dict[str, str] = {
    "n_muons": "number of selected muons",
    "n_electrons": "number of selected electrons",
    "n_leptons": "number of selected muons + electrons",
    "opposite_sign": "the two leading leptons have opposite charge",
    "same_flavour": "the two leading leptons have the same flavour",
    "mll_gev": "invariant mass of the two leading leptons [GeV] (0 if fewer)",
    "ptll_gev": "p_T of the two leading leptons' system [GeV] (0 if fewer)",
    "lep1_pt_gev": "leading lepton p_T [GeV] (0 if none)",
    "lep2_pt_gev": "subleading lepton p_T [GeV] (0 if fewer)",
    "n_jets": "number of selected, lepton-cleaned jets",
    "btag_max": "highest b-tag score among selected jets (-1 if none)",
    "btag_second": "second-highest b-tag score among selected jets (-1 if fewer)",
    "ht_gev": "scalar sum of selected jet p_T [GeV]",
    "met_gev": "missing transverse momentum [GeV] (after the jet variation)",
}
LEPTON_VARIABLES = frozenset(
    ("n_muons", "n_electrons", "n_leptons", "opposite_sign", "same_flavour", "mll_gev", "ptll_gev",
     "lep1_pt_gev", "lep2_pt_gev")
)
LEPTON_FIELDS = ("pt", "eta", "phi", "mass", "charge", "pdgId")
KINEMATIC_FIELDS = ("pt", "eta", "phi", "mass")


@dataclass(frozen=True)
class Selection:
    """Parsed object and event cuts of ``selection`` in config."""

    muon: Expression
    electron: Expression
    jet: Expression
    jet_lepton_min_dr: float
    cuts: tuple[tuple[str, Expression], ...]

    @classmethod
    def from_config(cls, cfg: Mapping) -> Selection:
        """Parse every expression (the config was validated and checked before)."""
        obj = cfg["objects"]
        return cls(
            muon=parse_expression(obj["muon"], context="selection.objects.muon"),
            electron=parse_expression(obj["electron"], context="selection.objects.electron"),
            jet=parse_expression(obj["jet"], context="selection.objects.jet"),
            jet_lepton_min_dr=obj.get("jet_lepton_min_dr", 0.4),
            cuts=tuple(
                (c["name"], parse_expression(c["expr"], allowed_names=EVENT_VARIABLES, context=f"selection.cuts[{i}].expr"))
                for i, c in enumerate(cfg["cuts"])
            ),
        )

    def branches(self) -> set[str]:
        """NanoAOD branches the object cuts read (for the up-front branch check)."""
        out = {f"Muon_{n}" for n in self.muon.names} | {f"Electron_{n}" for n in self.electron.names}
        return out | {f"Jet_{n}" for n in self.jet.names}


@dataclass(frozen=True)
class ChunkObjects:
    """What does not depend on the jet energy scale, computed once per chunk.

    Leptons and the jet–lepton ΔR cleaning use only η/φ and lepton momenta, so every jet
    variation reuses them; only jet p_T/mass, the jet cuts and MET change per variation.
    """

    leptons: ak.Array
    lepton_variables: dict[str, ak.Array]
    raw_jets: ak.Array
    jets: ak.Array
    clean: ak.Array
    met_pt: ak.Array
    met_phi: ak.Array


@dataclass(frozen=True)
class SelectedObjects:
    """Selected leptons (p_T-ordered Momentum4D with charge, pdgId), jets and MET."""

    leptons: ak.Array
    jets: ak.Array
    met_pt: ak.Array
    met_phi: ak.Array
    variables: dict[str, ak.Array]


def mask_collection(collection: ak.Array, expr: Expression) -> ak.Array:
    """Evaluate an object cut on a collection's fields (missing field: ExpressionError)."""
    return expr.evaluate(_FieldView(collection))


class _FieldView(Mapping):
    """Read-only mapping of a record array's fields, so expressions can name them."""

    def __init__(self, array: ak.Array) -> None:
        self._array = array

    def __getitem__(self, key: str) -> ak.Array:
        if key not in self._array.fields:
            raise KeyError(key)
        return self._array[key]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._array.fields)

    def __len__(self) -> int:
        return len(self._array.fields)


def _momenta(collection: ak.Array, extra: Mapping[str, ak.Array]) -> ak.Array:
    return ak.zip({f: collection[f] for f in KINEMATIC_FIELDS} | dict(extra), with_name="Momentum4D")


def select_leptons(events: ak.Array, selection: Selection) -> tuple[ak.Array, dict[str, ak.Array]]:
    """Selected muons and electrons merged into one p_T-ordered collection + its variables."""
    muons = events.Muon[mask_collection(events.Muon, selection.muon)]
    electrons = events.Electron[mask_collection(events.Electron, selection.electron)]
    parts = [_momenta(c, {"charge": c["charge"], "pdgId": c["pdgId"]}) for c in (muons, electrons)]
    leptons = ak.concatenate(parts, axis=1)
    leptons = leptons[ak.argsort(leptons.pt, axis=1, ascending=False)]
    lp = ak.pad_none(leptons, 2, axis=1)
    pair = lp[:, 0] + lp[:, 1]
    variables = {
        "n_muons": ak.num(muons),
        "n_electrons": ak.num(electrons),
        "n_leptons": ak.num(leptons),
        "opposite_sign": ak.fill_none(lp[:, 0].charge * lp[:, 1].charge < 0, False),
        "same_flavour": ak.fill_none(abs(lp[:, 0].pdgId) == abs(lp[:, 1].pdgId), False),
        "mll_gev": ak.fill_none(pair.mass, 0.0),
        "ptll_gev": ak.fill_none(pair.pt, 0.0),
        "lep1_pt_gev": ak.fill_none(lp[:, 0].pt, 0.0),
        "lep2_pt_gev": ak.fill_none(lp[:, 1].pt, 0.0),
    }
    return leptons, variables


def lepton_cut_prefix(selection: Selection, extra_names: frozenset[str] = frozenset()) -> int:
    """How many leading cuts read lepton variables only (jet-variation independent).

    Those cuts are evaluated once per chunk and the jet variations run only on the events
    that pass them. ``extra_names`` (the names an extra weight expression reads) must be
    lepton-only too, since the weight enters the counts of those cuts.
    """
    if not extra_names <= LEPTON_VARIABLES:
        return 0
    n = 0
    for _, expr in selection.cuts:
        if not expr.names <= LEPTON_VARIABLES:
            break
        n += 1
    return n


def prepare_chunk(
    events: ak.Array,
    selection: Selection,
    jet_extras: Mapping[str, ak.Array] | None = None,
    leptons: tuple[ak.Array, dict[str, ak.Array]] | None = None,
) -> ChunkObjects:
    """Leptons, lepton variables and the jet cleaning mask of one chunk of NanoEvents.

    ``leptons`` may pass in the result of :func:`select_leptons` already computed for
    these events.
    """
    leptons, lepton_variables = leptons if leptons is not None else select_leptons(events, selection)
    jets = _momenta(events.Jet, {"btag": events.Jet["btagDeepFlavB"], **(jet_extras or {})})
    pairs = ak.cartesian([jets, leptons], axis=1, nested=True)
    clean = ak.all(pairs["0"].deltaR(pairs["1"]) > selection.jet_lepton_min_dr, axis=-1)
    return ChunkObjects(leptons, lepton_variables, events.Jet, jets, clean, events.MET.pt, events.MET.phi)


def vary_jets(jets: ak.Array, jes_factor: float) -> ak.Array:
    """Jets with p_T and mass scaled by the jet-energy-scale factor (1 for nominal)."""
    if jes_factor == 1.0:
        return jets
    scale = np.float32(jes_factor)
    return ak.with_field(ak.with_field(jets, jets.pt * scale, "pt"), jets.mass * scale, "mass")


def propagate_met(
    met_pt: ak.Array, met_phi: ak.Array, jets: ak.Array, jes_factor: float
) -> tuple[ak.Array, ak.Array]:
    """Type-1-like MET propagation of a jet-energy-scale change over all stored jets."""
    if jes_factor == 1.0:
        return met_pt, met_phi
    dpt = jets.pt * (jes_factor - 1.0)
    px = met_pt * np.cos(met_phi) - ak.sum(dpt * np.cos(jets.phi), axis=1)
    py = met_pt * np.sin(met_phi) - ak.sum(dpt * np.sin(jets.phi), axis=1)
    return np.hypot(px, py), np.arctan2(py, px)


def select_objects(chunk: ChunkObjects, selection: Selection, jes_factor: float = 1.0) -> SelectedObjects:
    """Apply one jet variation: varied jet cuts, p_T-ordered clean jets, MET, event variables."""
    jet_mask = mask_collection(vary_jets(chunk.raw_jets, jes_factor), selection.jet) & chunk.clean
    jets = vary_jets(chunk.jets, jes_factor)[jet_mask]
    jets = jets[ak.argsort(jets.pt, axis=1, ascending=False)]
    met_pt, met_phi = propagate_met(chunk.met_pt, chunk.met_phi, chunk.raw_jets, jes_factor)
    bt = ak.pad_none(ak.sort(jets.btag, axis=1, ascending=False), 2, axis=1)
    variables = {
        **chunk.lepton_variables,
        "n_jets": ak.num(jets),
        "btag_max": ak.fill_none(bt[:, 0], -1.0),
        "btag_second": ak.fill_none(bt[:, 1], -1.0),
        "ht_gev": ak.sum(jets.pt, axis=1),
        "met_gev": met_pt,
    }
    return SelectedObjects(chunk.leptons, jets, met_pt, met_phi, variables)


def cut_masks(
    variables: Mapping[str, ak.Array], selection: Selection, first: int = 0, last: int | None = None
) -> list[np.ndarray]:
    """Cumulative boolean masks after cuts ``first``..``last`` (config order) on ``variables``."""
    running: np.ndarray | None = None
    out = []
    for _, expr in selection.cuts[first:last]:
        passed = ak.to_numpy(ak.fill_none(expr.evaluate(variables), False)).astype(bool)
        running = passed if running is None else running & passed
        out.append(running)
    return out
