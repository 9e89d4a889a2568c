"""Ingestion: NanoAOD files → selected events per variation (parquet) and a cutflow (JSON).

Files are local paths or URLs (``root://`` over XRootD, :mod:`thetaflow.ingestion.remote`),
TTree or RNTuple NanoAOD of any version with a branch map
(:mod:`thetaflow.ingestion.nanoaod`: v9, v12, v15), detected per file or forced by
``nanoaod.version``. They are read with coffea NanoEvents (NanoAODSchema, virtual mode: only
branches that are used are read; an RNTuple through the same call, checked with uproot 5.7.7,
coffea 2026.9.0, awkward 2.14.0) in entry ranges of ``ingest.chunk_size``; the used fields of
each collection are taken out as flat columns (:mod:`thetaflow.core.jagged`) for the
selection, and each range's selected events are appended to a streaming parquet writer, so
peak memory follows the chunk size, not the file size. Jet-energy-scale variations are made
here by varying the jets and re-running object and event selection (as real analyses do), all
from one read of the file. The events that pass every cut are labelled, per variation, with
their analysis region (``regions:``, :class:`thetaflow.ingestion.selection.Regions`); those in
no region are counted and dropped. Simulated events carry the hard process' heavy-flavour
parton counts (:data:`thetaflow.core.samples.PROCESS_TRUTH_COLUMNS`) where the file has them.

Normalisation bookkeeping: Σ genWeight over *all* events read is always recorded; when the
file carries NanoAOD's ``Runs`` tree, its ``genEventSumw`` (which also counts events removed
by a generator filter or skim) is used for the normalisation instead.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import awkward as ak
import numpy as np
import pyarrow.parquet as pq
import uproot
from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

from thetaflow.core.errors import ThetaflowError
from thetaflow.core.expressions import ExpressionError, parse_expression
from thetaflow.core.io import atomic_paths
from thetaflow.core.jagged import Objects
from thetaflow.core.samples import PROCESS_TRUTH_COLUMNS, load_samples
from thetaflow.core.units import PB_PER_INVERSE_FB
from thetaflow.ingestion.cutflow import OUTSIDE_REGIONS, Cutflow, CutRow
from thetaflow.ingestion.nanoaod import AUTO, BranchMap, NanoAODVersionError, resolve_version
from thetaflow.ingestion.remote import RemoteFileError, open_root, remote_errors
from thetaflow.ingestion.selection import (
    EVENT_VARIABLES,
    JET_FIELDS,
    KINEMATIC_FIELDS,
    RegionOverlapError,
    Regions,
    SelectedObjects,
    Selection,
    cut_masks,
    lepton_cut_prefix,
    prepare_chunk,
    select_leptons,
    select_objects,
)
from thetaflow.ingestion.variations import Variation, variations

log = logging.getLogger(__name__)


#: event branches every version has (MET comes from the version's branch map)
BASE_BRANCHES = ("run", "luminosityBlock", "event", "nMuon", "nElectron", "nJet")
#: per-object fields whose NaN/inf drops the event (MET and genWeight are checked too)
FINITE_CHECKED = {"muons": KINEMATIC_FIELDS, "electrons": KINEMATIC_FIELDS, "jets": JET_FIELDS}


class IngestError(ThetaflowError, RuntimeError):
    """Bad input: the message names the sample, the file and the branch or problem."""


@dataclass(frozen=True)
class CutCounts:
    """Events and Σ weight that pass each of consecutive cuts in one chunk."""

    events: np.ndarray
    sumw: np.ndarray

    @classmethod
    def of(cls, masks: Sequence[np.ndarray], weights: np.ndarray) -> CutCounts:
        """The counts of cumulative ``masks`` with per-event ``weights``."""
        return cls(
            np.array([int(mask.sum()) for mask in masks], np.int64),
            np.array([float(weights[mask].sum()) for mask in masks]),
        )


@dataclass
class CutflowCounter:
    """Unweighted and Σweight counts per cut of one variation."""

    names: list[str]
    events: np.ndarray = field(init=False)
    sumw: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.events = np.zeros(len(self.names), np.int64)
        self.sumw = np.zeros(len(self.names))

    def add(self, counts: CutCounts, first: int = 0) -> None:
        """Accumulate one chunk's counts of the cuts ``first``, ``first + 1``..."""
        stop = first + len(counts.events)
        self.events[first:stop] += counts.events
        self.sumw[first:stop] += counts.sumw

    def table(self, norm: float) -> list[CutRow]:
        """Rows with the cut name, raw count, Σ weight and expected yield (Σw × norm)."""
        return [
            CutRow(n, int(e), float(w), float(w * norm))
            for n, e, w in zip(self.names, self.events, self.sumw, strict=True)
        ]


