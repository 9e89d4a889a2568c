"""Tail counting of the blind search: excess of pseudo-data over the expected Standard Model
in a score's tail.

For every discriminant (the autoencoder's anomaly score and each supervised classifier) the
tail is defined *before* looking at data, from the simulation alone: the threshold at which
the expected Standard Model yield (backgrounds plus the known signal at μ = 1, physics
weights) keeps a fraction ε of its total (``anomaly.blind_search.tail_background_efficiencies``;
the first is the headline). In that tail the observed pseudo-data count n is compared with
the expectation b ± σ_b, σ_b² = Σw² (MC statistics) + (r·b)² (``background_uncertainty`` r).

Local significance: the Asimov formula for a counting experiment with an uncertain
background (Cowan, Cranmer, Gross, Vitells, Eur. Phys. J. C 71 (2011) 1554, and G. Cowan,
"Discovery sensitivity for a counting experiment with background uncertainty"), with the
observed excess s = n − b in place of the expected signal:

    Z = sqrt(2 [ (s+b) ln((s+b)(b+σ²) / (b² + (s+b)σ²)) − (b²/σ²) ln(1 + σ²s / (b(b+σ²))) ])

signed negative for a deficit; it reduces to sqrt(2((s+b)ln(1+s/b) − s)) for σ → 0.
With the simulated BSM process's tail yield as s the same formula gives the expected
significance. "Local": one tail per discriminant, fixed in advance, no look-elsewhere
correction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd


def asimov_significance(s: float, b: float, sigma_b: float = 0.0) -> float:
    """Discovery significance of an excess ``s`` over ``b`` ± ``sigma_b`` (signed; see module)."""
    if b <= 0:
        return math.inf if s > 0 else 0.0
    n = max(s + b, 0.0)

    def n_log(x: float) -> float:  # n·ln(x), → 0 as n → 0 (no event observed)
        return n * math.log(x) if n > 0 else 0.0

    if sigma_b <= 0:
        q = 2.0 * (n_log(n / b) - s)
    else:
        v = sigma_b**2
        q = 2.0 * (
            n_log(n * (b + v) / (b * b + n * v)) - (b * b / v) * math.log1p(v * s / (b * (b + v)))
        )
    return math.copysign(math.sqrt(max(q, 0.0)), s)


def tail_threshold(scores: np.ndarray, weights: np.ndarray, efficiency: float) -> float:
    """Lowest score threshold whose weighted tail (score ≥ t) keeps at most ``efficiency``.

    Equal scores are never split, so the tail's efficiency can be below ``efficiency``.
    """
    if not 0 < efficiency < 1:
        raise ValueError(f"tail efficiency must be in (0, 1), got {efficiency}")
    order = np.argsort(scores, kind="mergesort")[::-1]
    s = np.asarray(scores, dtype=np.float64)[order]
    cum = np.cumsum(np.asarray(weights, dtype=np.float64)[order]) / np.sum(weights)
    ends = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    ok = ends[cum[ends] <= efficiency]
    return float(s[ok[-1]]) if len(ok) else float(np.nextafter(s[0], np.inf))


def tail_efficiency(scores: np.ndarray, reference: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted share of ``reference`` scores at or above each of ``scores`` (survival)."""
    order = np.argsort(reference, kind="mergesort")
    ref = np.asarray(reference, dtype=np.float64)[order]
    cum_above = np.r_[np.cumsum(np.asarray(weights, dtype=np.float64)[order][::-1])[::-1], 0.0]
    index = np.searchsorted(ref, scores, side="left")
    return np.clip(cum_above[index] / cum_above[0], 0.0, 1.0)


@dataclass(frozen=True)
class TailResult:
    """One discriminant, one tail, one pseudo-data sample."""

    discriminant: str
    data: str
    tail_efficiency: float
    achieved_efficiency: float  # below tail_efficiency where equal scores cannot be split
    threshold: float
    expected_sm: float
    sm_uncertainty: float
    sm_mc_stat: float
    expected_bsm: float
    expected_significance: float
    observed: int
    excess: float
    observed_significance: float


def tail_counts(
    discriminant: str,
    data: str,
    efficiency: float,
    sm: pd.DataFrame,
    bsm: pd.DataFrame,
    observed: pd.DataFrame,
    relative_uncertainty: float,
) -> TailResult:
    """Counts and significances in the tail of ``discriminant`` (frames have score, weight)."""
    threshold = tail_threshold(sm["score"].to_numpy(), sm["weight"].to_numpy(), efficiency)
    in_tail = sm["score"].to_numpy() >= threshold
    w = sm["weight"].to_numpy()[in_tail]
    b = float(w.sum())
    total = float(sm["weight"].sum())
    stat = float(np.sqrt(np.sum(w**2)))
    sigma = math.hypot(stat, relative_uncertainty * b)
    s_bsm = float(bsm.loc[bsm["score"] >= threshold, "weight"].sum()) if len(bsm) else 0.0
    n = int((observed["score"].to_numpy() >= threshold).sum())
    return TailResult(
        discriminant=discriminant,
        data=data,
        tail_efficiency=efficiency,
        achieved_efficiency=b / total if total > 0 else 0.0,
        threshold=threshold,
        expected_sm=b,
        sm_uncertainty=sigma,
        sm_mc_stat=stat,
        expected_bsm=s_bsm,
        expected_significance=asimov_significance(s_bsm, b, sigma),
        observed=n,
        excess=n - b,
        observed_significance=asimov_significance(n - b, b, sigma),
    )
