"""Figures of the classifier evaluation: ROC curves, overtraining, importances, comparison.

One function per figure. Each takes results already computed by
:mod:`thetaflow.ml.metrics`, draws in the mplhep ROOT style with the experiment label used
by :mod:`thetaflow.plotting.style`, writes a PNG atomically
(:func:`thetaflow.plotting.style.save_figure`) and returns nothing, so the plotting code holds
no analysis logic.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mplhep  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from thetaflow.ml.metrics import WORKING_POINTS, KsResult, Roc, ScoredSample, auc  # noqa: E402
from thetaflow.plotting.style import experiment_label, save_figure  # noqa: E402

#: Colours of the two classes in the overtraining plot (signal, background).
CLASS_COLORS: tuple[str, str] = ("#1f77b4", "#d62728")


def plot_roc_curves(
    rocs: Mapping[str, Roc],
    output: str,
    reference: Roc | None = None,
    *,
    reference_label: str = "best single feature",
    rlabel: str = "test set",
) -> None:
    """Background efficiency (log scale) vs signal efficiency, one curve per model.

    The log axis makes the low-background working points readable; dotted lines mark the
    1 % and 10 % background efficiencies the workflow quotes, the dashed diagonal a random
    classifier. The AUC of each curve is given in the legend.

    Args:
        rocs: ``{model name: ROC}``.
        output: PNG path.
        reference: optional reference curve (e.g. the best single feature), drawn in grey.
        reference_label: legend label of ``reference``.
        rlabel: text at the top right of the axes.
    """
    with plt.style.context(mplhep.style.ROOT):
        fig, ax = plt.subplots(figsize=(10, 9))
        floor = 1.0
        curves = list(rocs.items())
        if reference is not None:
            curves.append((reference_label, reference))
        for i, (name, roc) in enumerate(curves):
            is_ref = reference is not None and i == len(curves) - 1
            keep = roc.background_efficiency > 0
            if keep.any():
                floor = min(floor, float(roc.background_efficiency[keep].min()))
            ax.plot(
                roc.signal_efficiency[keep],
                roc.background_efficiency[keep],
                label=f"{name} (AUC = {auc(roc):.3f})",
                color="grey" if is_ref else None,
                linestyle="--" if is_ref else "-",
                linewidth=2,
            )
        lower = 10 ** np.floor(np.log10(max(floor, 1e-6)))
        grid = np.geomspace(lower, 1.0, 100)
        ax.plot(grid, grid, color="black", linestyle=":", linewidth=1, label="random")
        for wp in WORKING_POINTS:
            ax.axhline(wp, color="grey", linestyle=":", linewidth=1)
        ax.set_yscale("log")
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(lower, 1.5)
        ax.set_xlabel(r"Signal efficiency $\varepsilon_S$")
        ax.set_ylabel(r"Background efficiency $\varepsilon_B$")
        ax.legend(fontsize="small", loc="lower right")
        experiment_label(ax, rlabel)
        save_figure(fig, output)


def _density(
    scores: np.ndarray, weights: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Unit-area weighted histogram and its statistical uncertainty (``sqrt(Σw²)``)."""
    counts, _ = np.histogram(scores, bins=edges, weights=weights)
    sumw2, _ = np.histogram(scores, bins=edges, weights=weights * weights)
    norm = float(np.sum(counts) * np.diff(edges)[0])
    if norm <= 0:
        return np.zeros_like(counts), np.zeros_like(counts)
    return counts / norm, np.sqrt(sumw2) / abs(norm)


