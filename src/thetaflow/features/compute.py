"""Physics features from selected events, with ``vector`` four-vectors.

The Higgs candidate is the pair of jets with the highest b-tag scores (b1 the harder of
the two), the Z candidate the two leading leptons. The candidates are one object per event,
so their four-vector arithmetic runs on ``vector``'s NumPy backend; the jet lists are held
as flat columns (:class:`thetaflow.core.jagged.Objects`, which says why). Every feature is
registered once in :data:`FEATURES` with its axis label and default binning, so the control
plots, the config check and the ML stages all read the same definition.

Besides the features, each table carries event ids, sample, class label, the event's analysis
region (labelled by ingestion per variation), the process truth of
:data:`thetaflow.core.samples.PROCESS_TRUTH_COLUMNS`, the normalised event weight
(xsec·lumi·genWeight/Σw) and the weight-systematic variations as weight columns, plus truth
columns (flavour, GenJet p_T with neutrinos) for the b-jet regression. None of these but the
features is an ML input.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypedDict, Unpack, cast

import awkward as ak
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import vector

from thetaflow.core.errors import ConfigError
from thetaflow.core.io import atomic_path, reading_result
from thetaflow.core.jagged import Objects
from thetaflow.core.samples import PROCESS_TRUTH_COLUMNS, load_samples
from thetaflow.features.labels import LABEL_BACKGROUND, LABEL_BSM, LABEL_DATA, LABEL_SIGNAL
from thetaflow.ingestion.cutflow import Cutflow
from thetaflow.ingestion.selection import higgs_candidate_jets

log = logging.getLogger(__name__)

#: the fields of ingestion's event records (:func:`thetaflow.ingestion.ingest.output_record`)
#: that the feature tables read
EVENT_COLUMNS = (
    "run",
    "luminosityBlock",
    "event",
    "region",
    *PROCESS_TRUTH_COLUMNS,
    "gen_weight",
    "extra_weight",
    "leptons",
    "jets",
    "met_pt",
    "met_phi",
)


@dataclass(frozen=True)
class Candidates:
    """Four-vectors of the reconstructed objects the features are built from."""

    lep1: vector.MomentumNumpy4D
    lep2: vector.MomentumNumpy4D
    b1: vector.MomentumNumpy4D
    b2: vector.MomentumNumpy4D
    b1_btag: np.ndarray
    b2_btag: np.ndarray
    jets: Objects
    met_pt: np.ndarray
    met_phi: np.ndarray

    @cached_property
    def z(self) -> vector.MomentumNumpy4D:
        """Z candidate: the dilepton system."""
        return cast(vector.MomentumNumpy4D, self.lep1 + self.lep2)  # vector types a sum as ndarray

    @cached_property
    def h(self) -> vector.MomentumNumpy4D:
        """Higgs candidate: the b-jet pair."""
        return cast(vector.MomentumNumpy4D, self.b1 + self.b2)


@dataclass(frozen=True)
class Feature:
    """One feature: how to compute it and how to histogram it."""

    name: str
    label: str
    bins: tuple[int, float, float]
    compute: Callable[[Candidates], np.ndarray]
    integer: bool = False


def _f(
    name: str, label: str, bins: tuple[int, float, float], integer: bool = False
) -> Callable[[Callable[[Candidates], np.ndarray]], Callable[[Candidates], np.ndarray]]:
    """Decorator registering a feature function in :data:`FEATURES` under ``name``."""

    def register(fn: Callable[[Candidates], np.ndarray]) -> Callable[[Candidates], np.ndarray]:
        FEATURES[name] = Feature(name, label, bins, fn, integer)
        return fn

    return register


FEATURES: dict[str, Feature] = {}

_f("m_bb_gev", r"$m_{bb}$ [GeV]", (40, 0.0, 300.0))(lambda c: c.h.mass)
_f("pt_bb_gev", r"$p_T^{bb}$ [GeV]", (40, 0.0, 400.0))(lambda c: c.h.pt)
_f("dr_bb", r"$\Delta R(b,b)$", (35, 0.0, 3.5 * 1.2))(lambda c: c.b1.deltaR(c.b2))
_f("deta_bb", r"$|\Delta\eta(b,b)|$", (30, 0.0, 4.5))(lambda c: abs(c.b1.deltaeta(c.b2)))
_f("m_ll_gev", r"$m_{\ell\ell}$ [GeV]", (30, 75.0, 107.0))(lambda c: c.z.mass)
_f("pt_ll_gev", r"$p_T^{\ell\ell}$ [GeV]", (40, 50.0, 450.0))(lambda c: c.z.pt)
_f("dphi_zh", r"$|\Delta\phi(Z,H)|$", (32, 0.0, np.pi))(lambda c: abs(c.z.deltaphi(c.h)))
_f("pt_balance", r"$p_T^{bb}/p_T^{\ell\ell}$", (40, 0.0, 3.0))(lambda c: c.h.pt / c.z.pt)
_f("m_llbb_gev", r"$m_{\ell\ell bb}$ [GeV]", (40, 150.0, 950.0))(
    lambda c: cast(vector.MomentumNumpy4D, c.z + c.h).mass
)
_f("dr_ll", r"$\Delta R(\ell,\ell)$", (35, 0.0, 3.5))(lambda c: c.lep1.deltaR(c.lep2))
_f("met_gev", r"$p_T^{miss}$ [GeV]", (40, 0.0, 200.0))(lambda c: c.met_pt)
_f("ht_gev", r"$H_T$ [GeV]", (40, 0.0, 800.0))(lambda c: c.jets.sum(c.jets["pt"]))
_f("n_jets", r"$N_{jets}$", (8, 1.5, 9.5), integer=True)(lambda c: c.jets.counts)
_f("btag_b1", "b-tag score, b1", (25, 0.0, 1.0))(lambda c: c.b1_btag)
_f("btag_b2", "b-tag score, b2", (25, 0.0, 1.0))(lambda c: c.b2_btag)
_f("lep1_pt_gev", r"$p_T^{\ell_1}$ [GeV]", (40, 0.0, 400.0))(lambda c: c.lep1.pt)
_f("lep1_eta", r"$\eta^{\ell_1}$", (25, -2.5, 2.5))(lambda c: c.lep1.eta)
_f("lep2_pt_gev", r"$p_T^{\ell_2}$ [GeV]", (40, 0.0, 200.0))(lambda c: c.lep2.pt)
_f("lep2_eta", r"$\eta^{\ell_2}$", (25, -2.5, 2.5))(lambda c: c.lep2.eta)
_f("b1_pt_gev", r"$p_T^{b_1}$ [GeV]", (40, 0.0, 400.0))(lambda c: c.b1.pt)
_f("b1_eta", r"$\eta^{b_1}$", (25, -2.5, 2.5))(lambda c: c.b1.eta)
_f("b2_pt_gev", r"$p_T^{b_2}$ [GeV]", (40, 0.0, 200.0))(lambda c: c.b2.pt)
_f("b2_eta", r"$\eta^{b_2}$", (25, -2.5, 2.5))(lambda c: c.b2.eta)


@dataclass(frozen=True)
class EventObjects:
    """The selected events' leptons and jets as flat columns, and the Higgs-candidate jets.

    ``b1``/``b2`` are flat indices into ``jets``: the two highest b-tag scores (ties: the
    earlier, i.e. harder, jet first), b1 the harder of the two, as ingestion's ``mbb_gev``
    takes them (:func:`thetaflow.ingestion.selection.higgs_candidate_jets`).
    """

    leptons: Objects
    jets: Objects
    b1: np.ndarray
    b2: np.ndarray

    @classmethod
    def from_events(cls, events: ak.Array) -> EventObjects:
        """Read the leptons and jets of the records ingestion writes."""
        leptons = Objects.from_awkward(events.leptons, events.leptons.fields)
        jets = Objects.from_awkward(events.jets, events.jets.fields)
        return cls(leptons, jets, *higgs_candidate_jets(jets))

    def four_vectors(self, objects: Objects, index: np.ndarray) -> vector.MomentumNumpy4D:
        """``vector`` four-vectors of ``objects`` at the flat ``index``."""
        # vector.array is annotated with the base class VectorNumpy
        return cast(
            vector.MomentumNumpy4D,
            vector.array({k: objects[k][index] for k in ("pt", "eta", "phi", "mass")}),
        )


def candidates(events: ak.Array, objects: EventObjects | None = None) -> Candidates:
    """Build Z and Higgs candidates; events must have ≥2 leptons and ≥2 jets (selected)."""
    objects = objects or EventObjects.from_events(events)
    first = objects.leptons.offsets[:-1]
    return Candidates(
        lep1=objects.four_vectors(objects.leptons, first),
        lep2=objects.four_vectors(objects.leptons, first + 1),
        b1=objects.four_vectors(objects.jets, objects.b1),
        b2=objects.four_vectors(objects.jets, objects.b2),
        b1_btag=objects.jets["btag"][objects.b1],
        b2_btag=objects.jets["btag"][objects.b2],
        jets=objects.jets,
        met_pt=ak.to_numpy(events.met_pt),
        met_phi=ak.to_numpy(events.met_phi),
    )


def higgs_jet_indices(events: ak.Array) -> np.ndarray:
    """Indices (into each event's ``jets``) of b1 and b2, the Higgs-candidate jets: (n, 2)."""
    objects = EventObjects.from_events(events)
    start = objects.jets.offsets[:-1]
    return np.stack([objects.b1 - start, objects.b2 - start], axis=1)


def compute_features(
    events: ak.Array, names: Sequence[str], objects: EventObjects | None = None
) -> dict[str, np.ndarray]:
    """Compute the named features (float32, integers as float32 too) for every event."""
    if len(events) == 0:
        return {n: np.zeros(0, np.float32) for n in names}
    cand = candidates(events, objects)
    return {n: np.asarray(FEATURES[n].compute(cand)).astype(np.float32) for n in names}


#: hadron flavour (NanoAOD ``Jet_hadronFlavour``) of each b-tag flavour name (light: neither
#: 5 nor 4)
BTAG_FLAVOURS = {"b": 5, "c": 4, "light": 0}


@dataclass(frozen=True)
class BTagCalibration:
    """Fixed-working-point b-tag calibration (``systematics.weight.btag``).

    A selected jet within ``abs_eta_max`` is tagged when its score exceeds ``working_point``.
    Per flavour (b, c, light): ``efficiency``, the simulation's tag efficiency at the working
    point, and ``uncertainty``, that of the data/simulation scale factor, whose nominal value
    is 1 (the embedded simulation is its own truth).
    """

    working_point: float
    abs_eta_max: float
    efficiency: Mapping[str, float]
    uncertainty: Mapping[str, float]

    @classmethod
    def from_config(cls, cfg: Mapping) -> BTagCalibration:
        """Read the validated block; a scale factor that would make a tag certain is refused."""
        calibration = cls(
            cfg["working_point"], cfg["abs_eta_max"], cfg["efficiency"], cfg["uncertainty"]
        )
        for flavour, eff in calibration.efficiency.items():
            if not (1.0 + calibration.uncertainty[flavour]) * eff < 1.0:
                raise ConfigError(
                    "config key 'systematics.weight.btag': the up scale factor times the "
                    f"efficiency of {flavour} jets, (1 + {calibration.uncertainty[flavour]}) × "
                    f"{eff}, must stay below 1 (an untagged jet's weight 1 − SF·ε would vanish)"
                )
        return calibration

    def event_factor(self, jets: Objects, flavours: Collection[str], sign: int) -> np.ndarray:
        """Event weight ratio Π_tagged SF · Π_untagged (1 − SF·ε)/(1 − ε) over the selected
        jets, with SF = 1 + sign·δ for the jets of ``flavours`` and 1 for the others (whose
        factors are then exactly 1).

        A higher scale factor raises the weight of tagged jets and lowers that of untagged
        ones: each tag configuration is weighted to its probability under efficiencies SF·ε.
        """
        hadron = jets["hadron_flavour"]
        code = np.where(np.isin(hadron, (5, 4)), hadron, 0)
        eff = np.zeros(len(hadron))
        sf = np.ones(len(hadron))
        for flavour in flavours:
            sel = code == BTAG_FLAVOURS[flavour]
            eff[sel] = self.efficiency[flavour]
            sf[sel] = 1.0 + sign * self.uncertainty[flavour]
        taggable = np.abs(jets["eta"]) < self.abs_eta_max
        tagged = taggable & (jets["btag"] > self.working_point)
        per_jet = np.where(tagged, sf, np.where(taggable, (1.0 - sf * eff) / (1.0 - eff), 1.0))
        return ak.to_numpy(ak.prod(jets.unflatten(per_jet), axis=1))


def lepton_efficiency_factor(leptons: Objects, pdg_id: int, delta: float, sign: int) -> np.ndarray:
    """Event weight ratio Π(1 + sign·δ) over the selected leptons of flavour ``pdg_id``."""
    n = leptons.sum((np.abs(leptons["pdg_id"]) == pdg_id).astype(np.int64))
    return (1.0 + sign * delta) ** n


@dataclass(frozen=True)
class WeightSystematic:
    """One weight nuisance parameter: the ``systematics.weight`` block it reads and its
    up/down event weight ratio (``sign`` +1 up, -1 down)."""

    block: str
    factor: Callable[[EventObjects, Mapping, int], np.ndarray]


#: Every weight nuisance parameter; the feature tables hold ``weight_<name>_{up,down}`` for
#: those whose block is configured. b and c scale factors move together (heavy flavour), the
#: light mistag one apart; the electron and muon efficiencies are independent.
WEIGHT_SYSTEMATICS = {
    "btag_hf": WeightSystematic(
        "btag",
        lambda o, cfg, s: BTagCalibration.from_config(cfg).event_factor(o.jets, ("b", "c"), s),
    ),
    "btag_light": WeightSystematic(
        "btag",
        lambda o, cfg, s: BTagCalibration.from_config(cfg).event_factor(o.jets, ("light",), s),
    ),
    "lepton_eff_muon": WeightSystematic(
        "lepton_eff", lambda o, cfg, s: lepton_efficiency_factor(o.leptons, 13, cfg["muon"], s)
    ),
    "lepton_eff_electron": WeightSystematic(
        "lepton_eff",
        lambda o, cfg, s: lepton_efficiency_factor(o.leptons, 11, cfg["electron"], s),
    ),
}


class FeatureOptions(TypedDict):
    """What :func:`feature_table` passes on to :func:`feature_columns`."""

    sample: str
    kind: str
    norm_factor: float
    feature_names: Sequence[str]
    weight_systematics: Mapping[str, Mapping[str, Any]]


def feature_table(events: ak.Array, **options: Unpack[FeatureOptions]) -> pa.Table:
    """The flat table of one sample and variation (the columns of :func:`feature_columns`)."""
    return _arrow_table(feature_columns(events, **options))


def _arrow_table(columns: Mapping[str, np.ndarray | pa.Array]) -> pa.Table:
    """Numpy (or arrow) columns as an arrow table.

    Awkward converts the numpy columns, wrapping their buffers: ``pa.array`` (which
    ``pa.table`` calls on numpy columns) imports pandas on its first call, 0.3 s that a
    feature job otherwise does not spend.
    """
    return pa.table(
        {
            k: v if isinstance(v, pa.Array) else ak.to_arrow(v, extensionarray=False)
            for k, v in columns.items()
        }
    )


def _repeated_string(value: str, n: int) -> pa.Array:
    """``value`` ``n`` times as an arrow ``string`` array, made from its buffers (``pa.array``
    would import pandas, see :func:`_arrow_table`; awkward converts numpy strings one by
    one, 0.1 s per 100 k)."""
    data = value.encode()
    offsets = np.arange(n + 1, dtype=np.int64) * len(data)
    if offsets[-1] > np.iinfo(np.int32).max:
        raise ValueError(f"{n} copies of '{value}' exceed an arrow string array (2 GiB)")
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data * n)
    )


