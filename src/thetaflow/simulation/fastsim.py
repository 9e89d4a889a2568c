"""Learned fast simulation of jets: GenJets → NanoAOD ``Jet`` by a conditional flow (FlashSim-like).

What is learned, from the embedded simulation's events before any skim (the reco skim keeps
events with a b-tagged jet and would bias every jet's b-tag score):

* **response** — a :class:`~thetaflow.simulation.flow.ConditionalFlow` of the matched
  (reco jet, GenJet) pairs (``Jet_genJetIdx``): p(x | c) with c = (log p_T, η, |η|, one-hot
  hadron flavour b/c/light) of the GenJet and x = (log((p_T − p_T,thr) / p_T,gen),
  Δη, Δφ, logit(DeepFlavB)). The p_T target is measured from the storage threshold p_T,thr
  (the smallest reco p_T of the training jets), so every draw lies above it and the
  truncated response near the threshold has no edge to learn. The detector's jets have no φ
  dependence, so φ is not a condition: the model draws the residual. Outside the tracker
  (|η| at or beyond the smallest |η| of a training jet with score 0) NanoAOD has no score;
  those jets train the b-tag coordinate on a standard-normal placeholder and get a score of 0.
  The reco mass is the GenJet mass scaled by the p_T response, as in the embedded detector
  (a detector with a separate mass response would need a fifth coordinate);
* **efficiency** — whether a GenJet has a reconstructed jet at all (the storage threshold and
  the |η| acceptance), a small classifier on the same conditions (binary cross-entropy),
  modelled apart from the flow so that the flow describes reconstructed jets only; draws
  outside the |η| acceptance of the training jets are redrawn (the flow conditioned on
  acceptance);
* **the other jet fields** (``jetId``, ``puId``, ``nMuons``, ``nElectrons``, whatever the
  training file has): their joint frequencies per hadron flavour and GenJet semileptonic
  flag (``GenJet_nuPt > 0``, where the branch exists), drawn as a table;
* **jets without a GenJet** (pile-up, and hard jets whose GenJet fell below its threshold):
  their per-event multiplicity and a pool of up to :data:`POOL_SIZE` of them, resampled with
  replacement (the embedded detector's pile-up does not depend on the hard process).

Everything lives in one :class:`JetFastSim` saved as ``.keras`` (no pickle); every random
step takes its numbers from the caller's seeded generator (numpy), so a chunk's fast
simulation is reproducible. :func:`fastsim_jets` replaces the ``Jet`` collection of a
reconstructed event record and propagates the change into MET (the vector sum of every jet's
reco − matched-GenJet momentum, type-1 style), so a fastsim sample goes through
:func:`~thetaflow.simulation.production.write_nanoaod`, the selection and the features as the
full one does (:func:`simulate_fastsim_chunk`). :func:`validate` compares fast and full tables
with Wasserstein distances and a classifier two-sample test.
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import awkward as ak
import numpy as np

from thetaflow.core.errors import ConfigError, ThetaflowError
from thetaflow.core.io import atomic_path
from thetaflow.core.samples import Sample, load_samples
from thetaflow.simulation.detector import reconstruct, to_jagged
from thetaflow.simulation.production import (
    SimulationSettings,
    generate_filtered,
    model_settings,
    simulate_mc_chunk,
)

# Keras (hence TensorFlow) is imported where a model is built or loaded: the config check
# of this module runs at every workflow parse
if TYPE_CHECKING:
    from thetaflow.simulation.flow import FitSummary, TrainingSettings

log = logging.getLogger(__name__)

#: the flow's conditions, per GenJet
CONDITIONS = ("log_pt", "eta", "abs_eta", "is_b", "is_c", "is_light")
#: the flow's coordinates, per reconstructed jet
TARGETS = ("log_pt_above_threshold", "delta_eta", "delta_phi", "btag_logit")
#: branches the conditions are read from: a sample without them cannot be fast-simulated
GENJET_BRANCHES = ("pt", "eta", "phi", "mass", "hadronFlavour")
#: reco branches the training needs
JET_BRANCHES = ("pt", "eta", "phi", "mass", "btagDeepFlavB", "genJetIdx")
#: reco fields the flow sets; ``hadronFlavour``/``partonFlavour`` come from the GenJet
FLOW_FIELDS = ("pt", "eta", "phi", "mass", "btagDeepFlavB")
GENJET_COPIED = ("hadronFlavour", "partonFlavour")
FLAVOURS = (5, 4, 0)  # b, c, light: the one-hot order of CONDITIONS
N_CLASSES = 2 * len(FLAVOURS)  # the aux table's classes: flavour × semileptonic
PT_THRESHOLD_MARGIN_GEV = 1e-3  # below the smallest training p_T: log of a positive number
SCORE_CLIP = 1e-7  # float32 scores of exactly 0 or 1 have no logit
POOL_SIZE = 50_000
MAX_UNMATCHED = 16
MAX_AUX_VALUES = 64
ACCEPTANCE_ROUNDS = 20
GENERATION_BATCH = 262_144
TRAINING_STREAM = b"fastsim-training"


class FastSimInputError(ThetaflowError, ValueError):
    """Events the fast simulation cannot learn from or apply to; names the source and branch."""


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class FastSimSettings:
    """The ``fastsim`` section: which sample, how many training events, the flow's size."""

    sample: str
    training_events: int
    seed: int
    coupling_layers: int
    hidden_units: tuple[int, ...]
    spline_bins: int
    epochs: int
    batch_size: int
    learning_rate: float

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> FastSimSettings:
        """Build from the validated ``fastsim`` mapping."""
        return cls(
            sample=str(cfg["sample"]),
            training_events=int(cfg["training_events"]),
            seed=int(cfg["seed"]),
            coupling_layers=int(cfg["coupling_layers"]),
            hidden_units=tuple(int(u) for u in cfg["hidden_units"]),
            spline_bins=int(cfg["spline_bins"]),
            epochs=int(cfg["epochs"]),
            batch_size=int(cfg["batch_size"]),
            learning_rate=float(cfg["learning_rate"]),
        )

    def training(self) -> TrainingSettings:
        """The optimiser settings of both networks."""
        from thetaflow.simulation.flow import TrainingSettings

        return TrainingSettings(self.epochs, self.batch_size, self.learning_rate)


