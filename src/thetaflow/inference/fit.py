"""Maximum-likelihood fit of the pseudo-data: θ with MINOS errors, pulls, correlations, GoF.

The fits themselves are cabinetry's (pyhf + iminuit). What this module adds: the model's
bounds from config for every free parameter (μ wide enough for unbiased toys), a fit that
stops with the failing parameters named instead of returning a silent wrong number, and the
outputs an analysis review reads (JSON results, pulls, correlation matrix, pre-/post-fit
distributions and yields of every region).

Nothing here assumes one region or one free parameter: the free parameters are the model's
normalisation factors (:func:`free_parameters`, the POI first), and figures and yields come
per region. A one-region, one-POI model writes exactly what it always did.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import cabinetry
import numpy as np
import pandas as pd
import pyhf

from thetaflow.core.config import read_yaml
from thetaflow.core.errors import ThetaflowError
from thetaflow.core.io import atomic_path, read_json, reading_result, write_json
from thetaflow.core.regions import signal_region_names
from thetaflow.core.samples import load_samples
from thetaflow.inference.discriminants import binning_settings
from thetaflow.inference.fit_figures import plot_regions, region_axis
from thetaflow.inference.model import free_parameter_bounds
from thetaflow.inference.prior_model import ControlRegionGain, PoiPrecision, mc_prior_workspace
from thetaflow.plotting.stack import process_styles
from thetaflow.plotting.style import save_figure

log = logging.getLogger(__name__)


class FitError(ThetaflowError, RuntimeError):
    """A fit did not converge; the message names the region and the suspicious parameters."""


class PoiEstimate(NamedTuple):
    """A free parameter's estimate (μ̂ for the POI) with its Hesse uncertainty and, when
    asked for, its MINOS errors (down, up)."""

    value: float
    hesse: float
    minos: tuple[float, float] | None

    @property
    def up(self) -> float:
        """The upward error: MINOS if computed, else Hesse."""
        return self.minos[1] if self.minos is not None else self.hesse

    @property
    def down(self) -> float:
        """The downward error (negative): MINOS if computed, else −Hesse."""
        return self.minos[0] if self.minos is not None else -self.hesse

    def to_json(self) -> dict:
        """The ``mu`` entry of ``fit.json`` (and one of ``free_parameters``)."""
        minos = self.minos
        return {
            "value": self.value,
            "hesse": self.hesse,
            "minos": {"down": minos[0], "up": minos[1]} if minos is not None else None,
        }


@dataclass(frozen=True)
class FitSummary:
    """The results of one fit of the pseudo-data, as ``fit.json`` holds them.

    ``estimates``: every free parameter, the POI first; ``fit.json`` keeps the POI's as
    ``mu`` and, for a model with several, all of them under ``free_parameters``.
    """

    discriminant: str
    estimates: dict[str, PoiEstimate]
    parameters: list[dict]  # rows of :func:`parameter_table`
    labels: list[str]
    correlation: list[list[float]]  # rounded to 6 digits
    gof_p_value: float  # saturated model
    best_twice_nll: float
    control_region_gain: ControlRegionGain | None = None

    @property
    def poi(self) -> str:
        """The POI's name."""
        return next(iter(self.estimates))

    @property
    def mu(self) -> PoiEstimate:
        """The POI's estimate."""
        return self.estimates[self.poi]

    def to_json(self) -> dict:
        """The content of ``fit.json``."""
        result = {
            "discriminant": self.discriminant,
            "mu": self.mu.to_json(),
        }
        if len(self.estimates) > 1:
            result["poi"] = self.poi
            result["free_parameters"] = {k: v.to_json() for k, v in self.estimates.items()}
        return (
            result
            | {
                "parameters": self.parameters,
                "correlation": {"labels": self.labels, "matrix": self.correlation},
                "goodness_of_fit": {"p_value": self.gof_p_value, "method": "saturated model"},
                "best_twice_nll": self.best_twice_nll,
            }
            | (
                {"control_region_gain": self.control_region_gain.to_json()}
                if self.control_region_gain is not None
                else {}
            )
        )


