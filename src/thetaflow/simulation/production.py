"""The embedded simulation: one job writes one chunk of one sample as a NanoAOD-like file.

Pipeline per chunk: lepton-level truth (:mod:`thetaflow.simulation.generator`) → generator-level
filter (a Z-like lepton pair, as a real production's GenFilter; it reads only the leptons) →
the rest of the truth for the passing events → detector (:mod:`thetaflow.simulation.detector`)
→ reco-level skim (as real NanoAOD skims) → ROOT file with a TTree ``Events`` in NanoAOD
naming and a TTree ``Runs`` carrying ``genEventCount``/``genEventSumw`` over *every*
generated event, so that normalisation accounts for filter and skim as it does for real data
sets. Pseudo-data chunks draw a Poisson number of events per process at the injected signal
strength and true normalisation factors (:func:`simulate_pseudo_data_chunk`), drop the truth,
and shuffle the processes together.

Seeds: every chunk's random stream is ``SeedSequence([seed, crc32(sample), chunk])``, so the
same config gives bit-identical files and chunks are independent of how many run in parallel.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Literal, cast

import awkward as ak
import numpy as np
import uproot
import vector

from thetaflow.core.io import atomic_path
from thetaflow.core.progress import Progress
from thetaflow.core.samples import (
    Sample,
    load_samples,
    process_masks,
    pseudo_data_factors,
    pseudo_data_processes,
)
from thetaflow.core.units import PB_PER_INVERSE_FB
from thetaflow.simulation.detector import Detector, reconstruct
from thetaflow.simulation.generator import (
    ModelSettings,
    TruthEvents,
    complete,
    generate,
    generate_leptons,
)
from thetaflow.simulation.kinematics import FourVectors, Momenta

log = logging.getLogger(__name__)

MAX_BATCH = 1_000_000

TRUTH_ONLY_BRANCHES = (
    "GenPart",
    "GenJet",
    "GenDressedLepton",
    "GenMET_pt",
    "GenMET_phi",
    "LHE_Nb",
    "LHE_Nc",
)
TRUTH_ONLY_JET_FIELDS = ("hadronFlavour", "partonFlavour", "genJetIdx")


@dataclass(frozen=True)
class GeneratorFilter:
    """Truth-level filter: a lepton pair in a Z-like m_ℓℓ window, boosted.

    ``pair_flavours``: ``same`` keeps ee and μμ pairs only; ``any`` keeps eμ pairs too, which
    only tt̄ makes (ee:μμ:eμ = 1:1:2), so that an eμ top control region has events. The m_ℓℓ
    window applies to every pair, as the eμ top regions of the 2ℓ VH analyses select eμ in or
    near the Z window; widen ``mll_window_gev`` for a region outside it.
    """

    lepton_pt_min_gev: float
    lepton_abs_eta_max: float
    mll_min_gev: float
    mll_max_gev: float
    ptll_min_gev: float
    pair_flavours: Literal["same", "any"] = "same"

    def passes(self, truth: TruthEvents) -> np.ndarray:
        """Boolean mask of complete truth events passing the filter."""
        first, second = (Momenta.from_vector(lep) for lep in truth.leptons)
        return self.passes_flavours(truth.lepton_pdg) & self.passes_leptons(
            first, second, truth.lepton_pdg
        )

    def passes_flavours(self, pdg: np.ndarray) -> np.ndarray:
        """The flavour part of the filter ((n, 2) signed PDG ids): a same-flavour pair, or any
        pair with ``pair_flavours: any``."""
        if self.pair_flavours == "any":
            return np.ones(len(pdg), bool)
        return np.abs(pdg[:, 0]) == np.abs(pdg[:, 1])

    def passes_leptons(self, first: Momenta, second: Momenta, pdg: np.ndarray) -> np.ndarray:
        """The kinematic part: both leptons' p_T and |η|, the pair's mass and p_T.

        Compared in squares and via |p_z| < p_T sinh(η_max), which are the same cuts
        without the square roots and arcsinh.
        """
        del pdg  # the flavours are passes_flavours' part
        ok = np.ones(len(first), bool)
        sinh_eta_max = float(np.sinh(self.lepton_abs_eta_max))
        for lep in (first, second):
            pt2 = lep.px * lep.px + lep.py * lep.py
            ok &= (pt2 > self.lepton_pt_min_gev**2) & (np.abs(lep.pz) < np.sqrt(pt2) * sinh_eta_max)
        pair = first + second
        ptll2 = pair.px * pair.px + pair.py * pair.py
        mll2 = pair.E * pair.E - ptll2 - pair.pz * pair.pz
        return (
            ok
            & (mll2 > max(self.mll_min_gev, 0.0) ** 2)
            & (mll2 < self.mll_max_gev**2)
            & (ptll2 > max(self.ptll_min_gev, 0.0) ** 2)
        )


@dataclass(frozen=True)
class Skim:
    """Reco-level skim, looser than any analysis selection: leptons, jets, one loose b-tag."""

    enabled: bool
    min_leptons: int
    min_jets: int
    btag_min: float

    def passes(self, reco: dict[str, ak.Array]) -> np.ndarray:
        """Boolean mask of events kept in the written file."""
        n = len(reco["MET_pt"])
        if not self.enabled:
            return np.ones(n, bool)
        n_lep = ak.num(reco["Muon"]) + ak.num(reco["Electron"])
        jets = reco["Jet"]
        has_tag = ak.any(jets.btagDeepFlavB > self.btag_min, axis=1)
        return ak.to_numpy((n_lep >= self.min_leptons) & (ak.num(jets) >= self.min_jets) & has_tag)


@dataclass(frozen=True)
class SimulationSettings:
    """Everything a chunk job needs besides the sample's own generator block."""

    seed: int
    events_per_chunk: int
    filter: GeneratorFilter
    skim: Skim
    detector: Detector
    compression_level: int

    @classmethod
    def from_config(cls, sim: dict) -> SimulationSettings:
        """Build from the validated ``simulation`` section of config."""
        f = sim["generator_filter"]
        return cls(
            seed=sim["seed"],
            events_per_chunk=sim["events_per_chunk"],
            filter=GeneratorFilter(
                lepton_pt_min_gev=f["lepton_pt_min_gev"],
                lepton_abs_eta_max=f["lepton_abs_eta_max"],
                mll_min_gev=f["mll_window_gev"][0],
                mll_max_gev=f["mll_window_gev"][1],
                ptll_min_gev=f["ptll_min_gev"],
                pair_flavours=f["pair_flavours"],
            ),
            skim=Skim(**sim["skim"]),
            detector=Detector.from_config(sim["detector"]),
            compression_level=sim["compression_level"],
        )


