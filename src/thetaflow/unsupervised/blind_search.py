"""Blind search: excess of pseudo-data over the expected Standard Model in a score's tail.

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

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from thetaflow.core.io import atomic_path, write_json

log = logging.getLogger(__name__)


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


def _read_scored(feature_path: str, score_path: str) -> pd.DataFrame:
    features = pd.read_parquet(feature_path, columns=["event", "weight"])
    scores = pd.read_parquet(score_path, columns=["event", "score"])
    if (
        len(scores) != len(features)
        or not (scores["event"].to_numpy() == features["event"].to_numpy()).all()
    ):
        raise ValueError(f"{score_path}: rows do not match the feature table {feature_path}")
    return pd.DataFrame(
        {"score": scores["score"].to_numpy(), "weight": features["weight"].to_numpy()}
    )


def run_blind_search(
    config: Mapping,
    score_files: Mapping[str, Mapping[str, str]],
    feature_files: Mapping[str, str],
    outputs: Mapping[str, str],
) -> list[TailResult]:
    """Workflow entry point: the tail comparison of every discriminant and pseudo-data set.

    Args:
        score_files: ``{discriminant: {sample: nominal score parquet}}``.
        feature_files: ``{sample: nominal feature parquet}`` (weights).
        outputs: ``json``, ``table`` (CSV), ``significance`` and ``tails`` (PNGs).
    """
    from thetaflow.core.samples import load_samples
    from thetaflow.unsupervised.plots import plot_blind_search, plot_tails

    samples = load_samples(config)
    spec = blind_search_settings(config, samples)
    sm_names = [s for s in feature_files if samples[s].is_standard_model_mc]
    bsm_names = [s for s in feature_files if samples[s].is_bsm]
    results: list[TailResult] = []
    frames: dict[str, dict[str, pd.DataFrame]] = {}
    for disc, files in score_files.items():
        read = {s: _read_scored(feature_files[s], files[s]) for s in feature_files}
        frames[disc] = read
        sm = pd.concat([read[s] for s in sm_names], ignore_index=True)
        bsm = (
            pd.concat([read[s] for s in bsm_names], ignore_index=True) if bsm_names else sm.iloc[:0]
        )
        for data in spec["data"]:
            for eff in spec["tail_background_efficiencies"]:
                results.append(
                    tail_counts(
                        disc, data, eff, sm, bsm, read[data], spec["background_uncertainty"]
                    )
                )
    table = pd.DataFrame([asdict(r) for r in results])
    with atomic_path(outputs["table"]) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    headline = spec["tail_background_efficiencies"][0]
    summary = {
        "definition": {
            "tail": "score threshold keeping the given fraction of the expected Standard Model yield "
            "(backgrounds + known signal at mu = 1, simulation only)",
            "significance": "Asimov Z for a counting experiment with background uncertainty (Cowan et al.), "
            "observed excess n - b as s; local (no look-elsewhere correction)",
            "background_uncertainty": "sqrt(MC stat^2 + (relative * b)^2)",
            "relative_background_uncertainty": spec["background_uncertainty"],
        },
        "headline_tail_efficiency": headline,
        "bsm_samples": bsm_names,
        "data": spec["data"],
        "results": {
            data: {
                r.discriminant: {
                    k: v for k, v in asdict(r).items() if k not in ("discriminant", "data")
                }
                for r in results
                if r.data == data and r.tail_efficiency == headline
            }
            for data in spec["data"]
        },
    }
    write_json(outputs["json"], summary)
    plot_blind_search(
        [r for r in results if r.tail_efficiency == headline], outputs["significance"]
    )
    plot_tails(
        frames,
        sm_names,
        bsm_names,
        spec["data"],
        headline,
        outputs["tails"],
        labels={s: samples[s].label for s in feature_files},
    )
    for r in results:
        if r.tail_efficiency == headline:
            log.info(
                "%s / %s: tail %.3g, expected SM %.1f ± %.1f, BSM %.1f, observed %d, Z = %.2f (expected %.2f)",
                r.discriminant,
                r.data,
                r.tail_efficiency,
                r.expected_sm,
                r.sm_uncertainty,
                r.expected_bsm,
                r.observed,
                r.observed_significance,
                r.expected_significance,
            )
    return results


def scores_by_discriminant(paths: Sequence[str]) -> dict[str, dict[str, str]]:
    """``{discriminant: {sample: path}}`` from score paths ``.../{discriminant}/{sample}/nominal.parquet``."""
    from pathlib import Path

    out: dict[str, dict[str, str]] = {}
    for path in paths:
        p = Path(path)
        out.setdefault(p.parent.parent.name, {})[p.parent.name] = str(path)
    return out


def blind_search_settings(config: Mapping, samples: Mapping) -> dict:
    """``anomaly.blind_search`` with defaults: every data sample, tails 10⁻² and 10⁻³."""
    spec = {
        "data": [],
        "tail_background_efficiencies": [0.01, 0.001],
        "background_uncertainty": 0.0,
    }
    spec.update(config["anomaly"].get("blind_search", {}))
    if not spec["data"]:
        spec["data"] = [s.name for s in samples.values() if s.is_data]
    return spec


def discriminants(config: Mapping) -> list[str]:
    """The autoencoder and every supervised model, in config order."""
    return ["autoencoder", *config.get("ml", {}).get("models", {})]


__all__: Sequence[str] = [
    "TailResult",
    "asimov_significance",
    "blind_search_settings",
    "discriminants",
    "run_blind_search",
    "tail_counts",
    "tail_efficiency",
    "tail_threshold",
]
