"""Fixtures of the ingestion tests: a small chunk of the embedded simulation, and a copy of a
simulated file with branches dropped or replaced."""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from thetaflow.simulation.production import (
    SimulationSettings,
    model_settings,
    simulate_mc_chunk,
    write_nanoaod,
)


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


def _rewrite(
    src: str, out: Path, drop: Collection[str] = (), met_pt: np.ndarray | None = None
) -> str:
    """Copy ``src``'s Events tree without the branches ``drop`` and optionally with a new
    MET_pt."""
    arrays = uproot.open(src)["Events"].arrays()
    flat: dict = {}
    collections: dict = {}
    for name in arrays.fields:
        if name in drop or (name.startswith("n") and name[1:] + "_pt" in arrays.fields):
            continue
        prefix, _, field = name.partition("_")
        if arrays[name].ndim > 1:
            collections.setdefault(prefix, {})[field] = arrays[name]
        else:
            flat[name] = arrays[name]
    if met_pt is not None:
        flat["MET_pt"] = met_pt
    events = {k: ak.to_numpy(v) for k, v in flat.items()}
    events |= {k: ak.zip(v) for k, v in collections.items()}
    write_nanoaod(str(out), events, None, compression_level=1)
    return str(out)


@pytest.fixture
def rewrite() -> Callable[..., str]:
    """``rewrite(src, out, drop=..., met_pt=...)``: a simulated file's copy without the
    branches ``drop`` (and with a new MET_pt), its path."""
    return _rewrite
