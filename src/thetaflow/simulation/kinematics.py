"""Random sampling of resonance masses, production angles and two-body decays.

These are the truth-level building blocks of the embedded event generator. Four-vectors are
``vector`` NumPy arrays (``MomentumNumpy4D``); boosts use ``vector``'s ``boost_p4`` rather than
hand-written Lorentz transformations.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import vector
from numpy.random import Generator

#: vector's annotations give its constructors and arithmetic the base classes (VectorNumpy,
#: ndarray) as result types; results that are momentum four-vectors are cast to this
FourVectors = vector.MomentumNumpy4D


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


def system_momentum(
    rng: Generator, mass: np.ndarray, pt: np.ndarray, rapidity_sigma: float
) -> FourVectors:
    """Lab four-momentum of a produced system of given mass and transverse momentum.

    The longitudinal rapidity is Gaussian (a stand-in for parton luminosities) and the
    azimuth uniform. Rapidity is not a ``vector`` constructor coordinate, hence the
    transverse-mass form E = m_T cosh y, p_z = m_T sinh y.
    """
    n = mass.size
    y = rng.normal(0.0, rapidity_sigma, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    mt = np.sqrt(mass**2 + pt**2)
    return from_cartesian(pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(y), mt * np.cosh(y))


def two_body_decay(
    rng: Generator,
    parent: FourVectors,
    m1: np.ndarray | float,
    m2: np.ndarray | float,
    cos_theta: np.ndarray | None = None,
) -> tuple[FourVectors, FourVectors]:
    """Decay ``parent`` into two daughters of masses ``m1``, ``m2``; return them in the lab.

    The decay angle is isotropic in the parent rest frame unless ``cos_theta`` is given
    (measured from the parent's flight direction is not needed here: the rest-frame axis is
    the beam axis, which is what a production angle cos θ* means).
    """
    n = len(parent)
    big_m = np.asarray(parent.mass, dtype=float)
    m1 = np.broadcast_to(np.asarray(m1, dtype=float), (n,))
    m2 = np.broadcast_to(np.asarray(m2, dtype=float), (n,))
    lam = (big_m**2 - (m1 + m2) ** 2) * (big_m**2 - (m1 - m2) ** 2)
    p = np.sqrt(np.clip(lam, 0.0, None)) / (2.0 * big_m)
    c = rng.uniform(-1.0, 1.0, n) if cos_theta is None else cos_theta
    s = np.sqrt(np.clip(1.0 - c * c, 0.0, None))
    phi = rng.uniform(-np.pi, np.pi, n)
    px, py, pz = p * s * np.cos(phi), p * s * np.sin(phi), p * c
    d1 = from_cartesian(px, py, pz, np.sqrt(p * p + m1 * m1))
    d2 = from_cartesian(-px, -py, -pz, np.sqrt(p * p + m2 * m2))
    return d1.boost_p4(parent), d2.boost_p4(parent)