@dataclass(frozen=True)
class GeneratedChunk:
    """Filtered truth events plus the bookkeeping of everything that was generated."""

    truth: TruthEvents
    n_generated: int
    sumw_generated: float
    sumw2_generated: float


def chunk_rng(seed: int, sample: str, chunk: int) -> np.random.Generator:
    """Random stream of one (sample, chunk): stable across runs, platforms and job order."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(sample.encode()), chunk]))


def n_chunks(n_events: int, events_per_chunk: int) -> int:
    """Number of chunk jobs for a sample of ``n_events`` filtered events."""
    return max(1, -(-n_events // events_per_chunk))


def chunk_size(n_events: int, events_per_chunk: int, chunk: int) -> int:
    """Filtered events in chunk number ``chunk`` (the last chunk takes the remainder)."""
    return min(events_per_chunk, n_events - chunk * events_per_chunk)


def concat_truth(parts: list[TruthEvents]) -> TruthEvents:
    """Concatenate truth batches field by field (vector arrays are rebuilt from px..E)."""

    def cat4(vectors: list) -> FourVectors:
        """One four-vector array of the pieces, in order."""
        return cast(
            FourVectors,
            vector.array(
                {
                    c: np.concatenate([np.asarray(getattr(v, c)) for v in vectors])
                    for c in ("px", "py", "pz", "E")
                }
            ),
        )

    return TruthEvents(
        leptons=[cat4([p.leptons[i] for p in parts]) for i in range(2)],
        lepton_pdg=np.concatenate([p.lepton_pdg for p in parts]),
        partons=[cat4([p.partons[i] for p in parts]) for i in range(3)],
        hadron_flavour=np.concatenate([p.hadron_flavour for p in parts]),
        parton_flavour=np.concatenate([p.parton_flavour for p in parts]),
        neutrino_px=np.concatenate([p.neutrino_px for p in parts]),
        neutrino_py=np.concatenate([p.neutrino_py for p in parts]),
        gen_weight=np.concatenate([p.gen_weight for p in parts]),
        lhe_nb=np.concatenate([p.lhe_nb for p in parts]),
        lhe_nc=np.concatenate([p.lhe_nc for p in parts]),
    )


def generate_filtered(
    rng: np.random.Generator,
    model: ModelSettings,
    filt: GeneratorFilter,
    *,
    n_accepted: int | None = None,
    n_generated: int | None = None,
) -> GeneratedChunk:
    """Generate until ``n_accepted`` events pass the filter, or exactly ``n_generated``.

    Exactly one of the two counts is given: MC chunks ask for a number of accepted events
    (the sample size), pseudo-data asks for a Poisson number of produced events. Batches are
    sized from the running filter efficiency and capped at ``MAX_BATCH`` to bound memory;
    the bookkeeping counts generated events up to the last accepted one kept. The filter is
    applied between the generator's two stages (:func:`generate_leptons`, then
    :func:`complete` for the passing events only).
    """
    total = n_accepted if n_accepted is not None else n_generated
    if total is None or (n_accepted is not None and n_generated is not None):
        raise ValueError("give exactly one of n_accepted and n_generated")
    parts: list[TruthEvents] = []
    kept = tried = 0
    sumw = sumw2 = 0.0
    efficiency = 0.1
    progress = Progress(
        log,
        "generation",
        total,
        "events (filter-passing)" if n_accepted is not None else "events",
    )
    while (n_accepted is not None and kept < n_accepted) or (
        n_generated is not None and tried < n_generated
    ):
        if n_accepted is not None:
            want = int(1.2 * (n_accepted - kept) / max(efficiency, 1e-4)) + 100
        else:
            want = total - tried  # total is n_generated here
        level = generate_leptons(rng, model, min(want, MAX_BATCH), filt)
        used = level.n_generated
        if n_accepted is not None and kept + len(level) > n_accepted:
            level = level.take(np.arange(n_accepted - kept))
            used = int(level.index[-1]) + 1
        weights = level.batch_weights[:used]
        tried += used
        sumw += float(weights.sum())
        sumw2 += float((weights**2).sum())
        parts.append(complete(rng, model, level))
        kept += len(level)
        efficiency = max(kept, 1) / tried
        progress.update(kept if n_accepted is not None else tried)
    if not parts:  # nothing to generate (a Poisson draw of zero, or μ = 0)
        parts.append(generate(rng, model, 0))
    log.info("generated %d events, %d passed the generator filter", tried, kept)
    return GeneratedChunk(concat_truth(parts), tried, sumw, sumw2)


def _event_arrays(reco: dict[str, ak.Array], keep: np.ndarray, *, is_data: bool) -> dict:
    """Select skimmed events; for data drop every truth branch and truth jet field."""
    out: dict = {}
    for name, arr in reco.items():
        if is_data and name in TRUTH_ONLY_BRANCHES:
            continue
        arr = arr[keep]
        if is_data and name == "Jet":
            arr = ak.zip({f: arr[f] for f in arr.fields if f not in TRUTH_ONLY_JET_FIELDS})
        out[name] = arr
    return out


def write_nanoaod(
    path: str,
    events: dict,
    runs: dict | None,
    compression_level: int,
) -> None:
    """Write ``Events`` (and ``Runs``) with uproot in NanoAOD naming, atomically."""
    with (
        atomic_path(path) as tmp,
        uproot.recreate(tmp, compression=uproot.ZLIB(compression_level)) as f,
    ):
        tree = f.mktree(
            "Events",
            {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in events.items()},
            field_name=lambda outer, inner: f"{outer}_{inner}",
            counter_name=lambda counted: "n" + counted,
        )
        if len(events["run"]):
            tree.extend(events)
        if runs is not None:
            f["Runs"] = runs


def simulate_mc_chunk(
    settings: SimulationSettings,
    model: ModelSettings,
    sample: str,
    chunk: int,
    n_events: int,
    path: str,
    response: Callable[[np.random.Generator, dict], dict] | None = None,
) -> dict:
    """Simulate one chunk of an MC sample into ``path``; return its bookkeeping.

    ``response`` (a fast simulation) rewrites the detector's collections before the skim,
    drawing from the chunk's random stream after the detector.
    """
    rng = chunk_rng(settings.seed, sample, chunk)
    size = chunk_size(n_events, settings.events_per_chunk, chunk)
    if size <= 0:
        raise ValueError(f"sample {sample!r}: chunk {chunk} is beyond its {n_events} events")
    gen = generate_filtered(rng, model, settings.filter, n_accepted=size)
    reco = reconstruct(rng, gen.truth, settings.detector)
    if response is not None:
        reco = response(rng, reco)
    keep = settings.skim.passes(reco)
    events = _event_arrays(reco, keep, is_data=False)
    index = np.flatnonzero(keep)
    events["run"] = np.ones(index.size, np.uint32)
    events["luminosityBlock"] = np.full(index.size, chunk + 1, np.uint32)
    events["event"] = (index + 1).astype(np.uint64)
    events["genWeight"] = gen.truth.gen_weight[keep].astype(np.float32)
    runs = {
        "run": np.array([1], np.uint32),
        "genEventCount": np.array([gen.n_generated], np.int64),
        "genEventSumw": np.array([gen.sumw_generated]),
        "genEventSumw2": np.array([gen.sumw2_generated]),
    }
    write_nanoaod(path, events, runs, settings.compression_level)
    log.info(
        "%s chunk %d: %d events written (%d filtered, %d generated)",
        sample,
        chunk,
        index.size,
        len(gen.truth),
        gen.n_generated,
    )
    return {"written": int(index.size), "filtered": len(gen.truth), "generated": gen.n_generated}


@dataclass(frozen=True)
class PseudoDataComponent:
    """One MC sample of the pseudo-data: its generator and the true normalisation factor of
    each of its fit processes (μ_injected folded in for a signal sample's processes; a fit
    process missing from ``factors`` has factor 1)."""

    sample: Sample
    model: ModelSettings
    factors: Mapping[str, float]

    @property
    def name(self) -> str:
        """The sample's name."""
        return self.sample.name

    @property
    def xsec_pb(self) -> float:
        """The sample's σ × B in pb."""
        return float(self.sample.spec["xsec_pb"])

    def process_factors(self) -> dict[str, float]:
        """Fit process -> its true normalisation factor, for every fit process of the sample."""
        return {p.name: float(self.factors.get(p.name, 1.0)) for p in self.sample.fit_processes}