def check(config: Mapping[str, Any], samples: Mapping[str, Sample]) -> None:
    """The ``fastsim`` sample exists and is simulated MC: the flow trains on its truth and
    reco, which only the embedded simulation gives, and (pseudo-)data have no truth."""
    if "fastsim" not in config:
        return
    name = config["fastsim"]["sample"]
    key = "config key 'fastsim.sample'"
    if name not in samples:
        raise ConfigError(f"{key}: sample {name!r} is not in the sample list")
    sample = samples[name]
    if sample.is_data:
        raise ConfigError(
            f"{key}: {name!r} is a data sample; a fastsim variant needs generator-level truth "
            "(GenJets), which data do not have"
        )
    if not sample.is_generated:
        raise ConfigError(
            f"{key}: {name!r} reads files; the fast simulation trains on, and is applied to, "
            "samples of the embedded simulation (a generate: block)"
        )


# --------------------------------------------------------------------------- training data


@dataclass(frozen=True)
class JetTrainingSet:
    """Flat jets of a set of events, as the fast simulation learns them.

    ``gen``: every GenJet (``GENJET_BRANCHES``, plus ``nuPt`` where present);
    ``reconstructed``: per GenJet, whether a reco jet points at it; ``matched``: the reco
    ``Jet`` fields of the reconstructed GenJets, in GenJet order (the leading jet where
    several point at one GenJet); ``unmatched``: the reco jets without a GenJet (every field
    but ``genJetIdx``) and ``unmatched_counts`` their number per event. ``jet_fields`` and
    ``jet_dtypes`` are the ``Jet`` collection's schema, which the fast jets copy.
    """

    gen: dict[str, np.ndarray]
    reconstructed: np.ndarray
    matched: dict[str, np.ndarray]
    unmatched: dict[str, np.ndarray]
    unmatched_counts: np.ndarray
    jet_fields: tuple[str, ...]
    jet_dtypes: tuple[str, ...]

    @property
    def aux_fields(self) -> tuple[str, ...]:
        """Jet fields neither the flow nor the GenJet sets (``jetId``, ``puId``, ...)."""
        return tuple(
            f for f in self.jet_fields if f not in (*FLOW_FIELDS, *GENJET_COPIED, "genJetIdx")
        )


def _require(collections: Mapping[str, Any], name: str, fields: Sequence[str], source: str) -> None:
    if name not in collections:
        raise FastSimInputError(f"{source}: no {name} collection; the fast simulation needs it")
    missing = [f for f in fields if f not in collections[name].fields]
    if missing:
        raise FastSimInputError(
            f"{source}: the fast simulation conditions on "
            f"{', '.join(f'{name}_{f}' for f in missing)}, which the events lack"
        )


def _flat(collection: ak.Array, fields: Sequence[str]) -> dict[str, np.ndarray]:
    return {f: ak.to_numpy(ak.flatten(collection[f])) for f in fields}


@dataclass(frozen=True)
class _Matching:
    """Reco jets → GenJets on the flat arrays: each jet's event, global GenJet index (-1 for
    none) and whether it is the one reco jet kept for its GenJet."""

    event: np.ndarray
    gen_index: np.ndarray
    first: np.ndarray


def _match(jets: ak.Array, gen: ak.Array) -> _Matching:
    n_jets = ak.to_numpy(ak.num(jets))
    n_gen = ak.to_numpy(ak.num(gen))
    event = np.repeat(np.arange(len(n_jets)), n_jets)
    local = ak.to_numpy(ak.flatten(jets.genJetIdx)).astype(np.int64)
    valid = (local >= 0) & (local < n_gen[event])
    offsets = np.concatenate([[0], np.cumsum(n_gen)[:-1]]).astype(np.int64)
    gen_index = np.where(valid, offsets[event] + local, -1)
    first = np.zeros(len(local), bool)
    _, position = np.unique(gen_index[valid], return_index=True)
    first[np.flatnonzero(valid)[position]] = True
    return _Matching(event, gen_index, first)


