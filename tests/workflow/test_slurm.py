"""The toy workflow on a real SLURM: profiles/slurm against a single-node cluster on
localhost, with a job cancelled and slurmd restarted during the run, compared with the
session's local toy run.

The fixture starts MariaDB, slurmdbd, slurmctld and slurmd from generated configurations
(installing Debian's packages first when they are missing; see slurm_cluster.py) and stops
them by PID afterwards, whatever happened. The run uses the user's profile on the toy
configuration (config/ci.yaml) with one setting changed: the executor plugin's status-check
interval (``--slurm-init-seconds-before-status-checks``). The profile keeps the plugin's 40 s,
which suits a farm whose slurmdbd records a job tens of seconds late; the local slurmdbd
records it at once.

Its targets run every rule of the workflow that works on one sample, model or discriminant
(simulation to features for every sample, the b-jet regression, the nn chain from training to
its closure tests, the nn's optimiser study, the autoencoder, diagnostics, control plots and
the GPU and FPGA benchmarks), about half of the toy DAG's jobs. Left out are the rules that gather
every model or discriminant (``AGGREGATING_RULES``): they would pull in every other family's
training and fits, doubling the test's ~10 minutes for jobs of the same kinds.

Faults, as a farm has them: the first ``train`` job is cancelled with ``scancel`` while it
runs (the profile's ``retries`` resubmits it), and slurmd is restarted while a ``toys`` job
runs (the job lives on and completes). The run must still end with the local run's numbers.
The cancel is what showed that the profile must take job states from squeue: with the
plugin's default, sacct, a job cancelled by an administrator ("CANCELLED by 0") was taken
for a running one and the run waited forever.
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, TOY_CONFIG, run_snakemake
from run_comparison import assert_same_result_numbers, assert_same_scores
from slurm_cluster import (
    ACCOUNT,
    PARTITION,
    LocalSlurm,
    SlurmError,
    install_packages,
    write_unreachable_config,
)

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

PROFILE = ["--profile", str(REPO / "profiles/slurm"), "--workflow-profile", "none"]
STATUS_INTERVAL_S = 2
RUN_TIMEOUT_S = 1800
FARM_TARGETS = [
    "results/cutflow/cutflow.csv",
    "results/plots/control/b1_pt_gev.png",
    "results/diagnostics/pca/summary.json",
    "results/diagnostics/clustering/summary.json",
    "results/anomaly/metrics.json",
    "results/evaluation/nn/metrics.json",
    "results/evaluation/optimiser_study/study.json",  # the nn trained with each optimiser
    "results/fit/m_bb_regressed/histograms.json",  # the b-jet regression of every sample
    *(f"results/fit/nn/{name}.json" for name in ("fit", "limit", "ranking", "scan")),
    *(f"results/fit/nn/closure/{name}.json" for name in ("asimov", "injection", "toys")),
    "results/benchmarks/gpu/benchmark.json",
    "results/benchmarks/fpga/nn.json",
]
# rules that gather every model or discriminant, and jobs Snakemake runs itself (rule all
# has no action, provenance records the host the workflow was started on, and the report's
# front page takes a second): the toy DAG's rules the farm run does not submit
AGGREGATING_RULES = {
    "blind_search",  # searches the tails of every classifier's scores
    "compare_models",
    "compare_discriminants",
    "fpga_summary",
    "summary",
}
LOCAL_RULES = {"all", "provenance", "report_front_page"}
GPU_RULES = {"benchmark_gpu"}  # rules with resources gpu=1 (sbatch --gpus=1)
CANCEL_RULE = "train"  # its first job is scancel-ed while running
RESTART_DURING_RULE = "toys"  # slurmd is restarted while its first job runs


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


class FarmFaults(threading.Thread):
    """Faults injected into a running farm run: ``scancel`` of the first running job of
    CANCEL_RULE, then a slurmd restart while the first job of RESTART_DURING_RULE runs."""

    def __init__(self, slurm: LocalSlurm) -> None:
        super().__init__(daemon=True)
        self.slurm = slurm
        self.done = threading.Event()
        self.cancelled: str | None = None  # the SLURM job id cancelled
        self.running_at_restart: list[str] = []  # job ids running while slurmd was down
        self.error: Exception | None = None

    def running(self, rule: str | None = None) -> list[str]:
        """SLURM ids of the running jobs (of ``rule`` when given)."""
        rows = self.slurm.client("squeue", "-h", "-t", "RUNNING", "-o", "%i|%k").stdout.split()
        jobs = [row.split("|", 1) for row in rows]
        return [jid for jid, comment in jobs if rule is None or rule_of(comment) == rule]

    def wait_for(self, rule: str) -> list[str]:
        while not self.done.is_set():
            jobs = self.running(rule)
            if jobs:
                return jobs
            time.sleep(0.3)
        return []

    def run(self) -> None:
        try:
            jobs = self.wait_for(CANCEL_RULE)
            if jobs:
                self.slurm.client("scancel", jobs[0])
                self.cancelled = jobs[0]
            jobs = self.wait_for(RESTART_DURING_RULE)
            if jobs:
                self.running_at_restart = self.running()
                self.slurm.restart_slurmd()
        except (SlurmError, OSError) as err:
            self.error = err


@pytest.fixture(scope="module")
def slurm():
    with LocalSlurm(cpus_per_core=2) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def farm_run(slurm, tmp_path_factory) -> dict:
    """FARM_TARGETS submitted through profiles/slurm with FarmFaults injected; its
    directory, log and the faults."""
    env = {**slurm.env, "THETAFLOW_SLURM_ACCOUNT": ACCOUNT, "THETAFLOW_SLURM_PARTITION": PARTITION}
    farm = tmp_path_factory.mktemp("slurm-run")
    faults = FarmFaults(slurm)
    faults.start()
    began = time.monotonic()
    try:
        result = run_snakemake(
            *FARM_TARGETS,
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
    finally:
        faults.done.set()
        faults.join(timeout=60)
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"{log[-5000:]}\n{slurm.logs()}"
    assert faults.error is None, faults.error
    print(f"SLURM run: {time.monotonic() - began:.0f} s")
    return {"dir": farm, "log": log, "faults": faults}


def sacct_jobs(slurm: LocalSlurm, job_ids: list[str]) -> dict[str, tuple[str, str, str]]:
    """SLURM's accounting of ``job_ids``: job id -> (state, comment, allocated TRES)."""
    rows = (
        slurm.client(
            "sacct",
            "-X",
            "--parsable2",
            "--noheader",
            "--format=JobIDRaw,State,Comment,AllocTRES",
            "-j",
            ",".join(job_ids),
        )
        .stdout.strip()
        .splitlines()
    )
    return {
        jid: (state, comment, tres) for jid, state, comment, tres in (r.split("|", 3) for r in rows)
    }


