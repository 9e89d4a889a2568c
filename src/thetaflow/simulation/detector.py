"""Detector response of the embedded simulation: truth slots → NanoAOD-like collections.

What it models, per object (all parameters from ``simulation.detector`` in config):

* leptons: η acceptance, reconstruction efficiency, identification efficiency per working
  point (muon ``tightId``; electron ``cutBased`` 0–4, nested: the efficiency of
  ``cutBased >= k`` is the configured one of working point k, whichever the selection uses),
  isolation, a p_T resolution σ/p_T = c ⊕ s/√p_T ⊕ k·p_T;
* jets: semileptonic b/c decays whose neutrino escapes (it is missing from the GenJet and
  the reco jet, and adds to MET), energy resolution a/√E ⊕ b ⊕ N/E, angular smearing,
  pile-up jets, a flavour-dependent b-tag discriminant (logit-normal per hadron flavour),
  the soft lepton that semileptonic decays leave in the jet;
* MET: the neutrinos plus the mismeasurement of every reconstructed object plus Gaussian
  unclustered energy.

The output collections are awkward record arrays named as in NanoAOD (``Muon``, ``Electron``,
``Jet``, ``GenJet``, ``GenDressedLepton``) plus flat ``MET_*``/``GenMET_*`` arrays and the
hard process' heavy-flavour counts ``LHE_Nb``/``LHE_Nc`` (uint8, as in NanoAOD).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import awkward as ak
import numpy as np
from numpy.random import Generator

from thetaflow.core.errors import ConfigError
from thetaflow.simulation.generator import TruthEvents

GENJET_PT_MIN_GEV = 10.0
MAX_PILEUP_JETS = 8
#: NanoAOD ``Electron_cutBased`` working points, loosest first: an electron's ``cutBased`` is
#: the number of them it passes (0 fail, 1 veto, 2 loose, 3 medium, 4 tight)
ELECTRON_WORKING_POINTS = ("veto", "loose", "medium", "tight")


@dataclass(frozen=True)
class LeptonResponse:
    """Acceptance, efficiencies and resolution of one lepton flavour.

    ``id_efficiencies`` are the efficiencies of nested identification working points,
    loosest first (muon: ``tightId`` only; electron: :data:`ELECTRON_WORKING_POINTS`).
    """

    efficiency: float
    id_efficiencies: tuple[float, ...]
    abs_eta_max: float
    pt_min_gev: float
    resolution_constant: float
    resolution_stochastic: float
    resolution_linear_per_tev: float


@dataclass(frozen=True)
class JetResponse:
    """Jet energy resolution a/√E ⊕ b ⊕ N/E, angular smearing and storage thresholds."""

    stochastic: float
    constant: float
    noise_gev: float
    angular_resolution: float
    abs_eta_max: float
    pt_min_gev: float


@dataclass(frozen=True)
class FlavourTag:
    """Logit-normal b-tag discriminant of one hadron flavour: logit(score) ~ N(mean, sigma)."""

    logit_mean: float
    logit_sigma: float


@dataclass(frozen=True)
class BTagResponse:
    """Discriminant per flavour; outside the tracker (|η| > abs_eta_max) the score is 0."""

    b: FlavourTag
    c: FlavourTag
    light: FlavourTag
    abs_eta_max: float

    def for_flavour(self, hadron_flavour: int) -> FlavourTag:
        """The discriminant model of hadron flavour 5, 4 or 0."""
        return {5: self.b, 4: self.c}.get(hadron_flavour, self.light)


@dataclass(frozen=True)
class Semileptonic:
    """Semileptonic heavy-flavour decays: probability, lost neutrino fraction, soft lepton."""

    b_fraction: float
    c_fraction: float
    neutrino_fraction_mean: float
    soft_lepton_efficiency: float


@dataclass(frozen=True)
class Pileup:
    """Pile-up jets: Poisson multiplicity, exponential p_T above the storage threshold."""

    mean_jets: float
    pt_scale_gev: float
    id_efficiency: float


@dataclass(frozen=True)
class Detector:
    """All detector parameters (``simulation.detector`` in config)."""

    muon: LeptonResponse
    electron: LeptonResponse
    jet: JetResponse
    btag: BTagResponse
    semileptonic: Semileptonic
    pileup: Pileup
    met_unclustered_resolution_gev: float

    @classmethod
    def from_config(cls, cfg: dict) -> Detector:
        """Build from the validated (defaults filled) ``simulation.detector`` mapping."""
        btag = cfg["btag"]
        electron_id = cfg["electron"]["id_efficiency"]
        ladder = tuple(float(electron_id[wp]) for wp in ELECTRON_WORKING_POINTS)
        if any(tighter > looser for looser, tighter in pairwise(ladder)):
            raise ConfigError(
                "config key 'simulation.detector.electron.id_efficiency': the working points "
                f"are nested, so {' >= '.join(ELECTRON_WORKING_POINTS)} is required, got "
                f"{dict(zip(ELECTRON_WORKING_POINTS, ladder, strict=True))}"
            )
        return cls(
            muon=_lepton_response(cfg["muon"], (float(cfg["muon"]["id_efficiency"]),)),
            electron=_lepton_response(cfg["electron"], ladder),
            jet=JetResponse(**cfg["jet"]),
            btag=BTagResponse(
                b=FlavourTag(**btag["b"]),
                c=FlavourTag(**btag["c"]),
                light=FlavourTag(**btag["light"]),
                abs_eta_max=btag["abs_eta_max"],
            ),
            semileptonic=Semileptonic(**cfg["semileptonic"]),
            pileup=Pileup(**cfg["pileup"]),
            met_unclustered_resolution_gev=cfg["met"]["unclustered_resolution_gev"],
        )


def _lepton_response(cfg: dict, id_efficiencies: tuple[float, ...]) -> LeptonResponse:
    """One lepton flavour's response from its config block and its ID working points."""
    fields = {k: v for k, v in cfg.items() if k != "id_efficiency"}
    return LeptonResponse(id_efficiencies=id_efficiencies, **fields)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, used to map the logit-normal b-tag draw into (0, 1)."""
    return 1.0 / (1.0 + np.exp(-x))


def to_jagged(fields: dict[str, np.ndarray], valid: np.ndarray, key: np.ndarray) -> ak.Array:
    """Turn fixed (n, k) slot arrays into a jagged record array sorted by ``key`` descending.

    Invalid slots are dropped. Sorting puts invalid slots last so that the boolean-mask
    flattening keeps every event's entries contiguous and in order. Floating-point fields
    are stored as float32, as in NanoAOD.
    """
    n, k = valid.shape
    order = np.argsort(np.where(valid, -key, np.inf), axis=1, kind="stable")
    valid_sorted = np.take_along_axis(valid, order, axis=1)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(valid_sorted.sum(axis=1), out=offsets[1:])
    # flat positions of the kept slots, event by event in key order: one gather per field
    flat = (order + (np.arange(n, dtype=np.int64) * k)[:, None])[valid_sorted]
    records = ak.contents.RecordArray(
        [
            ak.contents.NumpyArray(_nanoaod_dtype(np.asarray(arr).reshape(-1)[flat]))
            for arr in fields.values()
        ],
        list(fields),
        length=flat.size,
    )
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(offsets), records))


def _nanoaod_dtype(values: np.ndarray) -> np.ndarray:
    """NanoAOD stores floating-point quantities as float32."""
    return values.astype(np.float32) if values.dtype.kind == "f" else values


def _stack(values: list) -> np.ndarray:
    return np.stack([np.asarray(v, dtype=float) for v in values], axis=1)


def _smear_leptons(
    rng: Generator, truth: TruthEvents, det: Detector
) -> tuple[dict[str, ak.Array], np.ndarray, np.ndarray]:
    """Reconstruct the truth leptons; return collections and the (px, py) mismeasurement."""
    pt = _stack([p.pt for p in truth.leptons])
    eta = _stack([p.eta for p in truth.leptons])
    phi = _stack([p.phi for p in truth.leptons])
    mass = _stack([p.mass for p in truth.leptons])
    pdg = truth.lepton_pdg
    n, k = pt.shape
    collections: dict[str, ak.Array] = {
        "GenDressedLepton": to_jagged(
            {"pt": pt, "eta": eta, "phi": phi, "mass": mass, "pdgId": pdg.astype(np.int32)},
            np.ones((n, k), bool),
            pt,
        )
    }
    dpx, dpy = np.zeros(n), np.zeros(n)
    for name, pdg_id, resp in (("Muon", 13, det.muon), ("Electron", 11, det.electron)):
        sigma = np.sqrt(
            resp.resolution_constant**2
            + resp.resolution_stochastic**2 / np.maximum(pt, 1e-3)
            + (resp.resolution_linear_per_tev * pt / 1000.0) ** 2
        )
        reco_pt = pt * np.maximum(1.0 + sigma * rng.normal(size=(n, k)), 0.05)
        valid = (
            (np.abs(pdg) == pdg_id)
            & (np.abs(eta) < resp.abs_eta_max)
            & (rng.uniform(size=(n, k)) < resp.efficiency)
            & (reco_pt > resp.pt_min_gev)
        )
        # one uniform per lepton against the nested working points: the number passed
        u = rng.uniform(size=(n, k))
        id_level = (u[..., None] < np.asarray(resp.id_efficiencies)).sum(axis=-1)
        fields = {
            "pt": reco_pt,
            "eta": eta,
            "phi": phi,
            "mass": mass,
            "charge": -np.sign(pdg).astype(np.int32),
            "pdgId": pdg.astype(np.int32),
        }
        if name == "Muon":
            fields["tightId"] = id_level >= 1
            fields["pfRelIso04_all"] = rng.exponential(0.03, (n, k))
        else:
            fields["cutBased"] = id_level.astype(np.int32)
            fields["pfRelIso03_all"] = rng.exponential(0.03, (n, k))
        collections[name] = to_jagged(fields, valid, reco_pt)
        dpt = np.where(valid, reco_pt - pt, 0.0)
        dpx += (dpt * np.cos(phi)).sum(axis=1)
        dpy += (dpt * np.sin(phi)).sum(axis=1)
    return collections, dpx, dpy


def _btag_scores(
    rng: Generator, flavour: np.ndarray, eta: np.ndarray, btag: BTagResponse
) -> np.ndarray:
    """Draw the b-tag discriminant of every jet from its flavour's logit-normal model."""
    models = [btag.for_flavour(hf) for hf in (5, 4, 0)]
    slot = np.where(flavour == 5, 0, np.where(flavour == 4, 1, 2))
    mean = np.array([m.logit_mean for m in models])[slot]
    sigma = np.array([m.logit_sigma for m in models])[slot]
    # loc + scale · N(0, 1), the very numbers rng.normal(mean, sigma) draws, without its
    # per-element broadcasting loop
    score = sigmoid(mean + sigma * rng.standard_normal(flavour.shape))
    return np.where(np.abs(eta) < btag.abs_eta_max, score, 0.0)


