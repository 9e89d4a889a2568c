"""Maximum-likelihood fits of many toys at once: one vectorised likelihood, one batched minimiser.

The toys of :mod:`.closure` are fitted one at a time by MINUIT, twice each (μ free, μ fixed at
μ₀). Every toy shares the model and differs only in its observations, so here the pyhf
likelihood (``model.logpdf`` on the JAX backend) is mapped over the toys with ``jax.vmap``,
compiled once with ``jax.jit``, and all toys are minimised together by a projected Newton
method, one compiled iteration for the whole batch:

* the exact gradient and Hessian of every toy's −ln L (forward over reverse differentiation;
  the models have tens of parameters);
* bounds (μ's from config, pyhf's for the nuisance parameters) by projection: a parameter at a
  bound whose gradient points out of the box is held there (the active set), the step is
  taken in the others and every trial point is clipped into the box;
* the Hessian of the moving parameters is scaled to unit diagonal and its eigenvalues replaced
  by their absolute values (floored), so the Newton direction descends also where −ln L is not
  convex, far from the minimum;
* the trial points, evaluated in one vectorised call: the Newton step at lengths 1, ½, … 1/16
  and Levenberg-Marquardt steps with dampings ν = 1e-4 … 100 added to the scaled eigenvalues
  (from nearly Newton to a short scaled steepest descent), for the nearly flat or negative
  curvature directions where a Newton step is far too long. The lowest trial point with
  Armijo's sufficient decrease is taken; a point where −ln L is undefined or an expected yield
  is negative (a bin without events keeps −ln L finite there, and unbounded below) is refused;
* a toy has converged when its estimated distance to the minimum, EDM = ½ gᵀH⁻¹g over the
  parameters not held at a bound, is below 1e-9 (−ln L) and that Hessian is positive definite;
  it is then frozen while the others go on. Newton converges quadratically: the tolerance,
  far tighter than MINUIT's default (EDM < 2e-4 in −2 ln L), leaves μ̂ within ~1e-4 σ of the
  minimum and costs an iteration or two.

Batches are padded to a power of two (≥ 64 toys) and the bounds, tolerances and the fixed
parameters are arguments of the compiled iteration, so one model compiles it once per batch
size: free and conditional fits, every μ₀ and every bound share it.

Uncertainties are √diag(H⁻¹) of −ln L over the parameters that are not fixed, at the minimum:
MINUIT's Hesse errors with ``errordef`` 1 on −2 ln L, but from the exact Hessian. Where that
Hessian is not positive definite (μ̂ at a bound of μ where the likelihood is not convex) the
fit has converged but has no uncertainty (nan). Toys that do not converge (iteration limit, no
better trial point, an indefinite Hessian at the end) are flagged and, unless told otherwise,
fitted again one at a time by MINUIT (strategy 1, then 2, with a call limit) — never used
silently.

:func:`fit_toys_batched` gives what the toys need: μ̂ and its uncertainty from the free fits,
and the conditional fits at μ₀ for the likelihood ratio q(μ₀) = −2 ln λ(μ₀) and the signed
likelihood pull sign(μ̂ − μ₀)·√q that :mod:`.closure` reports.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pyhf

from thetaflow.core.errors import ThetaflowError

log = logging.getLogger(__name__)


#: The smallest padded batch (see :func:`batch_size`).
MIN_BATCH = 64


class BatchedFitError(ThetaflowError, ValueError):
    """The model or the observations cannot be fitted in a batch; the message says why."""


@dataclass(frozen=True)
class NewtonSettings:
    """Tuning of the batched projected-Newton minimiser (the defaults suit pyhf models)."""

    #: convergence when ½ gᵀH⁻¹g (−ln L units) of the parameters off their bounds is below this
    edm_tolerance: float = 1e-9
    #: iterations before a toy is declared not converged
    max_iterations: int = 100
    #: trial lengths 1, ½, …, 2^-(n-1) of the Newton step
    line_search_steps: int = 5
    #: Levenberg-Marquardt dampings ν of the further trial steps (unit-diagonal Hessian + ν)
    dampings: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
    #: Armijo's sufficient-decrease constant
    armijo: float = 1e-4
    #: floor of the absolute eigenvalues of the unit-diagonal Hessian
    eigenvalue_floor: float = 1e-8
    #: a parameter within this fraction of its range from a bound counts as at the bound
    bound_tolerance: float = 1e-10
    #: refit the toys that do not converge one at a time with MINUIT
    minuit_fallback: bool = True
    #: MINUIT's tolerance in those refits (EDM < 0.002 × tolerance in −2 ln L)
    minuit_tolerance: float = 0.1
    #: MINUIT's call limit per refit: a toy the batch cannot fit can keep MINUIT busy for
    #: minutes (400,000 calls) before it fails too
    minuit_max_calls: int = 20_000


class BatchedFits(NamedTuple):
    """Fits of a batch of observations: one row per toy, columns as the model's parameters."""

    bestfit: np.ndarray  # (toys, parameters)
    uncertainty: np.ndarray  # (toys, parameters): Hesse errors; nan for fixed parameters
    twice_nll: np.ndarray  # (toys,): −2 ln L at the minimum, as pyhf's fits return it
    edm: np.ndarray  # (toys,): ½ gᵀH⁻¹g at the minimum (−ln L units); nan for MINUIT refits
    iterations: np.ndarray  # (toys,): Newton iterations (0 where MINUIT refitted)
    converged: np.ndarray  # (toys,) bool: the minimisation converged
    refitted: np.ndarray  # (toys,) bool: fitted again by MINUIT after the batch failed
    poi_index: int

    @property
    def poi(self) -> np.ndarray:
        """The POI's best-fit value per toy."""
        return self.bestfit[:, self.poi_index]

    @property
    def poi_uncertainty(self) -> np.ndarray:
        """The POI's Hesse uncertainty per toy: nan where μ is fixed, and where the Hessian is
        not positive definite (μ̂ at a bound where the likelihood is not convex)."""
        return self.uncertainty[:, self.poi_index]