def jet_training_set(collections: Mapping[str, Any], source: str) -> JetTrainingSet:
    """The flat jets of ``collections`` (``Jet`` and ``GenJet`` as :func:`reconstruct` or a
    NanoAOD reader gives them); ``source`` names the events in errors."""
    _require(collections, "GenJet", GENJET_BRANCHES, source)
    _require(collections, "Jet", JET_BRANCHES, source)
    jets, genjets = collections["Jet"], collections["GenJet"]
    gen_fields = [*GENJET_BRANCHES, *(["nuPt"] if "nuPt" in genjets.fields else [])]
    gen = _flat(genjets, gen_fields)
    jet_fields = tuple(jets.fields)
    flat = _flat(jets, jet_fields)
    match = _match(jets, genjets)
    reconstructed = np.zeros(len(gen["pt"]), bool)
    reconstructed[match.gen_index[match.first]] = True
    by_gen = np.flatnonzero(match.first)[np.argsort(match.gen_index[match.first])]
    others = ~match.first
    return JetTrainingSet(
        gen=gen,
        reconstructed=reconstructed,
        matched={f: v[by_gen] for f, v in flat.items()},
        unmatched={f: v[others] for f, v in flat.items() if f != "genJetIdx"},
        unmatched_counts=np.bincount(match.event[others], minlength=len(jets)),
        jet_fields=jet_fields,
        jet_dtypes=tuple(str(flat[f].dtype) for f in jet_fields),
    )


def simulate_training_events(
    simulation: SimulationSettings, sample: Sample, n_events: int, seed: int
) -> dict[str, Any]:
    """``n_events`` filter-passing events of ``sample`` through the full detector, without
    the reco skim, on their own random stream (independent of the sample's chunks)."""
    rng = np.random.default_rng(
        np.random.SeedSequence(
            [seed, zlib.crc32(sample.name.encode()), zlib.crc32(TRAINING_STREAM)]
        )
    )
    model = model_settings(sample.spec["generate"])
    gen = generate_filtered(rng, model, simulation.filter, n_accepted=n_events)
    return reconstruct(rng, gen.truth, simulation.detector)


# --------------------------------------------------------------------------- encoding


