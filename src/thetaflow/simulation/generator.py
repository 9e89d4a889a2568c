"""Truth-level event generation for the embedded ZH(→ℓℓbb̄) analysis.

Each process model produces, per event, two charged leptons, three partons (the hard pair
and one initial-state-radiation parton), the neutrinos' transverse momentum and a generator
weight. Processes:

* ``zh``: qq̄ → Z H, Z → ℓℓ, H → bb̄ (m_H and Γ_H from config), central production;
* ``zz``: ZZ → ℓℓ bb̄, the diboson peak under the Higgs (t-channel-like, forward);
* ``zjets``: Z + two partons with a falling dijet-mass continuum and a light/c/b flavour mix;
* ``ttbar``: tt̄ → bℓν b̄ℓν (ℓ = e, μ), leptons that only accidentally look like a Z;
* ``xzy``: an "unknown" heavy resonance X → Z Y, Z → ℓℓ, Y → bb̄ (m_X, Γ_X, m_Y, Γ_Y from
  config) for the blind search: no supervised model is trained on it (sample kind ``bsm``).

The shapes are simple parametrisations, not matrix elements: they reproduce the features a
classifier learns (resonance peaks, boosts, angular correlations, flavour content, MET).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np
from numpy.random import Generator

from thetaflow.simulation.kinematics import (
    FourVectors,
    breit_wigner,
    from_pt_eta_phi_m,
    sample_cos_theta,
    system_momentum,
    two_body_decay,
)

Z_MASS_GEV = 91.1876
Z_WIDTH_GEV = 2.4952
W_MASS_GEV = 80.377
W_WIDTH_GEV = 2.085
B_MASS_GEV = 4.78
C_MASS_GEV = 1.67
LEPTON_MASS_GEV = {11: 0.000511, 13: 0.10566}
GLUON_PDG = 21
MODELS = ("zh", "zz", "zjets", "ttbar", "xzy")


@dataclass(frozen=True)
class ModelSettings:
    """Generator parameters of one process (the sample's ``generate:`` block)."""

    model: str
    negative_weight_fraction: float = 0.0
    system_mass_scale_gev: float = 150.0
    angular_a: float = 0.0
    rapidity_sigma: float = 1.2
    isr_pt_scale_gev: float = 20.0
    higgs_mass_gev: float = 125.0
    higgs_width_gev: float = 0.0041
    flavour_fractions: dict[str, float] = field(
        default_factory=lambda: {"light": 0.8, "c": 0.12, "b": 0.08}
    )
    generated_flavour_fractions: dict[str, float] | None = None
    dijet_mass_min_gev: float = 15.0
    dijet_mass_scale_gev: float = 40.0
    top_mass_gev: float = 172.5
    top_width_gev: float = 1.42
    resonance_mass_gev: float = 700.0
    resonance_width_gev: float = 20.0
    daughter_mass_gev: float = 200.0
    daughter_width_gev: float = 5.0


@dataclass
class TruthEvents:
    """Truth record of ``n`` events in fixed slots (columns), NumPy arrays of length n.

    ``lepton_pdg`` is signed like PDG ids (ℓ⁻ positive). ``hadron_flavour`` follows the
    NanoAOD convention (5 b, 4 c, 0 light); ``parton_flavour`` is the signed PDG id.
    """

    leptons: list[FourVectors]
    lepton_pdg: np.ndarray  # (n, 2)
    partons: list[FourVectors]
    hadron_flavour: np.ndarray  # (n, 3)
    parton_flavour: np.ndarray  # (n, 3)
    neutrino_px: np.ndarray
    neutrino_py: np.ndarray
    gen_weight: np.ndarray

    def __len__(self) -> int:
        return self.gen_weight.size

    def take(self, mask: np.ndarray) -> TruthEvents:
        """Return the events where ``mask`` is true (used by the generator filter)."""
        return TruthEvents(
            leptons=[cast(FourVectors, p[mask]) for p in self.leptons],
            lepton_pdg=self.lepton_pdg[mask],
            partons=[cast(FourVectors, p[mask]) for p in self.partons],
            hadron_flavour=self.hadron_flavour[mask],
            parton_flavour=self.parton_flavour[mask],
            neutrino_px=self.neutrino_px[mask],
            neutrino_py=self.neutrino_py[mask],
            gen_weight=self.gen_weight[mask],
        )


def generate(rng: Generator, settings: ModelSettings, n: int) -> TruthEvents:
    """Generate ``n`` truth events of the process described by ``settings``."""
    if settings.model == "ttbar":
        return _generate_ttbar(rng, settings, n)
    if settings.model in ("zh", "zz", "zjets", "xzy"):
        return _generate_z_plus_pair(rng, settings, n)
    raise ValueError(f"unknown generator model {settings.model!r}; expected one of {MODELS}")


def _gen_weights(rng: Generator, settings: ModelSettings, n: int) -> np.ndarray:
    """±1 weights: a fraction of negative weights, as NLO generators produce."""
    negative = rng.uniform(size=n) < settings.negative_weight_fraction
    return np.where(negative, -1.0, 1.0)


def _pair_flavours(
    rng: Generator, settings: ModelSettings, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hadron flavour (5, 4 or 0) of the hard parton pair and its importance weight.

    Z+jets may be generated with ``generated_flavour_fractions`` enriched in heavy flavour
    (most light-flavour events fail the b-tag selection); each event then carries the weight
    p_physical(f) / p_generated(f), so weighted distributions follow ``flavour_fractions``
    while the selected heavy-flavour events have many more simulated events.
    """
    if settings.model in ("zh", "zz", "xzy"):
        return np.full(n, 5), np.ones(n)
    flavours = ("b", "c", "light")
    physical = np.array([settings.flavour_fractions[f] for f in flavours], dtype=float)
    physical /= physical.sum()
    generated = physical
    if settings.generated_flavour_fractions is not None:
        generated = np.array(
            [settings.generated_flavour_fractions[f] for f in flavours], dtype=float
        )
        generated /= generated.sum()
    index = rng.choice(3, size=n, p=generated)
    return np.array([5, 4, 0])[index], (physical / generated)[index]


def _lepton_pdg(rng: Generator, n: int) -> np.ndarray:
    """Electron or muon, 50/50 (lepton universality)."""
    return np.where(rng.uniform(size=n) < 0.5, 11, 13)


def _hard_system(
    rng: Generator,
    settings: ModelSettings,
    m1: np.ndarray,
    m2: np.ndarray,
    system_mass: np.ndarray | None = None,
) -> tuple[FourVectors, FourVectors, FourVectors]:
    """Produce two particles of masses m1, m2 plus an ISR gluon; return them in the lab.

    The pair's invariant mass falls above threshold (``system_mass_scale_gev``) unless
    ``system_mass`` gives it (a resonance decaying to the two particles).
    """
    n = m1.size
    isr_pt = rng.exponential(settings.isr_pt_scale_gev, n)
    if system_mass is None:
        sqrt_s = m1 + m2 + rng.exponential(settings.system_mass_scale_gev, n)
    else:
        sqrt_s = np.maximum(system_mass, m1 + m2 + 1.0)
    system = system_momentum(rng, sqrt_s, isr_pt, settings.rapidity_sigma)
    cos_theta = sample_cos_theta(rng, n, settings.angular_a)
    a, b = two_body_decay(rng, system, m1, m2, cos_theta=cos_theta)
    isr = from_pt_eta_phi_m(
        np.maximum(isr_pt, 1e-3),
        rng.normal(0.0, 2.0, n),
        np.asarray(system.phi) + np.pi,
        np.zeros(n),
    )
    return a, b, isr


def _generate_z_plus_pair(rng: Generator, settings: ModelSettings, n: int) -> TruthEvents:
    """Z(→ℓℓ) + X(→qq̄) with X a Higgs, a Z, a QCD dijet continuum or (``xzy``) a heavy
    scalar Y, the Z+Y pair then coming from the decay of a heavy resonance."""
    z_mass = breit_wigner(rng, Z_MASS_GEV, Z_WIDTH_GEV, n, 40.0, 200.0)
    flavour, flavour_weight = _pair_flavours(rng, settings, n)
    q_mass = np.select([flavour == 5, flavour == 4], [B_MASS_GEV, C_MASS_GEV], 0.0)
    if settings.model == "zh":
        x_mass = breit_wigner(
            rng,
            settings.higgs_mass_gev,
            settings.higgs_width_gev,
            n,
            0.5 * settings.higgs_mass_gev,
            1.5 * settings.higgs_mass_gev,
        )
    elif settings.model == "zz":
        x_mass = breit_wigner(rng, Z_MASS_GEV, Z_WIDTH_GEV, n, 40.0, 200.0)
    elif settings.model == "xzy":
        x_mass = breit_wigner(
            rng,
            settings.daughter_mass_gev,
            settings.daughter_width_gev,
            n,
            0.5 * settings.daughter_mass_gev,
            1.5 * settings.daughter_mass_gev,
        )
    else:
        x_mass = settings.dijet_mass_min_gev + rng.gamma(
            2.0, settings.dijet_mass_scale_gev / 2.0, n
        )
    x_mass = np.maximum(x_mass, 2 * q_mass + 1.0)
    resonance = None
    if settings.model == "xzy":
        resonance = breit_wigner(
            rng,
            settings.resonance_mass_gev,
            settings.resonance_width_gev,
            n,
            0.5 * settings.resonance_mass_gev,
            1.5 * settings.resonance_mass_gev,
        )
    z, x, isr = _hard_system(rng, settings, z_mass, x_mass, resonance)
    pdg = _lepton_pdg(rng, n)
    l_mass = np.where(pdg == 11, LEPTON_MASS_GEV[11], LEPTON_MASS_GEV[13])
    lep_minus, lep_plus = two_body_decay(rng, z, l_mass, l_mass)
    q, qbar = two_body_decay(rng, x, q_mass, q_mass)
    parton_id = np.where(flavour == 0, GLUON_PDG, flavour)
    return TruthEvents(
        leptons=[lep_minus, lep_plus],
        lepton_pdg=np.stack([pdg, -pdg], axis=1),
        partons=[q, qbar, isr],
        hadron_flavour=np.stack([flavour, flavour, np.zeros(n, int)], axis=1),
        parton_flavour=np.stack(
            [parton_id, np.where(flavour == 0, GLUON_PDG, -flavour), np.full(n, GLUON_PDG)],
            axis=1,
        ),
        neutrino_px=np.zeros(n),
        neutrino_py=np.zeros(n),
        gen_weight=_gen_weights(rng, settings, n) * flavour_weight,
    )


def _generate_ttbar(rng: Generator, settings: ModelSettings, n: int) -> TruthEvents:
    """tt̄ → W⁺b W⁻b̄ with both W → ℓν (ℓ = e, μ independently for each W)."""
    t_mass = [
        breit_wigner(
            rng,
            settings.top_mass_gev,
            settings.top_width_gev,
            n,
            settings.top_mass_gev - 15.0,
            settings.top_mass_gev + 15.0,
        )
        for _ in range(2)
    ]
    top, antitop, isr = _hard_system(rng, settings, t_mass[0], t_mass[1])
    leptons, pdgs, bquarks = [], [], []
    nu_px, nu_py = np.zeros(n), np.zeros(n)
    for t, sign in ((top, -1), (antitop, 1)):
        w_mass = breit_wigner(
            rng, W_MASS_GEV, W_WIDTH_GEV, n, 40.0, np.asarray(t.mass) - B_MASS_GEV - 0.5
        )
        w, b = two_body_decay(rng, t, w_mass, B_MASS_GEV)
        pdg = _lepton_pdg(rng, n)
        l_mass = np.where(pdg == 11, LEPTON_MASS_GEV[11], LEPTON_MASS_GEV[13])
        lep, nu = two_body_decay(rng, w, l_mass, 0.0)
        leptons.append(lep)
        pdgs.append(sign * pdg)  # t → W⁺ → ℓ⁺ (negative PDG id); t̄ → ℓ⁻
        bquarks.append(b)
        nu_px += np.asarray(nu.px)
        nu_py += np.asarray(nu.py)
    return TruthEvents(
        leptons=leptons,
        lepton_pdg=np.stack(pdgs, axis=1),
        partons=[bquarks[0], bquarks[1], isr],
        hadron_flavour=np.stack([np.full(n, 5), np.full(n, 5), np.zeros(n, int)], axis=1),
        parton_flavour=np.stack([np.full(n, 5), np.full(n, -5), np.full(n, GLUON_PDG)], axis=1),
        neutrino_px=nu_px,
        neutrino_py=nu_py,
        gen_weight=_gen_weights(rng, settings, n),
    )