class ToyFits(NamedTuple):
    """The free and μ = μ₀ fits of toys made at μ₀, and the statistics built from them."""

    mu0: float
    free: BatchedFits
    fixed: BatchedFits

    @property
    def converged(self) -> np.ndarray:
        """Both fits converged (μ̂ and q are valid)."""
        return self.free.converged & self.fixed.converged

    @property
    def has_uncertainty(self) -> np.ndarray:
        """Both fits converged and μ̂ has a finite, positive Hesse uncertainty."""
        sigma = self.free.poi_uncertainty
        return self.converged & np.isfinite(sigma) & (sigma > 0)

    @property
    def q(self) -> np.ndarray:
        """q(μ₀) = −2 ln λ(μ₀) (two-sided), ≥ 0; nan where a fit did not converge."""
        q = np.maximum(self.fixed.twice_nll - self.free.twice_nll, 0.0)
        return np.where(self.converged, q, np.nan)

    @property
    def pull(self) -> np.ndarray:
        """The signed likelihood pull sign(μ̂ − μ₀)·√q(μ₀) (see :mod:`.closure`)."""
        return np.sign(self.free.poi - self.mu0) * np.sqrt(self.q)

    def rows(self) -> np.ndarray:
        """Rows (μ̂, σ̂, likelihood pull, usable), as :func:`.closure.pull_statistics` reads;
        usable is :attr:`has_uncertainty`, the closure's criterion for its MINUIT fits (both
        converged, σ̂ finite), and the other columns are nan where it is false."""
        ok = self.has_uncertainty
        return np.column_stack(
            [
                np.where(ok, self.free.poi, np.nan),
                np.where(ok, self.free.poi_uncertainty, np.nan),
                np.where(ok, self.pull, np.nan),
                ok.astype(float),
            ]
        )

    def parameter_rows(self, index: int) -> np.ndarray:
        """Rows (θ̂, σ̂, usable) of the free fits' parameter ``index`` (another free
        normalisation factor than μ): usable where both fits are usable for μ
        (:attr:`has_uncertainty`) and θ̂ has a finite, positive Hesse uncertainty."""
        value, sigma = self.free.bestfit[:, index], self.free.uncertainty[:, index]
        ok = self.has_uncertainty & np.isfinite(sigma) & (sigma > 0)
        return np.column_stack(
            [np.where(ok, value, np.nan), np.where(ok, sigma, np.nan), ok.astype(float)]
        )


