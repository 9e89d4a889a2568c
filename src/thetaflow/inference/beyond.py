"""Beyond the best fit: impacts on μ, profile-likelihood scans, significance and CLs limits.

All computations are cabinetry's (pyhf underneath, asymptotic formulae for the significance
and the CLs limit with the q̃ test statistic); this module feeds them the config's bounds of
every free parameter, checks what config asks for (scan parameters exist) and writes JSON and
figures. Impacts, significance and limits are those of the measurement's POI (μ), with every
other free normalisation factor profiled; a model may have any number of regions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import cabinetry
import numpy as np
import pyhf

from thetaflow.core.errors import ThetaflowError
from thetaflow.core.io import write_json
from thetaflow.inference.contours import plot_scan_2d, scan_2d
from thetaflow.inference.discriminants import pair_name
from thetaflow.inference.fit import FitError, checked_fit, load_model, model_name, par_bounds
from thetaflow.inference.model import free_parameter_bounds
from thetaflow.plotting.style import save_figure

log = logging.getLogger(__name__)

#: Half-width of a 2D scan's grid in σ of each parameter: the 95 % contour of a Gaussian
#: likelihood reaches 2.45σ along each axis; 4σ leaves room for non-Gaussian tails.
PAIR_SIGMAS = 4.0


class ScanParameterError(ThetaflowError, ValueError):
    """A scan names a parameter the model does not have."""


class Impact(NamedTuple):
    """Best fit of one nuisance parameter and its pre- and post-fit impacts on μ."""

    parameter: str
    bestfit: float
    uncertainty: float
    prefit_up: float
    prefit_down: float
    postfit_up: float
    postfit_down: float

    @property
    def size(self) -> float:
        """The larger post-fit impact, in absolute value (what the ranking orders by)."""
        return max(abs(self.postfit_up), abs(self.postfit_down))

    def to_json(self) -> dict:
        """One row of ``ranking.json``."""
        return {
            "parameter": self.parameter,
            "bestfit": self.bestfit,
            "uncertainty": self.uncertainty,
            "prefit_impact": {"up": self.prefit_up, "down": self.prefit_down},
            "postfit_impact": {"up": self.postfit_up, "down": self.postfit_down},
        }


class ScanResult(NamedTuple):
    """A profile-likelihood scan of one parameter, with its 68 % interval."""

    parameter: str
    bestfit: float
    uncertainty: float
    values: list[float]
    delta_twice_nll: list[float]
    interval_68: list[float | None]  # None where the scan does not reach the crossing

    def to_json(self) -> dict:
        """One entry of ``scan.json``."""
        return self._asdict()


class Significance(NamedTuple):
    """Observed and expected (Asimov, μ = 1) discovery significance and p-values."""

    observed: float
    observed_p_value: float
    expected: float
    expected_p_value: float

    def to_json(self) -> dict:
        """The ``significance`` entry of ``limit.json``."""
        return {
            **self._asdict(),
            "method": "asymptotic q0, expected from the Asimov data set at mu = 1",
        }


class UpperLimit(NamedTuple):
    """Observed and expected CLs upper limits on μ, and the grid they were found on."""

    confidence_level: float
    observed: float
    expected: dict[str, float]  # keyed by LIMIT_CURVES[1:]: -2sigma ... +2sigma
    bracket: list[float]
    points: int

    def to_json(self) -> dict:
        """The ``limit`` entry of ``limit.json``."""
        return {
            "confidence_level": self.confidence_level,
            "observed": self.observed,
            "expected": self.expected,
            "method": "CLs, asymptotic q~mu, grid + refinement",
            "bracket": self.bracket,
            "points": self.points,
        }


@dataclass(frozen=True)
class SignificanceAndLimit:
    """What ``limit.json`` holds for one discriminant."""

    discriminant: str
    significance: Significance
    limit: UpperLimit
    #: the significance of each other free parameter of ``inference.limit.significance_of``
    #: (μ_ZZ beside μ_ZH), the POI profiled like every other parameter
    others: dict[str, Significance] | None = None

    def to_json(self) -> dict:
        """The content of ``limit.json``."""
        others = (
            {"other_significances": {k: v.to_json() for k, v in self.others.items()}}
            if self.others
            else {}
        )
        return {
            "discriminant": self.discriminant,
            "significance": self.significance.to_json(),
            "limit": self.limit.to_json(),
        } | others


def ranking(config: Mapping, workspace_path: str, outputs: Mapping[str, str]) -> list[Impact]:
    """Pre- and post-fit impact of every nuisance parameter on μ, largest first."""
    model, data = load_model(workspace_path)
    region = model_name(model)
    bounds = par_bounds(model, free_parameter_bounds(config["inference"]))
    nominal = checked_fit(model, data, region, par_bounds=bounds)
    try:
        # each fit with one parameter fixed starts from the best fit: ~20 % fewer evaluations
        result = cabinetry.fit.ranking(
            model,
            data,
            fit_results=nominal,
            par_bounds=bounds,
            init_pars=[float(v) for v in nominal.bestfit],
        )
    except pyhf.exceptions.FailedMinimization as err:
        raise FitError(
            f"region '{region}': a fit of the impact ranking did not converge ({err})"
        ) from err
    rows = [
        Impact(
            label,
            float(result.bestfit[i]),
            float(result.uncertainty[i]),
            float(result.prefit_up[i]),
            float(result.prefit_down[i]),
            float(result.postfit_up[i]),
            float(result.postfit_down[i]),
        )
        for i, label in enumerate(result.labels)
    ]
    rows.sort(key=lambda r: -r.size)
    write_json(
        outputs["results"],
        {
            "discriminant": region,
            "poi": model.config.poi_name,
            "ranking": [r.to_json() for r in rows],
        },
    )
    save_figure(
        cabinetry.visualize.ranking(result, max_pars=20, save_figure=False, close_figure=False),
        outputs["figure"],
    )
    log.info(
        "%s: leading impacts %s",
        region,
        [(r.parameter, round(r.postfit_up, 4)) for r in rows[:5]],
    )
    return rows


def check_scan_parameters(model: pyhf.pdf.Model, parameters: Sequence[str]) -> None:
    """Every scanned parameter must be a scalar parameter of the model (named if not)."""
    names = list(model.config.par_names)
    for p in parameters:
        if p not in names:
            raise ScanParameterError(
                f"config key 'inference.scan.parameters': unknown parameter '{p}' in region "
                f"'{model_name(model)}'; the model has: {', '.join(names)}"
            )


def scans(config: Mapping, workspace_path: str, outputs: Mapping[str, str]) -> list[ScanResult]:
    """Profile-likelihood scans: the POI over the configured range, others (nuisance or free
    parameters) over ±3σ of their fit; then the 2D scans of ``scan.pairs`` over
    ±:data:`PAIR_SIGMAS` σ of both (:mod:`.contours`).

    ``outputs``: ``results`` (JSON) and one figure per parameter, keyed by parameter name, and
    per pair, keyed by :func:`pair_name`.
    """
    spec = config["inference"]["scan"]
    model, data = load_model(workspace_path)
    region = model_name(model)
    check_scan_parameters(model, spec["parameters"])
    bounds = par_bounds(model, free_parameter_bounds(config["inference"]))
    nominal = checked_fit(model, data, region, par_bounds=bounds)
    results = []
    for p in spec["parameters"]:
        i = model.config.par_names.index(p)
        # the POI: the configured range, widened to μ̂ ± 3σ for a weak discriminant
        if p == model.config.poi_name:
            low = min(spec["range"][0], nominal.bestfit[i] - 3 * nominal.uncertainty[i])
            high = max(spec["range"][1], nominal.bestfit[i] + 3 * nominal.uncertainty[i])
            par_range = (max(low, 0.9 * poi_minimum(model), bounds[i][0]), min(high, bounds[i][1]))
        else:  # the scan pitfall: always pass a range, here ±3σ around the best fit (within bounds)
            par_range = _around_best_fit(nominal, i, bounds)
        try:
            scan = cabinetry.fit.scan(
                model,
                data,
                p,
                par_range=par_range,
                n_steps=spec["n_steps"],
                par_bounds=bounds,
                init_pars=[float(v) for v in nominal.bestfit],
            )  # fits start at the best fit
        except pyhf.exceptions.FailedMinimization as err:
            raise FitError(
                f"region '{region}': a fit of the scan of '{p}' did not converge ({err})"
            ) from err
        save_figure(
            cabinetry.visualize.scan(scan, save_figure=False, close_figure=False), outputs[p]
        )
        results.append(
            ScanResult(
                p,
                float(scan.bestfit),
                float(scan.uncertainty),
                scan.parameter_values.tolist(),
                np.asarray(scan.delta_nlls).tolist(),
                _interval(scan.parameter_values, scan.delta_nlls, 1.0),
            )
        )
    pairs = []
    for a, b in spec.get("pairs", []):
        check_scan_parameters(model, [a, b])
        ranges = (
            _around_best_fit(nominal, model.config.par_names.index(a), bounds, PAIR_SIGMAS),
            _around_best_fit(nominal, model.config.par_names.index(b), bounds, PAIR_SIGMAS),
        )
        pair = scan_2d(workspace_path, (a, b), ranges, spec["n_steps_2d"], bounds)
        plot_scan_2d(pair, {}, region, outputs[pair_name(a, b)])
        log.info("%s: 2D scan of %s and %s, best fit %s", region, a, b, pair.bestfit)
        pairs.append(pair.to_json())
    write_json(
        outputs["results"],
        {"discriminant": region, "scans": [r.to_json() for r in results]}
        | ({"scans_2d": pairs} if pairs else {}),
    )
    return results


def _around_best_fit(
    nominal: cabinetry.fit.FitResults,
    i: int,
    bounds: Sequence[Sequence[float]],
    n_sigma: float = 3.0,
) -> tuple[float, float]:
    """The best fit of parameter ``i`` ± ``n_sigma`` σ, within its bounds."""
    return (
        max(nominal.bestfit[i] - n_sigma * nominal.uncertainty[i], bounds[i][0]),
        min(nominal.bestfit[i] + n_sigma * nominal.uncertainty[i], bounds[i][1]),
    )


def poi_minimum(model: pyhf.pdf.Model) -> float:
    """The μ below which some bin's nominal expectation turns negative (−inf if none).

    A signal-rich bin with little background allows only a slightly negative μ; below it the
    Poisson likelihood is undefined, so a μ scan stops short of it.
    """
    pars = np.asarray(model.config.suggested_init(), dtype=float)
    pars[model.config.poi_index] = 0.0
    background = np.asarray(model.expected_actualdata(pars))
    pars[model.config.poi_index] = 1.0
    signal = np.asarray(model.expected_actualdata(pars)) - background
    ratios = -background[signal > 0] / signal[signal > 0]
    return float(ratios.max()) if len(ratios) else -np.inf


def _interval(values: np.ndarray, delta: np.ndarray, level: float) -> list[float | None]:
    """Where Δ(−2 ln L) crosses ``level`` left and right of the minimum (None if the scan
    does not reach the crossing on that side)."""
    values, delta = np.asarray(values), np.asarray(delta)
    k = int(np.argmin(delta))
    left = right = None
    if delta[k] >= level:  # the scanned range misses the minimum region altogether
        return [left, right]
    above_left = np.flatnonzero(delta[:k] >= level)
    if len(above_left):
        j = above_left[-1]
        left = float(np.interp(level, [delta[j + 1], delta[j]], [values[j + 1], values[j]]))
    above_right = np.flatnonzero(delta[k + 1 :] >= level)
    if len(above_right):
        j = k + 1 + above_right[0]
        right = float(np.interp(level, [delta[j - 1], delta[j]], [values[j - 1], values[j]]))
    return [left, right]


#: Grid extensions (doubling upwards, quartering towards 0) before a limit search gives up.
MAX_EXTENSIONS = 8
#: Order of the CLs curves a hypotest returns with its expected set.
LIMIT_CURVES = ("observed", "-2sigma", "-1sigma", "median", "+1sigma", "+2sigma")


class SharedFitsCalculator(pyhf.infer.calculators.AsymptoticCalculator):
    """pyhf's asymptotic q̃μ calculator, for many μ on one data set.

    Of the five fits behind one q̃μ evaluation, three do not depend on μ: the free fit to the
    data, the fit at μ = 0 that makes the Asimov data set, and the free fit to that. pyhf
    repeats them for every μ; this calculator does them once, so a limit grid costs two fits
    per point instead of five. ``teststatistic`` follows pyhf's formulas (``_qmu_like`` and
    ``AsymptoticCalculator.teststatistic``); ``distributions``, ``pvalues`` and
    ``expected_pvalues`` are pyhf's own. A test checks it against ``pyhf.infer.hypotest``.
    """

    def __init__(self, data: Sequence[float], model: pyhf.pdf.Model, par_bounds: list) -> None:
        super().__init__(data, model, par_bounds=par_bounds, test_stat="qtilde")
        self.asimov = pyhf.infer.calculators.generate_asimov_data(
            0.0, self.data, model, self.init_pars, self.par_bounds, self.fixed_params
        )
        self._free_data, self._free_asimov = self._free_fit(self.data), self._free_fit(self.asimov)

    def _free_fit(self, data: Sequence[float]) -> tuple[float, float]:
        """(μ̂, −2 ln L) of the free fit."""
        pars, twice_nll = pyhf.infer.mle.fit(
            data,
            self.pdf,
            self.init_pars,
            self.par_bounds,
            self.fixed_params,
            return_fitted_val=True,
        )
        return float(pars[self.pdf.config.poi_index]), float(twice_nll)

    def _qmu(self, mu: float, data: Sequence[float], free: tuple[float, float]) -> float:
        """qμ: −2 ln λ(μ) clipped at 0, and 0 where μ̂ > μ (μ̂ ≥ 0 from the bounds: q̃μ)."""
        _, twice_nll = pyhf.infer.mle.fixed_poi_fit(
            mu,
            data,
            self.pdf,
            self.init_pars,
            self.par_bounds,
            self.fixed_params,
            return_fitted_val=True,
        )
        mu_hat, free_twice_nll = free
        return 0.0 if mu_hat > mu else max(float(twice_nll) - free_twice_nll, 0.0)

    def teststatistic(self, poi_test: float) -> float:
        """The asymptotic test statistic of q̃μ at ``poi_test`` (sets ``sqrtqmuA_v``)."""
        qmu, qmu_asimov = (
            self._qmu(poi_test, self.data, self._free_data),
            self._qmu(poi_test, self.asimov, self._free_asimov),
        )
        # numpy scalars: a vanishing Asimov q gives inf (with a warning) as pyhf's tensors do,
        # not an exception
        sqrt_qmu, self.sqrtqmuA_v = np.sqrt(np.float64(qmu)), np.sqrt(np.float64(qmu_asimov))
        if sqrt_qmu <= self.sqrtqmuA_v:
            return float(sqrt_qmu - self.sqrtqmuA_v)
        return float((qmu - qmu_asimov) / (2 * self.sqrtqmuA_v))

    def cls(self, poi_test: float) -> np.ndarray:
        """Observed CLs and the five expected CLs (−2σ … +2σ) at ``poi_test``, as
        ``pyhf.infer.hypotest(..., return_expected_set=True)`` gives them."""
        teststat = self.teststatistic(poi_test)
        signal_plus_background, background = self.distributions(poi_test)
        _, _, observed = self.pvalues(teststat, signal_plus_background, background)
        _, _, expected = self.expected_pvalues(signal_plus_background, background)
        return np.array([float(observed), *map(float, expected)])


def cls_limits(
    model: pyhf.pdf.Model,
    data: Sequence[float],
    bounds: list,
    bracket: Sequence[float],
    level: float,
    n_grid: int = 12,
) -> cabinetry.fit.LimitResults:
    """Observed and expected CLs upper limits on μ (asymptotic q̃μ) from one shared grid.

    Each hypotest gives the observed and all five expected CLs values at once, so a grid
    over ``bracket`` followed by one refinement point per curve (at its log-linear
    interpolated crossing) finds all six limits with ~n_grid + 6 hypotests; Brent's method
    per curve (cabinetry.fit.limit) needs several times more. The hypotests share their
    μ-independent fits (:class:`SharedFitsCalculator`). The result is cabinetry's
    LimitResults, so cabinetry draws it.
    """
    cache: dict[float, np.ndarray] = {}
    target = 1.0 - level

    def evaluate(mu: float) -> None:
        """Observed and expected CLs at ``mu``, computed once per μ."""
        if mu not in cache:
            cache[mu] = calculator.cls(mu)  # made below, once the quiet optimizer is set

    def crossing(k: int) -> float:
        """The curve's crossing of the target, extending the grid until it is bracketed."""
        for _ in range(MAX_EXTENSIONS):
            mus = np.array(sorted(cache))
            cls = np.array([cache[m][k] for m in mus])
            below = np.flatnonzero(cls < target)
            if not len(below):  # not yet excluded: extend upwards
                evaluate(float(2 * mus[-1]))
            elif below[0] == 0:  # excluded already at the first point: extend towards 0
                evaluate(float(mus[0] / 4))
            else:
                j = below[0]
                logs = np.log(np.clip(cls[j - 1 : j + 1], 1e-300, None))
                return float(np.interp(np.log(target), logs[::-1], mus[j - 1 : j + 1][::-1]))
        raise FitError(
            f"the {LIMIT_CURVES[k]} CLs does not cross {target:g} "
            f"in mu = [{min(cache):.4g}, {max(cache):.4g}]; "
            "set inference.limit.bracket"
        )

    _, optimizer = pyhf.get_backend()
    pyhf.set_backend(pyhf.tensorlib, pyhf.optimize.minuit_optimizer(verbose=0))
    try:
        calculator = SharedFitsCalculator(data, model, bounds)
        for mu in np.linspace(bracket[0], bracket[1], n_grid):
            evaluate(float(mu))
        for k in range(len(LIMIT_CURVES)):
            evaluate(crossing(k))
        limits = [crossing(k) for k in range(len(LIMIT_CURVES))]
    finally:
        pyhf.set_backend(pyhf.tensorlib, optimizer)
    mus = np.array(sorted(cache))
    table = np.array([cache[m] for m in mus])
    return cabinetry.fit.LimitResults(
        limits[0], np.array(limits[1:]), table[:, 0], table[:, 1:], mus, level
    )


