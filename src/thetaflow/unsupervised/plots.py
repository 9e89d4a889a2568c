"""Figures of the unsupervised stage: anomaly score, blind search, PCA and clustering.

One function per figure; each takes results already computed by
:mod:`thetaflow.unsupervised.autoencoder`, :mod:`thetaflow.unsupervised.evaluation`,
:mod:`thetaflow.unsupervised.blind_search` or :mod:`thetaflow.unsupervised.diagnostics`, draws
in the mplhep ROOT style and writes a PNG atomically.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mplhep  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from thetaflow.plotting.style import experiment_label, save_figure  # noqa: E402
from thetaflow.unsupervised.autoencoder import error_ratio  # noqa: E402
from thetaflow.unsupervised.tails import TailResult, tail_efficiency  # noqa: E402


def plot_score_distributions(
    score: np.ndarray,
    weight: np.ndarray,
    processes: Mapping[str, np.ndarray],
    output: str,
    colors: Sequence[str | None] = (),
) -> None:
    """Normalised distributions of e/e_ref = score/(1 − score) per process, log axes."""
    ratio = error_ratio(score)
    positive = ratio[ratio > 0]
    lo = max(float(np.quantile(positive, 0.001)), 1e-3) if len(positive) else 1e-3
    hi = max(float(ratio.max()), lo * 10)
    edges = np.geomspace(lo, hi, 50)
    with plt.style.context(mplhep.style.ROOT):
        fig, ax = plt.subplots(figsize=(10, 8))
        for i, (name, mask) in enumerate(processes.items()):
            if not mask.any():
                continue
            h, _ = np.histogram(np.clip(ratio[mask], lo, hi), edges, weights=np.abs(weight[mask]))
            ax.stairs(
                h / max(h.sum(), 1e-300),
                edges,
                label=name,
                linewidth=2,
                color=colors[i] if i < len(colors) else None,
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(
            r"reconstruction error / training median ($\mathrm{score}/(1-\mathrm{score})$)"
        )
        ax.set_ylabel("Fraction of events")
        ax.legend(fontsize="small")
        experiment_label(ax, "autoencoder, out-of-fold")
        save_figure(fig, output)


def plot_feature_errors(errors: pd.DataFrame, output: str) -> None:
    """Mean squared reconstruction error per feature in units of its mean on the training
    (validation) events (bars), per event group: above 1, the feature makes them anomalous."""
    with plt.style.context(mplhep.style.ROOT):
        fig, ax = plt.subplots(figsize=(12, 9))
        n = len(errors.columns)
        y = np.arange(len(errors.index))
        for i, col in enumerate(errors.columns):
            ax.barh(
                y + (i - (n - 1) / 2) * 0.8 / n, errors[col].to_numpy(), height=0.8 / n, label=col
            )
        ax.set_yticks(y, errors.index, fontsize="x-small")
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.axvline(1.0, color="grey", linestyle=":")
        ax.set_xlabel("mean squared reconstruction error / its mean on training events")
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        experiment_label(ax, "autoencoder")
        save_figure(fig, output)


def plot_blind_search(results: Sequence[TailResult], output: str) -> None:
    """Observed local significance per discriminant and pseudo-data set; expected as markers."""
    discs = list(dict.fromkeys(r.discriminant for r in results))
    datas = list(dict.fromkeys(r.data for r in results))
    with plt.style.context(mplhep.style.ROOT):
        fig, ax = plt.subplots(figsize=(12, 8))
        x = np.arange(len(discs))
        width = 0.8 / max(len(datas), 1)
        for i, data in enumerate(datas):
            z = [
                next(
                    (
                        r.observed_significance
                        for r in results
                        if r.discriminant == d and r.data == data
                    ),
                    np.nan,
                )
                for d in discs
            ]
            ax.bar(
                x + (i - (len(datas) - 1) / 2) * width,
                np.clip(z, -5, None),
                width,
                label=f"observed, {data}",
            )
        expected = [
            next((r.expected_significance for r in results if r.discriminant == d), np.nan)
            for d in discs
        ]
        ax.plot(
            x,
            expected,
            "k_",
            markersize=30,
            markeredgewidth=3,
            label="expected from the simulated BSM process",
        )
        for level in (3, 5):
            ax.axhline(level, color="grey", linestyle=":")
        ax.set_xticks(x, discs, rotation=30, ha="right")
        ax.set_ylabel("local significance Z in the tail")
        eff = results[0].tail_efficiency if results else float("nan")
        ax.legend(
            fontsize="small", title=f"tail: {eff:g} of the expected SM", title_fontsize="small"
        )
        experiment_label(ax, "blind search")
        save_figure(fig, output)


def plot_tails(
    frames: Mapping[str, Mapping[str, pd.DataFrame]],
    sm: Sequence[str],
    bsm: Sequence[str],
    data: Sequence[str],
    headline: float,
    output: str,
    labels: Mapping[str, str],
) -> None:
    """Per discriminant: events vs −log₁₀ of the SM tail efficiency at their score.

    The x axis puts every discriminant on the same footing (an SM-expected spectrum falling
    by a decade per unit); the expected SM (with its MC statistical band), the simulated BSM
    process stacked on it, and the pseudo-data sets as points; the dashed line is the
    headline tail.
    """
    n = len(frames)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    edges = np.linspace(0.0, 4.0, 17)
    with plt.style.context(mplhep.style.ROOT):
        fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 5.5 * rows), squeeze=False)
        fig.subplots_adjust(hspace=0.45, wspace=0.3)

        def hist(
            frame: pd.DataFrame, rs: np.ndarray, rw: np.ndarray, weighted: bool = True
        ) -> tuple[np.ndarray, np.ndarray]:
            """(Σw, Σw²) per bin of −log₁₀ SM tail efficiency, the SM reference (rs, rw)."""
            x = -np.log10(np.clip(tail_efficiency(frame["score"].to_numpy(), rs, rw), 1e-4, 1.0))
            x = np.clip(x, 0, edges[-1] - 1e-9)
            w = frame["weight"].to_numpy() if weighted else np.ones(len(frame))
            return np.histogram(x, edges, weights=w)[0], np.histogram(x, edges, weights=w**2)[0]

        for i_ax, (ax, (disc, read)) in enumerate(zip(axes.ravel(), frames.items(), strict=False)):
            ref = pd.concat([read[s] for s in sm], ignore_index=True)
            rs, rw = ref["score"].to_numpy(), ref["weight"].to_numpy()
            expected, variance = hist(ref, rs, rw)
            ax.stairs(expected, edges, color="tab:blue", label="expected SM")
            ax.stairs(
                expected + np.sqrt(variance),
                edges,
                baseline=expected - np.sqrt(variance),
                fill=True,
                color="tab:blue",
                alpha=0.3,
            )
            if bsm:
                extra = hist(pd.concat([read[s] for s in bsm], ignore_index=True), rs, rw)[0]
                ax.stairs(
                    expected + extra,
                    edges,
                    baseline=expected,
                    fill=True,
                    color="tab:red",
                    alpha=0.4,
                    label=" + ".join(labels[s] for s in bsm),
                )
            centres = 0.5 * (edges[1:] + edges[:-1])
            for i, d in enumerate(data):
                counts = hist(read[d], rs, rw, weighted=False)[0]
                ax.errorbar(
                    centres + 0.04 * i,
                    counts,
                    yerr=np.sqrt(counts),
                    fmt="o",
                    markersize=3,
                    label=labels[d],
                )
            ax.axvline(-math.log10(headline), color="black", linestyle="--")
            ax.set_yscale("log")
            ax.set_ylim(bottom=0.1)
            ax.set_title(disc, fontsize="medium")
            ax.set_xlabel(r"$-\log_{10}$ SM tail efficiency", fontsize="small")
            ax.set_ylabel("Events", fontsize="small")
            if i_ax == 0:
                ax.legend(fontsize="xx-small", loc="upper right")
        for ax in axes.ravel()[n:]:
            ax.set_visible(False)
        save_figure(fig, output)


def plot_scree(ratio: np.ndarray, output: str) -> None:
    """Explained variance ratio per component (bars) and cumulative (line)."""
    with plt.style.context(mplhep.style.ROOT):
        fig, ax = plt.subplots(figsize=(10, 7))
        x = np.arange(1, len(ratio) + 1)
        ax.bar(x, ratio, label="per component")
        ax.plot(x, np.cumsum(ratio), "o-", color="black", label="cumulative")
        ax.axhline(0.9, color="grey", linestyle=":")
        ax.set_xlabel("principal component")
        ax.set_ylabel("explained variance ratio")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize="small")
        experiment_label(ax, "PCA, training folds")
        save_figure(fig, output)


def plot_pca_projections(
    shown: Mapping[str, tuple[np.ndarray, str | None]], ratio: np.ndarray, output: str
) -> None:
    """PC1 and PC2 distributions per process and their scatter (held-out fold)."""
    with plt.style.context(mplhep.style.ROOT):
        fig, axes = plt.subplots(1, 3, figsize=(24, 8))
        allp = np.concatenate([p for p, _ in shown.values()]) if shown else np.zeros((0, 2))
        for j in range(2):
            lo, hi = np.quantile(allp[:, j], [0.002, 0.998]) if len(allp) else (0, 1)
            edges = np.linspace(lo, hi, 41)
            for name, (p, color) in shown.items():
                axes[j].hist(
                    np.clip(p[:, j], lo, hi),
                    edges,
                    density=True,
                    histtype="step",
                    linewidth=2,
                    label=name,
                    color=color,
                )
            axes[j].set_xlabel(f"PC{j + 1} ({100 * ratio[j]:.1f} % of variance)")
            axes[j].set_ylabel("density")
        for name, (p, color) in shown.items():
            axes[2].scatter(p[:, 0], p[:, 1], s=3, alpha=0.4, label=name, color=color)
        if len(allp):
            axes[2].set_xlim(*np.quantile(allp[:, 0], [0.002, 0.998]))
            axes[2].set_ylim(*np.quantile(allp[:, 1], [0.002, 0.998]))
        axes[2].set_xlabel("PC1")
        axes[2].set_ylabel("PC2")
        axes[0].legend(fontsize="x-small")
        experiment_label(axes[0], "held-out fold")
        save_figure(fig, output)


def plot_loadings(components: np.ndarray, features: Sequence[str], output: str) -> None:
    """Heat map of the loadings (eigenvector entries) of the first components."""
    with plt.style.context(mplhep.style.ROOT):
        fig, ax = plt.subplots(figsize=(4 + 1.5 * len(components), 0.45 * len(features) + 3))
        im = ax.imshow(components.T, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
        ax.set_yticks(range(len(features)), features, fontsize="x-small")
        ax.set_xticks(range(len(components)), [f"PC{i + 1}" for i in range(len(components))])
        fig.colorbar(im, ax=ax, label="loading")
        save_figure(fig, output)


def plot_kmeans_selection(
    inertia: Mapping[int, float], silhouette: Mapping[int, float], chosen: int, output: str
) -> None:
    """Elbow (inertia vs k) and silhouette score vs k, the chosen k marked."""
    with plt.style.context(mplhep.style.ROOT):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(16, 7))
        ks = list(inertia)
        a1.plot(ks, [inertia[k] for k in ks], "o-")
        a1.set_xlabel("k")
        a1.set_ylabel("inertia (within-cluster sum of squares)")
        a2.plot(ks, [silhouette[k] for k in ks], "o-")
        a2.set_xlabel("k")
        a2.set_ylabel("silhouette score")
        for ax in (a1, a2):
            ax.axvline(chosen, color="grey", linestyle="--")
        experiment_label(a1, "k-means")
        save_figure(fig, output)


def plot_cluster_composition(comp: pd.DataFrame, title: str, output: str) -> None:
    """Stacked bars: process fractions in each cluster."""
    with plt.style.context(mplhep.style.ROOT):
        fig, ax = plt.subplots(figsize=(max(8, 1.2 * len(comp) + 4), 7))
        bottom = np.zeros(len(comp))
        x = np.arange(len(comp))
        for process in comp.columns:
            values = comp[process].to_numpy()
            ax.bar(x, values, bottom=bottom, label=process)
            bottom += values
        ax.set_xticks(x, [str(c) for c in comp.index])
        ax.set_xlabel("cluster")
        ax.set_ylabel("fraction of events")
        ax.set_ylim(0, 1.3)
        ax.legend(fontsize="x-small", ncol=3, title=title, title_fontsize="small")
        save_figure(fig, output)


def plot_dbscan(
    kdist: np.ndarray,
    eps: float,
    overall: pd.Series,
    noise: pd.Series,
    noise_fraction: float,
    output: str,
) -> None:
    """k-distance curve with ε, and the composition of the noise against the whole subsample."""
    with plt.style.context(mplhep.style.ROOT):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(16, 7))
        a1.plot(np.arange(len(kdist)), kdist)
        a1.axhline(eps, color="grey", linestyle="--", label=f"eps = {eps:.3g}")
        a1.set_xlabel("events, sorted")
        a1.set_ylabel("distance to the min_samples-th neighbour")
        a1.legend(fontsize="small")
        names = list(overall.index)
        x = np.arange(len(names))
        a2.bar(x - 0.2, [overall.get(n, 0.0) for n in names], 0.4, label="all events")
        a2.bar(
            x + 0.2,
            [noise.get(n, 0.0) for n in names],
            0.4,
            label=f"noise ({100 * noise_fraction:.1f} %)",
        )
        a2.set_xticks(x, names, rotation=30, ha="right", fontsize="x-small")
        a2.set_ylabel("fraction")
        a2.legend(fontsize="small")
        experiment_label(a1, "DBSCAN")
        save_figure(fig, output)