def plot_overtraining(
    train: ScoredSample,
    test: ScoredSample,
    ks_signal: KsResult,
    ks_background: KsResult,
    output: str,
    *,
    bins: int = 40,
    model: str = "",
    rlabel: str = "",
) -> None:
    """TMVA-style overtraining check: train vs test score distributions per class.

    Test scores are drawn as histograms (signal filled, background hatched), train scores
    as points with statistical error bars, all normalised to unit area; the KS p-values of
    train vs test (from :func:`thetaflow.ml.metrics.weighted_ks`) are printed. A model that
    memorised its training set shows train points departing from the test histograms and
    small p-values; the p-values appear in the legend next to the train points.

    Args:
        train: training-set scores, labels and weights.
        test: test-set scores, labels and weights.
        ks_signal: KS result of train vs test signal scores.
        ks_background: KS result of train vs test background scores.
        output: PNG path.
        bins: number of score bins, spanning the range of all scores.
        model: model name, shown in the legend title.
        rlabel: text at the top right of the axes.
    """
    all_scores = np.concatenate([np.asarray(train.scores), np.asarray(test.scores)])
    all_scores = all_scores[np.isfinite(all_scores)]
    lo, hi = (float(all_scores.min()), float(all_scores.max())) if len(all_scores) else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    with plt.style.context(mplhep.style.ROOT):
        fig, ax = plt.subplots(figsize=(10, 9))
        classes = (
            (1, "Signal", CLASS_COLORS[0], None, ks_signal),
            (0, "Background", CLASS_COLORS[1], "///", ks_background),
        )
        for label, name, color, hatch, ks in classes:
            te_s, te_w = test.of_class(label)
            tr_s, tr_w = train.of_class(label)
            te, _ = _density(te_s, te_w, edges)
            tr, tr_err = _density(tr_s, tr_w, edges)
            ax.stairs(
                te,
                edges,
                fill=hatch is None,
                alpha=0.35 if hatch is None else 1.0,
                color=color,
                hatch=hatch,
                label=f"{name} (test)",
            )
            ax.stairs(te, edges, color=color, linewidth=1.5)
            ax.errorbar(
                centres,
                tr,
                yerr=tr_err,
                fmt="o",
                markersize=4,
                color=color,
                label=f"{name} (train), KS p = {ks.pvalue:.3f}",
            )
        ax.set_xlim(lo, hi)
        ax.set_ylim(0, max(ax.get_ylim()[1], 1e-9) * 1.5)
        ax.set_xlabel("Classifier score")
        ax.set_ylabel("Normalised density")
        ax.legend(
            fontsize="x-small",
            ncol=2,
            loc="upper center",
            title=model or None,
            title_fontsize="small",
        )
        experiment_label(ax, rlabel)
        save_figure(fig, output)


def plot_importances(
    importances: Mapping[str, float],
    output: str,
    title: str,
    *,
    errors: Mapping[str, float] | None = None,
    xlabel: str = "AUC drop when permuted",
    rlabel: str = "",
) -> None:
    """Horizontal bars of feature importances, the most important feature at the top.

    Args:
        importances: ``{feature: importance}`` (e.g. the mean AUC drop of
            :func:`thetaflow.ml.metrics.permutation_importance`).
        output: PNG path.
        title: figure title (e.g. the model name), above the experiment label.
        errors: optional ``{feature: uncertainty}`` drawn as error bars.
        xlabel: label of the importance axis.
        rlabel: text at the top right of the axes.
    """
    ordered = sorted(importances.items(), key=lambda kv: kv[1])  # barh draws bottom-up
    names = [k for k, _ in ordered]
    values = np.array([v for _, v in ordered], dtype=float)
    xerr = None if errors is None else np.array([errors.get(k, 0.0) for k in names], dtype=float)
    with plt.style.context(mplhep.style.ROOT):
        fig, ax = plt.subplots(figsize=(10, max(4.0, 1.5 + 0.5 * len(names))))
        ax.barh(np.arange(len(names)), values, xerr=xerr, color=CLASS_COLORS[0], alpha=0.8)
        ax.set_yticks(np.arange(len(names)), names)
        ax.tick_params(axis="y", which="minor", left=False, right=False)
        ax.axvline(0.0, color="black", linewidth=1)
        ax.set_xlabel(xlabel)
        fig.suptitle(title, y=1.0, va="bottom", fontsize="medium")
        experiment_label(ax, rlabel)
        save_figure(fig, output)


