"""Provenance record: config hash, benchmark aggregation per rule, the written JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from thetaflow.operations.provenance import (
    collect,
    config_hash,
    pattern_regex,
    read_benchmark,
    rule_statistics,
    write_provenance,
)

REPO = Path(__file__).resolve().parents[3]
HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def bench(path: Path, seconds: float, rss: float, end: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{seconds}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t50\t{seconds / 2}\n")
    os.utime(path, (end, end))


def test_config_hash_ignores_key_order_and_sees_values():
    assert config_hash({"a": 1, "b": {"c": [1, 2]}}) == config_hash({"b": {"c": [1, 2]}, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_pattern_regex_honours_inline_and_rule_constraints():
    rx = pattern_regex("results/b/ingest/{sample}.tsv", {"sample": "zh|zz"})
    assert rx.fullmatch("results/b/ingest/zh.tsv") and not rx.fullmatch("results/b/ingest/data.tsv")
    rx = pattern_regex("b/{model}/fold{fold,\\d+}.tsv")
    assert rx.fullmatch("b/nn/fold3.tsv") and not rx.fullmatch("b/nn/foldx.tsv")
    assert not pattern_regex("b/{x}.tsv").fullmatch("b/a/b.tsv")  # one path component


def test_rule_statistics_sum_per_rule_and_split_shared_patterns(tmp_path):
    root = tmp_path / "results/benchmarks/rules"
    bench(root / "simulate/zh/0.tsv", 10.0, 300.0, 1_000_010.0)
    bench(root / "simulate/zh/1.tsv", 20.0, 500.0, 1_000_030.0)
    bench(root / "ingest/zh.tsv", 5.0, 800.0, 1_000_040.0)
    bench(root / "ingest/data.tsv", 2.0, 100.0, 1_000_045.0)
    (root / "broken.tsv").write_text("")  # a killed job's leftover is skipped
    patterns = {
        "simulate": "results/benchmarks/rules/simulate/{sample}/{chunk}.tsv",
        "ingest_simulation": "results/benchmarks/rules/ingest/{sample}.tsv",
        "ingest_data": "results/benchmarks/rules/ingest/{sample}.tsv",
    }
    constraints = {"ingest_simulation": {"sample": "zh"}, "ingest_data": {"sample": "data"}}
    stats, start, end = rule_statistics(
        Path("results/benchmarks/rules"), patterns, constraints, workdir=tmp_path
    )
    assert stats["simulate"] == {
        "jobs": 2,
        "wall_s_total": 30.0,
        "wall_s_max": 20.0,
        "max_rss_mb": 500.0,
        "cpu_time_s_total": 15.0,
    }
    assert stats["ingest_simulation"]["jobs"] == 1 and stats["ingest_data"]["max_rss_mb"] == 100.0
    assert start == pytest.approx(1_000_000.0) and end == pytest.approx(1_000_045.0)


def test_read_benchmark_rejects_an_empty_file(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text(HEADER)
    with pytest.raises(ValueError, match="x.tsv"):
        read_benchmark(path)


def test_collect_records_git_versions_host_and_rules(tmp_path):
    bench(tmp_path / "results/benchmarks/rules/fit.tsv", 3.0, 200.0, 1_700_000_000.0)
    record = collect(
        config={"seeds": {"simulation": 1}},
        repo=REPO,
        benchmark_dir=Path("results/benchmarks/rules"),
        patterns={"fit": "results/benchmarks/rules/fit.tsv"},
        workdir=tmp_path,
    )
    assert record["git"]["commit"] is None or len(record["git"]["commit"]) == 40
    assert record["packages"]["snakemake"] and record["packages"]["thetaflow"]
    assert record["config_sha256"] == config_hash({"seeds": {"simulation": 1}})
    assert record["host"]["name"] and record["rules"]["fit"]["wall_s_total"] == 3.0
    assert record["run"]["start"].startswith("2023-11-14T22:13:17")
    assert record["run"]["wall_s"] == 3.0


def test_write_provenance_writes_json(tmp_path):
    out = tmp_path / "results/provenance.json"
    write_provenance(
        out, config={}, repo=tmp_path, benchmark_dir=Path("nothing"), patterns={}, workdir=tmp_path
    )
    record = json.loads(out.read_text())
    assert record["rules"] == {} and record["run"]["start"] is None
    assert record["git"] == {"commit": None, "dirty": None}