def feature_columns(
    events: ak.Array,
    *,
    sample: str,
    kind: str,
    norm_factor: float,
    feature_names: Sequence[str],
    weight_systematics: Mapping[str, Mapping[str, Any]],
) -> dict[str, np.ndarray | pa.Array]:
    """The columns of one sample and variation: ids, sample, label, region, process truth,
    features, weights, jet truth (numpy; the sample and region names arrow string arrays)."""
    n = len(events)
    is_data = kind == "data"
    label = {"signal": LABEL_SIGNAL, "background": LABEL_BACKGROUND, "bsm": LABEL_BSM}.get(
        kind, LABEL_DATA
    )
    columns: dict[str, np.ndarray | pa.Array] = {
        "run": ak.to_numpy(events.run).astype(np.uint32),
        "luminosityBlock": ak.to_numpy(events.luminosityBlock).astype(np.uint32),
        "event": ak.to_numpy(events.event).astype(np.uint64),
        "sample": _repeated_string(sample, n),
        "label": np.full(n, label, np.int8),
        "region": ak.to_arrow(events.region, extensionarray=False).cast(pa.string()),
        **{k: ak.to_numpy(events[k]).astype(np.int8) for k in PROCESS_TRUTH_COLUMNS},
    }
    objects = EventObjects.from_events(events) if n else None
    columns.update(compute_features(events, feature_names, objects))
    weight = (
        np.ones(n)
        if is_data
        else norm_factor * ak.to_numpy(events.gen_weight) * ak.to_numpy(events.extra_weight)
    )
    columns["weight"] = weight
    columns["gen_weight"] = ak.to_numpy(events.gen_weight).astype(np.float64)
    for name in configured_weight_systematics(weight_systematics):
        syst = WEIGHT_SYSTEMATICS[name]
        for direction, sign in (("up", 1), ("down", -1)):
            factor = (
                np.ones(n)
                if objects is None or is_data
                else syst.factor(objects, weight_systematics[syst.block], sign)
            )
            columns[weight_variation_column(name, direction)] = weight * factor
    columns.update(_truth_columns(objects))
    return columns


