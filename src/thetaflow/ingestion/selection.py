"""Object and event selection, driven by expressions from config.

Object cuts (``selection.objects``) are expressions over one collection's NanoAOD fields
(``pt``, ``eta``, ``tightId``...; for jets the logical fields of
:mod:`thetaflow.ingestion.nanoaod`, ``btag``, ``jetId``, ``puId`` whatever the version),
evaluated on the collection's flat columns
(:class:`thetaflow.core.jagged.Objects`; why flat: see that module). Event cuts
(``selection.cuts``) are expressions over the event variables in :data:`EVENT_VARIABLES`,
computed here from the selected objects, with ``vector`` (its NumPy backend) for the
four-vector sums and ΔR. Jets are cleaned against the selected leptons (ΔR) and sorted by
p_T; the jet-energy-scale variation scales jet p_T and mass and propagates to MET through
the type-1 jets (:func:`propagate_met`). The analysis regions (``regions:``) are expressions
over the same event variables, labelling the events that pass every cut (:class:`Regions`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import awkward as ak
import numpy as np
import vector

from thetaflow.core.errors import ThetaflowError
from thetaflow.core.expressions import Expression, parse_expression
from thetaflow.core.jagged import Objects, concatenate
from thetaflow.core.regions import analysis_regions

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
    "mbb_gev": "invariant mass of the Higgs-candidate jets, the two with the highest b-tag "
    "scores (the features' b1, b2) [GeV] (0 if fewer)",
    "ht_gev": "scalar sum of selected jet p_T [GeV]",
    "met_gev": "missing transverse momentum [GeV] (after the jet variation)",
    "btag_wp_loose": "the b-tag discriminant's loose working point (the NanoAOD version's map)",
    "btag_wp_medium": "the b-tag discriminant's medium working point (the NanoAOD version's map)",
    "btag_wp_tight": "the b-tag discriminant's tight working point (the NanoAOD version's map)",
}
#: the working points named by the ``btag_wp_*`` event variables
WORKING_POINTS = ("loose", "medium", "tight")
LEPTON_VARIABLES = frozenset(
    (
        "n_muons",
        "n_electrons",
        "n_leptons",
        "opposite_sign",
        "same_flavour",
        "mll_gev",
        "ptll_gev",
        "lep1_pt_gev",
        "lep2_pt_gev",
    )
)
LEPTON_FIELDS = ("pt", "eta", "phi", "mass", "charge", "pdgId")
KINEMATIC_FIELDS = ("pt", "eta", "phi", "mass")
#: jet fields every selection reads: ``btag`` is the logical b-tag score, the discriminant
#: of the file's NanoAOD version (:mod:`thetaflow.ingestion.nanoaod`)
JET_FIELDS = (*KINEMATIC_FIELDS, "btag")
#: p_T above which a jet enters the type-1 MET correction (CMS PF MET; NanoAOD stores jets
#: from 15 GeV), so only these jets carry a jet-energy-scale change into MET
TYPE1_JET_PT_MIN_GEV = 15.0


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
            jet_lepton_min_dr=obj["jet_lepton_min_dr"],
            cuts=tuple(
                (
                    c["name"],
                    parse_expression(
                        c["expr"],
                        allowed_names=EVENT_VARIABLES,
                        context=f"selection.cuts[{i}].expr",
                    ),
                )
                for i, c in enumerate(cfg["cuts"])
            ),
        )

    def fields(self, collection: str) -> list[str]:
        """Fields of ``Muon``, ``Electron`` or ``Jet`` that selection reads (for jets the
        logical ones: a version's branch map says which file branches supply them)."""
        base, expr = {
            "Muon": (LEPTON_FIELDS, self.muon),
            "Electron": (LEPTON_FIELDS, self.electron),
            "Jet": (JET_FIELDS, self.jet),
        }[collection]
        return [*base, *sorted(expr.names - set(base))]


class RegionOverlapError(ThetaflowError, ValueError):
    """Events that two regions both select; the message names the two regions (the caller
    adds the sample and the file)."""


@dataclass(frozen=True)
class Regions:
    """The parsed analysis regions (``regions:`` in config, :mod:`thetaflow.core.regions`):
    names in config order and their expressions over :data:`EVENT_VARIABLES` (``None``: every
    preselected event)."""

    names: tuple[str, ...]
    exprs: tuple[Expression | None, ...]

    @classmethod
    def from_config(cls, config: Mapping) -> Regions:
        """Parse every region expression (the config was validated and checked before);
        without ``regions:`` the one inclusive region."""
        regions = analysis_regions(config)
        return cls(
            tuple(r.name for r in regions),
            tuple(
                None
                if r.expr is None
                else parse_expression(
                    r.expr, allowed_names=EVENT_VARIABLES, context=f"regions[{i}].expr"
                )
                for i, r in enumerate(regions)
            ),
        )

    def label(
        self, variables: Mapping[str, np.ndarray | float], preselected: np.ndarray
    ) -> np.ndarray:
        """Every event's region as an index into :attr:`names` (int32): -1 for the events
        not ``preselected`` or in no region. An event two regions select is an error naming
        both (regions must not overlap: each event is counted once in the fit)."""
        n = len(preselected)
        codes = np.full(n, -1, np.int32)
        for i, expr in enumerate(self.exprs):
            inside = (
                preselected if expr is None else preselected & as_mask(expr.evaluate(variables), n)
            )
            overlap = inside & (codes >= 0)
            if overlap.any():
                other = self.names[codes[np.argmax(overlap)]]
                raise RegionOverlapError(
                    f"{int(overlap.sum())} event(s) are in both region '{other}' and region "
                    f"'{self.names[i]}'; regions must not overlap"
                )
            codes[inside] = i
        return codes


@dataclass(frozen=True)
class ChunkObjects:
    """What does not depend on the jet energy scale, computed once per chunk.

    Leptons and the jet–lepton ΔR cleaning use only η/φ and lepton momenta, so every jet
    variation reuses them; only jet p_T/mass, the jet cuts and MET change per variation.
    ``jets`` are all stored jets, ``clean`` their flat ΔR-cleaning mask, ``type1_px`` and
    ``type1_py`` their nominal transverse momentum where they enter the type-1 MET (0
    elsewhere, see :func:`propagate_met`); ``cut_only`` the jet fields only the jet cut reads
    (not carried into the selected jets).
    """

    leptons: Objects
    lepton_variables: dict[str, np.ndarray]
    jets: Objects
    clean: np.ndarray
    met_pt: np.ndarray
    met_phi: np.ndarray
    type1_px: np.ndarray
    type1_py: np.ndarray
    cut_only: frozenset[str]
    working_points: Mapping[str, float]


@dataclass(frozen=True)
class SelectedObjects:
    """Selected leptons (p_T-ordered, with charge and pdgId), selected p_T-ordered jets of
    one variation, its MET and the event variables."""

    leptons: Objects
    jets: Objects
    met_pt: np.ndarray
    met_phi: np.ndarray
    variables: dict[str, np.ndarray | float]


def as_mask(values: Any, n: int) -> np.ndarray:
    """An expression's result as a boolean numpy array of length ``n`` (None → False)."""
    if isinstance(values, ak.Array):
        values = ak.to_numpy(ak.fill_none(values, False))
    return np.broadcast_to(np.asarray(values).astype(bool), (n,))


def object_mask(objects: Objects, expr: Expression) -> np.ndarray:
    """Flat mask of an object cut.

    An element-wise cut runs on the flat columns; one that reduces a list (``count``,
    ``max``...) is evaluated on the jagged lists it refers to, and its per-event results
    are broadcast back to the objects.
    """
    n = len(objects.event_index)
    if not expr.reduces:
        return as_mask(expr.evaluate(objects.columns), n)
    lists = {k: objects.unflatten(v) if k in expr.names else v for k, v in objects.columns.items()}
    result = expr.evaluate(lists)
    if isinstance(result, ak.Array) and result.ndim == 1:
        return as_mask(result, objects.n_events)[objects.event_index]
    if isinstance(result, ak.Array):
        return as_mask(ak.flatten(result, axis=1), n)
    return as_mask(result, n)


def _four_vectors(objects: Objects, index: np.ndarray) -> Any:
    """``vector`` four-vectors of the objects at the flat ``index``."""
    return vector.array({f: objects[f][index] for f in KINEMATIC_FIELDS})


def select_leptons(
    muons: Objects, electrons: Objects, selection: Selection
) -> tuple[Objects, dict[str, np.ndarray]]:
    """Selected muons and electrons merged into one p_T-ordered collection + its variables."""
    parts = [
        Objects(objects.offsets, {f: objects[f] for f in LEPTON_FIELDS}).filter(
            object_mask(objects, expr)
        )
        for objects, expr in ((muons, selection.muon), (electrons, selection.electron))
    ]
    merged = concatenate(*parts)
    leptons = merged.sorted_by(merged["pt"])
    first, _ = leptons.nth(0)
    second, pair = leptons.nth(1)
    i, j = first[pair], second[pair]
    z = _four_vectors(leptons, i) + _four_vectors(leptons, j)
    n = leptons.n_events

    def on_pairs(values: np.ndarray, dtype: type) -> np.ndarray:
        """Per-event values of the leading pair; 0 (False) for events with fewer leptons."""
        out: np.ndarray = np.zeros(n, dtype)
        out[pair] = values
        return out

    charge, flavour = leptons["charge"], np.abs(leptons["pdgId"])
    variables = {
        "n_muons": parts[0].counts,
        "n_electrons": parts[1].counts,
        "n_leptons": leptons.counts,
        "opposite_sign": on_pairs(charge[i] * charge[j] < 0, bool),
        "same_flavour": on_pairs(flavour[i] == flavour[j], bool),
        "mll_gev": on_pairs(z.mass, np.float64),
        "ptll_gev": on_pairs(z.pt, np.float64),
        "lep1_pt_gev": leptons.nth_values("pt", 0, 0.0).astype(np.float64),
        "lep2_pt_gev": leptons.nth_values("pt", 1, 0.0).astype(np.float64),
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


def _directions(objects: Objects, index: np.ndarray) -> vector.MomentumNumpy3D:
    """``vector`` (p_T, η, φ) three-vectors of ``objects`` at the flat ``index``."""
    # vector.array is annotated with the base class VectorNumpy
    return cast(
        vector.MomentumNumpy3D,
        vector.array({f: objects[f][index] for f in ("pt", "eta", "phi")}),
    )


def lepton_cleaning(jets: Objects, leptons: Objects, min_dr: float) -> np.ndarray:
    """Flat mask: jets farther than ``min_dr`` in ΔR from every lepton of their event."""
    event = jets.event_index
    n_leptons = leptons.counts[event]
    clean = np.ones(len(event), bool)
    for k in range(int(n_leptons.max(initial=0))):
        has = np.flatnonzero(n_leptons > k)
        lepton = leptons.offsets[:-1][event[has]] + k
        jet_dir = _directions(jets, has)
        lepton_dir = _directions(leptons, lepton)
        clean[has] &= jet_dir.deltaR(lepton_dir) > min_dr
    return clean


def prepare_chunk(
    jets: Objects,
    leptons: Objects,
    lepton_variables: dict[str, np.ndarray],
    met: tuple[np.ndarray, np.ndarray],
    selection: Selection,
    working_points: Mapping[str, float] | None = None,
) -> ChunkObjects:
    """The jet-variation independent part of one chunk: leptons, their variables, all
    jets (with their ``btag`` column) and their ΔR cleaning against the leptons, MET, and
    the b-tag ``working_points`` (loose/medium/tight) of the file's NanoAOD version (the
    ``btag_wp_*`` event variables; absent: those variables are absent)."""
    clean = lepton_cleaning(jets, leptons, selection.jet_lepton_min_dr)
    cut_only = frozenset(selection.fields("Jet")) - {*KINEMATIC_FIELDS, "btag"}
    pt = np.where(clean & (jets["pt"] > TYPE1_JET_PT_MIN_GEV), jets["pt"], 0.0)
    phi = jets["phi"]
    return ChunkObjects(
        leptons,
        lepton_variables,
        jets,
        clean,
        met[0],
        met[1],
        pt * np.cos(phi),
        pt * np.sin(phi),
        cut_only,
        dict(working_points or {}),
    )


def vary_jets(jets: Objects, jes_factor: float) -> Objects:
    """Jets with p_T and mass scaled by the jet-energy-scale factor (1 for nominal)."""
    if jes_factor == 1.0:
        return jets
    scale = np.float32(jes_factor)
    return jets.with_columns({"pt": jets["pt"] * scale, "mass": jets["mass"] * scale})


def propagate_met(chunk: ChunkObjects, jes_factor: float) -> tuple[np.ndarray, np.ndarray]:
    """MET after a jet-energy-scale change, propagated as in type-1 MET: through the jets
    with nominal p_T above :data:`TYPE1_JET_PT_MIN_GEV` that are not leptons (in real
    NanoAOD a lepton is clustered into a jet too, and its momentum is measured by the
    lepton, not the jet energy scale: the ΔR cleaning against the selected leptons excludes
    those jets). Every such jet, selected or not, moves MET by −(factor − 1)·p_T."""
    if jes_factor == 1.0:
        return chunk.met_pt, chunk.met_phi
    shift = jes_factor - 1.0
    px = chunk.met_pt * np.cos(chunk.met_phi) - shift * chunk.jets.sum(chunk.type1_px)
    py = chunk.met_pt * np.sin(chunk.met_phi) - shift * chunk.jets.sum(chunk.type1_py)
    return np.hypot(px, py), np.arctan2(py, px)


def higgs_candidate_jets(jets: Objects) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of every event's Higgs-candidate jets b1 and b2 (-1 where it has fewer
    than two jets): the two highest b-tag scores of the p_T-ordered jets (ties: the harder jet
    first), b1 the harder of the two. The features and the event variable ``mbb_gev`` both
    take the pair from here."""
    first, second = jets.top_two_index(jets["btag"])
    if len(jets["pt"]) == 0:
        return first, second
    pt = jets["pt"]
    swap = (second >= 0) & (pt[first] < pt[second])
    return np.where(swap, second, first), np.where(swap, first, second)


def higgs_candidate_mass(jets: Objects) -> np.ndarray:
    """Every event's invariant mass of its Higgs-candidate jets [GeV] (0 with fewer than two),
    b1 + b2 summed in the features' order (``vector``'s sum is not bitwise commutative), so a
    region's cut on ``mbb_gev`` and the feature ``m_bb_gev`` agree to the last bit."""
    mbb = np.zeros(jets.n_events)
    b1, b2 = higgs_candidate_jets(jets)
    pair = b2 >= 0
    if pair.any():
        mbb[pair] = (_four_vectors(jets, b1[pair]) + _four_vectors(jets, b2[pair])).mass
    return mbb