@dataclass(frozen=True)
class ProcessCount:
    """Pseudo-data events of one fit process in one chunk: before thinning (filter-passing),
    expected after it (before × k / k_max) and kept."""

    factor: float
    before_thinning: int
    expected: float
    kept: int


def thin_to_factors(
    rng: np.random.Generator, component: PseudoDataComponent, truth: TruthEvents
) -> tuple[TruthEvents, dict[str, ProcessCount]]:
    """Keep each event with probability k(process) / k_max, its fit process found from its
    truth (``lhe_nb``, ``lhe_nc``) by :func:`~thetaflow.core.samples.process_masks`.

    The events were drawn as a Poisson process at the largest factor k_max of the sample's
    processes; keeping each event independently with probability p gives again a Poisson
    process, with the mean scaled by p (Poisson thinning), so every process ends up Poisson
    with mean k × its nominal expectation. ``truth`` holds the events that passed the generator
    filter: the filter is a thinning independent of this one, so their order does not matter
    (and the detector then runs on the kept events only). No random number is drawn when
    every process has k = k_max (nothing to thin), so pseudo-data at unit factors are those of
    a plain draw.
    """
    factors = component.process_factors()
    k_max = max(factors.values())
    masks = process_masks(component.sample, {"lhe_nb": truth.lhe_nb, "lhe_nc": truth.lhe_nc})
    keep = np.ones(len(truth), bool)
    if any(k < k_max for k in factors.values()):
        probability = np.zeros(len(truth))
        for name, mask in masks.items():
            probability[mask] = factors[name] / k_max
        keep = rng.uniform(size=len(truth)) < probability
    counts = {
        name: ProcessCount(
            factor=factors[name],
            before_thinning=int(mask.sum()),
            expected=float(mask.sum() * factors[name] / k_max) if k_max > 0 else 0.0,
            kept=int((mask & keep).sum()),
        )
        for name, mask in masks.items()
    }
    return (truth if keep.all() else truth.take(keep)), counts