class Minimum(NamedTuple):
    """What :meth:`BatchedLikelihood.minimise` finds, per toy."""

    x: np.ndarray  # (toys, parameters): the minimum, or the last point reached
    nll: np.ndarray  # (toys,): −ln L at x
    hessian: np.ndarray  # (toys, parameters, parameters) of −ln L at x; nan if not converged
    edm: np.ndarray  # (toys,): ½ gᵀH⁻¹g at x, over the parameters off their bounds
    iterations: np.ndarray  # (toys,): Newton steps taken
    converged: np.ndarray  # (toys,) bool


class _State(NamedTuple):
    """One Newton iteration's result per toy (JAX arrays)."""

    x: Any  # the next point (unchanged where converged)
    nll: Any  # −ln L at the current point
    hessian: Any  # of −ln L at the current point
    edm: Any  # ½ gᵀH⁻¹g at the current point
    converged: Any  # the current point is a minimum (EDM below tolerance, Hessian PD)
    moved: Any  # the line search found a point at least as good


def _require_jax() -> None:
    """The likelihood must be JAX-traceable and in double precision."""
    tensorlib, _ = pyhf.get_backend()
    if tensorlib.name != "jax" or tensorlib.precision != "64b":
        raise BatchedFitError(
            f"batched fits need pyhf's JAX backend in 64-bit precision, not "
            f"{tensorlib.name} ({tensorlib.precision}): call pyhf.set_backend('jax') first"
        )


def _newton_step(
    model: pyhf.pdf.Model,
    line_search_steps: int,
    dampings: tuple[float, ...],
    x: Any,
    data: Any,
    free: Any,
    done: Any,
    bounds: Any,
    numerics: Any,
) -> _State:
    """One projected-Newton iteration of one toy (see the module docstring). ``numerics``:
    (EDM tolerance, Armijo constant, eigenvalue floor, bound tolerance)."""
    edm_tolerance, armijo, floor, bound_tolerance = numerics
    lo, hi = bounds[:, 0], bounds[:, 1]

    def nll(pars: Any) -> Any:
        return -model.logpdf(pars, data)[0]

    def gradient(pars: Any) -> tuple[Any, tuple[Any, Any]]:
        f, g = jax.value_and_grad(nll)(pars)
        return g, (f, g)

    h, (f, g) = jax.jacfwd(gradient, has_aux=True)(x)  # one trace gives −ln L, g and H
    # the active set: at a bound with the gradient pointing out of the box
    margin = bound_tolerance * (hi - lo)
    held = ((x <= lo + margin) & (g > 0)) | ((x >= hi - margin) & (g < 0))
    inner = (free & ~held).astype(x.dtype)
    h_in = h * jnp.outer(inner, inner) + jnp.diag(1.0 - inner)
    g_in = g * inner
    # unit diagonal, then |eigenvalues| (floored): a descent direction even where H is not PD
    scale = 1.0 / jnp.sqrt(jnp.maximum(jnp.abs(jnp.diag(h_in)), 1e-300))
    eigenvalues, vectors = jnp.linalg.eigh(h_in * jnp.outer(scale, scale))
    projected = vectors.T @ (scale * g_in)
    modified = jnp.maximum(jnp.abs(eigenvalues), floor)
    edm = 0.5 * jnp.sum(projected**2 / modified)
    converged = (edm < edm_tolerance) & (eigenvalues[0] > 0) & jnp.isfinite(f)
    # the trial points, all evaluated at once: the Newton step and its fractions, then steps
    # damped more and more towards (scaled) steepest descent
    steps = 0.5 ** jnp.arange(line_search_steps, dtype=x.dtype)
    newton = -scale * (vectors @ (projected / modified)) * inner
    damped = jnp.stack(
        [-scale * (vectors @ (projected / (modified + nu))) * inner for nu in dampings]
    )
    directions = jnp.concatenate([steps[:, None] * newton, damped])
    trials = jnp.clip(x + directions, lo, hi)
    values = jax.vmap(nll)(trials)
    # a negative expected yield is unphysical, also where the Poisson term stays finite (a bin
    # with no events: −ln L = λ, unbounded below as λ → −∞)
    physical = jax.vmap(lambda pars: jnp.all(model.expected_actualdata(pars) >= 0))(trials)
    values = jnp.where(jnp.isfinite(values) & physical, values, jnp.inf)
    slack = 1e-12 * jnp.abs(f)  # rounding of −ln L near the minimum
    # the lowest point among those with Armijo's sufficient decrease, else the lowest point
    sufficient = values <= f + armijo * ((trials - x) @ g) + slack
    chosen = jnp.argmin(jnp.where(sufficient | ~jnp.any(sufficient), values, jnp.inf))
    moved = values[chosen] <= f + slack
    x_next = jnp.where(done | converged | ~moved, x, trials[chosen])
    return _State(x_next, f, h, edm, converged, moved)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _newton_steps(
    model: pyhf.pdf.Model,
    line_search_steps: int,
    dampings: tuple[float, ...],
    x: Any,
    data: Any,
    free: Any,
    done: Any,
    bounds: Any,
    numerics: Any,
) -> _State:
    """:func:`_newton_step` of every toy, compiled once per (model, trial steps, batch shape):
    bounds, tolerances and which parameters float are arguments, so they reuse it. (JAX's
    cache keeps each model it compiled for alive for the life of the process.)"""
    step = functools.partial(_newton_step, model, line_search_steps, dampings)
    return jax.vmap(step, in_axes=(0, 0, None, 0, None, None))(
        x, data, free, done, bounds, numerics
    )