def load_model(
    workspace_path: str, asimov: bool = False, poi: str | None = None
) -> tuple[pyhf.pdf.Model, list[float]]:
    """The pyhf model and its data (observed or Asimov at the nominal parameters) with auxdata;
    a workspace pyhf refuses is a CorruptResultError naming the rule that rebuilds it.
    ``poi``: another free parameter as the model's POI (its significance, μ then profiled)."""
    workspace = read_json(workspace_path)
    if poi is not None:
        for measurement in workspace["measurements"]:
            measurement["config"]["poi"] = poi
    with reading_result(workspace_path):
        return cabinetry.model_utils.model_and_data(workspace, asimov=asimov)


def model_name(model: pyhf.pdf.Model) -> str:
    """What results and messages call the model: its region, or its regions joined by '+'."""
    return "+".join(model.config.channels)


def free_parameters(model: pyhf.pdf.Model) -> list[str]:
    """The model's free normalisation factors (its θ), the POI first, then in pyhf's order."""
    poi = model.config.poi_name
    factors = [name for name, kind in model.config.modifiers if kind == "normfactor"]
    return [poi] + [name for name in dict.fromkeys(factors) if name != poi]


def par_bounds(
    model: pyhf.pdf.Model, bounds: Mapping[str, Sequence[float]] | Sequence[float]
) -> list[tuple[float, float]]:
    """pyhf's suggested bounds with those from config: per free parameter name (a name the
    model does not have is ignored), or a (low, high) pair for the POI alone."""
    result = [tuple(b) for b in model.config.suggested_bounds()]
    named = bounds if isinstance(bounds, Mapping) else {model.config.poi_name: bounds}
    for name, (low, high) in named.items():
        if name in model.config.par_map:
            result[model.config.par_slice(name).start] = (float(low), float(high))
    return result


def _explain(
    model: pyhf.pdf.Model, err: pyhf.exceptions.FailedMinimization, region: str
) -> FitError:
    """A FitError listing the parameters at a bound or with no finite uncertainty."""
    result = getattr(err, "result", None)
    minuit = getattr(result, "minuit", None)
    details = []
    if minuit is not None:
        for name, p in zip(model.config.par_names, minuit.params, strict=True):
            if p.is_fixed:
                continue
            span = (p.upper_limit - p.lower_limit) if p.has_limits else 0.0
            if (
                p.has_limits
                and min(p.value - p.lower_limit, p.upper_limit - p.value) <= 1e-6 * span
            ):
                details.append(
                    f"{name}={p.value:.4g} at its bound [{p.lower_limit:.4g}, {p.upper_limit:.4g}]"
                )
            elif not np.isfinite(p.error) or p.error <= 0:
                details.append(f"{name}={p.value:.4g} with uncertainty {p.error}")
        details.append(
            f"EDM {minuit.fmin.edm:.3g}" if minuit.fmin is not None else "no function minimum"
        )
    message = getattr(result, "message", str(err))
    return FitError(
        f"region '{region}': the fit did not converge ({message}); "
        + ("; ".join(details) if details else "no parameter at a bound")
    )


def checked_fit(
    model: pyhf.pdf.Model, data: Sequence[float], region: str, **kwargs: Any
) -> cabinetry.fit.FitResults:
    """``cabinetry.fit.fit`` that raises :class:`FitError` naming the failing parameters."""
    try:
        result = cabinetry.fit.fit(model, list(data), **kwargs)
    except pyhf.exceptions.FailedMinimization as err:
        raise _explain(model, err, region) from err
    bad = [n for n, u in zip(result.labels, result.uncertainty, strict=True) if not np.isfinite(u)]
    if bad:
        raise FitError(
            f"region '{region}': the fit converged but {', '.join(bad)} have no finite uncertainty"
        )
    return result


