"""Closure and validation of the statistical model: Asimov fits, toy pulls, signal injection.

* Asimov: the expected data set at μ = μ₀ (nuisance parameters at their nominal values) must
  give back μ̂ = μ₀ — a check of the model's internal consistency.
* Toys: pseudo-experiments sampled from the model at μ₀, main *and* auxiliary data (so the
  constraints fluctuate too), each fitted with free μ and with μ fixed at μ₀. The pull is the
  signed likelihood-ratio pull sign(μ̂ − μ₀)·√(−2 ln λ(μ₀)): in the Gaussian limit it equals
  (μ̂ − μ₀)/σ̂, and where a few signal-rich bins hold only a handful of events (the best
  classifiers' top bins) it stays standard normal while the Hesse pull does not — σ̂ then
  grows with μ̂, which skews (μ̂ − μ₀)/σ̂ and biases its mean although μ̂ itself is unbiased.
  Both are reported; the likelihood pull should have mean 0 and width 1, and nearly every
  fit should converge. μ's bounds come from config and are wide (−10…10 by default) so
  pulls are not truncated.
* Injection: toys at several μ_inj; the mean μ̂ against μ_inj should lie on the diagonal.

Every free parameter other than μ (the free normalisation factors of a model with control
regions) is set to its injected value, by default its nominal one, in the Asimov data sets
and the toys, and profiled in their fits; the Asimov closure checks each of them comes back.

Toys are sampled with pyhf's own sampler on the NumPy backend (which draws from NumPy's
global generator) seeded from ``inference.closure.seed``, the discriminant and μ₀, so a rerun
gives the same toys.

The toy fits (thousands per discriminant, the most fits of the analysis) are all made at once
by :mod:`.batched_fits`: pyhf's JAX likelihood mapped over the toys and minimised by a batched
Newton method, compiled once per job and shared by every μ₀ of it; the few toys it does not
converge are refitted one at a time by MINUIT. That takes 1,000 toys in seconds where MINUIT
one toy at a time takes minutes, and gives MINUIT's μ̂ and q (tested to 1e-3 σ and 1e-5).
One thread does it: the batch gains nothing measurable from a second core, and the fits are
then the same whatever ``--cores`` is. The other fits stay on NumPy and MINUIT.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import cabinetry
import matplotlib.pyplot as plt
import mplhep
import numpy as np
import pyhf
from scipy import stats

from thetaflow.core.io import write_json
from thetaflow.inference.batched_fits import BatchedLikelihood, fit_toys_batched, jax_backend
from thetaflow.inference.fit import (
    checked_fit,
    free_parameters,
    load_model,
    model_name,
    par_bounds,
)
from thetaflow.inference.model import ModelBuildError, free_parameter_bounds
from thetaflow.plotting.style import experiment_label, save_figure

log = logging.getLogger(__name__)

#: Asimov closure tolerance on |μ̂ − μ₀|.
ASIMOV_TOLERANCE = 1e-3
#: The pull of the toys' headline statistics (see the module docstring).
PULL_DEFINITION = "sign(mu_hat - mu0) * sqrt(-2 ln lambda(mu0))"
#: What ``injection.json`` keeps of each point's :class:`PullStatistics`.
INJECTION_KEYS = (
    "mu_injected",
    "toys",
    "converged",
    "mu_hat_mean",
    "mu_hat_mean_error",
    "mu_hat_std",
)


class AsimovFit(NamedTuple):
    """The fit of the Asimov data set made at μ₀ = ``mu_injected`` (and every other free
    parameter at its injected value: ``free_parameters``, for a model that has others)."""

    mu_injected: float
    mu_fitted: float
    uncertainty: float
    difference: float
    closes: bool  # |μ̂ − μ₀| < ASIMOV_TOLERANCE, and so for every other free parameter
    free_parameters: dict[str, dict[str, float]] | None = None  # name -> injected, fitted, ...

    def to_json(self) -> dict:
        """One entry of ``asimov.json``."""
        result = self._asdict()
        if self.free_parameters is None:
            del result["free_parameters"]
        return result


@dataclass(frozen=True)
class AsimovClosure:
    """The Asimov fits of one discriminant (``asimov.json``)."""

    discriminant: str
    fits: list[AsimovFit]
    tolerance: float = ASIMOV_TOLERANCE

    @property
    def all_close(self) -> bool:
        """Whether every Asimov fit gives back its μ₀."""
        return all(f.closes for f in self.fits)

    def to_json(self) -> dict:
        """The content of ``asimov.json``."""
        return {
            "discriminant": self.discriminant,
            "tolerance": self.tolerance,
            "fits": [f.to_json() for f in self.fits],
            "all_close": self.all_close,
        }


class MeanAndWidth(NamedTuple):
    """Mean and standard deviation of a pull distribution, with their statistical errors."""

    mean: float
    mean_error: float
    width: float
    width_error: float

    def to_json(self) -> dict:
        """The JSON form (keys as the fields)."""
        return self._asdict()


class ParameterPulls(NamedTuple):
    """Toy fits at one μ₀ seen from another free parameter θ (a background normalisation,
    a second signal strength): its Hesse pull (θ̂ − θ₀)/σ̂ and the mean θ̂ against θ₀."""

    injected: float
    converged: int
    pull: MeanAndWidth
    mean: float
    mean_error: float
    std: float

    def to_json(self) -> dict:
        """One entry of a toy point's ``free_parameters``."""
        return {
            "injected": self.injected,
            "converged": self.converged,
            "pull_definition": "(theta_hat - theta0) / sigma_hesse",
            "pull": self.pull.to_json(),
            "mean": self.mean,
            "mean_error": self.mean_error,
            "std": self.std,
        }