def simulate_pseudo_data_chunk(
    settings: SimulationSettings,
    components: list[PseudoDataComponent],
    lumi_fb: float,
    seed: int,
    sample: str,
    chunk: int,
    chunks: int,
    path: str,
) -> dict:
    """Pseudo-data chunk: per MC sample, Poisson(σ·L·k_max / chunks) produced events thinned
    to each fit process' factor k (:func:`thin_to_factors`), shuffled together.

    k_max is the largest true normalisation factor of the sample's fit processes (μ_injected
    included for signal). Each chunk is an independent Poisson draw, so the sum over chunks is
    Poisson with the full expectation. Returns per sample the draw's mean (``expected``), the
    events ``produced`` (before the generator filter), those ``written`` (after thinning and
    skim) and the per-process counts.
    """
    rng = chunk_rng(seed, sample, chunk)
    per_process = []
    counts = {}
    for comp in components:
        k_max = max(comp.process_factors().values())
        expected = comp.xsec_pb * PB_PER_INVERSE_FB * lumi_fb * k_max / chunks
        produced = int(rng.poisson(expected))
        # data are unweighted: physical flavour mix, no negative weights
        model = replace(comp.model, generated_flavour_fractions=None, negative_weight_fraction=0.0)
        gen = generate_filtered(rng, model, settings.filter, n_generated=produced)
        truth, processes = thin_to_factors(rng, comp, gen.truth)
        reco = reconstruct(rng, truth, settings.detector)
        keep = settings.skim.passes(reco)
        per_process.append(_event_arrays(reco, keep, is_data=True))
        counts[comp.name] = {
            "expected": expected,
            "produced": produced,
            "written": int(keep.sum()),
            "processes": {name: asdict(c) for name, c in processes.items()},
        }
        for name, c in processes.items():
            log.info(
                "%s chunk %d: process %s (k = %g): %d filter-passing events produced, "
                "%.1f expected (%d drawn at k_max = %g, each kept with probability k / k_max)",
                sample,
                chunk,
                name,
                c.factor,
                c.kept,
                c.expected,
                c.before_thinning,
                k_max,
            )
    merged = {k: _concatenate([p[k] for p in per_process]) for k in per_process[0]}
    n = len(merged["MET_pt"])
    order = rng.permutation(n)
    events = {k: v[order] for k, v in merged.items()}
    events["run"] = np.ones(n, np.uint32)
    events["luminosityBlock"] = np.full(n, chunk + 1, np.uint32)
    events["event"] = np.arange(1, n + 1, dtype=np.uint64)
    write_nanoaod(path, events, None, settings.compression_level)
    log.info("%s chunk %d: %d pseudo-data events; per process %s", sample, chunk, n, counts)
    return counts


