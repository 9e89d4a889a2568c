"""Batched toy fits against MINUIT one toy at a time, on a small HistFactory model.

The model has the workspace builder's ingredients (μ on the signal, log-normal normalisations,
a normalisation-plus-shape systematic, per-bin MC statistical uncertainties) on six bins and is
read with cabinetry, so its interpolation codes are the workflow's. The reference fits are
pyhf's MINUIT fits (``pyhf.infer.mle``) started at μ₀ as the closure's, with MINUIT's tolerance
tightened to 1e-4 (EDM < 2e-7 in −2 ln L), else MINUIT's own distance from the minimum
(up to ~0.01 σ in μ̂ at pyhf's default tolerance) would hide the batched fits' accuracy.

Tolerances (what the batched fits achieve, in brackets, on these toys):
* μ̂: |Δμ̂| ≤ 1e-3 σ̂  (≤ 3.3e-4 σ̂: MINUIT's own distance from the minimum at EDM < 2e-7);
* q(μ₀) = −2 ln λ(μ₀): |Δq| ≤ 1e-5  (≤ 2e-7), and the batched minima are never above MINUIT's
  by more than 1e-6 in −2 ln L  (≤ 1.3e-9);
* σ̂(μ): median relative difference ≤ 0.5 %, largest ≤ 5 %  (≤ 3e-4 here; MINUIT's Hesse
  matrix is a finite-difference estimate, up to ~2 % off the exact one on the default-shaped
  workspace of benchmarks/batched_toys.py). Not compared with μ bounded at 0: MINUIT's errors
  near a bound come through its sine transform and differ by up to ~70 % there.
"""

from __future__ import annotations

from collections.abc import Iterator

import cabinetry
import numpy as np
import pyhf
import pytest

from thetaflow.inference.batched_fits import (
    BatchedFitError,
    BatchedLikelihood,
    NewtonSettings,
    fit_toys_batched,
    minuit_optimizer,
)
from thetaflow.inference.closure import pull_statistics, sample_toys

N_TOYS = 50
MU0 = 1.0
MINUIT_TOLERANCE = 1e-4  # EDM < 2e-7 in −2 ln L
MU_TOLERANCE_SIGMA = 1e-3
Q_TOLERANCE = 1e-5
NLL_SLACK = 1e-6
SIGMA_MEDIAN_TOLERANCE = 5e-3
SIGMA_MAX_TOLERANCE = 5e-2

SIGNAL = [1.0, 2.0, 4.0, 7.0, 10.0, 12.0]
BACKGROUNDS = {
    "zjets": ([220.0, 130.0, 65.0, 28.0, 11.0, 4.0], 0.15),
    "ttbar": ([90.0, 70.0, 45.0, 22.0, 9.0, 3.0], 0.06),
}


def _staterror(nominal: list[float], fraction: float) -> dict:
    return {"name": "staterror_sr", "type": "staterror", "data": [fraction * v for v in nominal]}


def small_workspace() -> dict:
    """One region, a signal with μ and two backgrounds with lumi, cross-section and JES."""
    samples = [
        {
            "name": "zh",
            "data": SIGNAL,
            "modifiers": [
                {"name": "mu", "type": "normfactor", "data": None},
                {"name": "lumi", "type": "normsys", "data": {"hi": 1.016, "lo": 0.984}},
                _staterror(SIGNAL, 0.05),
            ],
        }
    ]
    for name, (nominal, xsec) in BACKGROUNDS.items():
        shift = np.linspace(-0.04, 0.06, len(nominal))
        samples.append(
            {
                "name": name,
                "data": nominal,
                "modifiers": [
                    {"name": "lumi", "type": "normsys", "data": {"hi": 1.016, "lo": 0.984}},
                    {
                        "name": f"xsec_{name}",
                        "type": "normsys",
                        "data": {"hi": 1 + xsec, "lo": 1 - xsec},
                    },
                    {
                        "name": "jes",
                        "type": "histosys",
                        "data": {
                            "hi_data": (np.asarray(nominal) * (1 + shift)).tolist(),
                            "lo_data": (np.asarray(nominal) * (1 - shift)).tolist(),
                        },
                    },
                    {"name": "jes", "type": "normsys", "data": {"hi": 1.02, "lo": 0.98}},
                    _staterror(nominal, 0.08),
                ],
            }
        )
    total = np.sum([s["data"] for s in samples], axis=0)
    return {
        "channels": [{"name": "sr", "samples": samples}],
        "observations": [{"name": "sr", "data": total.tolist()}],
        "measurements": [
            {
                "name": "small",
                "config": {
                    "poi": "mu",
                    "parameters": [{"name": "mu", "bounds": [[-10.0, 10.0]], "inits": [1.0]}],
                },
            }
        ],
        "version": "1.0.0",
    }


