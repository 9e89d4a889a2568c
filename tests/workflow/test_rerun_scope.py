"""Rerun scope on the real DAG: each rule's params hold exactly the config its job reads, so a
change to one config key reruns only the jobs that read it and what consumes their outputs.

Each case writes an override config over the finished toy run (``toy_run``), asks Snakemake
for a dry run with params as the only rerun trigger, and compares the jobs it would run with
the chain stated here. The names are those of config/config.yaml and config/ci.yaml: the
supervised models, the discriminants (every model, the autoencoder, m_bb and the regressed
m_bb) and the closure discriminants nn and m_bb.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from conftest import REPO, TOY_CONFIG, run_snakemake

MODELS = ["bdt", "nn", "svm", "logistic", "knn", "random_forest", "naive_bayes", "cuts"]
DISCRIMINANTS = [*MODELS, "autoencoder", "m_bb", "m_bb_regressed"]
CLOSURE = ["nn", "m_bb"]
FIT_STEPS = ["histograms", "workspace", "fit", "ranking", "scan", "limit"]
CLOSURE_STEPS = ["asimov_closure", "toys", "injection"]
# what consumes every closure test: the headline numbers, the report's front page stating them
# and the provenance record (which hashes the whole config); every fit and limit also feeds
# the discriminants' comparison
CLOSURE_CONSUMERS = {("summary", ""), ("report_front_page", ""), ("provenance", ""), ("all", "")}
FIT_CONSUMERS = CLOSURE_CONSUMERS | {("compare_discriminants", "")}

_JOB = re.compile(r"^(?:local)?rule (\w+):$")
_WILDCARDS = re.compile(r"^\s+wildcards: (.*)$")


def planned_jobs(workdir: Path, tmp_path: Path, override: dict) -> set[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run would run in ``workdir`` with ``override``
    merged over the toy config, params being the only rerun trigger."""
    override_file = tmp_path / "override.yaml"
    override_file.write_text(yaml.safe_dump(override))
    result = run_snakemake(
        "--dry-run",
        "--rerun-triggers",
        "params",
        "--cores",
        "1",
        "--directory",
        str(workdir),
        "--configfile",
        str(TOY_CONFIG),
        str(override_file),
        timeout=600,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    jobs: list[list[str]] = []
    for line in (result.stdout + result.stderr).splitlines():
        if match := _JOB.match(line):
            jobs.append([match.group(1), ""])
        elif jobs and (match := _WILDCARDS.match(line)):
            jobs[-1][1] = match.group(1)
    return {(rule, wildcards) for rule, wildcards in jobs}


def fit_chain(discriminant: str) -> set[tuple[str, str]]:
    """Every fit job of one discriminant (and its closure jobs if it has them)."""
    steps = FIT_STEPS + (CLOSURE_STEPS if discriminant in CLOSURE else [])
    return {(step, f"discriminant={discriminant}") for step in steps}


def test_closure_toys_rerun_only_the_toys(toy_run, tmp_path):
    jobs = planned_jobs(toy_run, tmp_path, {"inference": {"closure": {"toys": 41}}})
    expected = {("toys", f"discriminant={d}") for d in CLOSURE} | CLOSURE_CONSUMERS
    assert jobs == expected


def test_svm_params_rerun_only_the_svm_chain(toy_run, tmp_path):
    override = {"ml": {"models": {"svm": {"params": {"max_train_events": 801}}}}}
    jobs = planned_jobs(toy_run, tmp_path, override)
    expected = (
        {("train", f"model=svm, fold={fold}") for fold in range(3)}
        | {("score", "model=svm"), ("evaluate", "model=svm"), ("compare_models", "")}
        | {("blind_search", "")}
        | fit_chain("svm")
        | FIT_CONSUMERS
    )
    assert jobs == expected


def test_pseudo_data_mu_reruns_only_its_simulation_and_consumers(toy_run, tmp_path):
    samples = yaml.safe_load((REPO / "config" / "samples_ci.yaml").read_text())
    samples["data"]["generate"]["pseudo_data"]["mu_injected"] = 1.5
    sample_list = tmp_path / "samples.yaml"
    # same key order: a job's settings keep the sample list's order (params compare it)
    sample_list.write_text(yaml.safe_dump(samples, allow_unicode=True, sort_keys=False))
    jobs = planned_jobs(toy_run, tmp_path, {"samples": str(sample_list)})
    expected = (
        {("simulate", "sample=data, chunk=0"), ("ingest_data", "sample=data")}
        | {("features", "sample=data, variation=nominal")}
        | {("regressed_mbb", "sample=data, variation=nominal")}
        | {("control_plots", ""), ("cutflow_table", "")}
        # scoring reads every table: each model's scores, and what reads them
        | {("score", f"model={m}") for m in MODELS}
        | {("score_autoencoder", ""), ("evaluate_autoencoder", ""), ("blind_search", "")}
        | set().union(*(fit_chain(d) for d in DISCRIMINANTS))
        | FIT_CONSUMERS
    )
    assert jobs == expected
    # not the MC, not the other pseudo-data set, not the training
    rules = {rule for rule, _ in jobs}
    assert not rules & {"ingest_simulation", "training_data", "train", "train_autoencoder"}
    assert ("simulate", "sample=data_bsm, chunk=0") not in jobs
