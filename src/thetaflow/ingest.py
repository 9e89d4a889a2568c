"""Ingestion: NanoAOD files → selected events per variation (parquet) and a cutflow (JSON).

Files are read with coffea NanoEvents (NanoAODSchema, virtual mode: only branches that are
used are read) in entry ranges of ``ingest.chunk_size``; each range's selected events are
appended to a streaming parquet writer, so peak memory follows the chunk size, not the file
size. Jet-energy-scale variations are made here by varying the jets and re-running object
and event selection (as real analyses do), all from one read of the file.

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

from thetaflow.expressions import ExpressionError, parse_expression
from thetaflow.io import atomic_path
from thetaflow.units import PB_PER_INVERSE_FB
from thetaflow.selection import (
    EVENT_VARIABLES,
    LEPTON_FIELDS,
    Selection,
    cut_masks,
    lepton_cut_prefix,
    prepare_chunk,
    select_leptons,
    select_objects,
)

log = logging.getLogger(__name__)


BASE_BRANCHES = (
    "run", "luminosityBlock", "event", "nMuon", "nElectron", "nJet", "MET_pt", "MET_phi",
    *(f"Muon_{f}" for f in LEPTON_FIELDS),
    *(f"Electron_{f}" for f in LEPTON_FIELDS),
    *(f"Jet_{f}" for f in ("pt", "eta", "phi", "mass", "btagDeepFlavB")),
)
FINITE_CHECKED = {
    "Muon": ("pt", "eta", "phi", "mass"),
    "Electron": ("pt", "eta", "phi", "mass"),
    "Jet": ("pt", "eta", "phi", "mass", "btagDeepFlavB"),
    "MET": ("pt", "phi"),
}


class IngestError(RuntimeError):
    """Bad input: the message names the sample, the file and the branch or problem."""


@dataclass(frozen=True)
class Variation:
    """A shape variation applied at ingestion; ``jes_factor`` scales jet p_T and mass."""

    name: str
    jes_factor: float = 1.0


def variations(config: Mapping, is_data: bool) -> list[Variation]:
    """Nominal plus, for simulation, the up/down shifts of every shape systematic."""
    out = [Variation("nominal")]
    jes = config.get("systematics", {}).get("shape", {}).get("jes")
    if jes and not is_data:
        shift = jes["relative_shift"]
        out += [Variation("jes_up", 1.0 + shift), Variation("jes_down", 1.0 - shift)]
    return out


@dataclass
class CutflowCounter:
    """Unweighted and Σweight counts per cut of one variation."""

    names: list[str]
    events: np.ndarray = field(init=False)
    sumw: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.events = np.zeros(len(self.names), np.int64)
        self.sumw = np.zeros(len(self.names))

    def add(self, masks: Sequence[np.ndarray], weights: np.ndarray, first: int = 0) -> None:
        """Accumulate cumulative masks of the cuts ``first``, ``first + 1``... of one chunk."""
        for i, mask in enumerate(masks, start=first):
            self.events[i] += int(mask.sum())
            self.sumw[i] += float(weights[mask].sum())

    def table(self, norm: float) -> list[dict]:
        """Rows with the cut name, raw count, Σ weight and expected yield (Σw × norm)."""
        return [
            {"cut": n, "events": int(e), "sumw": float(w), "expected": float(w * norm)}
            for n, e, w in zip(self.names, self.events, self.sumw)
        ]


def open_tree(path: str, tree: str, sample: str) -> uproot.TTree:
    """Open ``path`` and return ``tree``, turning uproot's failures into named errors."""
    try:
        handle = uproot.open(path)
    except FileNotFoundError as err:
        raise IngestError(f"sample '{sample}': input file not found: {path}") from err
    except Exception as err:  # uproot raises ValueError/OSError/... for non-ROOT files
        raise IngestError(f"sample '{sample}': {path} is not a readable ROOT file ({err})") from err
    with reading(sample, path, f"tree '{tree}'"):
        if tree not in handle:
            present = ", ".join(handle.keys(cycle=False)) or "nothing"
            raise IngestError(f"sample '{sample}': {path} has no tree '{tree}' (it has: {present})")
        ttree = handle[tree]
        ttree.keys()
        return ttree


def check_branches(ttree: uproot.TTree, needed: set[str], path: str, sample: str) -> None:
    """Fail early, naming every missing branch, before any event is processed."""
    missing = sorted(needed - set(ttree.keys()))
    if missing:
        raise IngestError(f"sample '{sample}': {path} lacks branch(es) {', '.join(missing)}")


