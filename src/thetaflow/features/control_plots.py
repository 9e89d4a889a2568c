"""Control plots: stacked backgrounds, signal and pseudo-data per feature (hist + mplhep).

Each plot has a data/MC ratio panel with the MC statistical uncertainty as a band, a
signal line scaled by ``plots.signal_scale`` on top of the stack, and the luminosity label.
Histograms are ``hist`` objects with a process category axis, filled once per sample.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast

import hist
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mplhep
import numpy as np
import pandas as pd

from thetaflow.core.io import read_table
from thetaflow.core.samples import Sample, load_samples, main_data_sample
from thetaflow.features.compute import FEATURES
from thetaflow.plotting.style import experiment_label, save_figure

log = logging.getLogger(__name__)


def feature_histograms(tables: Mapping[str, pd.DataFrame], feature: str) -> hist.Hist:
    """Weighted histogram of ``feature`` with one category per sample (flow bins kept)."""
    spec = FEATURES[feature]
    n, lo, hi = spec.bins
    h = hist.Hist(
        hist.axis.StrCategory(list(tables), name="process"),
        hist.axis.Regular(n, lo, hi, name=feature, label=spec.label),
        storage=hist.storage.Weight(),
    )
    for name, df in tables.items():
        h.fill(process=name, **{feature: df[feature].to_numpy()}, weight=df["weight"].to_numpy())
    return h


def _process(h: hist.Hist, name: str) -> hist.Hist:
    """The histogram of one process of ``h`` (hist types a selection as ``Hist | float``)."""
    return cast(hist.Hist, h[{"process": name}])


def _variances(h: hist.Hist) -> np.ndarray:
    """Σw² per bin: Weight storage always has them; hist types them as optional."""
    variances = h.variances()
    if variances is None:
        raise ValueError("a histogram without Weight storage has no variances")
    return variances


def plot_feature(
    h: hist.Hist,
    feature: str,
    samples: Mapping[str, Sample],
    *,
    lumi_fb: float,
    sqrt_s_tev: float,
    signal_scale: float,
    output: str,
) -> None:
    """Draw one control plot from ``h`` (made by :func:`feature_histograms`) to ``output``."""
    names = list(h.axes["process"])
    backgrounds = [s for s in names if samples[s].kind == "background"]
    signals = [s for s in names if samples[s].kind == "signal"]
    data = [s for s in names if samples[s].is_data]
    # order the stack by yield so the largest background sits at the bottom
    backgrounds.sort(key=lambda s: _process(h, s).values().sum())
    plt.style.use(mplhep.style.ROOT)
    fig, (ax, rax) = plt.subplots(
        2, 1, figsize=(10, 9), sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05}
    )
    edges = h.axes[feature].edges
    stack = [_process(h, s) for s in backgrounds + signals]
    if stack:
        mplhep.histplot(
            stack,
            ax=ax,
            stack=True,
            histtype="fill",
            label=[samples[s].label for s in backgrounds + signals],
            color=[samples[s].spec.get("color") for s in backgrounds + signals],
        )
    mc_vals = sum((x.values() for x in stack), np.zeros(len(edges) - 1))
    mc_var = sum((_variances(x) for x in stack), np.zeros(len(edges) - 1))
    for s in signals:
        sig = _process(h, s)
        mplhep.histplot(
            sig.values() * signal_scale,
            edges,
            ax=ax,
            histtype="step",
            color=samples[s].spec.get("color"),
            linestyle="--",
            label=f"{samples[s].label} × {signal_scale:g}",
        )
    mc_err = np.sqrt(mc_var)
    ax.stairs(
        mc_vals + mc_err,
        edges,
        baseline=mc_vals - mc_err,
        fill=True,
        hatch="///",
        alpha=0.0,
        label="MC stat. unc.",
    )
    if data:
        d = sum((_process(h, s).values() for s in data), np.zeros(len(edges) - 1))
        mplhep.histplot(
            d,
            edges,
            ax=ax,
            histtype="errorbar",
            yerr=np.sqrt(d),
            color="black",
            label=" + ".join(samples[s].label for s in data),
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(mc_vals > 0, d / mc_vals, np.nan)
            ratio_err = np.where(mc_vals > 0, np.sqrt(d) / mc_vals, np.nan)
            band = np.where(mc_vals > 0, mc_err / mc_vals, 0.0)
        mplhep.histplot(ratio, edges, ax=rax, histtype="errorbar", yerr=ratio_err, color="black")
        rax.stairs(1 + band, edges, baseline=1 - band, fill=True, color="grey", alpha=0.3)
    ax.set_xlabel("")
    rax.axhline(1.0, color="grey", linestyle=":")
    rax.set_ylim(0.5, 1.5)
    rax.set_ylabel("Data / MC")
    rax.set_xlabel(FEATURES[feature].label)
    ax.set_ylabel("Events / bin")
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(0, max(ax.get_ylim()[1], 1.0) * 1.35)
    ax.legend(fontsize="small", ncol=2, loc="upper right")
    experiment_label(ax, f"{lumi_fb:g} fb$^{{-1}}$ ({sqrt_s_tev:g} TeV)")
    save_figure(fig, output)


def control_plots(
    config: Mapping, feature_files: Mapping[str, str], outputs: Sequence[str]
) -> None:
    """Workflow entry point: one control plot per configured feature, nominal variation.

    ``feature_files`` maps each sample to its nominal feature parquet; ``outputs`` are the
    plot paths, one per feature, named ``<feature>.png``.
    """
    samples = load_samples(config)
    # the stack is the known physics; only the main data sample is compared with it
    # (a pseudo-data set with a BSM process injected, or the BSM process itself, is not)
    shown = {s.name for s in samples.values() if s.is_standard_model_mc} | {
        main_data_sample(config, samples)
    }
    tables = {
        name: read_table(path, columns=list(config["features"]) + ["weight"])
        for name, path in feature_files.items()
        if name in shown
    }
    for output in outputs:
        feature = Path(output).stem
        h = feature_histograms(tables, feature)
        plot_feature(
            h,
            feature,
            samples,
            lumi_fb=config["analysis"]["lumi_fb"],
            sqrt_s_tev=config["analysis"]["sqrt_s_tev"],
            signal_scale=config["plots"]["signal_scale"],
            output=output,
        )
        log.info("control plot %s", output)