def conditions(pt: np.ndarray, eta: np.ndarray, flavour: np.ndarray) -> np.ndarray:
    """The flow's conditions (:data:`CONDITIONS`) of GenJets, float32 (n, 6)."""
    flavour = np.abs(np.asarray(flavour))
    one_hot = [flavour == 5, flavour == 4, (flavour != 5) & (flavour != 4)]
    columns = [np.log(np.maximum(pt, 1e-3)), eta, np.abs(eta), *one_hot]
    return np.stack([np.asarray(c, np.float64) for c in columns], axis=1).astype(np.float32)


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Angles into [-π, π)."""
    return np.mod(phi + np.pi, 2.0 * np.pi) - np.pi


@dataclass(frozen=True)
class Acceptance:
    """What the training jets say of the reconstruction's edges: the storage threshold, the
    |η| acceptance and where the b-tag score stops (the tracker)."""

    pt_threshold_gev: float
    abs_eta_max: float
    tracker_abs_eta_max: float

    @classmethod
    def of(cls, pt: np.ndarray, eta: np.ndarray, score: np.ndarray) -> Acceptance:
        """Measured on reco jets: smallest p_T (less a margin), largest |η|, smallest |η| of
        a jet without score (infinite where every jet has one)."""
        untagged = np.abs(eta[score <= 0.0])
        return cls(
            pt_threshold_gev=float(np.min(pt)) - PT_THRESHOLD_MARGIN_GEV,
            abs_eta_max=float(np.max(np.abs(eta))),
            tracker_abs_eta_max=float(np.min(untagged)) if untagged.size else math.inf,
        )


def encode_targets(
    gen: Mapping[str, np.ndarray],
    reco: Mapping[str, np.ndarray],
    acceptance: Acceptance,
    rng: np.random.Generator,
) -> np.ndarray:
    """The flow's coordinates (:data:`TARGETS`) of matched pairs, float32 (n, 4); jets
    outside the tracker get a standard-normal b-tag placeholder drawn from ``rng``."""
    pt, eta = np.asarray(reco["pt"], np.float64), np.asarray(reco["eta"], np.float64)
    score = np.clip(np.asarray(reco["btagDeepFlavB"], np.float64), SCORE_CLIP, 1.0 - SCORE_CLIP)
    logit = np.log(score / (1.0 - score))
    no_score = np.abs(eta) >= acceptance.tracker_abs_eta_max
    logit[no_score] = rng.standard_normal(int(no_score.sum()))
    columns = [
        np.log((pt - acceptance.pt_threshold_gev) / gen["pt"]),
        eta - gen["eta"],
        wrap_phi(np.asarray(reco["phi"], np.float64) - gen["phi"]),
        logit,
    ]
    return np.stack(columns, axis=1).astype(np.float32)


def decode_targets(
    x: np.ndarray, gen: Mapping[str, np.ndarray], acceptance: Acceptance
) -> dict[str, np.ndarray]:
    """Reco p_T, η, φ, mass and b-tag score from the flow's coordinates (inverse of
    :func:`encode_targets`; the mass scales with the p_T response)."""
    x = np.asarray(x, np.float64)
    pt = acceptance.pt_threshold_gev + gen["pt"] * np.exp(x[:, 0])
    eta = gen["eta"] + x[:, 1]
    score = 1.0 / (1.0 + np.exp(-x[:, 3]))
    return {
        "pt": pt,
        "eta": eta,
        "phi": wrap_phi(gen["phi"] + x[:, 2]),
        "mass": gen["mass"] * pt / gen["pt"],
        "btagDeepFlavB": np.where(np.abs(eta) < acceptance.tracker_abs_eta_max, score, 0.0),
    }


def _classes(flavour: np.ndarray, nu_pt: np.ndarray | None) -> np.ndarray:
    """Aux-table class per GenJet: 2 × (0 b, 1 c, 2 light) + semileptonic."""
    flavour = np.abs(flavour)
    slot = np.where(flavour == 5, 0, np.where(flavour == 4, 1, 2))
    semileptonic = np.zeros(len(flavour), int) if nu_pt is None else (nu_pt > 0).astype(int)
    return 2 * slot + semileptonic


def _cdf(counts: np.ndarray) -> np.ndarray:
    total = counts.sum(axis=-1, keepdims=True)
    return np.cumsum(counts, axis=-1) / np.maximum(total, 1)


def _draw(rng: np.random.Generator, cdf: np.ndarray) -> np.ndarray:
    """One index per row of ``cdf`` (rows: cumulative probabilities)."""
    u = rng.random((cdf.shape[0], 1))
    return np.minimum((u >= cdf).sum(axis=1), cdf.shape[1] - 1)


@dataclass(frozen=True)
class Tables:
    """The frequency tables of the fast simulation (see the module docstring)."""

    aux_values: np.ndarray  # (K, n_aux) distinct aux-field tuples
    aux_cdf: np.ndarray  # (N_CLASSES, K)
    pool: np.ndarray  # (P, n_pool_fields) unmatched jets
    unmatched_cdf: np.ndarray  # (MAX_UNMATCHED + 1,)


def frequency_tables(data: JetTrainingSet, rng: np.random.Generator) -> Tables:
    """Aux-field frequencies per class, the unmatched-jet pool and multiplicity of ``data``.

    The :data:`MAX_AUX_VALUES` most frequent aux tuples are kept; a class without training
    jets takes the frequencies of all classes together.
    """
    aux = data.aux_fields
    matched = np.stack([data.matched[f] for f in aux], axis=1).astype(np.float64)
    matched = matched if aux else np.zeros((len(data.matched["pt"]), 0))
    values, inverse, counts = np.unique(matched, axis=0, return_inverse=True, return_counts=True)
    kept = np.argsort(-counts, kind="stable")[:MAX_AUX_VALUES]
    rank = np.full(len(values), -1)
    rank[kept] = np.arange(len(kept))
    tuple_rank = rank[inverse.reshape(-1)]
    gen = {f: v[data.reconstructed] for f, v in data.gen.items()}
    cls = _classes(gen["hadronFlavour"], gen.get("nuPt"))
    ok = tuple_rank >= 0
    counts_per_class = np.zeros((N_CLASSES, len(kept)))
    np.add.at(counts_per_class, (cls[ok], tuple_rank[ok]), 1.0)
    empty = counts_per_class.sum(axis=1) == 0
    counts_per_class[empty] = counts_per_class.sum(axis=0)
    pool_fields = [f for f in data.jet_fields if f != "genJetIdx"]
    n_unmatched = len(data.unmatched["pt"])
    chosen = rng.choice(n_unmatched, min(POOL_SIZE, n_unmatched), replace=False)
    pool = np.stack([data.unmatched[f][chosen] for f in pool_fields], axis=1).astype(np.float64)
    multiplicity = np.bincount(np.minimum(data.unmatched_counts, MAX_UNMATCHED), minlength=1)
    multiplicity = np.pad(multiplicity, (0, MAX_UNMATCHED + 1 - len(multiplicity)))
    return Tables(values[kept], _cdf(counts_per_class), pool, _cdf(multiplicity))


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class JetFastSim:
    """A trained jet fast simulation: its Keras network
    (:class:`~thetaflow.simulation.flow.FlowSimulator`: flow, efficiency, tables) and the
    meaning of its tables, read from the network's metadata."""

    network: Any
    acceptance: Acceptance
    jet_fields: tuple[str, ...]
    jet_dtypes: tuple[str, ...]
    aux_fields: tuple[str, ...]
    tables: Tables

    @property
    def pool_fields(self) -> tuple[str, ...]:
        """The columns of the unmatched-jet pool."""
        return tuple(f for f in self.jet_fields if f != "genJetIdx")

    @classmethod
    def of(cls, network: Any) -> JetFastSim:
        """The view of ``network``'s metadata and tables."""
        meta = network.metadata
        tracker = meta["acceptance"]["tracker_abs_eta_max"]
        return cls(
            network=network,
            acceptance=Acceptance(
                pt_threshold_gev=float(meta["acceptance"]["pt_threshold_gev"]),
                abs_eta_max=float(meta["acceptance"]["abs_eta_max"]),
                tracker_abs_eta_max=math.inf if tracker is None else float(tracker),
            ),
            jet_fields=tuple(meta["jet_fields"]),
            jet_dtypes=tuple(meta["jet_dtypes"]),
            aux_fields=tuple(meta["aux_fields"]),
            tables=Tables(**{name: network.table(name) for name in TABLES}),
        )

    def save(self, path: str) -> None:
        """Write the network to ``path`` (``.keras``), atomically."""
        with atomic_path(path) as tmp:
            self.network.save(tmp)