def parameter_table(model: pyhf.pdf.Model, result: cabinetry.fit.FitResults) -> list[dict]:
    """Every parameter with its pre-fit value and uncertainty, pull and constraint."""
    init = np.asarray(model.config.suggested_init(), dtype=float)
    prefit = np.asarray(cabinetry.model_utils.prefit_uncertainties(model), dtype=float)
    rows = []
    for i, name in enumerate(result.labels):
        row = {
            "name": name,
            "value": float(result.bestfit[i]),
            "uncertainty": float(result.uncertainty[i]),
            "prefit_value": float(init[i]),
            "prefit_uncertainty": float(prefit[i]),
        }
        if prefit[i] > 0:  # constrained: pull and constraint relative to the prior
            row["pull"] = float((result.bestfit[i] - init[i]) / prefit[i])
            row["constraint"] = float(result.uncertainty[i] / prefit[i])
        rows.append(row)
    return rows


def estimate(result: cabinetry.fit.FitResults, name: str) -> PoiEstimate:
    """The estimate of parameter ``name`` in ``result`` (with MINOS errors if computed)."""
    i = list(result.labels).index(name)
    minos = result.minos_uncertainty.get(name)
    return PoiEstimate(
        float(result.bestfit[i]),
        float(result.uncertainty[i]),
        (float(minos[0]), float(minos[1])) if minos else None,
    )


def fit_summary(model: pyhf.pdf.Model, result: cabinetry.fit.FitResults, region: str) -> FitSummary:
    """The results of one fit: θ (Hesse and MINOS), parameters, correlations, GoF."""
    return FitSummary(
        discriminant=region,
        estimates={name: estimate(result, name) for name in free_parameters(model)},
        parameters=parameter_table(model, result),
        labels=list(result.labels),
        correlation=np.round(result.corr_mat, 6).tolist(),
        gof_p_value=result.goodness_of_fit,
        best_twice_nll=result.best_twice_nll,
    )


def _yields(prefit: Any, postfit: Any, data: list[float]) -> pd.DataFrame:
    """Per-process yields before and after the fit, with uncertainties, and the data; per
    region (column ``region``, only for a model with several)."""
    channels = list(prefit.model.config.channels)
    rows = []
    for label, pred in (("prefit", prefit), ("postfit", postfit)):
        tables = cabinetry.tabulate.yields(
            pred, data, per_bin=False, per_channel=True, save_tables=False
        )
        for channel in channels:
            for row in tables["yields_per_channel"]:  # absent from a region: 0 ± 0
                region = {"region": channel} if len(channels) > 1 else {}
                rows.append(
                    {
                        "stage": label,
                        **region,
                        "sample": row["sample"],
                        "yield": _number(row[channel]),
                    }
                )
    frame = pd.DataFrame(rows)
    frame[["yield", "uncertainty"]] = pd.DataFrame(frame["yield"].tolist(), index=frame.index)
    return frame


def _number(text: str) -> tuple[float, float]:
    """cabinetry formats yields as 'value ± uncertainty' (or a bare count for data)."""
    parts = str(text).split("\u00b1")
    return float(parts[0]), float(parts[1]) if len(parts) > 1 else float(np.sqrt(float(parts[0])))


def _binning_strategies(config: Mapping, binning_path: str | None, regions: Sequence[str]) -> dict:
    """The binning strategy of every region: from ``binning.json`` when given, else from
    config (a one-region model's region is its discriminant)."""
    if binning_path is not None:
        records = read_json(binning_path)
        records = records.get("regions", {regions[0]: records})
        return {r: records[r]["strategy"]["strategy"] for r in regions}
    return {r: binning_settings(config, r)["strategy"] for r in regions}


def _precision(
    workspace: Mapping[str, Any], bounds: Mapping[str, Sequence[float]], label: str
) -> PoiPrecision:
    """μ̂ ± σ on the observed data and σ on the Asimov data set of ``workspace``."""
    results = []
    for asimov in (False, True):
        model, data = cabinetry.model_utils.model_and_data(dict(workspace), asimov=asimov)
        fit = checked_fit(model, data, label, par_bounds=par_bounds(model, bounds))
        i = model.config.poi_index
        results.append((float(fit.bestfit[i]), float(fit.uncertainty[i])))
    (value, sigma), (_, expected) = results
    return PoiPrecision(value, sigma, expected)


