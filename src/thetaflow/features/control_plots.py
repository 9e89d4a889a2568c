"""Control plots: stacked backgrounds, signal and pseudo-data per feature (hist + mplhep), in a
panel per analysis region when the config has regions, and per fit process (a sample split
by truth, Z+jets into Z+hf and Z+lf, is drawn as its processes).

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
from thetaflow.core.regions import REGION_COLUMN, analysis_regions
from thetaflow.core.samples import (
    PROCESS_TRUTH_COLUMNS,
    Sample,
    load_samples,
    main_data_sample,
    process_masks,
)
from thetaflow.features.compute import FEATURES
from thetaflow.plotting.stack import (
    ProcessStyle,
    StackEntry,
    data_mc_panels,
    panel_grid,
    process_styles,
)
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
    panels: Mapping[str, hist.Hist],
    feature: str,
    styles: Mapping[str, ProcessStyle],
    *,
    data_label: str,
    lumi_fb: float,
    sqrt_s_tev: float,
    signal_scale: float,
    output: str,
) -> None:
    """Draw one control plot to ``output``: a panel per region (a single unnamed one without
    regions), each from a histogram made by :func:`feature_histograms` whose categories are
    fit processes (drawn with ``styles``) and the data (every other category)."""
    plt.style.use(mplhep.style.ROOT)
    fig, axes = panel_grid(len(panels))
    for (ax, rax), (region, h) in zip(axes, panels.items(), strict=True):
        names = list(h.axes["process"])
        simulated = [p for p in names if p in styles]
        data = [p for p in names if p not in styles]
        edges = h.axes[feature].edges
        mc_var = sum((_variances(_process(h, p)) for p in simulated), np.zeros(len(edges) - 1))
        data_mc_panels(
            ax,
            rax,
            edges,
            [
                StackEntry(
                    styles[p].label, styles[p].color, _process(h, p).values(), styles[p].is_signal
                )
                for p in simulated
            ],
            np.sqrt(mc_var),
            "MC stat. unc.",
            sum((_process(h, p).values() for p in data), np.zeros(len(edges) - 1))
            if data
            else None,
            data_label,
        )
        for p in (p for p in simulated if styles[p].is_signal):
            mplhep.histplot(
                _process(h, p).values() * signal_scale,
                edges,
                ax=ax,
                histtype="step",
                color=styles[p].color,
                linestyle="--",
                label=f"{styles[p].label} × {signal_scale:g}",
            )
        rax.set_xlabel(FEATURES[feature].label)
        ax.legend(fontsize="small", ncol=2, loc="upper right", title=region or None)
        experiment_label(ax, f"{lumi_fb:g} fb$^{{-1}}$ ({sqrt_s_tev:g} TeV)")
    save_figure(fig, output)


def process_tables(
    tables: Mapping[str, pd.DataFrame], samples: Mapping[str, Sample], region: str | None
) -> dict[str, pd.DataFrame]:
    """The events of ``region`` (all without) per fit process of the simulated samples (a
    sample split by truth gives one table per process), and per data sample."""
    out = {}
    for name, table in tables.items():
        if region is not None:
            table = table[table[REGION_COLUMN].to_numpy() == region]
        sample = samples[name]
        if len(sample.fit_processes) == 1:  # data, or a sample that is one process
            out[sample.fit_processes[0].name] = table
            continue
        masks = process_masks(sample, {c: table[c].to_numpy() for c in PROCESS_TRUTH_COLUMNS})
        out |= {process: table[mask] for process, mask in masks.items()}
    return out


def control_plots(
    config: Mapping, feature_files: Mapping[str, str], outputs: Sequence[str]
) -> None:
    """Workflow entry point: one control plot per configured feature, nominal variation, with
    a panel per analysis region when the config has ``regions:``.

    ``feature_files`` maps each sample to its nominal feature parquet; ``outputs`` are the
    plot paths, one per feature, named ``<feature>.png``.
    """
    samples = load_samples(config)
    # the stack is the known physics; only the main data sample is compared with it
    # (a pseudo-data set with a BSM process injected, or the BSM process itself, is not)
    data_sample = main_data_sample(config, samples)
    shown = {s.name for s in samples.values() if s.is_standard_model_mc} | {data_sample}
    regions = [r.name for r in analysis_regions(config)] if "regions" in config else [None]
    split = any(len(samples[n].fit_processes) > 1 for n in shown if n is not None)
    labels = ([REGION_COLUMN] if regions != [None] else []) + (
        list(PROCESS_TRUTH_COLUMNS) if split else []
    )
    tables = {
        name: read_table(path, columns=[*config["features"], "weight", *labels])
        for name, path in feature_files.items()
        if name in shown
    }
    per_region = {region or "": process_tables(tables, samples, region) for region in regions}
    styles = process_styles(samples)
    for output in outputs:
        feature = Path(output).stem
        plot_feature(
            {region: feature_histograms(t, feature) for region, t in per_region.items()},
            feature,
            styles,
            data_label=samples[data_sample].label if data_sample else "",
            lumi_fb=config["analysis"]["lumi_fb"],
            sqrt_s_tev=config["analysis"]["sqrt_s_tev"],
            signal_scale=config["plots"]["signal_scale"],
            output=output,
        )
        log.info("control plot %s", output)