TABLES = ("aux_values", "aux_cdf", "pool", "unmatched_cdf")


def load_model(path: str) -> JetFastSim:
    """Read a fast simulation written by :meth:`JetFastSim.save` (Keras safe mode)."""
    import keras

    from thetaflow.simulation.flow import FlowSimulator

    network = keras.saving.load_model(path, compile=False, safe_mode=True)
    if not isinstance(network, FlowSimulator):
        raise FastSimInputError(f"{path}: not a fast simulation (a {type(network).__name__})")
    return JetFastSim.of(network)


def _standardisation(values: np.ndarray) -> tuple[list[float], list[float]]:
    """Mean and scale per column; a constant column keeps scale 1."""
    std = values.std(axis=0)
    return values.mean(axis=0).tolist(), np.where(std > 1e-6, std, 1.0).tolist()


@dataclass(frozen=True)
class FastSimTraining:
    """A trained fast simulation and what its training did."""

    model: JetFastSim
    flow: FitSummary
    efficiency: FitSummary
    seconds: float
    n_genjets: int
    n_matched: int
    n_unmatched: int


def train_jet_fastsim(data: JetTrainingSet, settings: FastSimSettings) -> FastSimTraining:
    """Fit the response flow and the efficiency network of ``data`` and build the tables;
    every random step (weights, splits, shuffles, placeholders, pool) from ``settings.seed``."""
    import keras

    from thetaflow.simulation.flow import FlowSimulator, fit_model, negative_log_likelihood

    start = time.perf_counter()
    keras.utils.set_random_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    if not data.reconstructed.any():
        raise FastSimInputError("the training events have no reconstructed jet with a GenJet")
    c_all = conditions(data.gen["pt"], data.gen["eta"], data.gen["hadronFlavour"])
    gen = {f: v[data.reconstructed] for f, v in data.gen.items()}
    acceptance = Acceptance.of(
        *(
            np.concatenate([data.matched[f], data.unmatched[f]])
            for f in ("pt", "eta", "btagDeepFlavB")
        )
    )
    x = encode_targets(gen, data.matched, acceptance, rng)
    x_mean, x_scale = _standardisation(x)
    c_mean, c_scale = _standardisation(c_all)
    tables = frequency_tables(data, rng)
    tracker = acceptance.tracker_abs_eta_max
    network = FlowSimulator(
        flow={
            "x_mean": x_mean,
            "x_scale": x_scale,
            "c_mean": c_mean,
            "c_scale": c_scale,
            "coupling_layers": settings.coupling_layers,
            "hidden_units": list(settings.hidden_units),
            "bins": settings.spline_bins,
            "name": "flow",
        },
        efficiency_units=list(settings.hidden_units),
        table_shapes={name: list(getattr(tables, name).shape) for name in TABLES},
        metadata={
            "acceptance": {
                "pt_threshold_gev": acceptance.pt_threshold_gev,
                "abs_eta_max": acceptance.abs_eta_max,
                "tracker_abs_eta_max": None if math.isinf(tracker) else tracker,
            },
            "jet_fields": list(data.jet_fields),
            "jet_dtypes": list(data.jet_dtypes),
            "aux_fields": list(data.aux_fields),
            "conditions": list(CONDITIONS),
            "targets": list(TARGETS),
        },
        name="jet_fastsim",
    )
    network.set_tables(vars(tables))
    training = settings.training()
    c = c_all[data.reconstructed]
    zeros = np.zeros(len(x), np.float32)
    flow_fit = fit_model(network.flow, (x, c), zeros, training, negative_log_likelihood, rng)
    label = data.reconstructed.astype(np.float32)[:, None]
    # start from the mean efficiency (the output's bias at its logit): a short fit is then
    # calibrated on average and learns only the dependence on the conditions
    mean = float(np.clip(label.mean(), 1e-4, 1.0 - 1e-4))
    network.efficiency.layers[-1].bias.assign([math.log(mean / (1.0 - mean))])
    efficiency_fit = fit_model(
        network.efficiency, c_all, label, training, "binary_crossentropy", rng
    )
    seconds = time.perf_counter() - start
    log.info(
        "fast simulation trained in %.1f s: flow %d epochs (best %d, NLL %.4f), efficiency %d "
        "epochs (best %d, BCE %.4f); %d GenJets, %d matched, %d unmatched jets",
        seconds,
        flow_fit.epochs,
        flow_fit.best_epoch,
        flow_fit.best_valid_loss,
        efficiency_fit.epochs,
        efficiency_fit.best_epoch,
        efficiency_fit.best_valid_loss,
        len(c_all),
        len(x),
        len(data.unmatched["pt"]),
    )
    return FastSimTraining(
        JetFastSim.of(network),
        flow_fit,
        efficiency_fit,
        seconds,
        len(c_all),
        len(x),
        len(data.unmatched["pt"]),
    )


