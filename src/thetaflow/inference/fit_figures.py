"""Pre- and post-fit distributions of every region in the analysis' own style.

One figure per fit stage, one panel (with its data/MC ratio) per region of the model, drawn
by :func:`.plotting.stack.data_mc_panels` like the control plots: the processes' labels and
colours from the sample list, the signal stacked on top, the model's total uncertainty
(pre-fit: every nuisance parameter at its prior; post-fit: from the fit's covariance) as the
band, and the experiment label with the luminosity. cabinetry's own data/MC figures are not
used: they know neither the sample list's labels and colours nor the signal's place in the
stack. Regions binned with variable-width equal-signal bins are drawn against the bin
number, where every bin is readable; uniform bins against the observable itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import mplhep
import numpy as np

from thetaflow.plotting.stack import ProcessStyle, StackEntry, data_mc_panels, panel_grid
from thetaflow.plotting.style import experiment_label, save_figure


class RegionAxis(NamedTuple):
    """The x axis of one region's panel: its edges and label."""

    edges: np.ndarray
    label: str


def region_axis(region: Mapping[str, Any], strategy: str) -> RegionAxis:
    """The axis of a cabinetry region: its binning, or the bin number for equal-signal bins."""
    edges = np.asarray(region["Binning"], dtype=float)
    if strategy == "uniform":
        return RegionAxis(edges, region["Variable"])
    return RegionAxis(
        np.arange(len(edges), dtype=float), f"{region['Variable']}: bin number (equal-signal bins)"
    )


def plot_regions(
    prediction: Any,
    data: Sequence[float],
    axes: Mapping[str, RegionAxis],
    styles: Mapping[str, ProcessStyle],
    stage: str,
    lumi_label: str,
    output: str,
) -> None:
    """Draw the ``prediction`` (cabinetry's ``ModelPrediction``) of every region against
    ``data`` (main data first, as pyhf orders it) to ``output``; ``stage`` ("pre-fit",
    "post-fit") names the uncertainty band."""
    model = prediction.model
    channels = list(model.config.channels)
    with plt.style.context(mplhep.style.ROOT):
        fig, panels = panel_grid(len(channels))
        for (ax, rax), channel in zip(panels, channels, strict=True):
            c = model.config.channels.index(channel)
            entries = []
            for s, sample in enumerate(model.config.samples):
                values = np.asarray(prediction.model_yields[c][s], dtype=float)
                if values.sum() > 0:  # absent from this region
                    style = styles.get(sample, ProcessStyle(sample, None, False))
                    entries.append(StackEntry(style.label, style.color, values, style.is_signal))
            axis = axes[channel]
            data_mc_panels(
                ax,
                rax,
                axis.edges,
                entries,
                np.asarray(prediction.total_stdev_model_bins[c][-1], dtype=float),
                f"{stage} uncertainty",
                np.asarray(data[model.config.channel_slices[channel]], dtype=float),
                "Pseudo-data",
                log_y=_spans_decades(entries),
            )
            rax.set_xlabel(axis.label)
            ax.legend(fontsize="small", ncol=2, loc="upper right", title=f"{channel}, {stage}")
            experiment_label(ax, lumi_label)
        save_figure(fig, output)


def _spans_decades(entries: Sequence[StackEntry]) -> bool:
    """Whether the stacked yields of a region vary over more than a factor 50 between bins
    (a classifier's score: the signal-rich bins are then drawn on a log axis)."""
    total = sum((e.values for e in entries), np.zeros(1))
    filled = np.asarray(total)[np.asarray(total) > 0]
    return len(filled) > 1 and filled.max() > 50 * filled.min()
