"""What the control regions buy: the measurement without them, on the same pseudo-data.

A single-region analysis normalises its backgrounds by simulation, each within the prior
uncertainty of its cross-section; a multi-region analysis lets them float and measures them in
control regions. The comparison model here is the first kind built from the second: the
workspace without its control regions, every free normalisation factor with a ``prior`` in
``inference.parameters`` replaced by a log-normal constraint of that relative size (a
``normsys``), every other free parameter (the POI, a second signal strength) left free. Both
are fitted to the same data (:func:`.fit.control_region_gain`); σ(μ) of each, observed and
expected (Asimov at the nominal parameters), says what the control regions bought.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple


class PoiPrecision(NamedTuple):
    """μ̂ and its Hesse uncertainty on the data, and the uncertainty expected (Asimov)."""

    value: float
    uncertainty: float
    expected_uncertainty: float


class ControlRegionGain(NamedTuple):
    """σ(μ) with the control regions and free normalisations, and with MC priors instead."""

    poi: str
    free_normalisations: PoiPrecision
    mc_priors: PoiPrecision
    priors: dict[str, float]
    signal_regions: list[str]

    def to_json(self) -> dict:
        """The ``control_region_gain`` entry of ``fit.json``."""
        return {
            "poi": self.poi,
            "free_normalisations": self.free_normalisations._asdict(),
            "mc_priors": self.mc_priors._asdict(),
            "expected_uncertainty_ratio": self.free_normalisations.expected_uncertainty
            / self.mc_priors.expected_uncertainty,
            "priors": self.priors,
            "signal_regions": self.signal_regions,
        }


def mc_prior_workspace(
    workspace: Mapping[str, Any], signal_regions: Sequence[str], priors: Mapping[str, float]
) -> dict[str, Any]:
    """``workspace`` with only its ``signal_regions``, each free parameter of ``priors``
    turned into a ±prior log-normal constraint (``normsys`` named ``prior_<parameter>``)."""
    spec = copy.deepcopy(dict(workspace))
    spec["channels"] = [c for c in spec["channels"] if c["name"] in signal_regions]
    spec["observations"] = [o for o in spec["observations"] if o["name"] in signal_regions]
    for channel in spec["channels"]:
        for sample in channel["samples"]:
            sample["modifiers"] = [
                {
                    "name": f"prior_{m['name']}",
                    "type": "normsys",
                    "data": {"hi": 1.0 + priors[m["name"]], "lo": 1.0 - priors[m["name"]]},
                }
                if m["type"] == "normfactor" and m["name"] in priors
                else m
                for m in sample["modifiers"]
            ]
    for measurement in spec["measurements"]:
        config = measurement["config"]
        config["parameters"] = [p for p in config["parameters"] if p["name"] not in priors]
    return spec
