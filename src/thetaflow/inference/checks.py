"""Config checks of the statistical inference (the ``inference`` section)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from thetaflow.core.errors import ConfigError
from thetaflow.core.regions import analysis_regions
from thetaflow.core.samples import Sample, main_data_sample
from thetaflow.features.compute import weight_variation_columns
from thetaflow.inference.discriminants import (
    COUNT,
    OWN_DISCRIMINANT,
    closure_discriminants,
    discriminant,
    fit_processes,
)
from thetaflow.inference.histograms import process_names
from thetaflow.inference.model import free_parameter_bounds
from thetaflow.ingestion.variations import variation_names

log = logging.getLogger(__name__)


def check(config: Mapping, samples: Mapping[str, Sample]) -> None:
    """Cross-checks of ``inference`` the schema cannot express; errors name the key."""
    inf = config["inference"]
    names = list(inf["discriminants"])
    for name in names:
        discriminant(config, name)
    for key in ("headline", "reference"):
        if inf[key] not in names:
            raise ConfigError(
                f"config key 'inference.{key}': '{inf[key]}' is not in 'inference.discriminants'"
            )
    for name in closure_discriminants(config):
        if name not in names:
            raise ConfigError(
                f"config key 'inference.closure.discriminants': '{name}' "
                "is not in 'inference.discriminants'"
            )
    if main_data_sample(config, samples) is None:
        raise ConfigError("sample list: the fit needs a data sample (kind 'data')")
    signal, background = fit_processes(samples)
    if not background:
        raise ConfigError("sample list: the fit needs at least one sample of kind 'background'")
    mc = process_names(samples)
    _check_regions(config)
    _check_parameters(inf, mc)
    shape_variations = [v for v in variation_names(config, is_data=False) if v != "nominal"]
    weight_columns = weight_variation_columns(config.get("systematics", {}).get("weight", {}))
    for group in ("normalisation", "systematics"):
        for syst, spec in inf[group].items():
            key = f"inference.{group}.{syst}"
            listed = spec.get("samples", [])
            missing = [sample for sample in listed if sample not in mc]
            if listed and len(missing) == len(listed):
                # written for another sample list (config is merged, so a user cannot delete it)
                log.warning(
                    "config key '%s.samples': none of %s is in this sample list; not applied",
                    key,
                    listed,
                )
            elif missing:
                raise ConfigError(
                    f"config key '{key}.samples': '{missing[0]}' is not a fit process of a "
                    f"signal or background sample ({', '.join(mc)})"
                )
            if group == "systematics":
                available = shape_variations if spec["type"] == "shape" else weight_columns
                what = "variation" if spec["type"] == "shape" else "weight column"
                for direction in ("up", "down"):
                    if spec[direction] not in available:
                        raise ConfigError(
                            f"config key '{key}.{direction}': no sample has the {what} "
                            f"'{spec[direction]}' "
                            f"(available: {', '.join(available) or 'none'})"
                        )
    for name in inf["limit"]["significance_of"]:
        if name not in free_parameter_bounds(inf):
            raise ConfigError(
                f"config key 'inference.limit.significance_of': '{name}' is not a free "
                f"parameter ({', '.join(free_parameter_bounds(inf))})"
            )
    known = {*free_parameter_bounds(inf), *inf["normalisation"], *inf["systematics"]}
    for p in inf["scan"]["parameters"]:
        if p not in known and not re.fullmatch(r"staterror_\w+\[\d+\]", p):
            raise ConfigError(
                f"config key 'inference.scan.parameters': unknown parameter '{p}' "
                f"(known: {', '.join(sorted(known))}, or staterror_<discriminant>[<bin>])"
            )


def _check_regions(config: Mapping) -> None:
    """``inference.regions``: every entry names an analysis region (top-level ``regions``)
    and an observable the model can fill there (a discriminant, ``count``)."""
    listed = config["inference"].get("regions", {})
    if not listed:
        return
    known = [r.name for r in analysis_regions(config)] if "regions" in config else []
    for region, spec in listed.items():
        key = f"inference.regions.{region}"
        if region not in known:
            raise ConfigError(
                f"config key '{key}': '{region}' is not an analysis region (top-level "
                f"'regions': {', '.join(known) or 'none defined'})"
            )
        observable = spec.get("observable", OWN_DISCRIMINANT)
        if observable in (OWN_DISCRIMINANT, COUNT):
            continue
        if observable not in config["inference"]["discriminants"]:
            raise ConfigError(
                f"config key '{key}.observable': '{observable}' is neither "
                f"'{OWN_DISCRIMINANT}', '{COUNT}' nor a discriminant of "
                f"'inference.discriminants' ({', '.join(config['inference']['discriminants'])})"
            )


def _check_parameters(inf: Mapping, processes: list[str]) -> None:
    """``inference.parameters``: every listed process is a fit process, the nominal value
    lies inside the bounds."""
    for name, spec in inf.get("parameters", {}).items():
        key = f"inference.parameters.{name}"
        unknown = [p for p in spec["processes"] if p not in processes]
        if unknown:
            raise ConfigError(
                f"config key '{key}.processes': '{unknown[0]}' is not a fit process "
                f"({', '.join(processes)})"
            )
        low, high = spec["bounds"]
        nominal = spec.get("nominal", 1.0)
        if not low < high or not low <= nominal <= high:
            raise ConfigError(
                f"config key '{key}': bounds [{low}, {high}] must be increasing and hold the "
                f"nominal value {nominal}"
            )