def batch_size(n: int) -> int:
    """The padded batch size of ``n`` toys: a power of two, at least :data:`MIN_BATCH`, so a
    few compilations serve every number of toys."""
    return max(MIN_BATCH, 1 << max(0, n - 1).bit_length())


class BatchedLikelihood:
    """The negative log-likelihood of one pyhf model, vectorised over toys, and its minimiser.

    The Newton step is compiled on the first fit of a batch size (a few seconds) and reused by
    every later fit of that model, whatever its bounds or fixed parameters; batches are padded
    to :func:`batch_size`. ``par_bounds`` default to pyhf's suggested bounds; the model's
    fixed parameters (``suggested_fixed``) stay at their initial values.
    """

    def __init__(
        self,
        model: pyhf.pdf.Model,
        par_bounds: Sequence[Sequence[float]] | None = None,
        settings: NewtonSettings | None = None,
    ) -> None:
        _require_jax()
        self.model = model
        self.settings = settings or NewtonSettings()
        bounds = np.asarray(
            par_bounds if par_bounds is not None else model.config.suggested_bounds(), dtype=float
        )
        if bounds.shape != (model.config.npars, 2) or np.any(bounds[:, 0] >= bounds[:, 1]):
            raise BatchedFitError(
                f"par_bounds must be {model.config.npars} (low, high) pairs with low < high, "
                f"got shape {bounds.shape}"
            )
        self.bounds = bounds
        self.fixed = np.asarray(model.config.suggested_fixed(), dtype=bool)
        self.init = np.asarray(model.config.suggested_init(), dtype=float)
        self.poi_index = int(model.config.poi_index)
        self.n_data = int(model.config.nmaindata + model.config.nauxdata)

    # ----------------------------------------------------------------- the minimiser

    def minimise(self, data: np.ndarray, init: np.ndarray, free: np.ndarray) -> Minimum:
        """Minimise every toy's −ln L from ``init`` (toys × parameters), moving only the
        ``free`` parameters; converged toys are frozen while the others go on. The batch is
        padded to :func:`batch_size` with copies of the first toy."""
        s = self.settings
        numerics = jnp.asarray(
            [s.edm_tolerance, s.armijo, s.eigenvalue_floor, s.bound_tolerance], dtype=float
        )
        n, p = init.shape
        pad = np.zeros(batch_size(n) - n, dtype=int)
        x = jnp.asarray(np.concatenate([init, init[pad]]))
        data_j = jnp.asarray(np.concatenate([data, data[pad]]))
        free_j, bounds = jnp.asarray(free), jnp.asarray(self.bounds)
        done = np.zeros(len(x), dtype=bool)
        nll, edm = np.full(len(x), np.nan), np.full(len(x), np.nan)
        hessian = np.full((len(x), p, p), np.nan)
        iterations = np.zeros(len(x), dtype=int)
        current = x
        for _ in range(s.max_iterations):
            current = x
            state = _newton_steps(
                self.model,
                s.line_search_steps,
                tuple(s.dampings),
                current,
                data_j,
                free_j,
                jnp.asarray(done),
                bounds,
                numerics,
            )
            new = ~done  # the toys still moving: their values at the current point
            nll[new], edm[new] = np.asarray(state.nll)[new], np.asarray(state.edm)[new]
            now = new & np.asarray(state.converged)
            hessian[now] = np.asarray(state.hessian)[now]
            iterations[new & ~now] += 1
            done |= now
            x = state.x
            if np.all(done | ~np.asarray(state.moved)):  # converged, or no better point found
                break
        return Minimum(
            np.asarray(current)[:n], nll[:n], hessian[:n], edm[:n], iterations[:n], done[:n]
        )

    @staticmethod
    def uncertainties(hessian: np.ndarray, free: np.ndarray) -> np.ndarray:
        """√diag(H⁻¹) of −ln L in the ``free`` parameters (nan elsewhere, and where H is not
        finite or not positive definite)."""
        n, p, _ = hessian.shape
        index = np.flatnonzero(free)
        block = hessian[:, index[:, None], index[None, :]]
        ok = np.all(np.isfinite(block), axis=(1, 2))
        ok[ok] = np.linalg.eigvalsh(block[ok])[:, 0] > 0
        out = np.full((n, p), np.nan)
        cov = np.linalg.inv(block[ok])
        out[np.ix_(ok, index)] = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
        return out

    # ----------------------------------------------------------------- the public fits

    def fit(
        self,
        data: np.ndarray,
        init_pars: Sequence[float] | np.ndarray | None = None,
        fixed_poi: float | None = None,
    ) -> BatchedFits:
        """Fit every row of ``data`` (toys × (main + auxiliary) bins): μ free, or fixed at
        ``fixed_poi`` (the conditional fit). ``init_pars``: one start for all toys, or one per
        toy (default: pyhf's suggested init, μ at ``fixed_poi`` when given)."""
        _require_jax()  # the model's tensors follow the backend: it may have changed since
        data = np.atleast_2d(np.asarray(data, dtype=float))
        if data.shape[1] != self.n_data:
            raise BatchedFitError(
                f"observations must have {self.n_data} columns (main + auxiliary data), "
                f"got {data.shape[1]}"
            )
        n = len(data)
        if n == 0:
            raise BatchedFitError("no observations to fit")
        init = np.broadcast_to(
            np.asarray(self.init if init_pars is None else init_pars, dtype=float),
            (n, len(self.init)),
        ).copy()
        free = ~self.fixed
        if fixed_poi is not None:
            low, high = self.bounds[self.poi_index]
            if not low <= fixed_poi <= high:
                raise BatchedFitError(
                    f"the fixed POI value {fixed_poi} lies outside its bounds [{low}, {high}]"
                )
            init[:, self.poi_index] = fixed_poi
            free = free.copy()
            free[self.poi_index] = False
        init = np.clip(init, self.bounds[:, 0], self.bounds[:, 1])
        minimum = self.minimise(data, init, free)
        uncertainty = self.uncertainties(minimum.hessian, free)
        converged = minimum.converged
        result = BatchedFits(
            bestfit=minimum.x,
            uncertainty=uncertainty,
            twice_nll=2 * minimum.nll,
            edm=minimum.edm,
            iterations=minimum.iterations,
            converged=converged,
            refitted=np.zeros(n, dtype=bool),
            poi_index=self.poi_index,
        )
        failed = np.flatnonzero(~converged)
        if len(failed):
            log.info(
                "%d of %d batched fits (%s) did not converge%s",
                len(failed),
                n,
                "mu free" if fixed_poi is None else f"mu = {fixed_poi:g}",
                ": refitting them with MINUIT" if self.settings.minuit_fallback else "",
            )
            if self.settings.minuit_fallback:
                result = self._refit(result, data, init, fixed_poi, failed)
        return result

    def _refit(
        self,
        result: BatchedFits,
        data: np.ndarray,
        init: np.ndarray,
        fixed_poi: float | None,
        toys: np.ndarray,
    ) -> BatchedFits:
        """``result`` with the ``toys`` fitted again one at a time by MINUIT."""
        bestfit, uncertainty = result.bestfit.copy(), result.uncertainty.copy()
        twice_nll, edm = result.twice_nll.copy(), result.edm.copy()
        iterations, converged = result.iterations.copy(), result.converged.copy()
        refitted = result.refitted.copy()
        for k in toys:
            fit = minuit_fit(
                self.model,
                data[k],
                init[k],
                self.bounds,
                fixed_poi,
                self.settings.minuit_tolerance,
                self.settings.minuit_max_calls,
            )
            refitted[k], iterations[k], edm[k] = True, 0, np.nan
            if fit is None:
                continue
            bestfit[k], uncertainty[k], twice_nll[k] = fit
            uncertainty[k, self.fixed] = np.nan
            if fixed_poi is not None:
                uncertainty[k, self.poi_index] = np.nan
            converged[k] = True
        return result._replace(
            bestfit=bestfit,
            uncertainty=uncertainty,
            twice_nll=twice_nll,
            edm=edm,
            iterations=iterations,
            converged=converged,
            refitted=refitted,
        )