@contextlib.contextmanager
def reading(sample: str, path: str, what: str) -> Iterator[None]:
    """Turn any failure while reading ``what`` of ``path`` into an IngestError naming both."""
    try:
        yield
    except IngestError:
        raise
    except Exception as err:
        raise IngestError(
            f"sample '{sample}': failed to read {what} of {path} "
            f"(truncated or corrupt file?): {type(err).__name__}: {err}"
        ) from err


def runs_sumw(path: str, sample: str) -> tuple[float, float] | None:
    """(genEventSumw, genEventCount) from the ``Runs`` tree, if the file has one."""
    with reading(sample, path, "the Runs tree"), uproot.open(path) as handle:
        if "Runs" not in handle:
            return None
        runs = handle["Runs"]
        keys = set(runs.keys())
        for sumw_key, count_key in (("genEventSumw", "genEventCount"), ("genEventSumw_", "genEventCount_")):
            if sumw_key in keys:
                arrays = runs.arrays([sumw_key, count_key], library="np")
                return float(arrays[sumw_key].sum()), float(arrays[count_key].sum())
    return None


def finite_mask(events: ak.Array) -> np.ndarray:
    """Events whose used kinematic inputs are all finite (NaN/inf are counted, dropped).

    The flat contents are checked first; only a column that has a non-finite value is
    reduced per event, so clean inputs (the usual case) cost one pass over the buffers.
    """
    ok = np.ones(len(events), bool)
    columns = [events[c][f] for c, fields in FINITE_CHECKED.items() for f in fields]
    if "genWeight" in events.fields:
        columns.append(events.genWeight)
    for values in columns:
        jagged = values.ndim > 1
        flat = ak.to_numpy(ak.flatten(values) if jagged else values)
        if np.isfinite(flat).all():
            continue
        good = np.isfinite(values)
        ok &= ak.to_numpy(ak.all(good, axis=1)) if jagged else ak.to_numpy(good)
    return ok


def _jet_truth(events: ak.Array, has_truth: bool, has_nu: bool) -> dict[str, ak.Array]:
    """Per-jet truth (flavour, GenJet p_T with neutrinos) and soft-lepton counts.

    Absent branches (real data, or NanoAOD without our GenJet_nuPt) give -1 / NaN / 0, so
    the output schema is the same for every input.
    """
    jets = events.Jet
    fill_i = ak.values_astype(ak.zeros_like(jets.pt), np.int32)
    extras = {
        "n_muons": jets["nMuons"] if "nMuons" in jets.fields else fill_i,
        "n_electrons": jets["nElectrons"] if "nElectrons" in jets.fields else fill_i,
        "hadron_flavour": jets["hadronFlavour"] if has_truth else fill_i - 1,
    }
    if has_truth:
        gen = jets.matched_gen
        gen_pt = gen.pt + (gen["nuPt"] if has_nu else 0.0)
        extras["gen_pt"] = ak.values_astype(ak.fill_none(gen_pt, np.nan), np.float32)
    else:
        extras["gen_pt"] = ak.values_astype(jets.pt * np.nan, np.float32)
    return extras