@dataclass(frozen=True)
class VariationCounters:
    """The counts of one variation: per cut (cumulative), and per region of the events that
    pass every cut, the last entry those in no region."""

    cuts: CutflowCounter
    regions: CutflowCounter

    @classmethod
    def of(cls, selection: Selection, regions: Regions) -> VariationCounters:
        """Zero counts of ``all``, every cut, every region and :data:`OUTSIDE_REGIONS`."""
        return cls(
            CutflowCounter(["all"] + [name for name, _ in selection.cuts]),
            CutflowCounter([*regions.names, OUTSIDE_REGIONS]),
        )


def open_tree(path: str, tree: str, sample: str) -> uproot.TTree:
    """Open ``path`` and return ``tree`` (a TTree or an RNTuple, which uproot reads alike),
    turning uproot's failures into named errors."""
    try:
        handle = open_root(path, sample)
    except RemoteFileError:
        raise
    except FileNotFoundError as err:
        raise IngestError(f"sample '{sample}': input file not found: {path}") from err
    except Exception as err:  # uproot raises ValueError/OSError/... for non-ROOT files
        raise IngestError(f"sample '{sample}': {path} is not a readable ROOT file ({err})") from err
    with reading(sample, path, f"tree '{tree}'"):
        if tree not in handle:
            present = ", ".join(handle.keys(cycle=False)) or "nothing"
            raise IngestError(f"sample '{sample}': {path} has no tree '{tree}' (it has: {present})")
        ttree = handle[tree]
        branch_names(ttree)
        return ttree


def branch_names(ttree: uproot.TTree) -> set[str]:
    """The NanoAOD branch (RNTuple: field) names of ``ttree``: the top-level ones, which in
    NanoAOD are all of them (the recursive listing of an RNTuple adds only the
    ``_collectionN.*`` subfields of its collections, present already by their NanoAOD names).
    For an RNTuple this takes 0.1 s where the recursive one takes seconds (uproot 5.7 walks
    every field for each); NanoEvents still walks them once per file when it builds its form.
    """
    return set(ttree.keys(recursive=False))


def check_branches(
    ttree: uproot.TTree,
    needed: set[str],
    path: str,
    sample: str,
    branch_map: BranchMap | None = None,
) -> None:
    """Fail early, naming every missing branch, before any event is processed (no recipe of
    the file's NanoAOD version replaces them)."""
    missing = sorted(needed - branch_names(ttree))
    if missing:
        version = f" (NanoAOD {branch_map.version}: no recipe replaces them)" if branch_map else ""
        raise IngestError(
            f"sample '{sample}': {path} lacks branch(es) {', '.join(missing)}{version}"
        )


def file_version(ttree: uproot.TTree, requested: str, path: str, sample: str) -> BranchMap:
    """The branch map of an open file: detected (``auto``) or ``requested`` and checked."""
    try:
        return resolve_version(requested, branch_names(ttree))
    except NanoAODVersionError as err:
        raise IngestError(f"sample '{sample}': {path}: {err}") from err


@contextlib.contextmanager
def reading(sample: str, path: str, what: str) -> Iterator[None]:
    """Turn any failure while reading ``what`` of ``path`` into an IngestError naming both (a
    remote file's failed transfer: a RemoteFileError naming the URL and the cause)."""
    try:
        with remote_errors(sample, path, f"reading {what} of"):
            yield
    except (IngestError, RemoteFileError):
        raise
    except Exception as err:
        raise IngestError(
            f"sample '{sample}': failed to read {what} of {path} "
            f"(truncated or corrupt file?): {type(err).__name__}: {err}"
        ) from err


def runs_sumw(path: str, sample: str) -> tuple[float, float] | None:
    """(genEventSumw, genEventCount) from the ``Runs`` tree, if the file has one."""
    with reading(sample, path, "the Runs tree"), open_root(path, sample) as handle:
        if "Runs" not in handle:
            return None
        runs = handle["Runs"]
        keys = set(runs.keys())
        for sumw_key, count_key in (
            ("genEventSumw", "genEventCount"),
            ("genEventSumw_", "genEventCount_"),
        ):
            if sumw_key in keys:
                arrays = runs.arrays([sumw_key, count_key], library="np")
                return float(arrays[sumw_key].sum()), float(arrays[count_key].sum())
    return None