@contextlib.contextmanager
def jax_backend() -> Iterator[None]:
    """pyhf's JAX backend (64-bit, the current optimizer) inside the block, the previous
    backend after it; a model built inside lives on JAX and can be fitted in batches."""
    tensorlib, optimizer = pyhf.get_backend()
    pyhf.set_backend("jax", optimizer, precision="64b")
    try:
        yield
    finally:
        pyhf.set_backend(tensorlib, optimizer)


@contextlib.contextmanager
def minuit_optimizer() -> Iterator[None]:
    """pyhf's MINUIT optimizer (quiet) inside the block, the previous optimizer after it."""
    tensorlib, optimizer = pyhf.get_backend()
    pyhf.set_backend(tensorlib, pyhf.optimize.minuit_optimizer(verbose=0))
    try:
        yield
    finally:
        pyhf.set_backend(tensorlib, optimizer)


def minuit_fit(
    model: pyhf.pdf.Model,
    data: np.ndarray,
    init: np.ndarray,
    bounds: np.ndarray,
    fixed_poi: float | None = None,
    tolerance: float = 0.1,
    max_calls: int = 100_000,
) -> tuple[np.ndarray, np.ndarray, float] | None:
    """One MINUIT fit of one toy (μ free, or fixed at ``fixed_poi``), strategy 1 then 2, as
    :mod:`.closure` fits toys: (best fit, Hesse errors, −2 ln L), or None if both fail."""
    kwargs: dict[str, Any] = {
        "init_pars": [float(v) for v in init],
        "par_bounds": [tuple(map(float, b)) for b in bounds],
        "return_uncertainties": True,
        "return_fitted_val": True,
        "tolerance": tolerance,
        "maxiter": max_calls,
    }
    fit: Callable[..., Any] = pyhf.infer.mle.fit
    if fixed_poi is not None:
        kwargs["init_pars"][model.config.poi_index] = float(fixed_poi)
        fit = pyhf.infer.mle.fixed_poi_fit
        kwargs["poi_val"] = float(fixed_poi)
    with minuit_optimizer():
        for strategy in (1, 2):
            try:
                values, twice_nll = fit(
                    data=list(map(float, data)), pdf=model, strategy=strategy, **kwargs
                )
            except pyhf.exceptions.FailedMinimization:
                continue
            values = np.asarray(values, dtype=float)
            return values[:, 0], values[:, 1], float(twice_nll)
    return None


def fit_toys_batched(
    fitter: BatchedLikelihood,
    toys: np.ndarray,
    mu0: float,
    init_pars: Sequence[float] | None = None,
) -> ToyFits:
    """The free and μ = μ₀ fits of ``toys`` made at μ₀; both start at μ₀ (as :mod:`.closure`
    starts its MINUIT fits), the nuisance parameters at ``init_pars`` (default: pyhf's)."""
    init = np.asarray(fitter.init if init_pars is None else init_pars, dtype=float).copy()
    init[fitter.poi_index] = mu0
    return ToyFits(
        mu0=float(mu0),
        free=fitter.fit(toys, init),
        fixed=fitter.fit(toys, init, fixed_poi=mu0),
    )
