"""The whole toy workflow on a real SLURM: profiles/slurm against a single-node cluster on
localhost, compared with the session's local toy run.

The fixture starts MariaDB, slurmdbd, slurmctld and slurmd from generated configurations
(installing Debian's packages first when they are missing; see slurm_cluster.py) and stops
them by PID afterwards, whatever happened. The run is the toy configuration's whole DAG
(config/ci.yaml) with the user's profile. One setting differs: the executor plugin's
status-check interval (``--slurm-init-seconds-before-status-checks``). The profile keeps the
plugin's 40 s, which suits a farm whose slurmdbd records a job tens of seconds late; the
local slurmdbd records it at once, and at 40 s per DAG level the ~15 levels would cost
10 minutes of waiting.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, TOY_CONFIG, run_snakemake
from run_comparison import assert_same_headline, assert_same_result_numbers, assert_same_scores
from slurm_cluster import ACCOUNT, PARTITION, LocalSlurm, install_packages, write_unreachable_config

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

PROFILE = ["--profile", str(REPO / "profiles/slurm"), "--workflow-profile", "none"]
STATUS_INTERVAL_S = 2
RUN_TIMEOUT_S = 2700
# jobs Snakemake runs itself: rule all has no action, provenance is a localrule (it records
# the host the workflow was started on), and so is the report's one-second front page
LOCAL_RULES = {"all", "provenance", "report_front_page"}
GPU_RULES = {"benchmark_gpu"}  # rules with resources gpu=1 (sbatch --gpus=1)


def job_counts(log: str) -> dict[str, int]:
    """Snakemake's "Job stats" table (rule -> number of jobs) from a run's log."""
    table = log.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {
        rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table, re.M) if rule != "total"
    }


def made_by_report_tests(path: Path) -> bool:
    """Whether the report tests, not the workflow, wrote ``path``: the report and the browser
    test's screenshots under results/report/."""
    return path.name.startswith("report.") or (
        path.parent.name == "report" and path.suffix == ".png"
    )


def result_files(root: Path) -> set[Path]:
    """Every file a run left under results/ (what the report tests add aside)."""
    return {
        p.relative_to(root)
        for p in (root / "results").rglob("*")
        if p.is_file() and not made_by_report_tests(p)
    }


@pytest.fixture(scope="module")
def slurm():
    with LocalSlurm() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def farm_run(slurm, tmp_path_factory) -> dict:
    """The whole toy workflow submitted through profiles/slurm; its directory and log."""
    env = {**slurm.env, "THETAFLOW_SLURM_ACCOUNT": ACCOUNT, "THETAFLOW_SLURM_PARTITION": PARTITION}
    farm = tmp_path_factory.mktemp("slurm-run")
    began = time.monotonic()
    result = run_snakemake(
        *PROFILE,
        "--slurm-init-seconds-before-status-checks",
        str(STATUS_INTERVAL_S),
        "--directory",
        str(farm),
        "--configfile",
        str(TOY_CONFIG),
        cwd=farm,
        env=env,
        timeout=RUN_TIMEOUT_S,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"{log[-5000:]}\n{slurm.logs()}"
    print(f"SLURM toy run: {time.monotonic() - began:.0f} s")
    return {"dir": farm, "log": log}


def test_every_job_of_the_toy_workflow_ran_as_a_completed_slurm_job(slurm, farm_run):
    counts = job_counts(farm_run["log"])
    remote = {rule: n for rule, n in counts.items() if rule not in LOCAL_RULES}
    submitted = dict(
        re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", farm_run["log"])
    )
    assert len(submitted) == sum(remote.values()) > 150, farm_run["log"][-3000:]

    rows = (
        slurm.client(
            "sacct",
            "-X",
            "--parsable2",
            "--noheader",
            "--format=JobIDRaw,State,Comment,AllocTRES",
            "-j",
            ",".join(submitted.values()),
        )
        .stdout.strip()
        .splitlines()
    )
    jobs = {
        jid: (state, comment, tres) for jid, state, comment, tres in (r.split("|", 3) for r in rows)
    }
    assert set(jobs) == set(submitted.values()), rows
    assert {state for state, _, _ in jobs.values()} == {"COMPLETED"}, rows  # no failure, no retry
    rule_of = {
        jid: re.match(r"rule_(.+?)(?:_wildcards_.*)?$", comment).group(1)
        for jid, (_, comment, _) in jobs.items()
    }
    assert {rule: list(rule_of.values()).count(rule) for rule in set(rule_of.values())} == remote
    # a rule's gpu=1 reaches SLURM as a GPU allocation; the others get none
    for jid, (_, _, tres) in jobs.items():
        assert ("gres/gpu=1" in tres) == (rule_of[jid] in GPU_RULES), (rule_of[jid], tres)


def test_the_slurm_run_gives_the_local_run_results(farm_run, toy_run):
    farm = farm_run["dir"]
    assert result_files(farm) == result_files(toy_run)
    assert assert_same_scores(toy_run, farm) > 20
    assert_same_headline(toy_run, farm)
    assert assert_same_result_numbers(toy_run, farm) > 50  # every fit, limit, metric, closure
    for path in sorted(toy_run.glob("results/features/*/*.parquet")):
        pd.testing.assert_frame_equal(
            pd.read_parquet(farm / path.relative_to(toy_run)), pd.read_parquet(path)
        )
    assert not list(
        farm.glob("results/simulation/*/*.root")
    )  # temp() files removed on the farm too


def test_unreachable_slurm_stops_the_run_with_a_clear_message(tmp_path):
    """A controller that does not answer stops the run before any submission, quickly."""
    install_packages()
    conf = write_unreachable_config(tmp_path / "slurm.conf")
    env = {
        **os.environ,
        "SLURM_CONF": str(conf),
        "USER": "root",
        "PATH": os.environ["PATH"] + ":/usr/sbin",
    }
    began = time.monotonic()
    result = run_snakemake(
        "results/cutflow/zh.json",
        *PROFILE,
        "--directory",
        str(tmp_path),
        "--configfile",
        str(TOY_CONFIG),
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "SLURM is not reachable" in log and str(conf) in log, log[-3000:]
    assert time.monotonic() - began < 90


def test_batch_profile_without_workflow_profile_none_is_refused(tmp_path):
    """profiles/default (local) would silently override the farm profile: refused, with the fix."""
    env = {**os.environ, "SLURM_CONF": str(tmp_path / "none.conf"), "USER": "root"}
    result = run_snakemake(
        "results/cutflow/zh.json",
        "--profile",
        str(REPO / "profiles/slurm"),
        "--directory",
        str(tmp_path),
        "--configfile",
        str(TOY_CONFIG),
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "--workflow-profile none" in log, log[-3000:]