def parameter_pulls(rows: np.ndarray, injected: float) -> ParameterPulls:
    """:class:`ParameterPulls` of rows (θ̂, σ̂, usable) of toys made at θ = ``injected``."""
    ok = rows[:, 2].astype(bool)
    value, sigma = rows[ok, 0], rows[ok, 1]
    return ParameterPulls(
        injected=injected,
        converged=int(ok.sum()),
        pull=_mean_and_width((value - injected) / sigma),
        mean=float(np.mean(value)),
        mean_error=float(np.std(value, ddof=1) / np.sqrt(len(value))),
        std=float(np.std(value, ddof=1)),
    )


@dataclass(frozen=True)
class PullStatistics:
    """Toy fits at one μ₀: likelihood (headline) and Hesse pulls, μ̂ and convergence; for a
    model with other free parameters, their pulls too (``free_parameters``)."""

    mu_injected: float
    toys: int
    converged: int
    convergence_rate: float
    pull: MeanAndWidth  # of the likelihood pull
    fraction_within_1sigma: float
    hesse_pull: MeanAndWidth
    mu_hat_mean: float
    mu_hat_mean_error: float
    mu_hat_std: float
    pulls: list[float]
    hesse_pulls: list[float]
    free_parameters: dict[str, ParameterPulls] | None = None

    def to_json(self) -> dict:
        """One entry of ``toys.json``."""
        others = (
            {"free_parameters": {k: v.to_json() for k, v in self.free_parameters.items()}}
            if self.free_parameters
            else {}
        )
        return {
            "mu_injected": self.mu_injected,
            "toys": self.toys,
            "converged": self.converged,
            "convergence_rate": self.convergence_rate,
            "pull_definition": PULL_DEFINITION,
            "pull_mean": self.pull.mean,
            "pull_mean_error": self.pull.mean_error,
            "pull_width": self.pull.width,
            "pull_width_error": self.pull.width_error,
            "fraction_within_1sigma": self.fraction_within_1sigma,
            "hesse_pull": self.hesse_pull.to_json(),
            "mu_hat_mean": self.mu_hat_mean,
            "mu_hat_mean_error": self.mu_hat_mean_error,
            "mu_hat_std": self.mu_hat_std,
            "pulls": self.pulls,
            "hesse_pulls": self.hesse_pulls,
        } | others


@dataclass(frozen=True)
class ToyClosure:
    """The toys of one discriminant at every ``closure.toy_mu`` (``toys.json``)."""

    discriminant: str
    seed: int
    poi_bounds: list[float]
    toys: list[PullStatistics]

    def to_json(self) -> dict:
        """The content of ``toys.json``."""
        return {
            "discriminant": self.discriminant,
            "seed": self.seed,
            "poi_bounds": self.poi_bounds,
            "toys": [row.to_json() for row in self.toys],
        }


