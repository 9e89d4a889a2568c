"""Shared workflow-test fixtures: one real toy run (config/ci.yaml) per test session.

``toy_run`` is session-scoped so that test_workflow.py (what the run produced), the report
test and the resume/determinism tests (test_resume.py) share a single run of the toy DAG;
``toy_report`` builds that run's HTML report once for the report's tests (test_report.py reads
the page, test_report_browser.py opens it in headless Chromium).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOY_CONFIG = REPO / "config" / "ci.yaml"


def run_snakemake(
    *args: str, cwd: Path = REPO, timeout: float = 2700, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Snakemake on this repository's Snakefile in its own process group, output captured;
    past ``timeout`` the whole group (Snakemake and every job it started) is killed and the
    test fails with the output's tail."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args]
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env={**(env or os.environ), "MPLBACKEND": "Agg"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(
            f"snakemake {' '.join(args)} did not finish within {timeout:.0f} s:\n"
            f"{(out + err)[-4000:]}"
        )
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory) -> Path:
    """Run the whole toy analysis (config/ci.yaml) for real in a fresh directory."""
    workdir = tmp_path_factory.mktemp("toy")
    result = run_snakemake(
        "--cores", "2", "--directory", str(workdir), "--configfile", str(TOY_CONFIG)
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    return workdir


@pytest.fixture(scope="session")
def toy_report(toy_run) -> Path:
    """``snakemake --report`` of the toy run: its ``results/report.html``, built once."""
    report = toy_run / "results/report.html"
    result = run_snakemake(
        "--report",
        str(report),
        "--directory",
        str(toy_run),
        "--configfile",
        str(TOY_CONFIG),
        cwd=toy_run,
        timeout=600,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return report