def _jet_resolution(energy: np.ndarray, jet: JetResponse) -> np.ndarray:
    e = np.maximum(energy, 1e-3)
    return np.sqrt((jet.stochastic / np.sqrt(e)) ** 2 + jet.constant**2 + (jet.noise_gev / e) ** 2)


def _jets(
    rng: Generator, truth: TruthEvents, det: Detector
) -> tuple[dict[str, ak.Array], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """GenJets and reco jets (hard partons + pile-up); return MET inputs too."""
    n = len(truth)
    flav = truth.hadron_flavour
    pt = _stack([p.pt for p in truth.partons])
    eta = _stack([p.eta for p in truth.partons])
    phi = _stack([p.phi for p in truth.partons])
    mass = _stack([p.mass for p in truth.partons])
    sl = det.semileptonic
    p_sl = np.where(flav == 5, sl.b_fraction, np.where(flav == 4, sl.c_fraction, 0.0))
    semilep = rng.uniform(size=pt.shape) < p_sl
    # neutrino momentum fraction ~ Beta(2, β) with mean neutrino_fraction_mean
    beta = 2.0 * (1.0 - sl.neutrino_fraction_mean) / sl.neutrino_fraction_mean
    nu_frac = np.where(semilep, rng.beta(2.0, beta, pt.shape), 0.0)
    vis_pt = pt * (1.0 - nu_frac)
    # jets acquire mass from hadronisation and out-of-cone spread: m ≈ (4-16 %) · p_T
    jet_mass = np.sqrt(mass**2 + (pt * rng.uniform(0.04, 0.16, pt.shape)) ** 2)
    vis_mass = jet_mass * (1.0 - nu_frac)
    nu_pt = pt * nu_frac
    gen_valid = (vis_pt > GENJET_PT_MIN_GEV) & (np.abs(eta) < 5.0)
    gen_fields = {
        "pt": vis_pt,
        "eta": eta,
        "phi": phi,
        "mass": vis_mass,
        "hadronFlavour": flav.astype(np.int32),
        "partonFlavour": truth.parton_flavour.astype(np.int32),
        "nuPt": nu_pt,
    }
    gen_order = np.argsort(np.where(gen_valid, -vis_pt, np.inf), axis=1, kind="stable")
    gen_rank = np.argsort(gen_order, axis=1)
    genjets = to_jagged(gen_fields, gen_valid, vis_pt)

    # reco response of the hard jets
    energy = vis_pt * np.cosh(eta)
    response = 1.0 + _jet_resolution(energy, det.jet) * rng.normal(size=pt.shape)
    reco_pt = vis_pt * np.maximum(response, 0.05)
    reco_eta = eta + rng.normal(0.0, det.jet.angular_resolution, pt.shape)
    reco_phi = phi + rng.normal(0.0, det.jet.angular_resolution, pt.shape)
    reco_phi = np.mod(reco_phi + np.pi, 2 * np.pi) - np.pi
    reco_mass = vis_mass * np.maximum(response, 0.05)
    soft_lepton = semilep & (rng.uniform(size=pt.shape) < sl.soft_lepton_efficiency)
    soft_muon = soft_lepton & (rng.uniform(size=pt.shape) < 0.5)

    # pile-up jets
    pu = det.pileup
    n_pu = np.minimum(rng.poisson(pu.mean_jets, n), MAX_PILEUP_JETS)
    pu_valid = np.arange(MAX_PILEUP_JETS)[None, :] < n_pu[:, None]
    pu_shape = (n, MAX_PILEUP_JETS)
    pu_pt = det.jet.pt_min_gev + rng.exponential(pu.pt_scale_gev, pu_shape)
    pu_eta = rng.uniform(-det.jet.abs_eta_max, det.jet.abs_eta_max, pu_shape)
    pu_phi = rng.uniform(-np.pi, np.pi, pu_shape)
    pu_mass = pu_pt * rng.uniform(0.05, 0.2, pu_shape)

    hard_valid = (reco_pt > det.jet.pt_min_gev) & (np.abs(reco_eta) < det.jet.abs_eta_max)
    all_flav = np.concatenate([flav, np.zeros(pu_shape, int)], axis=1)
    all_eta = np.concatenate([reco_eta, pu_eta], axis=1)
    zeros_pu = np.zeros(pu_shape, np.int32)
    fields = {
        "pt": np.concatenate([reco_pt, pu_pt], axis=1),
        "eta": all_eta,
        "phi": np.concatenate([reco_phi, pu_phi], axis=1),
        "mass": np.concatenate([reco_mass, pu_mass], axis=1),
        "btagDeepFlavB": _btag_scores(rng, all_flav, all_eta, det.btag),
        "hadronFlavour": all_flav.astype(np.int32),
        "partonFlavour": np.concatenate([truth.parton_flavour, zeros_pu], axis=1).astype(np.int32),
        "genJetIdx": np.concatenate(
            [np.where(gen_valid, gen_rank, -1), zeros_pu - 1], axis=1
        ).astype(np.int32),
        "jetId": np.full((n, 3 + MAX_PILEUP_JETS), 6, np.int32),
        "puId": np.concatenate(
            [
                np.full(pt.shape, 7, np.int32),
                np.where(rng.uniform(size=pu_shape) < pu.id_efficiency, 0, 7).astype(np.int32),
            ],
            axis=1,
        ),
        "nMuons": np.concatenate([soft_muon, zeros_pu], axis=1).astype(np.int32),
        "nElectrons": np.concatenate([soft_lepton & ~soft_muon, zeros_pu], axis=1).astype(np.int32),
    }
    valid = np.concatenate([hard_valid, pu_valid], axis=1)
    jets = to_jagged(fields, valid, fields["pt"])
    # MET: reco jets' mismeasurement w.r.t. their visible gen momentum, pile-up jets as
    # extra deposits, neutrinos from semileptonic decays
    dpt = np.where(hard_valid, reco_pt - vis_pt, 0.0)
    dpx = (dpt * np.cos(phi)).sum(axis=1) + np.where(pu_valid, pu_pt * np.cos(pu_phi), 0).sum(1)
    dpy = (dpt * np.sin(phi)).sum(axis=1) + np.where(pu_valid, pu_pt * np.sin(pu_phi), 0).sum(1)
    nu_px = (nu_pt * np.cos(phi)).sum(axis=1)
    nu_py = (nu_pt * np.sin(phi)).sum(axis=1)
    return {"Jet": jets, "GenJet": genjets}, dpx, dpy, nu_px, nu_py


def _gen_particles(truth: TruthEvents) -> ak.Array:
    """The hard-process leptons and partons as NanoAOD ``GenPart`` (status 23, no mothers).

    Real NanoAOD simulation always has ``GenPart``; coffea's NanoAODSchema also uses its
    presence to tell simulation from data (and only then links ``Jet.matched_gen``).
    """
    slots = list(truth.leptons) + list(truth.partons)
    n, k = len(truth), len(slots)
    pdg = np.concatenate([truth.lepton_pdg, truth.parton_flavour], axis=1).astype(np.int32)
    fields = {
        "pt": _stack([p.pt for p in slots]),
        "eta": _stack([np.clip(np.asarray(p.eta, dtype=float), -20, 20) for p in slots]),
        "phi": _stack([p.phi for p in slots]),
        "mass": _stack([p.mass for p in slots]),
        "pdgId": pdg,
        "status": np.full((n, k), 23, np.int32),
        "statusFlags": np.zeros((n, k), np.int32),
        "genPartIdxMother": np.full((n, k), -1, np.int32),
    }
    return to_jagged(fields, np.ones((n, k), bool), -np.arange(k)[None, :] * np.ones((n, 1)))


def reconstruct(rng: Generator, truth: TruthEvents, det: Detector) -> dict[str, ak.Array]:
    """Apply the detector to ``truth``; return NanoAOD-named collections and MET arrays."""
    n = len(truth)
    lepton_collections, lep_dpx, lep_dpy = _smear_leptons(rng, truth, det)
    jet_collections, jet_dpx, jet_dpy, sl_nu_px, sl_nu_py = _jets(rng, truth, det)
    gen_met_px = truth.neutrino_px + sl_nu_px
    gen_met_py = truth.neutrino_py + sl_nu_py
    sigma_u = det.met_unclustered_resolution_gev
    met_px = gen_met_px - lep_dpx - jet_dpx + rng.normal(0.0, sigma_u, n)
    met_py = gen_met_py - lep_dpy - jet_dpy + rng.normal(0.0, sigma_u, n)
    return {
        "GenPart": _gen_particles(truth),
        **lepton_collections,
        **jet_collections,
        "MET_pt": _nanoaod_dtype(np.hypot(met_px, met_py)),
        "MET_phi": _nanoaod_dtype(np.arctan2(met_py, met_px)),
        "GenMET_pt": _nanoaod_dtype(np.hypot(gen_met_px, gen_met_py)),
        "GenMET_phi": _nanoaod_dtype(np.arctan2(gen_met_py, gen_met_px)),
        "LHE_Nb": truth.lhe_nb.astype(np.uint8),
        "LHE_Nc": truth.lhe_nc.astype(np.uint8),
    }