@dataclass(frozen=True)
class EventColumns:
    """Per-event columns of a chunk: ids, generator weight, MET, and the process truth of
    :data:`PROCESS_TRUTH_COLUMNS` (output column -> values; 0 where the file lacks the
    branch, and for data)."""

    ids: dict[str, np.ndarray]
    gen_weight: np.ndarray
    met_pt: np.ndarray
    met_phi: np.ndarray
    truth: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.gen_weight)

    def events(self, keep: np.ndarray) -> EventColumns:
        """The events where ``keep`` is true."""
        if keep.all():
            return self
        ids = {k: v[keep] for k, v in self.ids.items()}
        truth = {k: v[keep] for k, v in self.truth.items()}
        return EventColumns(
            ids, self.gen_weight[keep], self.met_pt[keep], self.met_phi[keep], truth
        )


@dataclass(frozen=True)
class ChunkColumns:
    """The columns of one chunk that ingestion uses, read once from NanoEvents: the jets
    with their raw truth fields and the GenJets they point to (``None`` where the plan reads
    none), resolved by :func:`_jets_with_truth` once events are selected."""

    event: EventColumns
    muons: Objects
    electrons: Objects
    jets: Objects
    gen_jets: Objects | None

    def __len__(self) -> int:
        return len(self.event)

    def events(self, keep: np.ndarray) -> ChunkColumns:
        """The columns of the events where ``keep`` is true."""
        return ChunkColumns(
            self.event.events(keep),
            self.muons.events(keep),
            self.electrons.events(keep),
            self.jets.events(keep),
            None if self.gen_jets is None else self.gen_jets.events(keep),
        )


@dataclass(frozen=True)
class ReadPlan:
    """What ingestion reads from a file: the fields of each collection it uses (the
    selection's, jet truth where the file has it) and whether it is data.

    ``has_gen_jets``: jet flavour and the GenJet match (simulation); ``has_neutrinos``: our
    simulation's GenJet neutrino p_T; ``truth_branches``: the branches of
    :data:`PROCESS_TRUTH_COLUMNS` the file has (simulation; optional). The plan's
    :attr:`branches` are read in bulk (NanoEvents ``preload``), which is faster than
    branch-by-branch lazy reading.
    """

    selection: Selection
    is_data: bool
    has_gen_jets: bool
    has_neutrinos: bool
    jet_extras: tuple[str, ...]
    branch_map: BranchMap
    truth_branches: tuple[str, ...]

    @classmethod
    def of(
        cls,
        ttree: uproot.TTree,
        selection: Selection,
        is_data: bool,
        branch_map: BranchMap | None = None,
    ) -> ReadPlan:
        """The plan for ``ttree`` (no truth for data) with the branch map of its NanoAOD
        version (``None``: detected from its branches)."""
        keys = branch_names(ttree)
        if branch_map is None:
            branch_map = resolve_version(AUTO, keys)
        gen_jets = not is_data and {"Jet_genJetIdx", "GenJet_pt", "Jet_hadronFlavour"} <= keys
        extras = [f for f in ("nMuons", "nElectrons") if f"Jet_{f}" in keys]
        extras += ["hadronFlavour", "genJetIdx"] if gen_jets else []
        jet_fields = branch_map.jet_sources(selection.fields("Jet"))
        return cls(
            selection,
            is_data,
            gen_jets,
            gen_jets and "GenJet_nuPt" in keys,
            tuple(f for f in extras if f not in jet_fields),
            branch_map,
            () if is_data else tuple(b for b in PROCESS_TRUTH_COLUMNS.values() if b in keys),
        )

    def fields(self, collection: str) -> list[str]:
        """The file's fields read of ``Muon``, ``Electron``, ``Jet`` or ``GenJet`` (for jets
        those that supply the selection's logical fields, see :meth:`BranchMap.jet_sources`)."""
        if collection == "GenJet":
            return (["pt", "nuPt"] if self.has_neutrinos else ["pt"]) if self.has_gen_jets else []
        if collection == "Jet":
            return self.branch_map.jet_sources(self.selection.fields("Jet")) + list(self.jet_extras)
        return self.selection.fields(collection)

    @property
    def branches(self) -> set[str]:
        """Every branch read: ids, weight, MET, counters and the collections' fields."""
        out = {"run", "luminosityBlock", "event", *self.branch_map.met_branches} | (
            {"genWeight", *self.truth_branches} if not self.is_data else set()
        )
        for collection in ("Muon", "Electron", "Jet", "GenJet"):
            fields = self.fields(collection)
            out |= {f"n{collection}"} | {f"{collection}_{f}" for f in fields} if fields else set()
        return out