def rule_of(comment: str) -> str:
    """The rule a job's comment (``rule_<name>[_wildcards_<values>]``) names."""
    return re.match(r"rule_(.+?)(?:_wildcards_.*)?$", comment).group(1)


def test_every_job_ran_as_a_completed_slurm_job_despite_a_cancel_and_a_slurmd_restart(
    slurm, farm_run
):
    log, faults = farm_run["log"], farm_run["faults"]
    remote = {rule: n for rule, n in job_counts(log).items() if rule not in LOCAL_RULES}
    submitted = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+)", log)
    jobs = sacct_jobs(slurm, submitted)
    assert set(jobs) == set(submitted), (submitted, jobs)

    # the cancelled job was resubmitted: its job is the one submission too many
    assert faults.cancelled in jobs, log[-3000:]
    state, cancelled_comment, _ = jobs[faults.cancelled]
    assert state.startswith("CANCELLED") and rule_of(cancelled_comment) == CANCEL_RULE
    completed = {jid: job for jid, job in jobs.items() if job[0] == "COMPLETED"}
    assert set(jobs) - set(completed) == {faults.cancelled}, jobs  # nothing else failed
    comments = [comment for _, comment, _ in completed.values()]
    assert len(comments) == len(set(comments)) == sum(remote.values()) > 60
    assert cancelled_comment in comments  # its retry completed

    # slurmd went down and came back while jobs ran; they completed without a resubmission
    assert faults.running_at_restart and set(faults.running_at_restart) <= set(completed)

    counts = [rule_of(comment) for comment in comments]
    assert {rule: counts.count(rule) for rule in set(counts)} == remote
    # a rule's gpu=1 reaches SLURM as a GPU allocation; the others get none
    for _, comment, tres in completed.values():
        assert ("gres/gpu=1" in tres) == (rule_of(comment) in GPU_RULES), (comment, tres)


def test_the_farm_runs_every_rule_but_the_aggregating_ones(farm_run, toy_run):
    toy_log = sorted((toy_run / ".snakemake/log").glob("*.snakemake.log"))[0].read_text()
    toy_rules = set(job_counts(toy_log))
    assert set(job_counts(farm_run["log"])) == toy_rules - AGGREGATING_RULES - LOCAL_RULES


def test_the_slurm_run_gives_the_local_run_results(farm_run, toy_run):
    farm = farm_run["dir"]
    assert result_files(farm) <= result_files(toy_run)
    assert assert_same_scores(farm, toy_run) >= 10  # the nn's and the autoencoder's
    # every per-item JSON result of the farm (fits, limits, metrics, closure, diagnostics)
    farm_results = [p for p in farm.glob("results/*/*/*.json") if "benchmarks" not in p.parts]
    assert assert_same_result_numbers(farm, toy_run) == len(farm_results) >= 10
    features = sorted(toy_run.glob("results/features/*/*.parquet"))
    assert features and {p.relative_to(toy_run) for p in features} <= result_files(farm)
    for path in features:
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