def _significance(
    model: pyhf.pdf.Model, data: list[float], bounds: list[tuple[float, float]]
) -> Significance:
    """Observed and expected discovery significance of the model's POI (asymptotic q0)."""
    result = cabinetry.fit.significance(model, data, par_bounds=bounds)
    return Significance(
        float(result.observed_significance),
        float(result.observed_p_value),
        float(result.expected_significance),
        float(result.expected_p_value),
    )


def significance_and_limit(
    config: Mapping, workspace_path: str, outputs: Mapping[str, str]
) -> SignificanceAndLimit:
    """Observed and expected discovery significance and CLs upper limits on μ (with bands),
    and the significance of every other free parameter of ``inference.limit.significance_of``
    (the model with that parameter as its POI, μ profiled).

    The limit grid spans the config's bracket, or, by default, (0.05σ, μ̂⁺ + 5σ) from the
    best fit, which encloses the observed and every expected limit.
    """
    inf = config["inference"]
    model, data = load_model(workspace_path)
    region = model_name(model)
    bounds = par_bounds(model, free_parameter_bounds(inf))
    nominal = checked_fit(model, data, region, par_bounds=bounds)
    i = model.config.poi_index
    sigma, mu_hat = float(nominal.uncertainty[i]), float(nominal.bestfit[i])
    bracket = inf["limit"].get("bracket") or [0.05 * sigma, max(mu_hat, 0.0) + 5.0 * sigma]
    significance = _significance(model, data, bounds)
    others = {}
    for name in inf["limit"]["significance_of"]:
        if name == model.config.poi_name:
            continue
        check_scan_parameters(model, [name])
        other, other_data = load_model(workspace_path, poi=name)
        others[name] = _significance(
            other, other_data, par_bounds(other, free_parameter_bounds(inf))
        )
        log.info(
            "%s: %s: Z obs %.2f exp %.2f",
            region,
            name,
            others[name].observed,
            others[name].expected,
        )
    # q̃μ needs μ ≥ 0; a weak discriminant's limit can lie beyond the fit's upper μ bound
    limit_bounds = list(bounds)
    limit_bounds[i] = (0.0, max(bounds[i][1], 2**MAX_EXTENSIONS * bracket[1]))
    try:
        limit = cls_limits(model, data, limit_bounds, bracket, inf["limit"]["confidence_level"])
    except FitError as err:
        raise FitError(f"region '{region}': {err}") from err
    result = SignificanceAndLimit(
        region,
        significance,
        UpperLimit(
            inf["limit"]["confidence_level"],
            float(limit.observed_limit),
            dict(zip(LIMIT_CURVES[1:], map(float, limit.expected_limit), strict=True)),
            [float(b) for b in bracket],
            len(limit.poi_values),
        ),
        others or None,
    )
    save_figure(
        cabinetry.visualize.limit(limit, save_figure=False, close_figure=False), outputs["figure"]
    )
    write_json(outputs["results"], result.to_json())
    log.info(
        "%s: Z obs %.2f exp %.2f; mu < %.3f obs, %.3f exp",
        region,
        result.significance.observed,
        result.significance.expected,
        result.limit.observed,
        result.limit.expected["median"],
    )
    return result