def read_process_truth(events: ak.Array, branches: Sequence[str]) -> dict[str, np.ndarray]:
    """The columns of :data:`PROCESS_TRUTH_COLUMNS` as int8 (NanoAOD stores ``LHE_Nb`` and
    ``LHE_Nc`` as bytes): read where the file has the branch (``branches``), 0 elsewhere
    (data, simulation without the LHE record)."""
    out = {}
    for column, branch in PROCESS_TRUTH_COLUMNS.items():
        if branch in branches:
            collection, name = branch.split("_", 1)  # NanoEvents: LHE_Nb is LHE.Nb
            out[column] = ak.to_numpy(events[collection][name]).astype(np.int8)
        else:
            out[column] = np.zeros(len(events), np.int8)
    return out


def read_columns(events: ak.Array, plan: ReadPlan) -> ChunkColumns:
    """Every column ingestion needs from a chunk of NanoEvents (jet truth unresolved), the
    jets with the selection's logical fields (``btag``, recomputed ``jetId``...)."""
    met = events[plan.branch_map.met]
    return ChunkColumns(
        event=EventColumns(
            ids={k: ak.to_numpy(events[k]) for k in ("run", "luminosityBlock", "event")},
            gen_weight=np.ones(len(events))
            if plan.is_data
            else ak.to_numpy(events.genWeight).astype(np.float64),
            met_pt=ak.to_numpy(met.pt),
            met_phi=ak.to_numpy(met.phi),
            truth=read_process_truth(events, plan.truth_branches),
        ),
        muons=Objects.from_awkward(events.Muon, plan.fields("Muon")),
        electrons=Objects.from_awkward(events.Electron, plan.fields("Electron")),
        jets=plan.branch_map.logical_jets(
            Objects.from_awkward(events.Jet, plan.fields("Jet")), plan.selection.fields("Jet")
        ),
        gen_jets=Objects.from_awkward(events.GenJet, plan.fields("GenJet"))
        if plan.has_gen_jets
        else None,
    )


def finite_mask(columns: ChunkColumns) -> np.ndarray:
    """Events whose used kinematic inputs, MET and generator weight are all finite
    (events with NaN/inf are counted and dropped by the caller)."""
    event = columns.event
    ok = np.isfinite(event.met_pt) & np.isfinite(event.met_phi) & np.isfinite(event.gen_weight)
    for name, fields in FINITE_CHECKED.items():
        objects: Objects = getattr(columns, name)
        for f in fields:
            bad = ~np.isfinite(objects[f])
            if bad.any():
                ok[objects.event_index[bad]] = False
    return ok


def _jets_with_truth(columns: ChunkColumns, keep: np.ndarray, plan: ReadPlan) -> Objects:
    """The jets of the events where ``keep`` is true with the columns selection and the
    output read: the selection's fields, per-jet truth (flavour, matched GenJet p_T with
    neutrinos) and soft-lepton counts.

    Resolved for the events that pass the lepton cuts only (a fraction of those read). Absent
    branches (real data, or NanoAOD without our GenJet_nuPt) give -1 / NaN / 0, so the
    output schema is the same for every input. The GenJet match is NanoAOD's
    ``Jet_genJetIdx`` (an index into the event's GenJets, -1 for none), resolved on the flat
    columns (coffea's ``matched_gen`` does the same through its global index).
    """
    jets = columns.jets.events(keep)
    n = len(jets.event_index)
    zeros = np.zeros(n, np.int32)
    extras = {
        "n_muons": jets.columns.get("nMuons", zeros).astype(np.int32),
        "n_electrons": jets.columns.get("nElectrons", zeros).astype(np.int32),
        "hadron_flavour": jets["hadronFlavour"].astype(np.int32)
        if plan.has_gen_jets
        else zeros - 1,
        "gen_pt": np.full(n, np.nan, np.float32),
    }
    if columns.gen_jets is not None:
        gen_jets = columns.gen_jets.events(keep)
        event, index = jets.event_index, jets["genJetIdx"].astype(np.int64)
        matched = np.flatnonzero((index >= 0) & (index < gen_jets.counts[event]))
        at = gen_jets.offsets[:-1][event[matched]] + index[matched]
        extras["gen_pt"][matched] = (
            gen_jets["pt"][at] + gen_jets["nuPt"][at] if plan.has_neutrinos else gen_jets["pt"][at]
        )
    return Objects(jets.offsets, {f: jets[f] for f in plan.selection.fields("Jet")} | extras)