def _concatenate(arrays: list) -> ak.Array | np.ndarray:
    if isinstance(arrays[0], ak.Array):
        return ak.concatenate(arrays)
    return np.concatenate(arrays)


def simulate_sample_chunk(config: dict, sample: str, chunk: int, output: str) -> dict:
    """Workflow entry point: simulate chunk ``chunk`` of ``sample`` as configured."""
    samples = load_samples(config)
    spec = samples[sample]
    settings = SimulationSettings.from_config(
        {**config["simulation"], "seed": config["seeds"]["simulation"]}
    )
    if spec.is_pseudo_data:
        pd = spec.spec["generate"]["pseudo_data"]
        factors = pseudo_data_factors(spec, samples)
        components = [
            PseudoDataComponent(
                samples[name], model_settings(samples[name].spec["generate"]), factors
            )
            for name in pseudo_data_processes(spec, samples)
        ]
        return simulate_pseudo_data_chunk(
            settings,
            components,
            config["analysis"]["lumi_fb"],
            pd["seed"],
            sample,
            chunk,
            pd.get("n_chunks", 1),
            output,
        )
    gen = spec.spec["generate"]
    return simulate_mc_chunk(settings, model_settings(gen), sample, chunk, gen["n_events"], output)


def model_settings(generate: dict) -> ModelSettings:
    """ModelSettings from a sample's ``generate:`` block (n_events is not a model setting)."""
    return ModelSettings(**{k: v for k, v in generate.items() if k != "n_events"})


def sample_chunks(spec: dict, events_per_chunk: int) -> int:
    """Number of chunk jobs of a generated sample's ``generate:`` block."""
    if "pseudo_data" in spec:
        return int(spec["pseudo_data"].get("n_chunks", 1))
    return n_chunks(spec["n_events"], events_per_chunk)