def control_region_gain(
    workspace: Mapping[str, Any],
    signal_regions: Sequence[str],
    priors: Mapping[str, float],
    bounds: Mapping[str, Sequence[float]],
) -> ControlRegionGain | None:
    """σ(μ) of the model and of its MC-prior version (:mod:`.prior_model`) on the same data;
    None when the model has no control region or no free parameter has a prior."""
    channels = [c["name"] for c in workspace["channels"]]
    kept = [c for c in channels if c in signal_regions]
    if not priors or not kept or len(kept) == len(channels):
        return None
    reduced = mc_prior_workspace(workspace, signal_regions, priors)
    pyhf.schema.validate(reduced, "workspace.json")
    return ControlRegionGain(
        workspace["measurements"][0]["config"]["poi"],
        _precision(workspace, bounds, "+".join(channels)),
        _precision(reduced, bounds, "+".join(kept) + " (MC priors)"),
        dict(priors),
        kept,
    )


def fit_data(
    config: Mapping,
    workspace_path: str,
    cabinetry_path: str,
    outputs: Mapping[str, str],
    binning_path: str | None = None,
) -> FitSummary:
    """Fit the pseudo-data; write results, pulls, correlations, pre/post-fit plots and yields.

    Every free parameter is bounded by config and gets MINOS errors (``inference.minos``).
    The pre- and post-fit figures have one panel per region (:mod:`.fit_figures`); each
    region's binning strategy is read from ``binning_path`` (the workspace's ``binning.json``)
    when given, else from config (a one-region model: its discriminant's).
    """
    inf = config["inference"]
    model, data = load_model(workspace_path)
    region = model_name(model)
    thetas = free_parameters(model)
    result = checked_fit(
        model,
        data,
        region,
        minos=thetas if inf["minos"] else None,
        goodness_of_fit=True,
        par_bounds=par_bounds(model, free_parameter_bounds(inf)),
    )
    summary = fit_summary(model, result, region)
    for name, theta in summary.estimates.items():
        log.info(
            "%s: %s = %.4f +%.4f -%.4f (%s)",
            region,
            name,
            theta.value,
            theta.up,
            -theta.down,
            "MINOS" if theta.minos is not None else "Hesse",
        )
    log.info("%s: GoF p = %.3f", region, summary.gof_p_value)
    channels = list(model.config.channels)
    strategies = _binning_strategies(config, binning_path, channels)
    axes = {
        r["Name"]: region_axis(r, strategies[r["Name"]])
        for r in read_yaml(cabinetry_path)["Regions"]
    }
    styles = process_styles(load_samples(config))
    analysis = config["analysis"]
    lumi = f"{analysis['lumi_fb']:g} fb$^{{-1}}$ ({analysis['sqrt_s_tev']:g} TeV)"
    prefit = cabinetry.model_utils.prediction(model)
    postfit = cabinetry.model_utils.prediction(model, fit_results=result)
    for key, stage, pred in (("prefit", "pre-fit", prefit), ("postfit", "post-fit", postfit)):
        plot_regions(pred, data, axes, styles, stage, lumi, outputs[key])
    save_figure(
        cabinetry.visualize.pulls(result, exclude=thetas, save_figure=False, close_figure=False),
        outputs["pulls"],
    )
    save_figure(
        cabinetry.visualize.correlation_matrix(
            result, pruning_threshold=0.05, save_figure=False, close_figure=False
        ),
        outputs["correlation"],
    )
    yields = _yields(prefit, postfit, data)
    with atomic_path(outputs["yields"]) as tmp:
        yields.to_csv(tmp, index=False, float_format="%.4g")
    priors = {n: p["prior"] for n, p in inf.get("parameters", {}).items() if "prior" in p}
    gain = control_region_gain(
        read_json(workspace_path), signal_region_names(config), priors, free_parameter_bounds(inf)
    )
    if gain is not None:
        summary = replace(summary, control_region_gain=gain)
        log.info(
            "%s: sigma(%s) expected %.4f with the control regions, %.4f with MC priors",
            region,
            gain.poi,
            gain.free_normalisations.expected_uncertainty,
            gain.mc_priors.expected_uncertainty,
        )
    write_json(outputs["results"], summary.to_json())
    return summary
