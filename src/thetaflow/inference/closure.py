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

Toys are sampled with pyhf's own sampler (which draws from NumPy's global generator) seeded
from ``inference.closure.seed``, the discriminant and μ₀, so a rerun gives the same toys
whatever the number of worker processes the fits are spread over.

The toy fits (thousands per discriminant, the most fits of the analysis) run on pyhf's JAX
backend: MINUIT then gets the exact gradient of the likelihood instead of estimating it by
finite differences, which halves the time per fit after a one-off compilation of a few
seconds per worker. The other fits stay on NumPy, where that compilation would cost more
than it saves.
"""

from __future__ import annotations

import itertools
import logging
import time
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import cabinetry
import matplotlib.pyplot as plt
import mplhep
import numpy as np
import pyhf
from scipy import stats

from thetaflow.core.io import read_json, reading_result, write_json
from thetaflow.inference.fit import checked_fit, load_model, par_bounds
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
    """The fit of the Asimov data set made at μ₀ = ``mu_injected``."""

    mu_injected: float
    mu_fitted: float
    uncertainty: float
    difference: float
    closes: bool  # |μ̂ − μ₀| < ASIMOV_TOLERANCE

    def to_json(self) -> dict:
        """One entry of ``asimov.json``."""
        return self._asdict()


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


@dataclass(frozen=True)
class PullStatistics:
    """Toy fits at one μ₀: likelihood (headline) and Hesse pulls, μ̂ and convergence."""

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

    def to_json(self) -> dict:
        """One entry of ``toys.json``."""
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
        }


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


def asimov_closure(config: Mapping, workspace_path: str, output: str) -> AsimovClosure:
    """Fit the Asimov data set at every ``closure.asimov_mu``; record μ̂ − μ₀."""
    inf = config["inference"]
    model, _ = load_model(workspace_path)
    region = model.config.channels[0]
    bounds = par_bounds(model, inf["poi_bounds"])
    rows = []
    for mu0 in inf["closure"]["asimov_mu"]:
        asimov = cabinetry.model_utils.asimov_data(model, poi_value=mu0)
        # Minuit's default tolerance (EDM < 2e-4) leaves μ̂ up to ~0.02σ from the minimum; the
        # closure is checked to 1e-3, so ask for EDM < 2e-6 (still above machine accuracy)
        # start at μ₀: a step to negative μ can make a signal-rich bin's expectation negative
        init = list(map(float, model.config.suggested_init()))
        init[model.config.poi_index] = mu0
        result = checked_fit(
            model,
            asimov,
            f"{region} (Asimov, mu={mu0})",
            par_bounds=bounds,
            init_pars=init,
            tolerance=1e-3,
        )
        i = model.config.poi_index
        rows.append(
            AsimovFit(
                mu0,
                float(result.bestfit[i]),
                float(result.uncertainty[i]),
                float(result.bestfit[i] - mu0),
                bool(abs(result.bestfit[i] - mu0) < ASIMOV_TOLERANCE),
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


def sample_toys(model: pyhf.pdf.Model, mu0: float, n: int, seed: int) -> np.ndarray:
    """``n`` pseudo-experiments (main + auxiliary data) at μ = μ₀, nuisances nominal."""
    pars = np.asarray(model.config.suggested_init(), dtype=float)
    pars[model.config.poi_index] = mu0
    np.random.seed(seed)  # pyhf's numpy backend samples from the global generator
    return np.asarray(model.make_pdf(pyhf.tensorlib.astensor(pars)).sample((n,)))


#: pyhf backend of the toy fits (see the module docstring).
TOY_BACKEND = "jax"

# Fits run in worker processes: each keeps its own model (built once) in these globals.
_WORKER: dict = {}


def _init_worker(workspace: dict, bounds: list) -> None:
    """Build the worker's model once, on the toy backend, with warnings silenced."""
    logging.disable(logging.WARNING)
    pyhf.set_backend(TOY_BACKEND)  # before the model is built, so its tensors live there
    _WORKER["model"] = cabinetry.model_utils.model_and_data(workspace)[0]
    _WORKER["bounds"] = bounds


def _fit_toy(toy: np.ndarray, mu0: float) -> tuple[float, float, float, bool]:
    """(μ̂, σ̂, likelihood pull, converged) of one toy made at μ₀; each fit starts at μ₀ with
    Minuit strategy 1, retried once with strategy 2."""
    model = _WORKER["model"]
    poi = model.config.poi_index
    init = list(map(float, model.config.suggested_init()))
    init[poi] = mu0
    kwargs = {"init_pars": init, "par_bounds": _WORKER["bounds"]}
    for strategy in (1, 2):
        pyhf.set_backend(TOY_BACKEND, pyhf.optimize.minuit_optimizer(verbose=0, strategy=strategy))
        try:
            result, free_nll = pyhf.infer.mle.fit(
                toy, model, return_uncertainties=True, return_fitted_val=True, **kwargs
            )
            _, fixed_nll = pyhf.infer.mle.fixed_poi_fit(
                mu0, toy, model, return_fitted_val=True, **kwargs
            )
        except pyhf.exceptions.FailedMinimization:
            continue
        mu, sigma = result[poi]
        if np.isfinite(sigma) and sigma > 0:
            pull = np.sign(mu - mu0) * np.sqrt(max(float(fixed_nll - free_nll), 0.0))
            return float(mu), float(sigma), float(pull), True
    return float("nan"), float("nan"), float("nan"), False


