"""Resume after a kill, and determinism: the toy analysis killed in the middle of training
(SIGKILL to its whole process group) and resumed gives the numbers of an uninterrupted run.

Cost: one extra toy run up to results/summary.json. The resumed run is also the second run of the determinism test:
it recomputes every output in its own directory (the jobs the first attempt finished were
clean, the rest run cleanly after the restart), so comparing it with the session's
``toy_run`` compares two independent runs of the same configuration.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, TOY_CONFIG, run_snakemake

pytestmark = pytest.mark.workflow

# the first training job's log appearing means training is under way: kill then
KILL_WHEN = "results/logs/ml/train/*/*.log"
KILL_TIMEOUT = 1200
# keys whose values measure the machine, not the physics (timings, throughputs, hosts)
MACHINE_KEYS = re.compile(r"seconds|_s$|_ms$|time|latency|throughput|per_s|host|date|path|file",
                          re.IGNORECASE)


def json_numbers(data, prefix: str = "") -> dict[str, object]:
    """Flatten a JSON document to {dotted.key: leaf}, leaving out machine-dependent keys."""
    out: dict[str, object] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            if not MACHINE_KEYS.search(str(key)):
                out.update(json_numbers(value, f"{prefix}{key}."))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out.update(json_numbers(value, f"{prefix}{i}."))
    else:
        out[prefix.rstrip(".")] = data
    return out


def assert_same_numbers(a: Path, b: Path) -> None:
    """Same keys, same strings and integers, floats equal to 1e-9 relative (the last bits of
    a float may follow the summation order a BLAS library picks; anything physics-relevant
    or seed-related differs by far more)."""
    left, right = json_numbers(json.loads(a.read_text())), json_numbers(json.loads(b.read_text()))
    assert left.keys() == right.keys(), (a, set(left) ^ set(right))
    for key, value in left.items():
        other = right[key]
        if isinstance(value, float) and isinstance(other, (int, float)):
            if math.isnan(value):
                assert math.isnan(other), (str(a), key)
            else:
                assert math.isclose(value, other, rel_tol=1e-9, abs_tol=1e-12), (str(a), key, value, other)
        else:
            assert value == other, (str(a), key, value, other)


def assert_same_scores(a_root: Path, b_root: Path) -> int:
    """Every score file of every model equal in both runs (to 1e-12: one ulp of BLAS order)."""
    files = sorted(p.relative_to(a_root) for p in a_root.glob("results/scores/*/*/*.parquet"))
    assert files, "no score files"
    for rel in files:
        a, b = pd.read_parquet(a_root / rel), pd.read_parquet(b_root / rel)
        assert list(a.columns) == list(b.columns) and len(a) == len(b), rel
        for column in a.columns:
            if column == "score":
                np.testing.assert_allclose(b[column], a[column], rtol=0, atol=1e-12, err_msg=str(rel))
            else:
                assert a[column].equals(b[column]), (rel, column)
    return len(files)


def summary_rule_exists() -> bool:
    """Whether the workflow has the rule writing results/summary.json (the headline numbers)."""
    return any("results/summary.json" in p.read_text() for p in (REPO / "workflow/rules").glob("*.smk"))


@pytest.fixture(scope="session")
def resumed_run(tmp_path_factory) -> dict:
    """The toy run killed once training is under way, then resumed with --rerun-incomplete.

    Its target is results/summary.json (everything the headline numbers depend on: every
    classifier's scores, the fits, the closure tests), not the whole DAG: the figures-only
    branches (evaluation plots, rankings, scans, GPU/FPGA benchmarks, diagnostics) add
    minutes of CI time and nothing to what is compared here.
    """
    workdir = tmp_path_factory.mktemp("resumed")
    targets = ["results/summary.json"] if summary_rule_exists() else []
    args = [*targets, "--cores", "2", "--directory", str(workdir), "--configfile", str(TOY_CONFIG)]
    first_log = workdir.parent / f"{workdir.name}-first-attempt.log"
    with open(first_log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args],
            cwd=workdir, env={**os.environ, "MPLBACKEND": "Agg"}, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    deadline = time.monotonic() + KILL_TIMEOUT
    try:
        while not list(workdir.glob(KILL_WHEN)):
            if proc.poll() is not None:
                pytest.fail(f"the toy run ended (code {proc.returncode}) before training began:\n"
                            + first_log.read_text()[-4000:])
            if time.monotonic() > deadline:
                pytest.fail(f"training did not begin within {KILL_TIMEOUT} s")
            time.sleep(0.5)
        time.sleep(3)  # let the training jobs get into their work
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and every job it started
        proc.wait()
    killed = {"returncode": proc.returncode,
              "models_at_kill": sorted(p.name for p in workdir.glob("results/models/*/fold*"))}
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
    summary = toy_run / "results/summary.json"
    if summary_rule_exists():
        assert summary.exists() and (workdir / "results/summary.json").exists()
        assert_same_numbers(summary, workdir / "results/summary.json")
    compared = 0
    for path in sorted(toy_run.glob("results/*/*/*.json")):  # fits, limits, metrics, closure
        other = workdir / path.relative_to(toy_run)
        if other.exists() and "benchmarks" not in path.parts:
            assert_same_numbers(path, other)
            compared += 1
    assert compared > 5
    # a killed write leaves at most a hidden ".name.tmpPID" file (thetaflow.io.atomic_path),
    # never a file under an output's name: every output above was read back complete


def test_two_runs_give_identical_summary_numbers_and_model_scores(resumed_run, toy_run):
    workdir = resumed_run["workdir"]
    n = assert_same_scores(toy_run, workdir)
    assert n > 20
    for rel in ("results/summary.json", "results/fit/comparison.csv"):
        if (toy_run / rel).exists() and (workdir / rel).exists():
            if rel.endswith(".json"):
                assert_same_numbers(toy_run / rel, workdir / rel)
            else:
                a, b = pd.read_csv(toy_run / rel), pd.read_csv(workdir / rel)
                numeric = [c for c in a.columns if not MACHINE_KEYS.search(c)]
                pd.testing.assert_frame_equal(a[numeric], b[numeric])
