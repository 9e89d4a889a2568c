"""Ranking of the discriminants by sensitivity, and the headline numbers of the run.

The comparison table orders every discriminant by its expected significance (the Asimov
expectation at μ = 1, independent of the pseudo-data's fluctuation) and quotes it relative to
the classic m_bb-only fit; the summary (``core.paths.SUMMARY``) carries μ̂ with its MINOS errors
(and every free parameter θ of a model that has more than μ), the
significance and limits of the headline discriminant, the reference, the best discriminant
and the closure results.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import mplhep
import numpy as np
import pandas as pd

from thetaflow.core.io import atomic_path, read_json, write_json
from thetaflow.plotting.style import experiment_label, save_figure

log = logging.getLogger(__name__)


def comparison_table(
    config: Mapping, fits: Mapping[str, str], limits: Mapping[str, str]
) -> pd.DataFrame:
    """One row per discriminant (best expected significance first), reference marked."""
    reference = config["inference"]["reference"]
    rows = []
    for name in fits:
        fit, lim = read_json(fits[name]), read_json(limits[name])
        minos = fit["mu"]["minos"] or {"down": -fit["mu"]["hesse"], "up": fit["mu"]["hesse"]}
        exp = lim["limit"]["expected"]
        rows.append(
            {
                "discriminant": name,
                "expected_significance": lim["significance"]["expected"],
                "observed_significance": lim["significance"]["observed"],
                "expected_limit": exp["median"],
                "expected_limit_minus1": exp["-1sigma"],
                "expected_limit_plus1": exp["+1sigma"],
                "observed_limit": lim["limit"]["observed"],
                "mu": fit["mu"]["value"],
                "mu_down": minos["down"],
                "mu_up": minos["up"],
                "gof_p_value": fit["goodness_of_fit"]["p_value"],
                "is_reference": name == reference,
            }
        )
    table = pd.DataFrame(rows).sort_values(
        "expected_significance", ascending=False, ignore_index=True
    )
    ref = table.loc[table["is_reference"], "expected_significance"]
    table["significance_vs_reference"] = (
        table["expected_significance"] / float(ref.iloc[0]) if len(ref) else np.nan
    )
    return table


def compare_discriminants(
    config: Mapping, fits: Mapping[str, str], limits: Mapping[str, str], outputs: Mapping[str, str]
) -> pd.DataFrame:
    """Write the comparison table (CSV) and figure (expected/observed Z and limits)."""
    table = comparison_table(config, fits, limits)
    with atomic_path(outputs["table"]) as tmp:
        table.to_csv(tmp, index=False, float_format="%.5g")
    _plot(table, config["analysis"]["lumi_fb"], outputs["figure"])
    for row in table.itertuples():
        log.info(
            "%-16s Z_exp %.2f (x%.2f ref)  Z_obs %.2f  mu < %.3f exp",
            row.discriminant,
            row.expected_significance,
            row.significance_vs_reference,
            row.observed_significance,
            row.expected_limit,
        )
    return table


def _plot(table: pd.DataFrame, lumi_fb: float, output: str) -> None:
    """Expected/observed significance (left) and upper limits (right) per discriminant."""
    y = np.arange(len(table))[::-1]
    colors = np.where(table["is_reference"], "#ff7f0e", "#1f77b4")
    with plt.style.context(mplhep.style.ROOT):
        fig, (left, right) = plt.subplots(1, 2, figsize=(14, 0.55 * len(table) + 3), sharey=True)
        left.barh(y, table["expected_significance"], color=colors, alpha=0.8, label="expected")
        left.scatter(table["observed_significance"], y, color="black", zorder=3, label="observed")
        left.set_xlabel("significance Z [σ]")
        left.set_yticks(y, table["discriminant"])
        left.legend(fontsize="x-small", loc="lower right")
        right.errorbar(
            table["expected_limit"],
            y,
            xerr=[
                table["expected_limit"] - table["expected_limit_minus1"],
                table["expected_limit_plus1"] - table["expected_limit"],
            ],
            fmt="o",
            color="#1f77b4",
            capsize=3,
            label="expected ± 1σ",
        )
        right.scatter(
            table["observed_limit"], y, color="black", marker="x", zorder=3, label="observed"
        )
        right.set_xscale("log")  # limits of strong and weak discriminants differ by decades
        right.set_xlabel(r"95 % CL upper limit on $\mu$")
        right.legend(fontsize="x-small", loc="lower right")
        experiment_label(left, "")
        experiment_label(right, f"{lumi_fb:g} fb$^{{-1}}$")
        save_figure(fig, output)


def _fit_numbers(fit_path: str, limit_path: str) -> dict:
    """The headline numbers of one discriminant, read from its fit and limit JSON."""
    fit, lim = read_json(fit_path), read_json(limit_path)
    numbers = {
        "mu": fit["mu"]["value"],
        "mu_minos": fit["mu"]["minos"],
        "mu_hesse": fit["mu"]["hesse"],
    }
    if "free_parameters" in fit:  # a model with free normalisation factors besides μ: all of θ
        numbers["free_parameters"] = fit["free_parameters"]
    return numbers | {
        "goodness_of_fit_p_value": fit["goodness_of_fit"]["p_value"],
        "significance": {
            "observed": lim["significance"]["observed"],
            "expected": lim["significance"]["expected"],
        },
        "upper_limit_95": {
            "observed": lim["limit"]["observed"],
            "expected": lim["limit"]["expected"],
        },
    }


def _closure_numbers(asimov: str, toys: str, injection: str) -> dict:
    """The closure results kept in the summary, read from the three closure JSON files."""
    a, t, i = read_json(asimov), read_json(toys), read_json(injection)
    return {
        "asimov": [{k: r[k] for k in ("mu_injected", "mu_fitted", "closes")} for r in a["fits"]],
        "toys": [
            {
                k: r[k]
                for k in (
                    "mu_injected",
                    "toys",
                    "convergence_rate",
                    "pull_definition",
                    "pull_mean",
                    "pull_mean_error",
                    "pull_width",
                    "pull_width_error",
                    "fraction_within_1sigma",
                    "hesse_pull",
                    "mu_hat_mean",
                    "mu_hat_mean_error",
                )
            }
            for r in t["toys"]
        ],
        "injection": i["linear_fit"],
    }


def write_summary(
    config: Mapping,
    comparison: str,
    fits: Mapping[str, str],
    limits: Mapping[str, str],
    closures: Mapping[str, Sequence[str]],
    output: str,
) -> dict:
    """The summary (``core.paths.SUMMARY``): the run's headline numbers (module docstring)."""
    inf = config["inference"]
    table = pd.read_csv(comparison)
    best = table.iloc[0]
    headline, reference = inf["headline"], inf["reference"]
    summary = {
        "analysis": config["analysis"]["name"],
        "lumi_fb": config["analysis"]["lumi_fb"],
        # optional key: absent, the summary names "data" (not main_data_sample: kept as it was)
        "data_sample": inf.get("data", "data"),
        "headline": {"discriminant": headline, **_fit_numbers(fits[headline], limits[headline])},
        "reference": {
            "discriminant": reference,
            **_fit_numbers(fits[reference], limits[reference]),
        },
        "best_expected": {
            "discriminant": str(best["discriminant"]),
            "expected_significance": float(best["expected_significance"]),
            "ratio_to_reference": float(best["significance_vs_reference"]),
        },
        "expected_significance": dict(
            zip(table["discriminant"], map(float, table["expected_significance"]), strict=True)
        ),
        "closure": {name: _closure_numbers(*paths) for name, paths in closures.items()},
    }
    write_json(output, summary)
    return summary
