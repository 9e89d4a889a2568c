"""Config checks of the embedded simulation (``simulation``) the schema cannot express."""

from __future__ import annotations

from collections.abc import Mapping

from thetaflow.core.samples import Sample
from thetaflow.simulation import fastsim
from thetaflow.simulation.detector import Detector


def check(config: Mapping, samples: Mapping[str, Sample]) -> None:
    """The detector parameters build (nested electron ID working points, for one); the
    ``fastsim`` sample is simulated MC."""
    Detector.from_config(config["simulation"]["detector"])
    fastsim.check(config, samples)