def fit_toy_points(
    workspace_path: str,
    poi_bounds: Sequence[float],
    points: Sequence[tuple[float, int]],
    n: int,
    workers: int,
) -> list[np.ndarray]:
    """Sample and fit ``n`` toys at every (μ₀, seed) of ``points``; per point, rows (μ̂, σ̂,
    likelihood pull, converged). One pool of workers serves every point, so each worker
    builds the model and compiles its likelihood once."""
    workspace = read_json(workspace_path)
    with reading_result(workspace_path):
        model, _ = cabinetry.model_utils.model_and_data(workspace)
    bounds = par_bounds(model, poi_bounds)
    out = []
    with ProcessPoolExecutor(
        max(1, workers), initializer=_init_worker, initargs=(workspace, bounds)
    ) as pool:
        for mu0, seed in points:
            toys = sample_toys(model, mu0, n, seed)
            start = time.perf_counter()
            results = []
            chunks = max(1, n // (8 * max(1, workers)))
            for k, row in enumerate(
                pool.map(_fit_toy, toys, itertools.repeat(mu0), chunksize=chunks)
            ):
                results.append(row)
                if (k + 1) % max(1, n // 10) == 0:
                    log.info(
                        "mu=%g: %d/%d toys fitted (%.0f s)",
                        mu0,
                        k + 1,
                        n,
                        time.perf_counter() - start,
                    )
            out.append(np.array(results, dtype=float))
    return out


def fit_toys(
    workspace_path: str, poi_bounds: Sequence[float], mu0: float, n: int, seed: int, workers: int
) -> np.ndarray:
    """Sample and fit ``n`` toys at μ₀; rows (μ̂, σ̂, likelihood pull, converged)."""
    return fit_toy_points(workspace_path, poi_bounds, [(mu0, seed)], n, workers)[0]


def _mean_and_width(pulls: np.ndarray) -> MeanAndWidth:
    """Mean and width (sample standard deviation) of ``pulls``, with their errors."""
    n, width = len(pulls), float(np.std(pulls, ddof=1))
    return MeanAndWidth(
        float(np.mean(pulls)),
        width / np.sqrt(n),
        width,
        width / np.sqrt(2 * (n - 1)),
    )


def pull_statistics(fits: np.ndarray, mu0: float) -> PullStatistics:
    """Pull mean and width (with statistical uncertainties), coverage and convergence of toy
    fits (rows μ̂, σ̂, likelihood pull, converged): the likelihood pull is the headline, the
    Hesse pull (μ̂ − μ₀)/σ̂ is kept beside it."""
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
    )


def _toy_points(
    config: Mapping, workspace_path: str, mus: Sequence[float], n: int, seed: int, workers: int
) -> tuple[str, list[PullStatistics]]:
    """The region and :func:`pull_statistics` of ``n`` toys at every μ₀ of ``mus``."""
    region = load_model(workspace_path)[0].config.channels[0]
    bounds = config["inference"]["poi_bounds"]
    rows: list[PullStatistics] = []
    points = [(mu0, toy_seed(seed, region, mu0)) for mu0 in mus]
    for mu0, fits in zip(
        mus, fit_toy_points(workspace_path, bounds, points, n, workers), strict=True
    ):
        rows.append(pull_statistics(fits, mu0))
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
    return region, rows


def toy_closure(
    config: Mapping, workspace_path: str, outputs: Mapping[str, str], workers: int = 1
) -> ToyClosure:
    """Toys at every ``closure.toy_mu``: pull distributions of μ and fit-convergence rates."""
    inf = config["inference"]
    closure = inf["closure"]
    region, rows = _toy_points(
        config, workspace_path, closure["toy_mu"], closure["toys"], closure["seed"], workers
    )
    _plot_pulls(rows, region, outputs["figure"])
    summary = ToyClosure(region, closure["seed"], list(inf["poi_bounds"]), rows)
    write_json(outputs["results"], summary.to_json())
    return summary


def injection_scan(
    config: Mapping, workspace_path: str, outputs: Mapping[str, str], workers: int = 1
) -> InjectionScan:
    """Toys at every ``closure.injection_mu``: mean fitted μ against the injected one."""
    closure = config["inference"]["closure"]
    region, points = _toy_points(
        config,
        workspace_path,
        closure["injection_mu"],
        closure["injection_toys"],
        closure["seed"] + 1,
        workers,
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
