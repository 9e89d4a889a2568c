"""Blind search: the tail of every discriminant fixed on simulation, then counted in each
pseudo-data sample (the statistics in :mod:`thetaflow.unsupervised.tails`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict

import pandas as pd

from thetaflow.core.io import atomic_path, read_table, write_json
from thetaflow.core.samples import load_samples
from thetaflow.unsupervised.plots import plot_blind_search, plot_tails
from thetaflow.unsupervised.tails import TailResult, tail_counts

log = logging.getLogger(__name__)


def _read_scored(feature_path: str, score_path: str) -> pd.DataFrame:
    features = read_table(feature_path, columns=["event", "weight"])
    scores = read_table(score_path, columns=["event", "score"])
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
            "tail": "score threshold keeping the given fraction of the expected Standard Model "
            "yield (backgrounds + known signal at mu = 1, simulation only)",
            "significance": "Asimov Z for a counting experiment with background uncertainty "
            "(Cowan et al.), observed excess n - b as s; local (no look-elsewhere correction)",
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
                "%s / %s: tail %.3g, expected SM %.1f ± %.1f, BSM %.1f, observed %d, Z = %.2f "
                "(expected %.2f)",
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
    """``{discriminant: {sample: path}}`` from score paths
    ``.../{discriminant}/{sample}/nominal.parquet``."""
    from pathlib import Path

    out: dict[str, dict[str, str]] = {}
    for path in paths:
        p = Path(path)
        out.setdefault(p.parent.parent.name, {})[p.parent.name] = str(path)
    return out


def blind_search_settings(config: Mapping, samples: Mapping) -> dict:
    """The validated ``anomaly.blind_search`` (defaults filled by the schema); an empty
    ``data`` means every data sample (depends on the sample list, so not in the schema)."""
    spec = dict(config["anomaly"]["blind_search"])
    if not spec["data"]:
        spec["data"] = [s.name for s in samples.values() if s.is_data]
    return spec


def discriminants(config: Mapping) -> list[str]:
    """The autoencoder and every supervised model, in config order."""
    return ["autoencoder", *config.get("ml", {}).get("models", {})]


__all__: Sequence[str] = [
    "blind_search_settings",
    "discriminants",
    "run_blind_search",
]
