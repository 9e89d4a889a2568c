"""A small target of the toy workflow on a real HTCondor pool through profiles/htcondor.

The fixture starts a personal pool on loopback (condor_master, collector, negotiator, schedd,
one startd) from Debian 13's HTCondor packages, unpacked into a cache on first use, and stops
it by PID afterwards, whatever happened; see htcondor_pool.py for why the packages are unpacked
rather than installed and why, as root, the pool runs in a user namespace. The run is one
sample's simulation and ingestion (``results/cutflow/zh.json`` of config/ci.yaml: two
``simulate`` jobs, one ``ingest_simulation`` job) with the user's profile, unchanged. The
breadth of rules is what the SLURM test covers; here the point is the profile against real HTCondor
daemons: submission through the schedd, the memory each rule requests, the job event log the
plugin follows, and the completed jobs in the pool's history.
"""

from __future__ import annotations

import json
import re
import time

import pandas as pd
import pytest
import yaml
from conftest import REPO, TOY_CONFIG, run_snakemake
from htcondor_pool import LocalHTCondor

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

PROFILE = ["--profile", str(REPO / "profiles/htcondor"), "--workflow-profile", "none"]
TARGET = "results/cutflow/zh.json"
EXPECTED_JOBS = {"simulate": 2, "ingest_simulation": 1}
RUN_TIMEOUT_S = 600
COMPLETED = 4  # HTCondor's JobStatus of a job that finished


@pytest.fixture(scope="module")
def pool():
    with LocalHTCondor() as condor:
        yield condor


@pytest.fixture(scope="module")
def pool_run(pool, tmp_path_factory) -> dict:
    """TARGET submitted through profiles/htcondor; its directory and log."""
    farm = tmp_path_factory.mktemp("htcondor-run")
    began = time.monotonic()
    result = run_snakemake(
        TARGET,
        *PROFILE,
        "--directory",
        str(farm),
        "--configfile",
        str(TOY_CONFIG),
        cwd=farm,
        env=pool.env,
        timeout=RUN_TIMEOUT_S,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"{log[-5000:]}\n{pool.logs()}"
    print(f"HTCondor run: {time.monotonic() - began:.0f} s")
    return {"dir": farm, "log": log}


def submitted(log: str) -> dict[str, str]:
    """HTCondor cluster id -> rule of every job the plugin submitted, from a run's log."""
    found = re.findall(r"submitted to HTCondor Cluster ID (\d+) with batch name (\w+)-\d+", log)
    return dict(found)


def history(pool: LocalHTCondor, clusters: set[str], timeout: float = 60) -> dict[str, dict]:
    """The pool's history records of ``clusters`` (cluster id -> attributes). A job leaves
    the queue for the history a moment after the event log the plugin reads says it ended."""
    attrs = ["ClusterId", "JobStatus", "ExitCode", "Owner", "RequestMemory", "LastRemoteHost"]
    deadline = time.monotonic() + timeout
    while True:
        out = pool.client("condor_history", "-json", "-attributes", ",".join(attrs)).stdout
        records = {str(ad["ClusterId"]): ad for ad in json.loads(out or "[]")}
        if clusters <= set(records) or time.monotonic() > deadline:
            return records
        time.sleep(1)


def test_every_job_ran_as_a_completed_htcondor_job(pool, pool_run):
    log = pool_run["log"]
    jobs = submitted(log)
    rules = list(jobs.values())
    assert {rule: rules.count(rule) for rule in set(rules)} == EXPECTED_JOBS, log[-3000:]
    records = history(pool, set(jobs))
    assert set(records) == set(jobs), (jobs, records)  # no other job, no retry
    profile = yaml.safe_load((REPO / "profiles/htcondor/config.v8+.yaml").read_text())
    for cluster, rule in jobs.items():
        ad = records[cluster]
        assert ad["JobStatus"] == COMPLETED and ad["ExitCode"] == 0, ad
        assert ad["Owner"] == pool.user, ad
        assert ad["LastRemoteHost"].startswith("slot1"), ad  # ran on the pool's startd
        # the memory the profile requests for the rule is what HTCondor was asked for
        assert ad["RequestMemory"] == profile["set-resources"][rule]["request_memory"], ad


def test_the_htcondor_run_leaves_the_outputs(pool_run):
    farm = pool_run["dir"]
    cutflow = json.loads((farm / TARGET).read_text())
    assert set(cutflow["cutflow"]) >= {"nominal", "jes_up", "jes_down"}
    for variation in ("nominal", "jes_up", "jes_down"):
        events = pd.read_parquet(farm / f"results/events/zh/{variation}.parquet")
        assert len(events) > 0
    assert not list(farm.glob("results/simulation/zh/*.root"))  # temp() files removed
    assert (farm / ".snakemake/htcondor/snakemake-rules.log").is_file()  # the plugin's event log