def plot_comparison(
    table: pd.DataFrame,
    output: str,
    *,
    best_single_feature_auc: float | None = None,
    best_single_feature: str = "best single feature",
    rlabel: str = "test set",
) -> None:
    """Grouped bars per model: AUC and signal efficiency at 1 % and 10 % background efficiency.

    Args:
        table: :func:`thetaflow.ml.metrics.metrics_table` output (columns ``model``,
            ``auc``, ``sig_eff_at_1pct``, ``sig_eff_at_10pct``); bars follow its row order.
        output: PNG path.
        best_single_feature_auc: if given, drawn as a horizontal line, the baseline a
            classifier's AUC has to beat.
        best_single_feature: name of that feature, for the legend.
        rlabel: text at the top right of the axes.
    """
    metrics = (
        ("auc", "AUC"),
        ("sig_eff_at_1pct", r"$\varepsilon_S$ at $\varepsilon_B$ = 1 %"),
        ("sig_eff_at_10pct", r"$\varepsilon_S$ at $\varepsilon_B$ = 10 %"),
    )
    models = [str(m) for m in table["model"]]
    x = np.arange(len(models))
    width = 0.8 / len(metrics)
    with plt.style.context(mplhep.style.ROOT):
        fig, ax = plt.subplots(figsize=(max(8.0, 2.0 + 1.6 * len(models)), 8))
        for i, (column, label) in enumerate(metrics):
            values = table[column].to_numpy(dtype=float)
            bars = ax.bar(x + (i - 1) * width, values, width, label=label)
            ax.bar_label(bars, fmt="%.3f", fontsize="xx-small", padding=2)
        if best_single_feature_auc is not None:
            ax.axhline(
                best_single_feature_auc,
                color="black",
                linestyle="--",
                linewidth=1.5,
                label=f"AUC of {best_single_feature} ({best_single_feature_auc:.3f})",
            )
        crowded = len(models) > 4
        ax.set_xticks(x, models, rotation=30 if crowded else 0, ha="right" if crowded else "center")
        ax.tick_params(axis="x", which="minor", bottom=False, top=False)
        ax.set_xlim(-0.6, len(models) - 0.4)
        ax.set_ylim(0.0, 1.35)
        ax.set_ylabel("Value")
        ax.legend(fontsize="small", ncol=2, loc="upper left")
        experiment_label(ax, rlabel)
        save_figure(fig, output)


def plot_mass_comparison(
    masses: Mapping[str, np.ndarray],
    weights: np.ndarray,
    output: str,
    *,
    summaries: Mapping[str, tuple[float, float]],
    bins: int = 50,
    mass_range: tuple[float, float] = (0.0, 250.0),
    rlabel: str = "signal, out-of-fold",
) -> None:
    """Normalised signal m_bb distributions, e.g. before and after the b-jet regression.

    ``summaries`` gives each curve's (peak in GeV, relative resolution), quoted in the legend.
    """
    with plt.style.context(mplhep.style.ROOT):
        fig, ax = plt.subplots(figsize=(10, 8))
        edges = np.linspace(*mass_range, bins + 1)
        for name, mass in masses.items():
            counts, _ = np.histogram(mass, edges, weights=weights)
            peak, resolution = summaries[name]
            mplhep.histplot(
                counts / counts.sum(),
                edges,
                ax=ax,
                histtype="step",
                linewidth=2,
                label=f"{name}: peak {peak:.1f} GeV, σ/m {100 * resolution:.1f} %",
            )
        ax.set_xlabel(r"$m_{bb}$ [GeV]")
        ax.set_ylabel("Fraction of events / bin")
        ax.set_xlim(*mass_range)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.3)
        ax.legend(fontsize="small", loc="upper right")
        experiment_label(ax, rlabel)
        save_figure(fig, output)