@dataclass(frozen=True)
class InjectionScan:
    """Mean fitted μ against the injected one, with its straight-line fit (``injection.json``)."""

    discriminant: str
    points: list[PullStatistics]
    slope: float
    offset: float

    def to_json(self) -> dict:
        """The content of ``injection.json``."""
        return {
            "discriminant": self.discriminant,
            "points": [{k: p.to_json()[k] for k in INJECTION_KEYS} for p in self.points],
            "linear_fit": {"slope": self.slope, "offset": self.offset},
        }


def injected_values(
    model: pyhf.pdf.Model, mu0: float, injected: Mapping[str, float] | None = None
) -> dict[str, float]:
    """The value of every free parameter a closure injects: the POI at ``mu0``, the others as
    ``injected`` gives them (default: their nominal values)."""
    init = model.config.suggested_init()
    values = {
        name: float(init[model.config.par_slice(name).start]) for name in free_parameters(model)
    }
    unknown = sorted(set(injected or {}) - set(values))
    if unknown:
        raise ModelBuildError(
            f"region '{model_name(model)}': no free parameter {', '.join(unknown)} to inject "
            f"(free parameters: {', '.join(values)})"
        )
    return values | dict(injected or {}) | {model.config.poi_name: mu0}


def _set(
    model: pyhf.pdf.Model, pars: Sequence[float] | np.ndarray, values: Mapping[str, float]
) -> list[float]:
    """``pars`` with the named scalar parameters set to ``values``."""
    result = [float(v) for v in pars]
    for name, value in values.items():
        result[model.config.par_slice(name).start] = value
    return result


def asimov_closure(
    config: Mapping,
    workspace_path: str,
    output: str,
    injected: Mapping[str, float] | None = None,
) -> AsimovClosure:
    """Fit the Asimov data set at every ``closure.asimov_mu``; record μ̂ − μ₀, and the same of
    every other free parameter (injected at ``injected``, default nominal) if there are any."""
    inf = config["inference"]
    model, _ = load_model(workspace_path)
    region = model_name(model)
    bounds = par_bounds(model, free_parameter_bounds(inf))
    others = free_parameters(model)[1:]
    rows = []
    for mu0 in inf["closure"]["asimov_mu"]:
        values = injected_values(model, mu0, injected)
        if others:
            pars = _set(model, cabinetry.model_utils.asimov_parameters(model), values)
            asimov = pyhf.tensorlib.tolist(model.expected_data(pars))
        else:
            asimov = cabinetry.model_utils.asimov_data(model, poi_value=mu0)
        # Minuit's default tolerance (EDM < 2e-4) leaves μ̂ up to ~0.02σ from the minimum; the
        # closure is checked to 1e-3, so ask for EDM < 2e-6 (still above machine accuracy)
        # start at μ₀: a step to negative μ can make a signal-rich bin's expectation negative
        init = _set(model, model.config.suggested_init(), values)
        result = checked_fit(
            model,
            asimov,
            f"{region} (Asimov, mu={mu0})",
            par_bounds=bounds,
            init_pars=init,
            tolerance=1e-3,
        )
        i = model.config.poi_index
        fitted = {}
        for name in others:
            k = model.config.par_slice(name).start
            fitted[name] = {
                "injected": values[name],
                "fitted": float(result.bestfit[k]),
                "uncertainty": float(result.uncertainty[k]),
                "difference": float(result.bestfit[k] - values[name]),
            }
        closes = abs(result.bestfit[i] - mu0) < ASIMOV_TOLERANCE and all(
            abs(f["difference"]) < ASIMOV_TOLERANCE for f in fitted.values()
        )
        rows.append(
            AsimovFit(
                mu0,
                float(result.bestfit[i]),
                float(result.uncertainty[i]),
                float(result.bestfit[i] - mu0),
                bool(closes),
                fitted if others else None,
            )
        )
        log.info(
            "%s: Asimov mu=%g -> %.6f ± %.4f", region, mu0, result.bestfit[i], result.uncertainty[i]
        )
    summary = AsimovClosure(region, rows)
    write_json(output, summary.to_json())
    return summary


