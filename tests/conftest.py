"""Fixtures shared by every test: the project root and the default analysis, loaded once.

The default analysis goes through :func:`thetaflow.analysis.load_analysis`, the load path of
the workflow itself; tests that change it get their own deep copy (``default_config``).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from thetaflow.analysis import load_analysis
from thetaflow.core.samples import Sample

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout under test (config/, resources/, the Snakefile)."""
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def default_analysis() -> tuple[dict, dict[str, Sample]]:
    """``config/config.yaml`` validated and checked, with its sample list (shared: do not
    modify; take ``default_config`` for a copy to change)."""
    return load_analysis([PROJECT_ROOT / "config" / "config.yaml"])


@pytest.fixture()
def default_config(default_analysis: tuple[dict, dict[str, Sample]]) -> dict:
    """A private deep copy of the default config, free to modify."""
    return copy.deepcopy(default_analysis[0])