LEPTON_OUTPUT = {
    "pt": np.float32,
    "eta": np.float32,
    "phi": np.float32,
    "mass": np.float32,
    "charge": np.int32,
    "pdg_id": np.int32,
}
JET_OUTPUT = {
    "pt": np.float32,
    "eta": np.float32,
    "phi": np.float32,
    "mass": np.float32,
    "btag": np.float32,
    "hadron_flavour": np.int32,
    "gen_pt": np.float32,
    "n_muons": np.int32,
    "n_electrons": np.int32,
}
#: output field → column of the selected objects, where the names differ
_SOURCE = {"pdg_id": "pdgId"}


def region_labels(names: Sequence[str], codes: np.ndarray) -> ak.Array:
    """The region names of events from their indices into ``names`` (written as strings)."""
    return ak.Array(
        ak.contents.IndexedArray(
            ak.index.Index32(codes.astype(np.int32, copy=False)),
            ak.to_layout(list(names)),
            parameters={"__array__": "categorical"},
        )
    )


def output_record(
    event: EventColumns,
    objects: SelectedObjects,
    mask: np.ndarray,
    extra_weight: np.ndarray,
    region: ak.Array,
) -> ak.Array:
    """The per-event record written for the events where ``mask`` is true (fixed schema):
    ids, their ``region`` (:func:`region_labels` of those events), process truth, weights,
    the two leading leptons, the selected jets and MET."""
    leptons = objects.leptons.events(mask, objects.leptons.position < 2)
    jets = objects.jets.events(mask)
    ids = event.ids
    return ak.zip(
        {
            "run": ids["run"][mask].astype(np.uint32),
            "luminosityBlock": ids["luminosityBlock"][mask].astype(np.uint32),
            "event": ids["event"][mask].astype(np.uint64),
            "region": region,
            **{k: v[mask] for k, v in event.truth.items()},
            "gen_weight": event.gen_weight[mask],
            "extra_weight": extra_weight[mask],
            "leptons": leptons.to_awkward(
                {
                    k: leptons[_SOURCE.get(k, k)].astype(t, copy=False)
                    for k, t in LEPTON_OUTPUT.items()
                }
            ),
            "jets": jets.to_awkward(
                {k: jets[k].astype(t, copy=False) for k, t in JET_OUTPUT.items()}
            ),
            "met_pt": objects.met_pt[mask].astype(np.float32),
            "met_phi": objects.met_phi[mask].astype(np.float32),
        },
        depth_limit=1,
    )