def toy_seed(seed: int, region: str, mu0: float) -> int:
    """A reproducible 32-bit seed per (config seed, discriminant, injected μ)."""
    return zlib.crc32(f"{seed}:{region}:{mu0:.6g}".encode())


def sample_toys(
    model: pyhf.pdf.Model,
    mu0: float,
    n: int,
    seed: int,
    injected: Mapping[str, float] | None = None,
) -> np.ndarray:
    """``n`` pseudo-experiments (main + auxiliary data) at μ = μ₀, every other free parameter
    at ``injected`` (default: nominal), nuisances nominal; ``model`` must be built on the
    NumPy backend, whose sampler draws from the seeded global generator."""
    pars = np.asarray(model.config.suggested_init(), dtype=float)
    for name, value in injected_values(model, mu0, injected).items():
        pars[model.config.par_slice(name).start] = value
    np.random.seed(seed)
    return np.asarray(model.make_pdf(pyhf.tensorlib.astensor(pars)).sample((n,)))


class ToyPointFits(NamedTuple):
    """The toys of one μ₀: rows (μ̂, σ̂, likelihood pull, usable) as :func:`pull_statistics`
    reads them, and per other free parameter its injected value and rows (θ̂, σ̂, usable)."""

    rows: np.ndarray
    others: dict[str, tuple[float, np.ndarray]]


def fit_toy_points(
    workspace_path: str,
    bounds: Mapping[str, Sequence[float]] | Sequence[float],
    points: Sequence[tuple[float, int]],
    n: int,
    injected: Mapping[str, float] | None = None,
) -> list[ToyPointFits]:
    """Sample and fit ``n`` toys at every (μ₀, seed) of ``points`` (other free parameters at
    ``injected``, default nominal, where the fits also start). ``bounds``: per free
    parameter, or the POI's (low, high). Every point's toys are sampled first, then fitted in
    batches by one compiled likelihood."""
    model, _ = load_model(workspace_path)
    model_bounds = par_bounds(model, bounds)
    samples = [sample_toys(model, mu0, n, seed, injected) for mu0, seed in points]
    out = []
    with jax_backend():
        fitter = BatchedLikelihood(load_model(workspace_path)[0], model_bounds)
        for (mu0, _), toys in zip(points, samples, strict=True):
            start = time.perf_counter()
            init = (
                _set(model, fitter.init, injected_values(model, mu0, injected))
                if injected
                else None
            )
            fits = fit_toys_batched(fitter, toys, mu0, init)
            log.info(
                "mu=%g: %d toys fitted in %.1f s (free + conditional fits), %d refitted by "
                "MINUIT, %d without a usable fit",
                mu0,
                n,
                time.perf_counter() - start,
                int(fits.free.refitted.sum() + fits.fixed.refitted.sum()),
                int((~fits.has_uncertainty).sum()),
            )
            values = injected_values(model, mu0, injected)
            others = {
                name: (values[name], fits.parameter_rows(model.config.par_slice(name).start))
                for name in free_parameters(model)[1:]
            }
            out.append(ToyPointFits(fits.rows(), others))
    return out


