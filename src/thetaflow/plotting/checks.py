"""Config checks of the figures: every sample's ``color`` is one matplotlib draws, so a typo
stops at parse instead of in the plotting jobs."""

from __future__ import annotations

from collections.abc import Mapping

from matplotlib.colors import is_color_like

from thetaflow.core.errors import ConfigError
from thetaflow.core.samples import Sample


def check(config: Mapping, samples: Mapping[str, Sample]) -> None:
    """Each sample's colour is a matplotlib colour (a name, ``#rrggbb``, ``C0``, ...)."""
    for sample in samples.values():
        color = sample.spec.get("color")
        if color is not None and not is_color_like(color):
            raise ConfigError(
                f"sample list key 'samples.{sample.name}.color': {color!r} is not a matplotlib "
                "colour (a name such as 'red', '#rrggbb' or 'C0')"
            )