def configured_weight_systematics(weight_systematics: Mapping[str, object]) -> list[str]:
    """The weight nuisance parameters whose ``systematics.weight`` block is configured."""
    return [k for k, syst in WEIGHT_SYSTEMATICS.items() if syst.block in weight_systematics]


def weight_variation_column(name: str, direction: str) -> str:
    """The feature-table column of a weight nuisance parameter's up/down weight."""
    return f"weight_{name}_{direction}"


def weight_variation_columns(weight_systematics: Mapping[str, object]) -> list[str]:
    """Every up/down weight column the feature tables hold for these weight systematics."""
    return [
        weight_variation_column(k, d)
        for k in configured_weight_systematics(weight_systematics)
        for d in ("up", "down")
    ]


def _truth_columns(objects: EventObjects | None) -> dict[str, np.ndarray]:
    """Per-candidate-jet truth and jet details for the b-jet energy regression (``None``:
    no events)."""
    if objects is None:
        names = [
            f"{b}_{c}"
            for b in ("b1", "b2")
            for c in ("gen_pt_gev", "mass_gev", "soft_lepton", "hadron_flavour")
        ]
        return {
            k: np.zeros(0, np.int8 if k.endswith(("soft_lepton", "hadron_flavour")) else np.float32)
            for k in names
        }
    jets = objects.jets
    out = {}
    for b, index in (("b1", objects.b1), ("b2", objects.b2)):
        out[f"{b}_gen_pt_gev"] = jets["gen_pt"][index].astype(np.float32)
        out[f"{b}_mass_gev"] = jets["mass"][index].astype(np.float32)
        out[f"{b}_soft_lepton"] = (
            (jets["n_muons"][index] + jets["n_electrons"][index]) > 0
        ).astype(np.int8)
        out[f"{b}_hadron_flavour"] = jets["hadron_flavour"][index].astype(np.int8)
    return out


