"""Config checks of the statistical inference (the ``inference`` section)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from thetaflow.core.errors import ConfigError
from thetaflow.core.samples import Sample, main_data_sample
from thetaflow.features.compute import weight_variation_columns
from thetaflow.inference.discriminants import closure_discriminants, discriminant, fit_processes
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
    mc = signal + background
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
                    f"config key '{key}.samples': '{missing[0]}' is not a signal or background "
                    f"sample ({', '.join(mc)})"
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
    known = {*free_parameter_bounds(inf), *inf["normalisation"], *inf["systematics"]}
    for p in inf["scan"]["parameters"]:
        if p not in known and not re.fullmatch(r"staterror_\w+\[\d+\]", p):
            raise ConfigError(
                f"config key 'inference.scan.parameters': unknown parameter '{p}' "
                f"(known: {', '.join(sorted(known))}, or staterror_<discriminant>[<bin>])"
            )
