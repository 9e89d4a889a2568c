"""Config checks of the supervised stage: inputs are configured features, every model has a
known family and parameters its family accepts, the optimiser study names a network and
optimisers the nn family accepts."""

from __future__ import annotations

from collections.abc import Mapping

from thetaflow.core import paths
from thetaflow.core.errors import ConfigError
from thetaflow.core.samples import Sample
from thetaflow.ml import optimiser_study
from thetaflow.ml.models import FAMILIES, build_classifier
from thetaflow.ml.models.base import ModelConfigError


def check(config: Mapping, samples: Mapping[str, Sample]) -> None:
    """Builds (without fitting) every configured model, so a bad parameter stops at parse."""
    inputs = config["ml"]["inputs"] or config["features"]
    unknown = [f for f in inputs if f not in config["features"]]
    if unknown:
        raise ConfigError(
            f"config key 'ml.inputs': {', '.join(unknown)} not in 'features' "
            "(the feature tables hold only those)"
        )
    for name, spec in config["ml"]["models"].items():
        if name == "autoencoder":
            raise ConfigError(
                "config key 'ml.models.autoencoder': the name 'autoencoder' is reserved for the "
                "anomaly score (config section 'anomaly'; scores in "
                f"{paths.SCORE_DIR.format(model='autoencoder')}); "
                "rename the model"
            )
        # the key at fault: the family if it is unknown, else the parameters
        key = f"ml.models.{name}.{'params' if spec['family'] in FAMILIES else 'family'}"
        try:
            build_classifier(name, spec["family"], spec["params"], 0, inputs)
        except ModelConfigError as err:
            raise ConfigError(f"config key '{key}': {err}") from err
    optimiser_study.check(config)
