"""The shape variations ingestion writes per sample (nominal, jet-energy-scale up/down).

Light on purpose: the workflow needs the variation names when Snakemake parses the rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


def variation_names(config: Mapping, is_data: bool) -> list[str]:
    """Names of the variations ingestion writes for a sample: ``nominal`` and, for
    simulation, ``jes_up``/``jes_down`` when ``systematics.shape.jes`` is configured.

    :func:`variations` adds their jet-energy-scale factors; kept here,
    without importing ingestion (coffea, uproot), because the workflow needs the names when
    it parses.
    """
    names = ["nominal"]
    if config.get("systematics", {}).get("shape", {}).get("jes") and not is_data:
        names += ["jes_up", "jes_down"]
    return names


@dataclass(frozen=True)
class Variation:
    """A shape variation applied at ingestion; ``jes_factor`` scales jet p_T and mass."""

    name: str
    jes_factor: float = 1.0


def variations(config: Mapping, is_data: bool) -> list[Variation]:
    """Nominal plus, for simulation, the up/down shifts of every shape systematic (the
    names of :func:`variation_names`, with their jet-energy-scale factors)."""
    # optional (absent: nominal only); relative_shift is required when jes is set
    jes = config.get("systematics", {}).get("shape", {}).get("jes")
    shift = jes["relative_shift"] if jes else 0.0
    factors = {"nominal": 1.0, "jes_up": 1.0 + shift, "jes_down": 1.0 - shift}
    return [Variation(name, factors[name]) for name in variation_names(config, is_data)]