class ParquetAppender:
    """Appends record-array chunks to one parquet file (schema from the first chunk)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, records: ak.Array) -> None:
        """Append ``records``; an empty first chunk still fixes the schema."""
        if self._writer is not None and len(records) == 0:
            return
        table = ak.to_arrow_table(records, extensionarray=False)
        if self._writer is None:
            # an intermediate file read once: LZ4 and no dictionary encoding (floats gain nothing
            # from it) write 2-3x faster than zstd with dictionaries, for 20 % more bytes
            self._writer = pq.ParquetWriter(
                self._path, table.schema, compression="lz4", use_dictionary=False
            )
        self._writer.write_table(table.cast(self._writer.schema))
        self.rows += len(records)

    def close(self) -> None:
        """Finish the file (called before it is renamed into place)."""
        if self._writer is not None:
            self._writer.close()


@dataclass
class ReadTotals:
    """Bookkeeping over every event read, before any selection."""

    events: int = 0
    non_finite: int = 0
    sumw: float = 0.0
    runs: list[tuple[float, float] | None] = field(default_factory=list)


@dataclass(frozen=True)
class SampleInfo:
    """What ingestion needs to know about a sample besides its files."""

    name: str
    is_data: bool
    xsec_pb: float | None
    lumi_fb: float
    weight_expr: str | None = None


def ingest_sample(
    *,
    sample: str,
    files: Sequence[str],
    tree: str,
    is_data: bool,
    xsec_pb: float | None,
    lumi_fb: float,
    selection: Selection,
    variation_list: Sequence[Variation],
    outputs: Mapping[str, str],
    cutflow_path: str,
    chunk_size: int,
    weight_expr: str | None = None,
    nanoaod_version: str = AUTO,
    regions: Regions | None = None,
) -> Cutflow:
    """Select events of one sample for every variation; write parquet and the cutflow.

    Each file's NanoAOD version is detected from its branches (``nanoaod_version`` ``auto``)
    or checked against the forced one; what the version handles differently from Run 2 is
    logged once per sample. The events that pass every cut are labelled with their region
    (``regions``; ``None``: the one inclusive region), per variation, and those in no region
    are dropped (counted in the cutflow). Returns the cutflow (also written to
    ``cutflow_path``). A sample in which no event passes gives empty (but typed) parquet files
    and a warning, not an error. All outputs are written under temporary names and renamed
    together only when the whole sample succeeded, so a failure leaves none of them behind.
    """
    regions = regions or Regions.from_config({})
    if not variation_list:
        raise IngestError(f"sample '{sample}': no variation to ingest (at least 'nominal')")
    info = SampleInfo(sample, is_data, xsec_pb, lumi_fb, weight_expr)
    trees = []
    logged: set[str] = set()
    for path in files:
        ttree = open_tree(path, tree, sample)
        branch_map = file_version(ttree, nanoaod_version, path, sample)
        check_branches(
            ttree, needed_branches(selection, branch_map, is_data), path, sample, branch_map
        )
        if branch_map.version not in logged:
            logged.add(branch_map.version)
            log.info("sample '%s': NanoAOD %s (%s)", sample, branch_map.version, Path(path).name)
            for note in branch_map.notes(selection.fields("Jet")):
                log.info("sample '%s', NanoAOD %s: %s", sample, branch_map.version, note)
        trees.append((path, ttree, branch_map))
    counters = {v.name: VariationCounters.of(selection, regions) for v in variation_list}
    totals = ReadTotals()
    targets = [*(outputs[v.name] for v in variation_list), cutflow_path]
    # the writers are closed (their last bytes written) before any output is renamed
    with atomic_paths(targets) as tmps, contextlib.ExitStack() as closing:
        *event_tmps, cutflow_tmp = tmps
        appenders = {}
        for v, tmp in zip(variation_list, event_tmps, strict=True):
            appenders[v.name] = ParquetAppender(tmp)
            closing.callback(appenders[v.name].close)
        # the per-chunk garbage collection (see _ingest_file) need not walk every object that
        # exists before ingestion starts (modules, config): freeze them for its duration
        gc.freeze()
        try:
            for path, ttree, branch_map in trees:
                _ingest_file(
                    info,
                    path,
                    ttree,
                    branch_map,
                    selection,
                    regions,
                    variation_list,
                    chunk_size,
                    counters,
                    appenders,
                    totals,
                )
        except ExpressionError as err:
            raise IngestError(f"sample '{sample}': {err}") from err
        finally:
            gc.unfreeze()
        result = _cutflow_summary(
            info, files, totals, counters, {k: a.rows for k, a in appenders.items()}
        )
        cutflow_tmp.write_text(json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n")
    return result


def needed_branches(selection: Selection, branch_map: BranchMap, is_data: bool) -> set[str]:
    """The branches a file of ``branch_map``'s version must have for ``selection``: ids,
    counters, MET, generator weight (simulation) and the collections' fields (the jets'
    through the version's recipes)."""
    jets = branch_map.jet_sources(selection.fields("Jet"))
    return (
        set(BASE_BRANCHES)
        | set(branch_map.met_branches)
        | ({"genWeight"} if not is_data else set())
        | {f"{c}_{f}" for c in ("Muon", "Electron") for f in selection.fields(c)}
        | {f"Jet_{f}" for f in jets}
    )


