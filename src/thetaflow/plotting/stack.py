"""The data/MC figure of the analysis: stacked processes, an uncertainty band, data points and
a data/MC ratio panel, shared by the control plots and the pre-/post-fit distributions so both
look alike (labels and colours from the sample list, signal stacked on top, the experiment
label with the luminosity)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import matplotlib.pyplot as plt
import mplhep
import numpy as np
from matplotlib.figure import Figure

from thetaflow.core.samples import Sample


class ProcessStyle(NamedTuple):
    """How a fit process is drawn: legend label, colour, whether it is signal."""

    label: str
    color: str | None
    is_signal: bool


def process_styles(samples: Mapping[str, Sample]) -> dict[str, ProcessStyle]:
    """The style of every fit process of the sample list's signal and background samples."""
    return {
        process.name: ProcessStyle(
            process.label, process.color or sample.color, sample.kind == "signal"
        )
        for sample in samples.values()
        if sample.is_standard_model_mc
        for process in sample.fit_processes
    }


@dataclass(frozen=True)
class StackEntry:
    """One stacked process: its legend label, colour (None: the style's next) and yields."""

    label: str
    color: str | None
    values: np.ndarray
    is_signal: bool


#: Panels per row of a figure with one data/MC panel per region.
PANELS_PER_ROW = 3


def panel_grid(n: int) -> tuple[Figure, list[tuple[plt.Axes, plt.Axes]]]:
    """A figure of ``n`` data/MC panels, :data:`PANELS_PER_ROW` per row, each a main axis
    over its ratio axis (sharing x), with room between the rows for the axis labels."""
    columns = min(n, PANELS_PER_ROW)
    rows = -(-n // columns)
    fig = plt.figure(figsize=(10 * columns, 9 * rows))
    outer = fig.add_gridspec(rows, columns, hspace=0.25, wspace=0.25)
    panels = []
    for k in range(n):
        inner = outer[divmod(k, columns)].subgridspec(2, 1, height_ratios=[3, 1], hspace=0.05)
        ax = fig.add_subplot(inner[0])
        panels.append((ax, fig.add_subplot(inner[1], sharex=ax)))
    return fig, panels


def stack_order(entries: Sequence[StackEntry]) -> list[StackEntry]:
    """Bottom to top: the backgrounds by total yield, largest first, then the signals, so
    the signal sits on top of the stack."""
    backgrounds = sorted((e for e in entries if not e.is_signal), key=lambda e: -e.values.sum())
    return backgrounds + [e for e in entries if e.is_signal]


def data_mc_panels(
    ax: plt.Axes,
    rax: plt.Axes,
    edges: np.ndarray,
    entries: Sequence[StackEntry],
    error: np.ndarray,
    error_label: str,
    data: np.ndarray | None,
    data_label: str,
    log_y: bool = False,
) -> np.ndarray:
    """Draw the stack of ``entries`` (in :func:`stack_order`), the band total ± ``error``,
    the data with Poisson errors and the data/MC ratio; returns the stacked total.
    ``log_y``: a logarithmic count axis (for yields spanning decades, as a score's bins)."""
    ordered = stack_order(entries)
    total = sum((e.values for e in ordered), np.zeros(len(edges) - 1))
    if ordered:
        mplhep.histplot(
            [e.values for e in ordered],
            edges,
            ax=ax,
            stack=True,
            histtype="fill",
            label=[e.label for e in ordered],
            color=[e.color for e in ordered],
        )
    ax.stairs(
        total + error,
        edges,
        baseline=total - error,
        fill=True,
        hatch="///",
        alpha=0.0,
        label=error_label,
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        band = np.where(total > 0, error / total, 0.0)
    rax.stairs(1 + band, edges, baseline=1 - band, fill=True, color="grey", alpha=0.3)
    if data is not None:
        mplhep.histplot(
            data,
            edges,
            ax=ax,
            histtype="errorbar",
            yerr=np.sqrt(data),
            color="black",
            label=data_label,
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(total > 0, data / total, np.nan)
            ratio_err = np.where(total > 0, np.sqrt(data) / total, np.nan)
        mplhep.histplot(ratio, edges, ax=rax, histtype="errorbar", yerr=ratio_err, color="black")
    ax.set_xlabel("")
    ax.tick_params(labelbottom=False)  # the ratio panel below carries the x axis
    rax.axhline(1.0, color="grey", linestyle=":")
    rax.set_ylim(0.5, 1.5)
    rax.set_ylabel("Data / MC")
    ax.set_ylabel("Events / bin")
    ax.set_xlim(edges[0], edges[-1])
    if log_y:
        ax.set_yscale("log")
        low = max(float(total[total > 0].min(initial=1.0)) * 0.3, 1e-2)
        ax.set_ylim(low, max(float(total.max()), 1.0) * 200)
    else:
        ax.set_ylim(0, max(ax.get_ylim()[1], 1.0) * 1.35)
    return total