def _output_record(
    events: ak.Array, objects, mask: np.ndarray, gen_weight: np.ndarray, extra_weight: np.ndarray
) -> ak.Array:
    """The per-event record written for selected events (fixed schema)."""
    lep = objects.leptons[mask][:, :2]
    jets = objects.jets[mask]
    f32 = np.float32
    return ak.zip(
        {
            "run": ak.values_astype(events.run[mask], np.uint32),
            "luminosityBlock": ak.values_astype(events.luminosityBlock[mask], np.uint32),
            "event": ak.values_astype(events.event[mask], np.uint64),
            "gen_weight": gen_weight[mask],
            "extra_weight": extra_weight[mask],
            "leptons": ak.zip(
                {
                    "pt": ak.values_astype(lep.pt, f32),
                    "eta": ak.values_astype(lep.eta, f32),
                    "phi": ak.values_astype(lep.phi, f32),
                    "mass": ak.values_astype(lep.mass, f32),
                    "charge": ak.values_astype(lep.charge, np.int32),
                    "pdg_id": ak.values_astype(lep.pdgId, np.int32),
                }
            ),
            "jets": ak.zip(
                {
                    "pt": ak.values_astype(jets.pt, f32),
                    "eta": ak.values_astype(jets.eta, f32),
                    "phi": ak.values_astype(jets.phi, f32),
                    "mass": ak.values_astype(jets.mass, f32),
                    "btag": ak.values_astype(jets.btag, f32),
                    "hadron_flavour": ak.values_astype(jets.hadron_flavour, np.int32),
                    "gen_pt": ak.values_astype(jets.gen_pt, f32),
                    "n_muons": ak.values_astype(jets.n_muons, np.int32),
                    "n_electrons": ak.values_astype(jets.n_electrons, np.int32),
                }
            ),
            "met_pt": ak.values_astype(objects.met_pt[mask], f32),
            "met_phi": ak.values_astype(objects.met_phi[mask], f32),
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
            self._writer = pq.ParquetWriter(self._path, table.schema, compression="zstd")
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
) -> dict:
    """Select events of one sample for every variation; write parquet and the cutflow.

    Returns the cutflow dictionary (also written to ``cutflow_path``). A sample in which no
    event passes gives empty (but typed) parquet files and a warning, not an error. All
    outputs are written under temporary names and renamed together only when the whole
    sample succeeded, so a failure leaves none of them behind.
    """
    info = SampleInfo(sample, is_data, xsec_pb, lumi_fb, weight_expr)
    needed = set(BASE_BRANCHES) | selection.branches() | ({"genWeight"} if not is_data else set())
    trees = []
    for path in files:
        ttree = open_tree(path, tree, sample)
        check_branches(ttree, needed, path, sample)
        trees.append((path, ttree))
    cut_names = ["all"] + [name for name, _ in selection.cuts]
    counters = {v.name: CutflowCounter(cut_names) for v in variation_list}
    totals = ReadTotals()
    with contextlib.ExitStack() as stack:
        appenders = {}
        for v in variation_list:
            appenders[v.name] = ParquetAppender(stack.enter_context(atomic_path(outputs[v.name])))
            stack.callback(appenders[v.name].close)
        cutflow_tmp = stack.enter_context(atomic_path(cutflow_path))
        try:
            for path, ttree in trees:
                _ingest_file(info, path, tree, ttree, selection, variation_list, chunk_size, counters, appenders, totals)
        except ExpressionError as err:
            raise IngestError(f"sample '{sample}': {err}") from err
        result = _cutflow_summary(info, files, totals, counters, {k: a.rows for k, a in appenders.items()})
        cutflow_tmp.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def _ingest_file(
    info: SampleInfo,
    path: str,
    tree: str,
    ttree: uproot.TTree,
    selection: Selection,
    variation_list: Sequence[Variation],
    chunk_size: int,
    counters: Mapping[str, CutflowCounter],
    appenders: Mapping[str, ParquetAppender],
    totals: ReadTotals,
) -> None:
    """Process one file chunk by chunk, every variation from the same read."""
    extra = (
        parse_expression(info.weight_expr, allowed_names=EVENT_VARIABLES, context=f"samples.{info.name}.weight")
        if info.weight_expr
        else None
    )
    n_shared = lepton_cut_prefix(selection, extra.names if extra is not None else frozenset())
    keys = set(ttree.keys())
    has_truth = not info.is_data and {"Jet_genJetIdx", "GenJet_pt", "Jet_hadronFlavour"} <= keys
    has_nu = has_truth and "GenJet_nuPt" in keys
    totals.runs.append(None if info.is_data else runs_sumw(path, info.name))
    for start in range(0, max(ttree.num_entries, 1), chunk_size):
        stop = min(start + chunk_size, ttree.num_entries)
        events = _read_chunk(path, tree, start, stop, info.name)
        n = len(events)
        gen_weight = np.ones(n) if info.is_data else ak.to_numpy(events.genWeight).astype(np.float64)
        good = finite_mask(events)
        totals.events += n
        totals.non_finite += int((~good).sum())
        totals.sumw += float(gen_weight[np.isfinite(gen_weight)].sum())
        events, gen_weight = events[good], gen_weight[good]
        # cuts on leptons only are shared by every jet variation: evaluate them once and
        # run the variations on the events that pass them
        leptons, lepton_variables = select_leptons(events, selection)
        extra_weight = (
            ak.to_numpy(extra.evaluate(lepton_variables)).astype(np.float64)
            if extra is not None and n_shared
            else np.ones(len(events))
        )
        weights = gen_weight * extra_weight
        shared = [np.ones(len(events), bool)] + cut_masks(lepton_variables, selection, 0, n_shared)
        keep = shared[-1]
        sub = events[keep]
        chunk = prepare_chunk(
            sub,
            selection,
            _jet_truth(sub, has_truth, has_nu),
            (leptons[keep], {k: v[keep] for k, v in lepton_variables.items()}),
        )
        for v in variation_list:
            objects = select_objects(chunk, selection, v.jes_factor)
            per_variation = extra is not None and not n_shared  # extra weight reads jets
            sub_extra = (
                ak.to_numpy(extra.evaluate(objects.variables)).astype(np.float64)
                if per_variation
                else extra_weight[keep]
            )
            masks = cut_masks(objects.variables, selection, n_shared)
            counters[v.name].add(shared, gen_weight * sub_extra if per_variation else weights)
            counters[v.name].add(masks, gen_weight[keep] * sub_extra, first=len(shared))
            final = masks[-1] if masks else np.ones(len(sub), bool)
            appenders[v.name].write(_output_record(sub, objects, final, gen_weight[keep], sub_extra))
        log.info("%s: %s entries %d-%d read", info.name, Path(path).name, start, stop)
        # uproot/NanoEvents objects of a chunk form reference cycles that keep its arrays
        # alive until a full collection; collect now so memory does not grow with file size
        del events, sub, chunk, objects
        gc.collect()


def _read_chunk(path: str, tree: str, start: int, stop: int, sample: str) -> ak.Array:
    """NanoEvents of one entry range, with read failures (truncation...) named."""
    with reading(sample, path, f"entries {start}-{stop}"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Missing cross-reference")
        return NanoEventsFactory.from_root(
            {path: tree},
            schemaclass=NanoAODSchema,
            mode="virtual",
            entry_start=start,
            entry_stop=stop,
            uproot_options={"filter_name": _branch_filter},
        ).events()


_KEEP_PREFIXES = ("run", "luminosityBlock", "event", "genWeight", "nMuon", "Muon_", "nElectron",
                  "Electron_", "nJet", "Jet_", "nGenJet", "GenJet_", "MET_")


def _branch_filter(name: str) -> bool:
    """Branches NanoEvents materialises: the collections ingestion uses, nothing else."""
    return name.startswith(_KEEP_PREFIXES)


def _cutflow_summary(
    info: SampleInfo,
    files: Sequence[str],
    totals: ReadTotals,
    counters: Mapping[str, CutflowCounter],
    selected: Mapping[str, int],
) -> dict:
    """The cutflow document: bookkeeping, normalisation and per-variation cut counts."""
    runs_known = [r for r in totals.runs if r is not None]
    use_runs = not info.is_data and len(runs_known) == len(files) > 0
    sumw_generated = sum(r[0] for r in runs_known) if use_runs else None
    sumw = 1.0 if info.is_data else (sumw_generated if use_runs else totals.sumw)
    if not info.is_data and not sumw:
        raise IngestError(f"sample '{info.name}': the sum of generator weights is zero; cannot normalise")
    norm = 1.0 if info.is_data else info.xsec_pb * PB_PER_INVERSE_FB * info.lumi_fb / sumw
    if selected.get("nominal", 0) == 0:
        log.warning("sample '%s': no event passes the selection; outputs are empty", info.name)
    if totals.non_finite:
        log.warning(
            "sample '%s': %d of %d events have NaN/inf inputs and were dropped",
            info.name, totals.non_finite, totals.events,
        )
    return {
        "sample": info.name,
        "is_data": info.is_data,
        "files": list(files),
        "events_read": totals.events,
        "non_finite_events": totals.non_finite,
        "sumw_read": totals.sumw,
        "events_generated": sum(r[1] for r in runs_known) if use_runs else None,
        "sumw_generated": sumw_generated,
        "sumw": sumw,
        "sumw_source": "data" if info.is_data else ("Runs.genEventSumw" if use_runs else "Events.genWeight"),
        "xsec_pb": info.xsec_pb,
        "lumi_fb": info.lumi_fb,
        "norm_factor": norm,
        "selected": dict(selected),
        "cutflow": {name: c.table(norm) for name, c in counters.items()},
    }


def ingest_from_config(
    config: Mapping, sample: str, files: Sequence[str], outputs: Mapping[str, str], cutflow_path: str
) -> dict:
    """Workflow entry point: ingest one sample with the configured selection."""
    from thetaflow.config import load_samples

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
    )
