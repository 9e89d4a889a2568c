"""Config checks of the benchmarks (the ``benchmarks`` section): the fixed-point types parse,
the benchmarked models and fold exist, the timing bounds are ordered, so a bad value stops at
parse instead of in the GPU or FPGA job."""

from __future__ import annotations

from collections.abc import Mapping

from thetaflow.benchmarking.fixedpoint import PrecisionError
from thetaflow.benchmarking.fpga.settings import FPGASettings
from thetaflow.core.errors import ConfigError
from thetaflow.core.samples import Sample


def check(config: Mapping, samples: Mapping[str, Sample]) -> None:
    """Every ``benchmarks`` key the schema cannot judge; errors name the key."""
    spec = config["benchmarks"]
    models = config.get("ml", {}).get("models", {})
    for i, name in enumerate(spec["models"]):
        if name != "autoencoder" and name not in models:
            raise ConfigError(
                f"config key 'benchmarks.models[{i}]': '{name}' is neither 'autoencoder' nor an "
                f"entry of 'ml.models' ({', '.join(models) or 'none'})"
            )
    if "ml" in config and spec["fold"] >= config["ml"]["folds"]:
        raise ConfigError(
            f"config key 'benchmarks.fold': {spec['fold']} is not one of the "
            f"{config['ml']['folds']} folds of 'ml.folds'"
        )
    gpu = spec["gpu"]
    if gpu["min_seconds"] > gpu["max_seconds"]:
        raise ConfigError(
            f"config key 'benchmarks.gpu.min_seconds': {gpu['min_seconds']} exceeds "
            f"'benchmarks.gpu.max_seconds' ({gpu['max_seconds']})"
        )
    try:
        # the FPGA job's own parse: the ap_fixed types and the scan widths against them
        FPGASettings.from_config(config)
    except PrecisionError as err:
        # its messages read "<key>: <what was expected>"
        key, _, why = str(err).partition(": ")
        raise ConfigError(f"config key '{key}': {why}") from err