def _ingest_file(
    info: SampleInfo,
    path: str,
    ttree: uproot.TTree,
    branch_map: BranchMap,
    selection: Selection,
    regions: Regions,
    variation_list: Sequence[Variation],
    chunk_size: int,
    counters: Mapping[str, VariationCounters],
    appenders: Mapping[str, ParquetAppender],
    totals: ReadTotals,
) -> None:
    """Process one file chunk by chunk, every variation from the same read; an event that
    two regions select is an error naming them, the sample, the file and the variation."""
    extra = (
        parse_expression(
            info.weight_expr, allowed_names=EVENT_VARIABLES, context=f"samples.{info.name}.weight"
        )
        if info.weight_expr
        else None
    )
    n_shared = lepton_cut_prefix(selection, extra.names if extra is not None else frozenset())
    plan = ReadPlan.of(ttree, selection, info.is_data, branch_map)
    totals.runs.append(None if info.is_data else runs_sumw(path, info.name))
    for start in range(0, max(ttree.num_entries, 1), chunk_size):
        stop = min(start + chunk_size, ttree.num_entries)
        with reading(info.name, path, f"entries {start}-{stop}"):
            columns = read_columns(_read_chunk(ttree, start, stop, plan.branches), plan)
        good = finite_mask(columns)
        totals.events += len(columns)
        totals.non_finite += int((~good).sum())
        totals.sumw += float(columns.event.gen_weight[np.isfinite(columns.event.gen_weight)].sum())
        columns = columns.events(good)
        gen_weight = columns.event.gen_weight
        # cuts on leptons only are shared by every jet variation: evaluate them once and
        # run the variations on the events that pass them
        leptons, lepton_variables = select_leptons(columns.muons, columns.electrons, selection)
        extra_weight = (
            as_float(extra.evaluate(lepton_variables), len(columns))
            if extra is not None and n_shared
            else np.ones(len(columns))
        )
        weights = gen_weight * extra_weight
        shared = [np.ones(len(columns), bool)] + cut_masks(lepton_variables, selection, 0, n_shared)
        keep = shared[-1]
        kept = np.flatnonzero(keep)
        sub = columns.event.events(keep)
        chunk = prepare_chunk(
            _jets_with_truth(columns, keep, plan),
            leptons.events(keep),
            {k: v.take(kept) for k, v in lepton_variables.items()},
            (sub.met_pt, sub.met_phi),
            selection,
            branch_map.btag.working_points,
        )
        per_variation = extra is not None and not n_shared  # the extra weight reads jets
        # without a per-variation weight, the shared cuts count the same in every variation
        shared_counts = None if per_variation else CutCounts.of(shared, weights)
        for v in variation_list:
            objects = select_objects(chunk, selection, v.jes_factor)
            sub_extra = (
                as_float(extra.evaluate(objects.variables), len(sub))
                if per_variation and extra is not None
                else extra_weight[kept]
            )
            masks = cut_masks(objects.variables, selection, n_shared)
            sub_weights = sub.gen_weight * sub_extra
            cuts = counters[v.name].cuts
            cuts.add(shared_counts or CutCounts.of(shared, gen_weight * sub_extra))
            cuts.add(CutCounts.of(masks, sub_weights), first=len(shared))
            final = masks[-1] if masks else np.ones(len(sub), bool)
            try:
                codes = regions.label(objects.variables, final)
            except RegionOverlapError as err:
                raise IngestError(
                    f"sample '{info.name}', file {path}, variation '{v.name}': {err}"
                ) from err
            inside = codes >= 0
            per_region = [codes == i for i in range(len(regions.names))]
            counters[v.name].regions.add(CutCounts.of([*per_region, final & ~inside], sub_weights))
            appenders[v.name].write(
                output_record(
                    sub, objects, inside, sub_extra, region_labels(regions.names, codes[inside])
                )
            )
        log.info("%s: %s entries %d-%d read", info.name, Path(path).name, start, stop)
        # NanoEvents objects of a chunk form reference cycles that keep its buffers alive
        # until a full collection; collect now so memory does not grow with file size
        del columns, sub, chunk, objects
        gc.collect()


def as_float(values: object, n: int) -> np.ndarray:
    """A weight expression's result as float64 per event (a constant is broadcast)."""
    if isinstance(values, ak.Array):
        values = ak.to_numpy(values)
    return np.broadcast_to(np.asarray(values, np.float64), (n,)).copy()


