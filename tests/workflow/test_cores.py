"""Determinism across core counts: ``--cores`` must not change a number of the analysis.

``--cores`` changes only two things in a run: the order in which independent jobs start, and
the threads a job whose rule asks for more than one gets (Snakemake scales them down to the
cores given). Outputs depend on their inputs and params alone (the rerun-scope and resume
tests), so the order cannot matter; what remains are the multi-threaded rules. The test pins
down from the session's toy run (``--cores 2``) that the only one is the GPU benchmark, which
measures time, not physics. The toy fits, which once spread over worker processes, are fitted
in one batched likelihood on one thread, and a toy's fit does not depend on the batch it is in
(``tests/unit/inference/test_inference.py``). A rule given more threads must come with a test
that its numbers do not depend on them.
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.workflow

MULTI_THREADED_RULES = {"benchmark_gpu"}


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


def test_only_the_gpu_benchmark_uses_more_than_one_thread(toy_run):
    log = sorted((toy_run / ".snakemake/log").glob("*.snakemake.log"))[0].read_text()
    threads = threads_per_rule(log)
    assert len(threads) > 30, sorted(threads)  # every rule of the toy DAG was parsed
    assert {rule for rule, n in threads.items() if n > 1} == MULTI_THREADED_RULES