def select_objects(
    chunk: ChunkObjects, selection: Selection, jes_factor: float = 1.0
) -> SelectedObjects:
    """Apply one jet variation: varied jet cuts, p_T-ordered clean jets, MET, event variables."""
    varied = vary_jets(chunk.jets, jes_factor)
    carried = Objects(
        varied.offsets, {k: v for k, v in varied.columns.items() if k not in chunk.cut_only}
    )
    jets = carried.filter(object_mask(varied, selection.jet) & chunk.clean)
    jets = jets.sorted_by(jets["pt"])
    met_pt, met_phi = propagate_met(chunk, jes_factor)
    btag_max, btag_second = jets.top_two("btag", -1.0)
    variables: dict[str, np.ndarray | float] = {
        **chunk.lepton_variables,
        "n_jets": jets.counts,
        "btag_max": btag_max,
        "btag_second": btag_second,
        "mbb_gev": higgs_candidate_mass(jets),
        "ht_gev": jets.sum(jets["pt"]),
        "met_gev": met_pt,
        # plain floats: compared with a float32 score as a literal in the cut would be
        **{f"btag_wp_{k}": float(v) for k, v in chunk.working_points.items()},
    }
    return SelectedObjects(chunk.leptons, jets, met_pt, met_phi, variables)


def cut_masks(
    variables: Mapping[str, np.ndarray | float],
    selection: Selection,
    first: int = 0,
    last: int | None = None,
) -> list[np.ndarray]:
    """Cumulative boolean masks after cuts ``first``..``last`` (config order) on ``variables``."""
    n = len(cast(np.ndarray, variables["n_leptons"]))
    running: np.ndarray | None = None
    out = []
    for _, expr in selection.cuts[first:last]:
        passed = as_mask(expr.evaluate(variables), n)
        running = passed if running is None else running & passed
        out.append(running)
    return out
