"""Resume after a kill, and determinism: the toy analysis killed in the middle of training
(SIGKILL to its whole process group) and resumed gives the numbers of an uninterrupted run.

Cost: one extra toy run up to results/summary.json. The resumed run is also the second run of
the determinism test: it recomputes every output in its own directory (the jobs the first
attempt finished were clean, the rest run cleanly after the restart), so comparing it with
the session's ``toy_run`` compares two independent runs of the same configuration.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, TOY_CONFIG, run_snakemake
from run_comparison import (
    assert_same_headline,
    assert_same_numbers,
    assert_same_result_numbers,
    assert_same_scores,
)

pytestmark = pytest.mark.workflow

# the first training job's log appearing means training is under way: kill then
KILL_WHEN = "results/logs/ml/train/*/*.log"
KILL_TIMEOUT = 1200


@pytest.fixture(scope="session")
def resumed_run(tmp_path_factory) -> dict:
    """The toy run killed once training is under way, then resumed with --rerun-incomplete.

    Its target is results/summary.json (everything the headline numbers depend on: every
    classifier's scores, the fits, the closure tests), not the whole DAG: the figures-only
    branches (evaluation plots, rankings, scans, GPU/FPGA benchmarks, diagnostics) add
    minutes of CI time and nothing to what is compared here.
    """
    workdir = tmp_path_factory.mktemp("resumed")
    args = [
        "results/summary.json",
        "--cores",
        "2",
        "--directory",
        str(workdir),
        "--configfile",
        str(TOY_CONFIG),
    ]
    first_log = workdir.parent / f"{workdir.name}-first-attempt.log"
    with open(first_log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args],
            cwd=workdir,
            env={**os.environ, "MPLBACKEND": "Agg"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + KILL_TIMEOUT
    try:
        while not list(workdir.glob(KILL_WHEN)):
            if proc.poll() is not None:
                pytest.fail(
                    f"the toy run ended (code {proc.returncode}) before training began:\n"
                    + first_log.read_text()[-4000:]
                )
            if time.monotonic() > deadline:
                pytest.fail(f"training did not begin within {KILL_TIMEOUT} s")
            time.sleep(0.5)
        time.sleep(3)  # let the training jobs get into their work
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and every job it started
        proc.wait()
    killed = {
        "returncode": proc.returncode,
        "models_at_kill": sorted(p.name for p in workdir.glob("results/models/*/fold*")),
    }
    # the kill left a lock and incomplete jobs: a plain rerun must not take them as done
    assert run_snakemake("--unlock", *args, cwd=workdir).returncode == 0
    plan = run_snakemake("-n", "--rerun-incomplete", *args, cwd=workdir)
    assert plan.returncode == 0, plan.stderr[-3000:]
    killed["plan"] = plan.stdout
    resumed = run_snakemake("--rerun-incomplete", *args, cwd=workdir)
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-5000:]
    killed["workdir"] = workdir
    return killed


def test_kill_mid_run_then_resume_gives_the_uninterrupted_results(resumed_run, toy_run):
    workdir = resumed_run["workdir"]
    assert resumed_run["returncode"] == -signal.SIGKILL
    assert "rule train:" in resumed_run["plan"]  # the killed training is redone, not trusted
    assert_same_numbers(toy_run / "results/summary.json", workdir / "results/summary.json")
    assert assert_same_result_numbers(toy_run, workdir) > 5  # fits, limits, metrics, closure
    # a killed write leaves at most a hidden ".name.tmpPID" file (thetaflow.core.io.atomic_path),
    # never a file under an output's name: every output above was read back complete


def test_two_runs_give_identical_summary_numbers_and_model_scores(resumed_run, toy_run):
    workdir = resumed_run["workdir"]
    assert assert_same_scores(toy_run, workdir) > 20
    assert_same_headline(toy_run, workdir)
