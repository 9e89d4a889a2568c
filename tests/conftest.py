"""Fixtures shared by every test: the project root and the default analysis, loaded once.

The default analysis goes through :func:`thetaflow.analysis.load_analysis`, the load path of
the workflow itself; tests that change it get their own deep copy (``default_config``).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from thetaflow.analysis import load_analysis
from thetaflow.core.samples import Sample

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: Environment variable naming the directory of the real CMS NanoAOD test files.
NANOAOD_DIR_VARIABLE = "THETAFLOW_NANOAOD_DIR"
#: Where they are by default: beside the project, as in the CI of the development machines.
DEFAULT_NANOAOD_DIR = PROJECT_ROOT.parent / "shared" / "data" / "nanoaod"


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


@pytest.fixture(scope="session")
def real_nanoaod() -> Path:
    """The directory of the real CMS NanoAOD files (``$THETAFLOW_NANOAOD_DIR``, by default
    ``../shared/data/nanoaod``). Where it does not exist the test is skipped, saying where the
    files come from; where it exists, a missing file fails the test that reads it."""
    directory = Path(os.environ.get(NANOAOD_DIR_VARIABLE, DEFAULT_NANOAOD_DIR))
    if not directory.is_dir():
        pytest.skip(
            f"no real CMS NanoAOD directory at {directory}: these are the small files of "
            f"coffea's tests/samples (nano_dy.root, nano_dimuon.root, ...); point "
            f"{NANOAOD_DIR_VARIABLE} at a directory holding them to run this test"
        )
    return directory
