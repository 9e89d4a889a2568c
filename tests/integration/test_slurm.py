"""The workflow on a real SLURM: profiles/slurm against a single-node cluster on localhost.

The fixture starts MariaDB, slurmdbd, slurmctld and slurmd from generated configurations
(installing Debian's packages first when they are missing; see slurm_cluster.py) and stops
them by PID afterwards, whatever happened. The run uses the toy configuration but only the
chain of one sample (two simulation chunks -> ingest_simulation, three variations): the
executor plugin (1.4) waits 40 s before its first ``sacct`` poll and 40 s or more between
polls, so each level of the DAG costs about a minute under SLURM and the whole toy DAG
(about 15 levels, 180 jobs on two cores) would take over 20 minutes; two levels exercise
submission, accounting, job steps, parallel jobs, temp() files and outputs on the shared
filesystem just the same.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slurm_cluster import ACCOUNT, PARTITION, LocalSlurm, install_packages  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

TARGETS = [
    "results/cutflow/zh.json",
    "results/events/zh/nominal.parquet",
    "results/events/zh/jes_up.parquet",
    "results/events/zh/jes_down.parquet",
]
RULES = {"simulate", "ingest_simulation"}
RUN_TIMEOUT = 480


def run_snakemake(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """Run Snakemake in its own process group; on timeout kill the whole group and fail."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args]
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"snakemake did not finish within {timeout:.0f} s:\n{out[-4000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "")


@pytest.fixture(scope="module")
def slurm():
    with LocalSlurm() as cluster:
        yield cluster


def test_toy_chain_runs_through_slurm_and_matches_a_local_run(slurm, tmp_path):
    env = {**slurm.env, "MPLBACKEND": "Agg", "THETAFLOW_SLURM_ACCOUNT": ACCOUNT,
           "THETAFLOW_SLURM_PARTITION": PARTITION}
    config = ["--configfile", str(REPO / "config/ci.yaml")]
    farm, local = tmp_path / "slurm", tmp_path / "local"
    farm.mkdir()
    local.mkdir()
    began = time.monotonic()
    result = run_snakemake([*TARGETS, "--profile", str(REPO / "profiles/slurm"),
                            "--workflow-profile", "none", "--directory", str(farm), *config],
                           cwd=farm, env=env, timeout=RUN_TIMEOUT)
    took = time.monotonic() - began
    assert result.returncode == 0, f"{result.stdout[-5000:]}\n{slurm.logs()}"

    # every job of the DAG was submitted with sbatch and completed according to sacct
    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", result.stdout))
    total = int(re.search(r"^total\s+(\d+)", result.stdout, re.M).group(1))
    assert len(submitted) == total > 0, result.stdout[-3000:]
    rows = slurm.client("sacct", "-X", "--parsable2", "--noheader", "--format=JobIDRaw,State,Comment",
                        "-j", ",".join(submitted.values())).stdout.strip().splitlines()
    states = {jid: (state, comment) for jid, state, comment in (r.split("|", 2) for r in rows)}
    assert set(states) == set(submitted.values()), rows
    assert {s for s, _ in states.values()} == {"COMPLETED"}, rows
    rules = {re.match(r"rule_(.+?)(?:_wildcards_.*)?$", c).group(1) for _, c in states.values()}
    assert rules == RULES

    # the same targets run locally give the same files
    local_run = run_snakemake([*TARGETS, "--cores", "2", "--directory", str(local), *config],
                              cwd=local, env=env, timeout=RUN_TIMEOUT)
    assert local_run.returncode == 0, local_run.stdout[-5000:]
    for target in TARGETS:
        if target.endswith(".parquet"):
            pd.testing.assert_frame_equal(pd.read_parquet(farm / target), pd.read_parquet(local / target))
        else:
            assert json.loads((farm / target).read_text()) == json.loads((local / target).read_text())
    assert not list(farm.glob("results/simulation/*/*.root"))  # temp() files removed on the farm too
    print(f"SLURM run: {total} jobs through sbatch in {took:.0f} s; sacct: all COMPLETED")


def test_unreachable_slurm_stops_the_run_with_a_clear_message(tmp_path):
    """A controller that does not answer stops the run before any submission, quickly."""
    install_packages()
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=dead\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort=9\n"
                    "AuthType=auth/none\nCredType=cred/none\n"
                    "AccountingStorageType=accounting_storage/slurmdbd\n"
                    "AccountingStorageHost=127.0.0.1\nAccountingStoragePort=9\n"
                    "NodeName=localhost CPUs=1 State=UNKNOWN\n"
                    "PartitionName=debug Nodes=localhost Default=YES State=UP\n")
    env = {**os.environ, "SLURM_CONF": str(conf), "USER": "root", "MPLBACKEND": "Agg",
           "PATH": os.environ["PATH"] + ":/usr/sbin"}
    began = time.monotonic()
    result = run_snakemake([TARGETS[0], "--profile", str(REPO / "profiles/slurm"), "--workflow-profile",
                            "none", "--directory", str(tmp_path), "--configfile",
                            str(REPO / "config/ci.yaml")], cwd=tmp_path, env=env, timeout=120)
    assert result.returncode != 0
    assert "SLURM is not reachable" in result.stdout and str(conf) in result.stdout, result.stdout[-3000:]
    assert "submitted with SLURM jobid" not in result.stdout
    assert time.monotonic() - began < 90


def test_batch_profile_without_workflow_profile_none_is_refused(tmp_path):
    """profiles/default (local) would silently override the farm profile: refused, with the fix."""
    env = {**os.environ, "SLURM_CONF": str(tmp_path / "none.conf"), "USER": "root"}
    result = run_snakemake([TARGETS[0], "--profile", str(REPO / "profiles/slurm"), "--directory",
                            str(tmp_path), "--configfile", str(REPO / "config/ci.yaml")],
                           cwd=tmp_path, env=env, timeout=120)
    assert result.returncode != 0
    assert "--workflow-profile none" in result.stdout, result.stdout[-3000:]
