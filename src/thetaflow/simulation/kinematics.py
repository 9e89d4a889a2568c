"""Random sampling of resonance masses, production angles and two-body decays.

These are the truth-level building blocks of the embedded event generator. The generator
works on :class:`Momenta`, plain Cartesian NumPy columns, and boosts decay products into
the lab with the closed-form Lorentz boost along the parent's momentum (a few array
operations; ``vector``'s general ``boost_p4`` builds a full 4×4 transformation per event and
was two thirds of the generation time). The truth record handed to the detector and the
public helpers (:func:`system_momentum`, :func:`two_body_decay`, ...) use ``vector`` NumPy
arrays (``MomentumNumpy4D``), built once per accepted event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import vector
from numpy.random import Generator

#: vector's annotations give its constructors and arithmetic the base classes (VectorNumpy,
#: ndarray) as result types; results that are momentum four-vectors are cast to this
FourVectors = vector.MomentumNumpy4D


@dataclass(frozen=True)
class Momenta:
    """Four-momenta as Cartesian NumPy columns (px, py, pz, E), the generator's working form.

    The attribute names are ``vector``'s, so code reading ``.px``..``.E`` accepts both.
    """

    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    E: np.ndarray  # vector's name of the energy

    def __len__(self) -> int:
        return self.E.size

    def __add__(self, other: Momenta) -> Momenta:
        return Momenta(self.px + other.px, self.py + other.py, self.pz + other.pz, self.E + other.E)

    def __sub__(self, other: Momenta) -> Momenta:
        return Momenta(self.px - other.px, self.py - other.py, self.pz - other.pz, self.E - other.E)

    def take(self, index: np.ndarray) -> Momenta:
        """The entries at ``index`` (integer positions or a boolean mask)."""
        return Momenta(self.px[index], self.py[index], self.pz[index], self.E[index])

    @property
    def pt(self) -> np.ndarray:
        return np.hypot(self.px, self.py)

    @property
    def mass(self) -> np.ndarray:
        """Invariant mass; a (rounding-level) negative m² gives a negative mass, as in vector."""
        m2 = self.E * self.E - self.px * self.px - self.py * self.py - self.pz * self.pz
        return np.copysign(np.sqrt(np.abs(m2)), m2)

    @property
    def phi(self) -> np.ndarray:
        return np.arctan2(self.py, self.px)

    def to_vector(self) -> FourVectors:
        """The same momenta as a ``vector`` array."""
        return from_cartesian(self.px, self.py, self.pz, self.E)

    @classmethod
    def from_vector(cls, v: FourVectors) -> Momenta:
        """Cartesian columns of a ``vector`` four-vector array (any coordinate system)."""
        return cls(
            np.asarray(v.px, dtype=float),
            np.asarray(v.py, dtype=float),
            np.asarray(v.pz, dtype=float),
            np.asarray(v.E, dtype=float),
        )


def breit_wigner(
    rng: Generator,
    mass: float,
    width: float,
    n: int,
    low: float | np.ndarray,
    high: float | np.ndarray,
) -> np.ndarray:
    """Sample ``n`` masses from a Breit-Wigner (Cauchy) truncated to ``[low, high]``.

    Inverse-CDF sampling on the truncated range is exact, so no event is rejected and the
    number of draws is fixed (reproducible streams). A zero width returns the pole mass.
    """
    if width <= 0:
        return np.full(n, float(mass))
    lo = np.arctan(2.0 * (low - mass) / width)
    hi = np.arctan(2.0 * (high - mass) / width)
    return mass + 0.5 * width * np.tan(rng.uniform(lo, hi, n))


def sample_cos_theta(rng: Generator, n: int, a: float) -> np.ndarray:
    """Sample cos θ from a density proportional to ``1 + a cos²θ`` on [-1, 1].

    ``a = 0`` is isotropic, ``a = -1`` is sin²θ (central, like ZH production) and ``a > 0``
    is forward-peaked (t-channel-like). Requires ``a >= -1`` so the density is non-negative.
    """
    if a < -1:
        raise ValueError(f"angular coefficient a={a} must be >= -1 (density 1 + a cos²θ)")
    out = np.empty(n)
    filled = 0
    envelope = 1.0 + max(a, 0.0)
    while filled < n:
        need = n - filled
        c = rng.uniform(-1.0, 1.0, 2 * need + 16)
        keep = c[rng.uniform(0.0, envelope, c.size) < 1.0 + a * c * c][:need]
        out[filled : filled + keep.size] = keep
        filled += keep.size
    return out


def from_pt_eta_phi_m(
    pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, mass: np.ndarray
) -> FourVectors:
    """Build a ``vector`` four-vector array from collider coordinates."""
    return cast(FourVectors, vector.array({"pt": pt, "eta": eta, "phi": phi, "mass": mass}))


def from_cartesian(
    px: np.ndarray, py: np.ndarray, pz: np.ndarray, energy: np.ndarray
) -> FourVectors:
    """Build a ``vector`` four-vector array from Cartesian components."""
    return cast(FourVectors, vector.array({"px": px, "py": py, "pz": pz, "E": energy}))


def system_momenta(
    rng: Generator, mass: np.ndarray, pt: np.ndarray, rapidity_sigma: float
) -> Momenta:
    """Lab four-momentum of a produced system of given mass and transverse momentum.

    The longitudinal rapidity is Gaussian (a stand-in for parton luminosities) and the
    azimuth uniform: E = m_T cosh y, p_z = m_T sinh y.
    """
    n = mass.size
    y = rng.normal(0.0, rapidity_sigma, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    mt = np.sqrt(mass**2 + pt**2)
    return Momenta(pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(y), mt * np.cosh(y))


def system_momentum(
    rng: Generator, mass: np.ndarray, pt: np.ndarray, rapidity_sigma: float
) -> FourVectors:
    """:func:`system_momenta` as a ``vector`` array."""
    return system_momenta(rng, mass, pt, rapidity_sigma).to_vector()


def boost_to_lab(rest: Momenta, parent: Momenta, parent_mass: np.ndarray) -> Momenta:
    """Boost momenta given in the rest frame of ``parent`` (of mass ``parent_mass``) to the lab.

    Closed form of the pure boost with β = P/E_P, γ = E_P/M:
    p' = p + P (P·p / (E_P + M) + E) / M,  E' = (E_P E + P·p) / M.
    """
    dot = parent.px * rest.px + parent.py * rest.py + parent.pz * rest.pz
    k = (dot / (parent.E + parent_mass) + rest.E) / parent_mass
    return Momenta(
        rest.px + k * parent.px,
        rest.py + k * parent.py,
        rest.pz + k * parent.pz,
        (parent.E * rest.E + dot) / parent_mass,
    )


def _rest_frame_pair(
    rng: Generator,
    parent_mass: np.ndarray,
    m1: np.ndarray | float,
    m2: np.ndarray | float,
    cos_theta: np.ndarray | None,
) -> tuple[Momenta, Momenta]:
    """Back-to-back daughters of masses ``m1``, ``m2`` in the parent's rest frame.

    Draws cos θ (unless given) then φ, one uniform per event each.
    """
    n = parent_mass.size
    m1 = np.broadcast_to(np.asarray(m1, dtype=float), (n,))
    m2 = np.broadcast_to(np.asarray(m2, dtype=float), (n,))
    lam = (parent_mass**2 - (m1 + m2) ** 2) * (parent_mass**2 - (m1 - m2) ** 2)
    p = np.sqrt(np.clip(lam, 0.0, None)) / (2.0 * parent_mass)
    c = rng.uniform(-1.0, 1.0, n) if cos_theta is None else cos_theta
    s = np.sqrt(np.clip(1.0 - c * c, 0.0, None))
    phi = rng.uniform(-np.pi, np.pi, n)
    px, py, pz = p * s * np.cos(phi), p * s * np.sin(phi), p * c
    p2 = p * p
    return (
        Momenta(px, py, pz, np.sqrt(p2 + m1 * m1)),
        Momenta(-px, -py, -pz, np.sqrt(p2 + m2 * m2)),
    )


def decay(
    rng: Generator,
    parent: Momenta,
    parent_mass: np.ndarray,
    m1: np.ndarray | float,
    m2: np.ndarray | float,
    cos_theta: np.ndarray | None = None,
) -> tuple[Momenta, Momenta]:
    """Two-body decay of ``parent`` into masses ``m1``, ``m2``; both daughters in the lab.

    The decay angle is isotropic in the parent rest frame unless ``cos_theta`` is given
    (measured from the beam axis, which is what a production angle cos θ* means).
    """
    big_m = np.asarray(parent_mass, dtype=float)
    d1, d2 = _rest_frame_pair(rng, big_m, m1, m2, cos_theta)
    return boost_to_lab(d1, parent, big_m), boost_to_lab(d2, parent, big_m)


def decay_first(
    rng: Generator,
    parent: Momenta,
    parent_mass: np.ndarray,
    m1: np.ndarray | float,
    m2: np.ndarray | float,
) -> Momenta:
    """The first daughter of an isotropic :func:`decay` (same draws); the second is
    ``parent - first`` by four-momentum conservation, for the events that need it."""
    big_m = np.asarray(parent_mass, dtype=float)
    d1, _ = _rest_frame_pair(rng, big_m, m1, m2, None)
    return boost_to_lab(d1, parent, big_m)


def two_body_decay(
    rng: Generator,
    parent: FourVectors,
    m1: np.ndarray | float,
    m2: np.ndarray | float,
    cos_theta: np.ndarray | None = None,
) -> tuple[FourVectors, FourVectors]:
    """:func:`decay` of a ``vector`` parent (its own invariant mass); ``vector`` daughters."""
    d1, d2 = decay(
        rng, Momenta.from_vector(parent), np.asarray(parent.mass, dtype=float), m1, m2, cos_theta
    )
    return d1.to_vector(), d2.to_vector()
