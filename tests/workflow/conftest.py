"""Shared workflow-test fixtures: one real toy run (config/ci.yaml) per test session.

``toy_run`` is session-scoped so that test_workflow.py (what the run produced), the report
test and the resume/determinism tests (test_resume.py) share a single run of the toy DAG.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOY_CONFIG = REPO / "config" / "ci.yaml"


def run_snakemake(*args: str, cwd: Path = REPO, timeout: int = 2700) -> subprocess.CompletedProcess:
    """Snakemake on this repository's Snakefile, output captured."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory) -> Path:
    """Run the whole toy analysis (config/ci.yaml) for real in a fresh directory."""
    workdir = tmp_path_factory.mktemp("toy")
    result = run_snakemake("--cores", "2", "--directory", str(workdir), "--configfile", str(TOY_CONFIG))
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    return workdir