def _read_chunk(
    ttree: uproot.TTree, start: int, stop: int, preload: set[str], access_log: list | None = None
) -> ak.Array:
    """NanoEvents of one entry range of an open tree (the file is opened once, not per chunk),
    the ``preload`` branches read in bulk."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Missing cross-reference")
        return NanoEventsFactory.from_root(
            ttree.file.root_directory,
            treepath=ttree.object_path,
            schemaclass=NanoAODSchema,
            mode="virtual",
            entry_start=start,
            entry_stop=stop,
            preload=lambda branch: branch.name in preload,
            iteritems_options={"filter_name": is_collection_branch},
            access_log=access_log,
        ).events()


def branches_read(
    path: str, tree: str, selection: Selection, is_data: bool, nanoaod_version: str = AUTO
) -> list[str]:
    """The branches ingestion reads from ``path`` (NanoEvents' access log over its first
    entries, nothing preloaded): what a plain read must read to be compared with ingestion."""
    ttree = open_tree(path, tree, "branches_read")
    log: list = []
    plan = ReadPlan.of(
        ttree, selection, is_data, file_version(ttree, nanoaod_version, path, "branches_read")
    )
    read_columns(_read_chunk(ttree, 0, min(ttree.num_entries, 100), set(), log), plan)
    return sorted({entry.branch for entry in log})


_KEEP_PREFIXES = (
    "run",
    "luminosityBlock",
    "event",
    "genWeight",
    "nMuon",
    "Muon_",
    "nElectron",
    "Electron_",
    "nJet",
    "Jet_",
    "nGenJet",
    "GenJet_",
    "MET_",
    "PuppiMET_",
    "PFMET_",
    *PROCESS_TRUTH_COLUMNS.values(),
)


def is_collection_branch(name: str) -> bool:
    """Branches NanoEvents materialises: the collections ingestion uses, nothing else."""
    return name.startswith(_KEEP_PREFIXES)


def _cutflow_summary(
    info: SampleInfo,
    files: Sequence[str],
    totals: ReadTotals,
    counters: Mapping[str, VariationCounters],
    selected: Mapping[str, int],
) -> Cutflow:
    """The cutflow document: bookkeeping, normalisation and per-variation cut and region
    counts."""
    runs_known = [r for r in totals.runs if r is not None]
    use_runs = not info.is_data and len(runs_known) == len(files) > 0
    sumw_generated = sum(r[0] for r in runs_known) if use_runs else None
    # Σw: 1 for data, else Runs.genEventSumw when every file has it (use_runs), else Σ genWeight
    if info.is_data:
        sumw = 1.0
    elif sumw_generated is not None:
        sumw = sumw_generated
    else:
        sumw = totals.sumw
    if not info.is_data and not sumw:
        raise IngestError(
            f"sample '{info.name}': the sum of generator weights is zero; cannot normalise"
        )
    if info.is_data:
        norm = 1.0
    elif info.xsec_pb is None:
        raise IngestError(f"sample '{info.name}': simulation without xsec_pb; cannot normalise")
    else:
        norm = info.xsec_pb * PB_PER_INVERSE_FB * info.lumi_fb / sumw
    if selected.get("nominal", 0) == 0:
        log.warning("sample '%s': no event passes the selection; outputs are empty", info.name)
    if totals.non_finite:
        log.warning(
            "sample '%s': %d of %d events have NaN/inf inputs and were dropped",
            info.name,
            totals.non_finite,
            totals.events,
        )
    return Cutflow(
        sample=info.name,
        is_data=info.is_data,
        files=list(files),
        events_read=totals.events,
        non_finite_events=totals.non_finite,
        sumw_read=totals.sumw,
        events_generated=sum(r[1] for r in runs_known) if use_runs else None,
        sumw_generated=sumw_generated,
        sumw=sumw,
        sumw_source="data"
        if info.is_data
        else ("Runs.genEventSumw" if use_runs else "Events.genWeight"),
        xsec_pb=info.xsec_pb,
        lumi_fb=info.lumi_fb,
        norm_factor=norm,
        selected=dict(selected),
        cutflow={name: c.cuts.table(norm) for name, c in counters.items()},
        regions={name: c.regions.table(norm) for name, c in counters.items()},
    )


def ingest_from_config(
    config: Mapping,
    sample: str,
    files: Sequence[str],
    outputs: Mapping[str, str],
    cutflow_path: str,
) -> Cutflow:
    """Workflow entry point: ingest one sample with the configured selection and regions."""
    spec = load_samples(config)[sample]
    return ingest_sample(
        sample=sample,
        files=files,
        tree=spec.spec.get("tree", config["ingest"]["tree"]),
        is_data=spec.is_data,
        xsec_pb=spec.spec.get("xsec_pb"),
        lumi_fb=config["analysis"]["lumi_fb"],
        selection=Selection.from_config(config["selection"]),
        variation_list=variations(config, spec.is_data),
        outputs=outputs,
        cutflow_path=cutflow_path,
        chunk_size=config["ingest"]["chunk_size"],
        weight_expr=spec.spec.get("weight"),
        # optional in a job's settings (the schema's default: auto)
        nanoaod_version=config.get("nanoaod", {}).get("version", AUTO),
        regions=Regions.from_config(config),
    )