@pytest.fixture(scope="module")
def model() -> Iterator[pyhf.pdf.Model]:
    """The small model on pyhf's JAX backend (the previous backend restored afterwards)."""
    previous = pyhf.get_backend()
    pyhf.set_backend("jax")
    try:
        yield cabinetry.model_utils.model_and_data(small_workspace())[0]
    finally:
        pyhf.set_backend(*previous)


def poi_bounds(model: pyhf.pdf.Model, low: float, high: float) -> np.ndarray:
    bounds = np.asarray(model.config.suggested_bounds(), dtype=float)
    bounds[model.config.poi_index] = (low, high)
    return bounds


def minuit_reference(
    model: pyhf.pdf.Model, toys: np.ndarray, bounds: np.ndarray, mu0: float
) -> np.ndarray:
    """Rows (μ̂, σ̂, −2 ln L free, −2 ln L at μ₀) of MINUIT fits one toy at a time, both
    starting at μ₀ as the closure's do."""
    init = list(map(float, model.config.suggested_init()))
    init[model.config.poi_index] = mu0
    kwargs = {
        "init_pars": init,
        "par_bounds": [tuple(b) for b in bounds],
        "return_fitted_val": True,
        "tolerance": MINUIT_TOLERANCE,
    }
    rows = []
    with minuit_optimizer():
        for toy in toys:
            data = list(map(float, toy))
            free, free_nll = pyhf.infer.mle.fit(data, model, return_uncertainties=True, **kwargs)
            _, fixed_nll = pyhf.infer.mle.fixed_poi_fit(mu0, data, model, **kwargs)
            mu, sigma = np.asarray(free)[model.config.poi_index]
            rows.append((mu, sigma, float(free_nll), float(fixed_nll)))
    return np.array(rows)


@pytest.fixture(scope="module")
def wide(model):
    """Toys at μ₀ = 1 with μ in [−10, 10]: (toys, batched fits, MINUIT rows)."""
    bounds = poi_bounds(model, -10.0, 10.0)
    toys = sample_toys(model, MU0, N_TOYS, seed=2024)
    fits = fit_toys_batched(BatchedLikelihood(model, bounds), toys, MU0)
    return toys, fits, minuit_reference(model, toys, bounds, MU0)


def test_every_toy_converges_without_minuit(wide):
    _, fits, _ = wide
    assert fits.converged.all() and fits.has_uncertainty.all()
    assert not fits.free.refitted.any() and not fits.fixed.refitted.any()
    assert (fits.free.edm < NewtonSettings().edm_tolerance).all()
    assert fits.free.iterations.max() < 20


def test_mu_hat_and_q_match_minuit(wide):
    _, fits, ref = wide
    mu, sigma, free_nll, fixed_nll = ref.T
    assert np.all(np.abs(fits.free.poi - mu) <= MU_TOLERANCE_SIGMA * sigma)
    assert np.all(np.abs(fits.q - (fixed_nll - free_nll)) <= Q_TOLERANCE)
    # the batched minima are at least as deep as MINUIT's
    assert np.all(fits.free.twice_nll <= free_nll + NLL_SLACK)
    assert np.all(fits.fixed.twice_nll <= fixed_nll + NLL_SLACK)
    assert np.allclose(fits.fixed.poi, MU0)


def test_mu_uncertainty_matches_minuit_hesse(wide):
    _, fits, ref = wide
    relative = np.abs(fits.free.poi_uncertainty / ref[:, 1] - 1)
    assert np.median(relative) <= SIGMA_MEDIAN_TOLERANCE
    assert relative.max() <= SIGMA_MAX_TOLERANCE
    assert np.isnan(fits.fixed.poi_uncertainty).all()  # μ is not a parameter there


