"""Config checks of the feature stage: every configured feature exists in the registry, the
b-tag calibration of the weight systematics is usable."""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from thetaflow.core.errors import ConfigError
from thetaflow.core.samples import Sample
from thetaflow.features.compute import FEATURES, BTagCalibration


def check(config: Mapping, samples: Mapping[str, Sample]) -> None:
    """Unknown feature names are refused with a suggestion; so is a b-tag scale factor whose
    up variation times the tag efficiency reaches 1."""
    for feature in config["features"]:
        if feature not in FEATURES:
            close = difflib.get_close_matches(feature, FEATURES, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(
                f"config key 'features': unknown feature '{feature}'{hint}; "
                f"available: {', '.join(FEATURES)}"
            )
    btag = config.get("systematics", {}).get("weight", {}).get("btag")
    if btag is not None:
        BTagCalibration.from_config(btag)
