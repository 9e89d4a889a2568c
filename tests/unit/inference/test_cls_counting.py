"""CLs upper limits of a one-bin counting experiment against the closed asymptotic formulas.

One bin with known signal s and background b and no nuisance parameter: the profile
likelihood ratio has a closed form, so the asymptotic q̃μ CLs (Cowan, Cranmer, Gross, Vitells,
Eur. Phys. J. C 71 (2011) 1554) is a formula in μ, solved here with a root finder, independently
of pyhf. :func:`thetaflow.inference.beyond.cls_limits` must find the same observed limit and the
same expected band.
"""

from __future__ import annotations

import math

import pyhf
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from thetaflow.inference.beyond import LIMIT_CURVES, cls_limits


def counting_model(s: float, b: float) -> pyhf.pdf.Model:
    """One bin: signal s scaled by μ over a background b known (to 10⁻⁶)."""
    spec = {
        "channels": [
            {
                "name": "bin",
                "samples": [
                    {
                        "name": "signal",
                        "data": [s],
                        "modifiers": [{"name": "mu", "type": "normfactor", "data": None}],
                    },
                    {
                        "name": "background",
                        "data": [b],
                        # a constrained nuisance of negligible size (10⁻⁶): the fit at fixed μ
                        # keeps one free parameter, as Minuit needs, and b stays exact
                        "modifiers": [
                            {
                                "name": "b",
                                "type": "normsys",
                                "data": {"hi": 1 + 1e-6, "lo": 1 - 1e-6},
                            }
                        ],
                    },
                ],
            }
        ]
    }
    return pyhf.Model(spec, poi_name="mu")


def twice_nll_ratio(mu: float, n: float, s: float, b: float) -> float:
    """q̃μ of n observed events: −2 ln L(μ)/L(μ̂) with μ̂ = max((n − b)/s, 0), 0 if μ̂ > μ."""
    mu_hat = max((n - b) / s, 0.0)
    if mu_hat > mu:
        return 0.0

    def nll(m: float) -> float:
        lam = m * s + b
        return lam - n * math.log(lam)

    return 2.0 * (nll(mu) - nll(mu_hat))


def analytic_cls(mu: float, n: float, s: float, b: float, n_sigma: float | None = None) -> float:
    """Asymptotic CLs = p_{s+b} / p_b of q̃μ (CCGV eqs. 65-66 with qμ,A from the Asimov data
    set n = b), in terms of t (√qμ − √qμ,A, or (qμ − qμ,A)/(2√qμ,A) beyond qμ,A):
    p_{s+b} = 1 − Φ(t + √qμ,A), p_b = 1 − Φ(t). With ``n_sigma`` = N, the expected CLs of the
    background-only band at N σ (t = −N: N > 0 is the band of higher limits)."""
    q_a = twice_nll_ratio(mu, b, s, b)
    sqrt_qa = math.sqrt(q_a)
    if n_sigma is not None:  # the background-only distribution of t is a unit Gaussian
        t = -n_sigma
    else:
        q = twice_nll_ratio(mu, n, s, b)
        if q <= q_a:  # t = √qμ − √qμ,A
            t = math.sqrt(q) - sqrt_qa
        else:  # beyond the Asimov value q̃μ follows the other branch of its distribution
            t = (q - q_a) / (2 * sqrt_qa)
    return math.exp(norm.logsf(t + sqrt_qa) - norm.logsf(t))  # in logs: far tails stay finite


def analytic_limit(n: float, s: float, b: float, n_sigma: float | None = None) -> float:
    return brentq(lambda mu: analytic_cls(mu, n, s, b, n_sigma) - 0.05, 1e-6, 1e3, xtol=1e-10)


@pytest.mark.parametrize(("s", "b", "n"), [(5.0, 10.0, 12.0), (20.0, 100.0, 95.0)])
def test_cls_limits_match_the_asymptotic_counting_formula(s, b, n):
    model = counting_model(s, b)
    bounds = [(0.0, 100.0), (-5.0, 5.0)]  # μ, then the nuisance
    result = cls_limits(model, [n, *model.config.auxdata], bounds, [0.05, 5.0], 0.95)
    assert result.observed_limit == pytest.approx(analytic_limit(n, s, b), rel=2e-3)
    expected = dict(zip(LIMIT_CURVES[1:], result.expected_limit, strict=True))
    for name, n_sigma in zip(LIMIT_CURVES[1:], (-2, -1, 0, 1, 2), strict=True):
        assert expected[name] == pytest.approx(analytic_limit(n, s, b, n_sigma), rel=2e-3), name


def test_cls_limit_of_a_large_background_is_the_gaussian_reference():
    """b ≫ s: qμ,A ≈ (μs)²/b, so the median expected 95 % CLs limit is
    μ·s ≈ Φ⁻¹(1 − 0.05/2)·√b = 1.96·√b (here 1.96·100/10 = 19.6); a count of n = b observes
    the median. Exact asymptotic value for this s, b: 19.73 (the ln term adds 0.7 %)."""
    s, b = 10.0, 10_000.0
    model = counting_model(s, b)
    bounds = [(0.0, 200.0), (-5.0, 5.0)]
    result = cls_limits(model, [b, *model.config.auxdata], bounds, [1.0, 40.0], 0.95)
    median = result.expected_limit[2]
    assert median == pytest.approx(norm.isf(0.025) * math.sqrt(b) / s, rel=0.01)
    assert median == pytest.approx(analytic_limit(b, s, b), rel=2e-3)
    assert result.observed_limit == pytest.approx(median, rel=2e-3)
