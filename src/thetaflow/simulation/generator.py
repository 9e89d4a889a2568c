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

Generation runs in two stages so that a generator filter on the leptons costs little:
:func:`generate_leptons` draws the weights, the lepton flavours and everything the two
leptons' momenta depend on (the hard system and the decay chain down to the leptons), and
applies a :class:`LeptonFilter` (flavours first, before any kinematics, then the lepton
momenta); :func:`complete` then generates the rest (hard partons, ISR, neutrinos) for the
events that passed. Every event's distribution is the same as if it were generated in full
and then filtered: nothing the filter reads depends on what the second stage draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol, cast

import numpy as np
from numpy.random import Generator

from thetaflow.simulation.kinematics import (
    FourVectors,
    Momenta,
    breit_wigner,
    decay,
    decay_first,
    from_cartesian,
    sample_cos_theta,
    system_momenta,
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
    ``lhe_nb``/``lhe_nc`` (uint8) count the outgoing b and c partons of the hard process as
    the matrix-element generator writes it (NanoAOD ``LHE_Nb``/``LHE_Nc``, see
    :func:`lhe_heavy_flavour_counts`).
    """

    leptons: list[FourVectors]
    lepton_pdg: np.ndarray  # (n, 2)
    partons: list[FourVectors]
    hadron_flavour: np.ndarray  # (n, 3)
    parton_flavour: np.ndarray  # (n, 3)
    neutrino_px: np.ndarray
    neutrino_py: np.ndarray
    gen_weight: np.ndarray
    lhe_nb: np.ndarray
    lhe_nc: np.ndarray

    def __len__(self) -> int:
        return self.gen_weight.size

    def take(self, mask: np.ndarray) -> TruthEvents:
        """Return the events where ``mask`` is true."""
        return TruthEvents(
            leptons=[cast(FourVectors, p[mask]) for p in self.leptons],
            lepton_pdg=self.lepton_pdg[mask],
            partons=[cast(FourVectors, p[mask]) for p in self.partons],
            hadron_flavour=self.hadron_flavour[mask],
            parton_flavour=self.parton_flavour[mask],
            neutrino_px=self.neutrino_px[mask],
            neutrino_py=self.neutrino_py[mask],
            gen_weight=self.gen_weight[mask],
            lhe_nb=self.lhe_nb[mask],
            lhe_nc=self.lhe_nc[mask],
        )


class LeptonFilter(Protocol):
    """A generator filter that reads only the two truth leptons (see :func:`generate_leptons`)."""

    def passes_flavours(self, pdg: np.ndarray) -> np.ndarray:
        """Mask of events whose (n, 2) signed lepton PDG ids can pass."""
        ...

    def passes_leptons(self, first: Momenta, second: Momenta, pdg: np.ndarray) -> np.ndarray:
        """Mask of events whose two leptons pass (flavours already passed)."""
        ...


@dataclass(frozen=True)
class _ZPairRest:
    """What the second stage of a Z + pair event needs: the pair and the ISR recoil."""

    flavour: np.ndarray
    q_mass: np.ndarray
    x: Momenta
    x_mass: np.ndarray
    isr_pt: np.ndarray
    isr_phi: np.ndarray

    def take(self, index: np.ndarray) -> _ZPairRest:
        return _ZPairRest(
            self.flavour[index],
            self.q_mass[index],
            self.x.take(index),
            self.x_mass[index],
            self.isr_pt[index],
            self.isr_phi[index],
        )


@dataclass(frozen=True)
class _TtbarRest:
    """What the second stage of a tt̄ event needs: tops, W bosons, ISR recoil."""

    top: Momenta
    antitop: Momenta
    w_top: Momenta
    w_antitop: Momenta
    isr_pt: np.ndarray
    isr_phi: np.ndarray

    def take(self, index: np.ndarray) -> _TtbarRest:
        return _TtbarRest(
            self.top.take(index),
            self.antitop.take(index),
            self.w_top.take(index),
            self.w_antitop.take(index),
            self.isr_pt[index],
            self.isr_phi[index],
        )


@dataclass(frozen=True)
class LeptonLevel:
    """First stage of a batch of ``n_generated`` events: the events that passed the filter.

    ``batch_weights`` are the generator weights of *every* event of the batch (the Runs
    bookkeeping counts them all); ``index`` the passing events' positions in the batch, in
    order. ``leptons``, ``lepton_pdg`` and ``rest`` hold the passing events only.
    """

    n_generated: int
    batch_weights: np.ndarray
    index: np.ndarray
    leptons: tuple[Momenta, Momenta]
    lepton_pdg: np.ndarray
    rest: _ZPairRest | _TtbarRest

    def __len__(self) -> int:
        return self.index.size

    def take(self, index: np.ndarray) -> LeptonLevel:
        """The passing events at ``index`` (positions or mask among them); the batch's
        bookkeeping (``n_generated``, ``batch_weights``) is unchanged."""
        return replace(
            self,
            index=self.index[index],
            leptons=(self.leptons[0].take(index), self.leptons[1].take(index)),
            lepton_pdg=self.lepton_pdg[index],
            rest=self.rest.take(index),
        )


def generate(rng: Generator, settings: ModelSettings, n: int) -> TruthEvents:
    """Generate ``n`` truth events of the process described by ``settings`` (no filter)."""
    return complete(rng, settings, generate_leptons(rng, settings, n))


def generate_leptons(
    rng: Generator, settings: ModelSettings, n: int, filt: LeptonFilter | None = None
) -> LeptonLevel:
    """First stage of ``n`` events: weights, lepton flavours and lepton momenta; only the
    events that pass ``filt`` (all without one) are kept, with their positions.

    The flavours are drawn first and filtered before any kinematics; the momenta of the
    leptons (and of what they come from) are then generated for those events only.
    """
    if settings.model == "ttbar":
        return _ttbar_leptons(rng, settings, n, filt)
    if settings.model in ("zh", "zz", "zjets", "xzy"):
        return _z_pair_leptons(rng, settings, n, filt)
    raise ValueError(f"unknown generator model {settings.model!r}; expected one of {MODELS}")


def complete(rng: Generator, settings: ModelSettings, level: LeptonLevel) -> TruthEvents:
    """Second stage: hard partons, ISR and neutrinos of the events of ``level``."""
    if isinstance(level.rest, _TtbarRest):
        return _ttbar_rest(rng, level, level.rest)
    return _z_pair_rest(rng, settings, level, level.rest)


#: Models whose hard parton pair comes from a scalar that the parton shower decays, after the
#: LHE step: the pair is not in the LHE record (see :func:`lhe_heavy_flavour_counts`)
SHOWER_DECAYED_PAIR_MODELS = ("zh", "xzy")


def lhe_heavy_flavour_counts(model: str, pair_flavour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``LHE_Nb`` and ``LHE_Nc`` of events whose hard parton pair has hadron flavour
    ``pair_flavour`` (5, 4 or 0): the outgoing b and c partons of the LHE record.

    As in real samples: in Z+jets (``zjets``) the pair is a matrix-element parton pair, 2 b,
    2 c or none; ZZ → ℓℓbb̄ (``zz``) is decayed by the matrix-element generator (as the
    ZZTo2L2Q samples), 2 b; tt̄ (``ttbar``) with its top decays in the LHE record, 2 b. In ZH
    the Higgs boson is decayed by the parton shower after the LHE step, so H → bb̄ leaves
    ``LHE_Nb`` = 0; the blind search's X → Z Y (``xzy``) follows the same logic for its scalar
    Y → bb̄, also 0. The ISR parton is a gluon and counts in neither.
    """
    if model in SHOWER_DECAYED_PAIR_MODELS:
        zero = np.zeros(pair_flavour.shape, np.uint8)
        return zero, zero.copy()
    return (
        np.where(pair_flavour == 5, 2, 0).astype(np.uint8),
        np.where(pair_flavour == 4, 2, 0).astype(np.uint8),
    )


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
    # a flavour never generated is never drawn: its weight is unused (no 0/0 warning)
    weight = np.divide(physical, generated, out=np.ones(3), where=generated > 0)
    return np.array([5, 4, 0])[index], weight[index]


def _lepton_pdg(rng: Generator, n: int) -> np.ndarray:
    """Electron or muon, 50/50 (lepton universality)."""
    return np.where(rng.uniform(size=n) < 0.5, 11, 13)


def _lepton_mass(pdg: np.ndarray) -> np.ndarray:
    return np.where(np.abs(pdg) == 11, LEPTON_MASS_GEV[11], LEPTON_MASS_GEV[13])


def _flavour_index(filt: LeptonFilter | None, pdg: np.ndarray) -> np.ndarray:
    """Positions of the events whose lepton flavours can pass ``filt``."""
    if filt is None:
        return np.arange(len(pdg))
    return np.flatnonzero(filt.passes_flavours(pdg))


def _kinematic_filter(level: LeptonLevel, filt: LeptonFilter | None) -> LeptonLevel:
    if filt is None:
        return level
    first, second = level.leptons
    return level.take(np.flatnonzero(filt.passes_leptons(first, second, level.lepton_pdg)))


def _hard_system(
    rng: Generator,
    settings: ModelSettings,
    m1: np.ndarray,
    m2: np.ndarray,
    system_mass: np.ndarray | None = None,
) -> tuple[Momenta, Momenta, np.ndarray, np.ndarray]:
    """Produce two particles of masses m1, m2 recoiling against an ISR parton.

    The pair's invariant mass falls above threshold (``system_mass_scale_gev``) unless
    ``system_mass`` gives it (a resonance decaying to the two particles). Returns the two
    particles in the lab and the ISR parton's p_T and azimuth (its rapidity is drawn with
    the rest of the event, :func:`_isr`).
    """
    n = m1.size
    isr_pt = rng.exponential(settings.isr_pt_scale_gev, n)
    if system_mass is None:
        sqrt_s = m1 + m2 + rng.exponential(settings.system_mass_scale_gev, n)
    else:
        sqrt_s = np.maximum(system_mass, m1 + m2 + 1.0)
    system = system_momenta(rng, sqrt_s, isr_pt, settings.rapidity_sigma)
    cos_theta = sample_cos_theta(rng, n, settings.angular_a)
    a, b = decay(rng, system, sqrt_s, m1, m2, cos_theta=cos_theta)
    return a, b, isr_pt, system.phi + np.pi


def _isr(rng: Generator, isr_pt: np.ndarray, isr_phi: np.ndarray) -> FourVectors:
    """The massless ISR parton opposite the hard system, rapidity ~ N(0, 2)."""
    pt = np.maximum(isr_pt, 1e-3)
    eta = rng.normal(0.0, 2.0, pt.size)
    return from_cartesian(
        pt * np.cos(isr_phi), pt * np.sin(isr_phi), pt * np.sinh(eta), pt * np.cosh(eta)
    )


def _z_pair_leptons(
    rng: Generator, settings: ModelSettings, n: int, filt: LeptonFilter | None
) -> LeptonLevel:
    """Z(→ℓℓ) + X with X a Higgs, a Z, a QCD dijet continuum or (``xzy``) a heavy scalar Y,
    the Z+Y pair then coming from the decay of a heavy resonance: up to the leptons."""
    flavour, flavour_weight = _pair_flavours(rng, settings, n)
    weights = _gen_weights(rng, settings, n) * flavour_weight
    pdg = _lepton_pdg(rng, n)
    index = _flavour_index(filt, np.stack([pdg, -pdg], axis=1))
    flavour, pdg = flavour[index], pdg[index]
    m = index.size
    z_mass = breit_wigner(rng, Z_MASS_GEV, Z_WIDTH_GEV, m, 40.0, 200.0)
    q_mass = np.select([flavour == 5, flavour == 4], [B_MASS_GEV, C_MASS_GEV], 0.0)
    if settings.model == "zh":
        x_mass = breit_wigner(
            rng,
            settings.higgs_mass_gev,
            settings.higgs_width_gev,
            m,
            0.5 * settings.higgs_mass_gev,
            1.5 * settings.higgs_mass_gev,
        )
    elif settings.model == "zz":
        x_mass = breit_wigner(rng, Z_MASS_GEV, Z_WIDTH_GEV, m, 40.0, 200.0)
    elif settings.model == "xzy":
        x_mass = breit_wigner(
            rng,
            settings.daughter_mass_gev,
            settings.daughter_width_gev,
            m,
            0.5 * settings.daughter_mass_gev,
            1.5 * settings.daughter_mass_gev,
        )
    else:
        x_mass = settings.dijet_mass_min_gev + rng.gamma(
            2.0, settings.dijet_mass_scale_gev / 2.0, m
        )
    x_mass = np.maximum(x_mass, 2 * q_mass + 1.0)
    resonance = None
    if settings.model == "xzy":
        resonance = breit_wigner(
            rng,
            settings.resonance_mass_gev,
            settings.resonance_width_gev,
            m,
            0.5 * settings.resonance_mass_gev,
            1.5 * settings.resonance_mass_gev,
        )
    z, x, isr_pt, isr_phi = _hard_system(rng, settings, z_mass, x_mass, resonance)
    l_mass = _lepton_mass(pdg)
    lep_minus, lep_plus = decay(rng, z, z_mass, l_mass, l_mass)
    level = LeptonLevel(
        n_generated=n,
        batch_weights=weights,
        index=index,
        leptons=(lep_minus, lep_plus),
        lepton_pdg=np.stack([pdg, -pdg], axis=1),
        rest=_ZPairRest(flavour, q_mass, x, x_mass, isr_pt, isr_phi),
    )
    return _kinematic_filter(level, filt)


def _z_pair_rest(
    rng: Generator, settings: ModelSettings, level: LeptonLevel, rest: _ZPairRest
) -> TruthEvents:
    """X → qq̄ and the ISR parton of Z + pair events."""
    n, flavour = len(level), rest.flavour
    q, qbar = decay(rng, rest.x, rest.x_mass, rest.q_mass, rest.q_mass)
    parton_id = np.where(flavour == 0, GLUON_PDG, flavour)
    lhe_nb, lhe_nc = lhe_heavy_flavour_counts(settings.model, flavour)
    return TruthEvents(
        leptons=[p.to_vector() for p in level.leptons],
        lepton_pdg=level.lepton_pdg,
        partons=[q.to_vector(), qbar.to_vector(), _isr(rng, rest.isr_pt, rest.isr_phi)],
        hadron_flavour=np.stack([flavour, flavour, np.zeros(n, int)], axis=1),
        parton_flavour=np.stack(
            [parton_id, np.where(flavour == 0, GLUON_PDG, -flavour), np.full(n, GLUON_PDG)],
            axis=1,
        ),
        neutrino_px=np.zeros(n),
        neutrino_py=np.zeros(n),
        gen_weight=level.batch_weights[level.index],
        lhe_nb=lhe_nb,
        lhe_nc=lhe_nc,
    )


def _ttbar_leptons(
    rng: Generator, settings: ModelSettings, n: int, filt: LeptonFilter | None
) -> LeptonLevel:
    """tt̄ → W⁺b W⁻b̄ with both W → ℓν (ℓ = e, μ independently for each W): up to the
    leptons (the b quarks and neutrinos follow by four-momentum conservation)."""
    weights = _gen_weights(rng, settings, n)
    # t → W⁺ → ℓ⁺ (negative PDG id); t̄ → ℓ⁻
    pdg = np.stack([-_lepton_pdg(rng, n), _lepton_pdg(rng, n)], axis=1)
    index = _flavour_index(filt, pdg)
    pdg = pdg[index]
    m = index.size
    t_mass = [
        breit_wigner(
            rng,
            settings.top_mass_gev,
            settings.top_width_gev,
            m,
            settings.top_mass_gev - 15.0,
            settings.top_mass_gev + 15.0,
        )
        for _ in range(2)
    ]
    top, antitop, isr_pt, isr_phi = _hard_system(rng, settings, t_mass[0], t_mass[1])
    leptons, ws = [], []
    for t, mt, lep_pdg in ((top, t_mass[0], pdg[:, 0]), (antitop, t_mass[1], pdg[:, 1])):
        w_mass = breit_wigner(rng, W_MASS_GEV, W_WIDTH_GEV, m, 40.0, mt - B_MASS_GEV - 0.5)
        w = decay_first(rng, t, mt, w_mass, B_MASS_GEV)
        leptons.append(decay_first(rng, w, w_mass, _lepton_mass(lep_pdg), 0.0))
        ws.append(w)
    level = LeptonLevel(
        n_generated=n,
        batch_weights=weights,
        index=index,
        leptons=(leptons[0], leptons[1]),
        lepton_pdg=pdg,
        rest=_TtbarRest(top, antitop, ws[0], ws[1], isr_pt, isr_phi),
    )
    return _kinematic_filter(level, filt)


def _ttbar_rest(rng: Generator, level: LeptonLevel, rest: _TtbarRest) -> TruthEvents:
    """b quarks (t − W), neutrinos (W − ℓ) and the ISR parton of tt̄ events."""
    n = len(level)
    b, bbar = rest.top - rest.w_top, rest.antitop - rest.w_antitop
    nu = (rest.w_top - level.leptons[0]) + (rest.w_antitop - level.leptons[1])
    lhe_nb, lhe_nc = lhe_heavy_flavour_counts("ttbar", np.full(n, 5))
    return TruthEvents(
        leptons=[p.to_vector() for p in level.leptons],
        lepton_pdg=level.lepton_pdg,
        partons=[b.to_vector(), bbar.to_vector(), _isr(rng, rest.isr_pt, rest.isr_phi)],
        hadron_flavour=np.stack([np.full(n, 5), np.full(n, 5), np.zeros(n, int)], axis=1),
        parton_flavour=np.stack([np.full(n, 5), np.full(n, -5), np.full(n, GLUON_PDG)], axis=1),
        neutrino_px=nu.px,
        neutrino_py=nu.py,
        gen_weight=level.batch_weights[level.index],
        lhe_nb=lhe_nb,
        lhe_nc=lhe_nc,
    )