def build_features(
    config: Mapping, sample: str, events_path: str, cutflow_path: str, output: str
) -> int:
    """Workflow entry point: feature parquet of one sample and variation; returns rows."""
    spec = load_samples(config)[sample]
    cutflow = Cutflow.read(cutflow_path)
    with reading_result(events_path):
        events = ak.from_parquet(events_path)
        missing = sorted(set(EVENT_COLUMNS) - set(events.fields))
        if missing:
            raise ValueError(f"no column(s) {', '.join(missing)}")
    _require_candidates(events, sample, events_path)
    columns = feature_columns(
        events,
        sample=sample,
        kind=spec.kind,
        norm_factor=float(cutflow.norm_factor),
        feature_names=config["features"],
        # optional (absent: no weight systematics); a job's settings lack 'systematics' then
        weight_systematics=config.get("systematics", {}).get("weight", {}),
    )
    for name in config["features"]:
        bad = int(np.count_nonzero(~np.isfinite(columns[name])))
        if bad:
            log.warning("sample '%s': feature '%s' is NaN/inf in %d events", sample, name, bad)
    table = _arrow_table(columns)
    with atomic_path(output) as tmp:
        # LZ4, and dictionary encoding only for the sample and region names (the numeric
        # columns gain nothing from it): writes and reads faster than zstd for ~20 % more bytes
        pq.write_table(table, tmp, compression="lz4", use_dictionary=["sample", "region"])
    log.info(
        "sample '%s': %d events, %d columns -> %s",
        sample,
        table.num_rows,
        table.num_columns,
        output,
    )
    return table.num_rows


def _require_candidates(events: ak.Array, sample: str, path: str) -> None:
    """Features need a Z and a Higgs candidate: ≥2 leptons and ≥2 jets in every event."""
    if len(events) == 0:
        return
    short = int(
        np.count_nonzero(ak.to_numpy((ak.num(events.leptons) < 2) | (ak.num(events.jets) < 2)))
    )
    if short:
        raise ValueError(
            f"sample '{sample}' ({path}): {short} selected events have fewer than two leptons or "
            "two jets; the selection (selection.cuts) must require n_leptons == 2 and n_jets >= 2"
        )