def test_rows_feed_the_closure_statistics(wide):
    _, fits, ref = wide
    rows = fits.rows()
    assert rows.shape == (N_TOYS, 4) and (rows[:, 3] == 1).all()
    pull = np.sign(ref[:, 0] - MU0) * np.sqrt(np.maximum(ref[:, 3] - ref[:, 2], 0))
    assert np.allclose(rows[:, 2], pull, atol=1e-4)
    stats = pull_statistics(rows, MU0)
    assert stats.converged == N_TOYS and abs(stats.pull.mean) < 4 * stats.pull.mean_error


def test_mu_at_its_lower_bound_is_held_there(model):
    """μ in [0, 10], toys without signal: about half of the free fits end at μ = 0, where
    MINUIT's μ̂ is within its tolerance of the bound and its Hesse error is not comparable."""
    bounds = poi_bounds(model, 0.0, 10.0)
    toys = sample_toys(model, 0.0, 30, seed=7)
    fits = fit_toys_batched(BatchedLikelihood(model, bounds), toys, MU0)
    ref = minuit_reference(model, toys, bounds, MU0)
    assert fits.converged.all() and not fits.free.refitted.any()
    at_bound = fits.free.poi == 0.0
    assert 5 <= at_bound.sum() <= 25  # the case is exercised
    assert np.all(ref[at_bound, 0] < 1e-3)  # MINUIT agrees they sit at the bound
    inside = ~at_bound
    assert np.all(np.abs(fits.free.poi - ref[:, 0])[inside] <= MU_TOLERANCE_SIGMA * ref[inside, 1])
    assert np.all(np.abs(fits.q - (ref[:, 3] - ref[:, 2])) <= Q_TOLERANCE)
    assert np.all(fits.free.twice_nll <= ref[:, 2] + NLL_SLACK)
    # a Hesse error is missing only at the bound (indefinite Hessian there), never inside
    assert fits.has_uncertainty[inside].all()
    assert np.array_equal(fits.rows()[:, 3] == 1, fits.has_uncertainty)


def test_unconverged_toys_are_flagged_or_refitted_by_minuit(model, wide):
    toys, converged, _ = wide
    toys = toys[:5]
    bounds = poi_bounds(model, -10.0, 10.0)
    starved = NewtonSettings(max_iterations=1, minuit_fallback=False)
    flagged = fit_toys_batched(BatchedLikelihood(model, bounds, starved), toys, MU0)
    assert not flagged.converged.any() and not flagged.free.refitted.any()
    rows = flagged.rows()
    assert (rows[:, 3] == 0).all() and np.isnan(rows[:, :3]).all()  # never a silent number
    fallback = NewtonSettings(max_iterations=1, minuit_tolerance=MINUIT_TOLERANCE)
    refitted = fit_toys_batched(BatchedLikelihood(model, bounds, fallback), toys, MU0)
    assert refitted.free.refitted.all() and refitted.fixed.refitted.all()
    assert refitted.converged.all()
    sigma = converged.free.poi_uncertainty[:5]
    assert np.all(np.abs(refitted.free.poi - converged.free.poi[:5]) <= MU_TOLERANCE_SIGMA * sigma)
    assert np.all(np.abs(refitted.q - converged.q[:5]) <= Q_TOLERANCE)


def test_bad_inputs_are_refused(model):
    with pytest.raises(BatchedFitError, match="columns"):
        BatchedLikelihood(model).fit(np.ones((3, 4)))
    with pytest.raises(BatchedFitError, match="outside its bounds"):
        BatchedLikelihood(model, poi_bounds(model, 0.0, 10.0)).fit(
            np.ones((2, model.config.nmaindata + model.config.nauxdata)), fixed_poi=-1.0
        )
    with pytest.raises(BatchedFitError, match="low < high"):
        BatchedLikelihood(model, [(0.0, 1.0)])


def test_the_numpy_backend_is_refused(model):
    previous = pyhf.get_backend()
    pyhf.set_backend("numpy")
    try:
        with pytest.raises(BatchedFitError, match="JAX backend"):
            BatchedLikelihood(model)
    finally:
        pyhf.set_backend(*previous)
