"""Determinism across core counts: the toy run with ``--cores 1`` gives the numbers of the
run with ``--cores 2``.

``--cores`` changes only two things in a run: the order in which independent jobs start, and
the threads a job whose rule asks for more than one gets (Snakemake scales them down to the
cores given). Outputs depend on their inputs and params alone (the rerun-scope and resume
tests), so the order cannot matter; what remains are the multi-threaded rules. The first test
pins down which rules those are, from the session's toy run (``--cores 2``); the second
reruns the fits among them (the toys and the injection scan of the reference discriminant)
with ``--cores 1``, one thread each, in a copy of that run and compares their numbers.
The GPU benchmark is the third multi-threaded rule: it measures time, not physics.
"""

from __future__ import annotations

import re
import shutil

import pytest
from conftest import TOY_CONFIG, run_snakemake
from run_comparison import assert_same_numbers

pytestmark = pytest.mark.workflow

MULTI_THREADED_RULES = {"toys", "injection", "benchmark_gpu"}
RERUN_ONE_CORE = ["results/fit/m_bb/closure/toys.json", "results/fit/m_bb/closure/injection.json"]


def threads_per_rule(log: str) -> dict[str, int]:
    """Rule -> the largest ``threads`` any of its jobs was given, from a Snakemake log."""
    threads: dict[str, int] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", log):
        rule = re.match(r"(?:local)?rule (\w+):\n", block)
        if rule:
            given = re.search(r"^\s+threads: (\d+)$", block, re.M)
            name = rule.group(1)
            threads[name] = max(threads.get(name, 1), int(given.group(1)) if given else 1)
    return threads


def test_only_the_fit_scans_and_the_gpu_benchmark_use_more_than_one_thread(toy_run):
    log = sorted((toy_run / ".snakemake/log").glob("*.snakemake.log"))[0].read_text()
    threads = threads_per_rule(log)
    assert len(threads) > 30, sorted(threads)  # every rule of the toy DAG was parsed
    assert {rule for rule, n in threads.items() if n > 1} == MULTI_THREADED_RULES


def test_toys_and_injection_on_one_core_give_the_two_core_numbers(toy_run, tmp_path):
    copy = tmp_path / "one-core"
    shutil.copytree(toy_run, copy, symlinks=True)
    result = run_snakemake(
        *RERUN_ONE_CORE,
        "--forcerun",
        "toys",
        "injection",
        "--cores",
        "1",
        "--directory",
        str(copy),
        "--configfile",
        str(TOY_CONFIG),
        cwd=copy,
        timeout=900,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert threads_per_rule(log) == {"toys": 1, "injection": 1}, log[-4000:]  # nothing else
    for target in RERUN_ONE_CORE:
        assert_same_numbers(toy_run / target, copy / target)