def fit_toys(
    workspace_path: str,
    bounds: Mapping[str, Sequence[float]] | Sequence[float],
    mu0: float,
    n: int,
    seed: int,
    injected: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Sample and fit ``n`` toys at μ₀; rows (μ̂, σ̂, likelihood pull, usable)."""
    return fit_toy_points(workspace_path, bounds, [(mu0, seed)], n, injected)[0].rows


def _mean_and_width(pulls: np.ndarray) -> MeanAndWidth:
    """Mean and width (sample standard deviation) of ``pulls``, with their errors."""
    n, width = len(pulls), float(np.std(pulls, ddof=1))
    return MeanAndWidth(
        float(np.mean(pulls)),
        width / np.sqrt(n),
        width,
        width / np.sqrt(2 * (n - 1)),
    )


def pull_statistics(
    fits: np.ndarray,
    mu0: float,
    others: Mapping[str, tuple[float, np.ndarray]] | None = None,
) -> PullStatistics:
    """Pull mean and width (with statistical uncertainties), coverage and convergence of toy
    fits (rows μ̂, σ̂, likelihood pull, converged): the likelihood pull is the headline, the
    Hesse pull (μ̂ − μ₀)/σ̂ is kept beside it. ``others``: per other free parameter, its
    injected value and rows (θ̂, σ̂, usable), summarised by :func:`parameter_pulls`."""
    ok = fits[:, 3].astype(bool)
    mu_hat, sigma, pulls = fits[ok, 0], fits[ok, 1], fits[ok, 2]
    likelihood, hesse = _mean_and_width(pulls), _mean_and_width((mu_hat - mu0) / sigma)
    return PullStatistics(
        mu_injected=mu0,
        toys=int(len(fits)),
        converged=int(ok.sum()),
        convergence_rate=float(ok.mean()),
        pull=likelihood,
        fraction_within_1sigma=float(np.mean(np.abs(pulls) < 1)),
        hesse_pull=hesse,
        mu_hat_mean=float(np.mean(mu_hat)),
        mu_hat_mean_error=float(np.std(mu_hat, ddof=1) / np.sqrt(len(mu_hat))),
        mu_hat_std=float(np.std(mu_hat, ddof=1)),
        pulls=pulls.tolist(),
        hesse_pulls=((mu_hat - mu0) / sigma).tolist(),
        free_parameters={
            name: parameter_pulls(rows, value) for name, (value, rows) in others.items()
        }
        if others
        else None,
    )


def _toy_points(
    config: Mapping,
    workspace_path: str,
    mus: Sequence[float],
    n: int,
    seed: int,
    injected: Mapping[str, float] | None = None,
) -> tuple[str, list[PullStatistics]]:
    """The model's name and :func:`pull_statistics` of ``n`` toys at every μ₀ of ``mus``
    (other free parameters at ``injected``, default nominal)."""
    region = model_name(load_model(workspace_path)[0])
    bounds = free_parameter_bounds(config["inference"])
    rows: list[PullStatistics] = []
    points = [(mu0, toy_seed(seed, region, mu0)) for mu0 in mus]
    fitted = fit_toy_points(workspace_path, bounds, points, n, injected)
    for mu0, fits in zip(mus, fitted, strict=True):
        rows.append(pull_statistics(fits.rows, mu0, fits.others))
        log.info(
            "%s mu=%g: pull mean %.3f ± %.3f, width %.3f ± %.3f, mean mu-hat %.4f, "
            "converged %.1f %%",
            region,
            mu0,
            rows[-1].pull.mean,
            rows[-1].pull.mean_error,
            rows[-1].pull.width,
            rows[-1].pull.width_error,
            rows[-1].mu_hat_mean,
            100 * rows[-1].convergence_rate,
        )
        for name, theta in (rows[-1].free_parameters or {}).items():
            log.info(
                "%s mu=%g: %s (injected %g): Hesse pull mean %.3f ± %.3f, width %.3f ± %.3f",
                region,
                mu0,
                name,
                theta.injected,
                theta.pull.mean,
                theta.pull.mean_error,
                theta.pull.width,
                theta.pull.width_error,
            )
    return region, rows


def toy_closure(
    config: Mapping,
    workspace_path: str,
    outputs: Mapping[str, str],
    injected: Mapping[str, float] | None = None,
) -> ToyClosure:
    """Toys at every ``closure.toy_mu``: pull distributions of μ and fit-convergence rates
    (other free parameters injected at ``injected``, default nominal, and profiled)."""
    inf = config["inference"]
    closure = inf["closure"]
    region, rows = _toy_points(
        config, workspace_path, closure["toy_mu"], closure["toys"], closure["seed"], injected
    )
    _plot_pulls(rows, region, outputs["figure"])
    summary = ToyClosure(region, closure["seed"], list(inf["poi_bounds"]), rows)
    write_json(outputs["results"], summary.to_json())
    return summary


def injection_scan(
    config: Mapping,
    workspace_path: str,
    outputs: Mapping[str, str],
    injected: Mapping[str, float] | None = None,
) -> InjectionScan:
    """Toys at every ``closure.injection_mu``: mean fitted μ against the injected one (other
    free parameters at ``injected``, default nominal)."""
    closure = config["inference"]["closure"]
    region, points = _toy_points(
        config,
        workspace_path,
        closure["injection_mu"],
        closure["injection_toys"],
        closure["seed"] + 1,
        injected,
    )
    x = np.array([p.mu_injected for p in points])
    y = np.array([p.mu_hat_mean for p in points])
    w = 1 / np.array([p.mu_hat_mean_error for p in points]) ** 2
    slope, offset = np.polyfit(x, y, 1, w=np.sqrt(w))
    summary = InjectionScan(region, points, float(slope), float(offset))
    _plot_injection(points, (slope, offset), region, outputs["figure"])
    write_json(outputs["results"], summary.to_json())
    return summary


def _plot_pulls(rows: Sequence[PullStatistics], region: str, output: str) -> None:
    """Likelihood and Hesse pull distributions, one panel per μ₀, against N(0, 1)."""
    with plt.style.context(mplhep.style.ROOT):
        fig, axes = plt.subplots(1, len(rows), figsize=(7 * len(rows), 6), squeeze=False)
        grid = np.linspace(-4, 4, 200)
        for ax, row in zip(axes[0], rows, strict=True):
            ax.hist(
                np.clip(row.pulls, -4, 4),
                bins=32,
                range=(-4, 4),
                density=True,
                histtype="step",
                color="black",
                linewidth=2,
                label=f"likelihood pull ({row.converged}/{row.toys} converged)",
            )
            hesse = row.hesse_pull
            ax.hist(
                np.clip(row.hesse_pulls, -4, 4),
                bins=32,
                range=(-4, 4),
                density=True,
                histtype="step",
                color="#1f77b4",
                linestyle="--",
                label=f"Hesse pull: mean {hesse.mean:.2f} ± {hesse.mean_error:.2f}, "
                f"width {hesse.width:.2f}",
            )
            ax.plot(grid, stats.norm.pdf(grid), color="grey", linestyle=":", label="N(0, 1)")
            ax.plot(
                grid,
                stats.norm.pdf(grid, row.pull.mean, row.pull.width),
                color="#d62728",
                label=f"mean {row.pull.mean:.2f} ± {row.pull.mean_error:.2f}\n"
                f"width {row.pull.width:.2f} ± {row.pull.width_error:.2f}",
            )
            ax.set_xlabel(r"pull of $\mu$")
            ax.set_ylabel("toys (normalised)")
            ax.set_ylim(0, 0.65)
            ax.legend(fontsize="x-small", loc="upper left")
            experiment_label(ax, f"{region}, $\\mu_0$ = {row.mu_injected:g}")
        save_figure(fig, output)


def _plot_injection(
    rows: Sequence[PullStatistics], line: tuple[float, float], region: str, output: str
) -> None:
    """Mean fitted μ (bars: toy spread) against the injected μ, with the diagonal and fit."""
    x = np.array([r.mu_injected for r in rows])
    with plt.style.context(mplhep.style.ROOT):
        fig, ax = plt.subplots(figsize=(7, 6))
        ax.errorbar(
            x,
            [r.mu_hat_mean for r in rows],
            yerr=[r.mu_hat_std for r in rows],
            fmt="o",
            color="black",
            capsize=4,
            label=r"mean $\hat{\mu}$ (bars: toy spread)",
        )
        grid = np.linspace(x.min() - 0.25, x.max() + 0.25, 10)
        ax.plot(grid, grid, color="grey", linestyle=":", label=r"$\hat{\mu} = \mu_{inj}$")
        ax.plot(
            grid,
            line[0] * grid + line[1],
            color="#d62728",
            label=f"fit: slope {line[0]:.3f}, offset {line[1]:+.3f}",
        )
        ax.set_xlabel(r"injected $\mu_{inj}$")
        ax.set_ylabel(r"fitted $\hat{\mu}$")
        ax.legend(fontsize="x-small", loc="upper left")
        experiment_label(ax, region)
        save_figure(fig, output)
