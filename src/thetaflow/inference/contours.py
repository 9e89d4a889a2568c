"""Two-parameter profile-likelihood scans and their 68 % and 95 % contours.

A measurement of two signal strengths at once (μ_ZH and μ_ZZ) is shown as the region of the
plane where Δ(−2 ln L) stays below 2.30 (68 %) and 5.99 (95 %), the χ² quantiles of two
degrees of freedom. Every grid point is a fit with the two parameters fixed and everything
else profiled; the grid's few hundred fits are made at once by :mod:`.batched_fits` (pyhf's
JAX likelihood, one compiled Newton minimiser for the whole grid) instead of one MINUIT fit
after the other. The minimum the grid is compared with is the same minimiser's free fit, so
Δ(−2 ln L) is exactly zero at the best fit and never negative from a tolerance mismatch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import matplotlib.pyplot as plt
import mplhep
import numpy as np
import pyhf
from scipy import stats

from thetaflow.core.errors import ThetaflowError
from thetaflow.inference.batched_fits import BatchedLikelihood, jax_backend
from thetaflow.inference.fit import load_model
from thetaflow.plotting.style import experiment_label, save_figure

#: Confidence levels of the contours.
CONTOUR_LEVELS = (0.68, 0.95)


class ContourError(ThetaflowError, ValueError):
    """A two-parameter scan cannot be made: the message names the parameters."""


class Scan2D(NamedTuple):
    """Δ(−2 ln L) on a grid of two parameters, everything else profiled."""

    parameters: tuple[str, str]
    bestfit: tuple[float, float]
    x: list[float]
    y: list[float]
    delta: list[list[float]]  # [i][j] at (x[i], y[j]); nan where the fit did not converge
    levels: dict[str, float]  # confidence level -> Δ(−2 ln L) threshold

    def to_json(self) -> dict:
        """One entry of ``scan.json``'s ``scans_2d``."""
        return self._asdict() | {"parameters": list(self.parameters)}


def delta_threshold(level: float) -> float:
    """Δ(−2 ln L) of a two-parameter confidence region at ``level`` (2.30 at 68 %)."""
    return float(stats.chi2.ppf(level, df=2))


def scan_2d(
    workspace_path: str,
    parameters: tuple[str, str],
    ranges: tuple[tuple[float, float], tuple[float, float]],
    n_steps: int,
    par_bounds: Sequence[Sequence[float]],
) -> Scan2D:
    """Δ(−2 ln L) of the observed data on an ``n_steps`` × ``n_steps`` grid over ``ranges``
    of ``parameters``."""
    with jax_backend():  # the batched likelihood needs the model built on JAX
        model, data = load_model(workspace_path)
        return _scan(model, data, parameters, ranges, n_steps, par_bounds)


def _scan(
    model: pyhf.pdf.Model,
    data: Sequence[float],
    parameters: tuple[str, str],
    ranges: tuple[tuple[float, float], tuple[float, float]],
    n_steps: int,
    par_bounds: Sequence[Sequence[float]],
) -> Scan2D:
    names = model.config.par_names
    for name in parameters:
        if name not in names or model.config.param_set(name).n_parameters != 1:
            raise ContourError(
                f"2D scan of {parameters}: '{name}' is not a scalar parameter of the model"
            )
    index = [model.config.par_slice(name).start for name in parameters]
    grid = [np.linspace(low, high, n_steps) for low, high in ranges]
    gx, gy = np.meshgrid(*grid, indexing="ij")
    fitter = BatchedLikelihood(model, par_bounds)
    observed = np.asarray(data, dtype=float)[None, :]
    best = fitter.minimise(observed, fitter.init[None, :], ~fitter.fixed)
    if not best.converged[0]:
        raise ContourError(f"2D scan of {parameters}: the free fit did not converge")
    init = np.repeat(best.x, gx.size, axis=0)
    init[:, index[0]], init[:, index[1]] = gx.ravel(), gy.ravel()
    free = ~fitter.fixed
    free[index] = False
    points = fitter.minimise(np.repeat(observed, gx.size, axis=0), init, free)
    delta = 2 * (points.nll - best.nll[0])
    delta = np.where(points.converged, np.maximum(delta, 0.0), np.nan).reshape(gx.shape)
    return Scan2D(
        parameters,
        (float(best.x[0, index[0]]), float(best.x[0, index[1]])),
        grid[0].tolist(),
        grid[1].tolist(),
        delta.tolist(),
        {f"{level:g}": delta_threshold(level) for level in CONTOUR_LEVELS},
    )


def plot_scan_2d(scan: Scan2D, labels: Mapping[str, str], region: str, output: str) -> None:
    """The 68 % and 95 % contours with the best fit and the nominal point (1, 1): the SM for
    two signal strengths, the simulation's normalisation for a k."""
    x, y = np.asarray(scan.x), np.asarray(scan.y)
    delta = np.asarray(scan.delta, dtype=float).T  # contour wants [row = y][column = x]
    with plt.style.context(mplhep.style.ROOT):
        fig, ax = plt.subplots(figsize=(8, 7))
        styles = {"0.68": "-", "0.95": "--"}
        for level, threshold in scan.levels.items():
            ax.contour(x, y, delta, levels=[threshold], colors="black", linestyles=styles[level])
            ax.plot([], [], color="black", linestyle=styles[level], label=f"{float(level):.0%} CL")
        ax.plot(
            *scan.bestfit, marker="+", color="black", markersize=14, linestyle="", label="best fit"
        )
        ax.plot(
            1.0,
            1.0,
            marker="*",
            color="#d62728",
            markersize=14,
            linestyle="",
            label="nominal (1, 1)",
        )
        a, b = scan.parameters
        ax.set_xlabel(labels.get(a, a))
        ax.set_ylabel(labels.get(b, b))
        ax.legend(loc="best", fontsize="small")
        experiment_label(ax, region if len(region) < 24 else "")
        save_figure(fig, output)
