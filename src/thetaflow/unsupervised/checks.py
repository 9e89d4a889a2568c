"""Config checks of the unsupervised stages (``anomaly`` and ``diagnostics``)."""

from __future__ import annotations

from collections.abc import Mapping

from thetaflow.core.errors import ConfigError
from thetaflow.core.samples import Sample, main_data_sample
from thetaflow.unsupervised.autoencoder import (
    ERRORS,
    KINDS,
    AutoencoderSettings,
    anomaly_inputs,
    check_bottleneck,
    training_source,
)
from thetaflow.unsupervised.diagnostics import check_diagnostics_config


def check(config: Mapping, samples: Mapping[str, Sample]) -> None:
    """Checks of the ``anomaly`` and ``diagnostics`` sections; errors name the key."""
    if "ml" not in config:
        raise ConfigError(
            "config key 'anomaly'/'diagnostics': the unsupervised stage uses the folds of the "
            "'ml' section (ml.seed, ml.folds); add an 'ml' section"
        )
    if "anomaly" in config:
        _check_anomaly(config, samples)
    if "diagnostics" in config:
        check_diagnostics_config(config)


def _check_anomaly(config: Mapping, samples: Mapping[str, Sample]) -> None:
    inputs = anomaly_inputs(config)
    unknown = [f for f in inputs if f not in config["features"]]
    if unknown:
        raise ConfigError(f"config key 'anomaly.inputs': {', '.join(unknown)} not in 'features'")
    settings = AutoencoderSettings.from_config(config)
    check_bottleneck(settings.bottleneck, len(inputs), "config key 'anomaly.model.bottleneck'")
    if settings.kind not in KINDS:
        raise ConfigError(
            f"config key 'anomaly.model.kind': must be one of {KINDS}, got {settings.kind!r}"
        )
    if settings.error not in ERRORS:
        raise ConfigError(
            f"config key 'anomaly.model.error': must be one of {ERRORS}, got {settings.error!r}"
        )
    training = training_source(config)
    # checked whenever given, even if unused: a typo must not wait for a change of source;
    # absent: the main data sample (depends on the sample list, so no schema default)
    if training["source"] == "sidebands" or "sideband_data" in training:
        data = training.get("sideband_data") or main_data_sample(config, samples)
        if data is None or data not in samples or not samples[data].is_data:
            raise ConfigError(
                f"config key 'anomaly.training.sideband_data': '{data}' is not a data sample of "
                "the sample list"
            )
    if training["source"] == "sidebands":
        feature = training["signal_region"]["feature"]
        if feature not in config["features"]:
            raise ConfigError(
                f"config key 'anomaly.training.signal_region.feature': '{feature}' is not in "
                "'features'"
            )
        lo, hi = training["signal_region"]["window_gev"]
        if not lo < hi:
            raise ConfigError(
                "config key 'anomaly.training.signal_region.window_gev': need low < high, "
                f"got {[lo, hi]}"
            )
    for name in config["anomaly"]["blind_search"]["data"]:
        if name not in samples or not samples[name].is_data:
            raise ConfigError(
                f"config key 'anomaly.blind_search.data': '{name}' is not a data sample of the "
                "sample list"
            )