# --------------------------------------------------------------------------- generation


def _predict(function: Any, *arrays: np.ndarray) -> np.ndarray:
    """Apply a Keras callable in batches of :data:`GENERATION_BATCH` rows (numpy out)."""
    import keras

    out = [
        keras.ops.convert_to_numpy(function(*(a[lo : lo + GENERATION_BATCH] for a in arrays)))
        for lo in range(0, len(arrays[0]), GENERATION_BATCH)
    ]
    return np.concatenate(out) if out else np.zeros((0, len(TARGETS)), np.float32)


def sample_response(
    model: JetFastSim, gen: Mapping[str, np.ndarray], rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Draw a reco jet for each GenJet in ``gen`` (flat arrays); return the reco fields and
    whether the draw lies in the |η| acceptance (draws outside are redrawn up to
    :data:`ACCEPTANCE_ROUNDS` times)."""
    c = conditions(gen["pt"], gen["eta"], gen["hadronFlavour"])
    x = np.zeros((len(c), len(TARGETS)), np.float32)
    todo = np.arange(len(c))
    for _ in range(ACCEPTANCE_ROUNDS):
        if not todo.size:
            break
        z = rng.standard_normal((len(todo), len(TARGETS))).astype(np.float32)
        x[todo] = _predict(model.network.flow.sampler(), z, c[todo])
        eta = gen["eta"][todo] + x[todo, 1]
        todo = todo[np.abs(eta) >= model.acceptance.abs_eta_max]
    accepted = np.ones(len(c), bool)
    accepted[todo] = False
    return decode_targets(x, gen, model.acceptance), accepted


def _padded(collection: ak.Array, field: str, width: int) -> np.ndarray:
    padded = ak.fill_none(ak.pad_none(collection[field], width, clip=True), 0)
    return ak.to_numpy(padded).astype(np.float64)


def _jet_momentum_change(jets: ak.Array, genjets: ak.Array) -> tuple[np.ndarray, np.ndarray]:
    """Per event Σ over jets of (reco − matched GenJet) p_x, p_y (GenJet 0 if unmatched)."""
    match = _match(jets, genjets)
    pt = ak.to_numpy(ak.flatten(jets.pt)).astype(np.float64)
    phi = ak.to_numpy(ak.flatten(jets.phi)).astype(np.float64)
    gen_pt = np.append(ak.to_numpy(ak.flatten(genjets.pt)).astype(np.float64), 0.0)
    gen_phi = np.append(ak.to_numpy(ak.flatten(genjets.phi)).astype(np.float64), 0.0)
    g = match.gen_index  # -1 (unmatched) reads the appended zero
    dpx = pt * np.cos(phi) - gen_pt[g] * np.cos(gen_phi[g])
    dpy = pt * np.sin(phi) - gen_pt[g] * np.sin(gen_phi[g])
    n = len(jets)
    return (
        np.bincount(match.event, weights=dpx, minlength=n),
        np.bincount(match.event, weights=dpy, minlength=n),
    )


def _hard_jets(
    model: JetFastSim, genjets: ak.Array, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Fast jets of the GenJets in (event, GenJet slot) arrays, and which slots hold one."""
    n = len(genjets)
    n_gen = ak.to_numpy(ak.num(genjets))
    width = int(n_gen.max(initial=0))
    present = np.arange(width)[None, :] < n_gen[:, None]
    names = [f for f in (*GENJET_BRANCHES, "partonFlavour", "nuPt") if f in genjets.fields]
    gen = {f: _padded(genjets, f, width)[present] for f in names}
    efficiency = _predict(model.network, conditions(gen["pt"], gen["eta"], gen["hadronFlavour"]))
    reconstructed = np.flatnonzero(rng.uniform(size=len(efficiency)) < efficiency)
    reco, accepted = sample_response(model, {f: v[reconstructed] for f, v in gen.items()}, rng)
    keep = reconstructed[accepted]
    classes = _classes(gen["hadronFlavour"][keep], gen["nuPt"][keep] if "nuPt" in gen else None)
    aux = model.tables.aux_values[_draw(rng, model.tables.aux_cdf[classes])]
    valid = np.zeros((n, width), bool)
    rows, slots = np.nonzero(present)
    valid[rows[keep], slots[keep]] = True
    columns: dict[str, np.ndarray] = {}
    for f in model.jet_fields:
        values = np.zeros((n, width))
        if f in reco:
            values[valid] = reco[f][accepted]
        elif f in gen and f in GENJET_COPIED:
            values[valid] = gen[f][keep]
        elif f == "genJetIdx":
            values[:] = np.arange(width)[None, :]
        elif f in model.aux_fields:
            values[valid] = aux[:, model.aux_fields.index(f)]
        columns[f] = values
    return columns, valid


def _unmatched_jets(
    model: JetFastSim, n: int, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Jets without a GenJet: a drawn multiplicity per event, resampled from the pool."""
    cdf = model.tables.unmatched_cdf
    pool = model.tables.pool
    counts = _draw(rng, np.broadcast_to(cdf, (n, len(cdf)))) if len(pool) else np.zeros(n, int)
    width = int(counts.max(initial=0))
    valid = np.arange(width)[None, :] < counts[:, None]
    drawn = pool[rng.integers(0, len(pool), int(valid.sum()))] if width else pool[:0]
    columns: dict[str, np.ndarray] = {}
    for f in model.jet_fields:
        values = np.full((n, width), -1.0 if f == "genJetIdx" else 0.0)
        if f != "genJetIdx":
            values[valid] = drawn[:, model.pool_fields.index(f)]
        columns[f] = values
    return columns, valid


def fastsim_jets(
    model: JetFastSim, collections: Mapping[str, Any], rng: np.random.Generator
) -> dict[str, Any]:
    """Replace ``collections["Jet"]`` by fast-simulated jets of its ``GenJet`` (and the MET by
    the MET with the jets' change propagated); everything else is kept.

    Per GenJet: reconstructed with the learned efficiency, then p_T, η, φ, mass and b-tag from
    the flow, flavours from the GenJet, ``genJetIdx`` its index, the other fields from the
    tables. Per event: a drawn number of jets from the unmatched pool. Jets are sorted by
    p_T and typed like the training events' ``Jet``.
    """
    _require(collections, "GenJet", GENJET_BRANCHES, "the events to fast-simulate")
    genjets = collections["GenJet"]
    hard, hard_valid = _hard_jets(model, genjets, rng)
    extra, extra_valid = _unmatched_jets(model, len(genjets), rng)
    typed = {
        f: np.concatenate([hard[f], extra[f]], axis=1).astype(dtype)
        for f, dtype in zip(model.jet_fields, model.jet_dtypes, strict=True)
    }
    jets = to_jagged(typed, np.concatenate([hard_valid, extra_valid], axis=1), typed["pt"])
    out = {**collections, "Jet": jets}
    if "MET_pt" in collections and "Jet" in collections:
        met_pt = np.asarray(collections["MET_pt"], np.float64)
        met_phi = np.asarray(collections["MET_phi"], np.float64)
        full_x, full_y = _jet_momentum_change(collections["Jet"], genjets)
        fast_x, fast_y = _jet_momentum_change(jets, genjets)
        px = met_pt * np.cos(met_phi) + full_x - fast_x
        py = met_pt * np.sin(met_phi) + full_y - fast_y
        out["MET_pt"] = np.hypot(px, py).astype(np.asarray(collections["MET_pt"]).dtype)
        out["MET_phi"] = np.arctan2(py, px).astype(np.asarray(collections["MET_phi"]).dtype)
    return out


def simulate_fastsim_chunk(
    simulation: SimulationSettings,
    sample: Sample,
    model: Any,
    chunk: int,
    path: str,
) -> dict:
    """One chunk of ``sample`` with fast-simulated jets, written like the full chunk (same
    truth and leptons as the full chunk of the same sample name and seed)."""
    if sample.is_data:
        raise ConfigError(f"sample {sample.name!r}: a fastsim variant of data is not defined")
    gen = sample.spec["generate"]
    return simulate_mc_chunk(
        simulation,
        model_settings(gen),
        sample.name,
        chunk,
        gen["n_events"],
        path,
        response=lambda rng, reco: fastsim_jets(model, reco, rng),
    )


def train_from_config(config: Mapping[str, Any], output: str) -> FastSimTraining:
    """Workflow entry point: simulate the ``fastsim`` training events, train, save ``output``."""
    settings = FastSimSettings.from_config(config["fastsim"])
    samples = load_samples(config)
    simulation = SimulationSettings.from_config(
        {**config["simulation"], "seed": config["seeds"]["simulation"]}
    )
    events = simulate_training_events(
        simulation, samples[settings.sample], settings.training_events, settings.seed
    )
    training = train_jet_fastsim(jet_training_set(events, settings.sample), settings)
    training.model.save(output)
    return training


# --------------------------------------------------------------------------- validation


def jet_table(collections: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Per reco jet: its p_T, η, φ, mass, b-tag and its GenJet's p_T, η and flavour (GenJet
    columns 0 and flavour -1 for jets without one): the table the jet-level validation
    compares."""
    jets, genjets = collections["Jet"], collections["GenJet"]
    match = _match(jets, genjets)
    matched = match.gen_index >= 0
    g = np.where(matched, match.gen_index, 0)
    table = {f: ak.to_numpy(ak.flatten(jets[f])).astype(np.float64) for f in FLOW_FIELDS}
    for f in ("pt", "eta", "hadronFlavour"):
        values = ak.to_numpy(ak.flatten(genjets[f])).astype(np.float64)
        fill = -1.0 if f == "hadronFlavour" else 0.0
        table[f"gen_{f}"] = np.where(matched, values[g] if values.size else fill, fill)
    table["event"] = match.event.astype(np.float64)
    return table


@dataclass(frozen=True)
class Distance:
    """Wasserstein-1 distance of one variable, in its units and over the reference's std."""

    wasserstein: float
    relative: float


@dataclass(frozen=True)
class TwoSampleTest:
    """Classifier two-sample test: held-out ROC AUC of a classifier telling the samples
    apart, and the AUC's standard deviation if they were the same distribution."""

    auc: float
    null_std: float
    n_train: int
    n_test: int


@dataclass(frozen=True)
class FastSimValidation:
    """Fast against full: per-variable distances and the two-sample test."""

    distances: dict[str, Distance]
    c2st: TwoSampleTest


def wasserstein_distances(
    reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray]
) -> dict[str, Distance]:
    """W1 of every variable the two tables share (``scipy.stats.wasserstein_distance``)."""
    from scipy.stats import wasserstein_distance

    out = {}
    for name in reference:
        if name not in candidate:
            continue
        a, b = np.asarray(reference[name], float), np.asarray(candidate[name], float)
        w = float(wasserstein_distance(a, b))
        std = float(a.std())
        out[name] = Distance(w, w / std if std > 0 else 0.0)
    return out


def _test_rows(groups: np.ndarray, test_fraction: float, rng: np.random.Generator) -> np.ndarray:
    unique = np.unique(groups)
    test = rng.permutation(unique)[: int(round(test_fraction * len(unique)))]
    return np.isin(groups, test)


def classifier_two_sample_test(
    reference: np.ndarray,
    candidate: np.ndarray,
    seed: int,
    *,
    reference_groups: np.ndarray | None = None,
    candidate_groups: np.ndarray | None = None,
    test_fraction: float = 0.5,
    threads: int = 1,
) -> TwoSampleTest:
    """Train a gradient-boosted classifier (sklearn's histogram GBDT) to tell ``candidate``
    rows from ``reference`` rows and return its ROC AUC on held-out rows.

    0.5 means indistinguishable. Rows sharing a group (e.g. the full and fast versions of
    one truth event) go to the same side of the split, so the classifier cannot learn an
    event on one side and meet its twin on the other. The null standard deviation is that of
    the Mann-Whitney statistic, √((n₀ + n₁ + 1) / (12 n₀ n₁)). ``threads`` caps the GBDT's
    OpenMP threads: on a loaded machine spinning threads cost it up to 30x its single-thread
    time.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    a, b = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    groups_a = np.arange(len(a)) if reference_groups is None else np.asarray(reference_groups)
    groups_b = np.arange(len(a), len(a) + len(b)) if candidate_groups is None else candidate_groups
    X = np.concatenate([a, b])
    y = np.concatenate([np.zeros(len(a)), np.ones(len(b))])
    test = _test_rows(np.concatenate([groups_a, groups_b]), test_fraction, rng)
    classifier = HistGradientBoostingClassifier(
        max_iter=200, learning_rate=0.1, early_stopping=True, random_state=seed
    )
    with threadpool_limits(limits=threads, user_api="openmp"):
        classifier.fit(X[~test], y[~test])
        score = classifier.predict_proba(X[test])[:, 1]
    auc = float(roc_auc_score(y[test], score))
    n0, n1 = int((y[test] == 0).sum()), int((y[test] == 1).sum())
    null_std = math.sqrt((n0 + n1 + 1) / (12.0 * max(n0, 1) * max(n1, 1)))
    return TwoSampleTest(auc, null_std, int((~test).sum()), int(test.sum()))


def validate(
    reference: Mapping[str, np.ndarray],
    candidate: Mapping[str, np.ndarray],
    seed: int,
    *,
    group: str | None = None,
) -> FastSimValidation:
    """Wasserstein distances of every shared column and a two-sample test on all of them
    (``group``: a column that pairs rows, kept together in the split and not a feature)."""
    names = [n for n in reference if n in candidate and n != group]
    a = np.stack([np.asarray(reference[n], float) for n in names], axis=1)
    b = np.stack([np.asarray(candidate[n], float) for n in names], axis=1)
    c2st = classifier_two_sample_test(
        a,
        b,
        seed,
        reference_groups=None if group is None else np.asarray(reference[group]),
        candidate_groups=None if group is None else np.asarray(candidate[group]),
    )
    distances = wasserstein_distances(
        {n: reference[n] for n in names}, {n: candidate[n] for n in names}
    )
    return FastSimValidation(distances, c2st)
