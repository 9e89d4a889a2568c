"""Fixtures of the ingestion tests: a small chunk of the embedded simulation."""

from __future__ import annotations

import pytest

from thetaflow.simulation.production import SimulationSettings, model_settings, simulate_mc_chunk


@pytest.fixture(scope="module")
def zh_file(default_analysis, tmp_path_factory) -> str:
    """A small simulated ZH chunk (3000 filtered events, Run-2-like NanoAOD)."""
    config, samples = default_analysis
    settings = SimulationSettings.from_config({**config["simulation"], "seed": 7})
    path = tmp_path_factory.mktemp("sim") / "zh.root"
    simulate_mc_chunk(
        settings, model_settings(samples["zh"].spec["generate"]), "zh", 0, 3000, str(path)
    )
    return str(path)
