"""Provenance record: config hash, benchmark aggregation per rule, the written JSON."""

from __future__ import annotations

import json
import os
import subprocess
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


GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.org",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00+00:00",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00+00:00",
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout.strip()


@pytest.fixture()
def repo(tmp_path, monkeypatch) -> tuple[Path, str]:
    """A fresh git repository with one known commit of this project's pyproject.toml."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    root = tmp_path / "repo"
    root.mkdir()
    (root / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    git(root, "init", "-q")
    git(root, "add", "pyproject.toml")
    git(root, "commit", "-q", "-m", "known")
    commit = git(root, "rev-parse", "HEAD")
    assert len(commit) == 40 and int(commit, 16) >= 0
    return root, commit


def test_collect_records_git_versions_host_and_rules(tmp_path, repo):
    root, commit = repo
    bench(tmp_path / "results/benchmarks/rules/fit.tsv", 3.0, 200.0, 1_700_000_000.0)
    kwargs = {
        "config": {"seeds": {"simulation": 1}},
        "repo": root,
        "benchmark_dir": Path("results/benchmarks/rules"),
        "patterns": {"fit": "results/benchmarks/rules/fit.tsv"},
        "workdir": tmp_path,
    }
    record = collect(**kwargs)
    assert record["git"] == {"commit": commit, "dirty": False}
    assert record["packages"]["snakemake"] and record["packages"]["thetaflow"]
    assert record["config_sha256"] == config_hash({"seeds": {"simulation": 1}})
    assert record["host"]["name"] and record["rules"]["fit"]["wall_s_total"] == 3.0
    assert record["run"]["start"].startswith("2023-11-14T22:13:17")
    assert record["run"]["wall_s"] == 3.0
    # an untracked file leaves the tree clean; a changed tracked file makes it dirty
    (root / "notes.txt").write_text("untracked")
    assert collect(**kwargs)["git"] == {"commit": commit, "dirty": False}
    with (root / "pyproject.toml").open("a") as f:
        f.write("# local change\n")
    assert collect(**kwargs)["git"] == {"commit": commit, "dirty": True}
    # a new commit is recorded as such
    git(root, "commit", "-q", "-am", "second")
    second = git(root, "rev-parse", "HEAD")
    assert second != commit
    assert collect(**kwargs)["git"] == {"commit": second, "dirty": False}


def test_write_provenance_writes_json(tmp_path, monkeypatch):
    # outside any git repository (no parent directory searched): no commit, no dirty flag
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    out = tmp_path / "results/provenance.json"
    write_provenance(
        out, config={}, repo=tmp_path, benchmark_dir=Path("nothing"), patterns={}, workdir=tmp_path
    )
    record = json.loads(out.read_text())
    assert record["rules"] == {} and record["run"]["start"] is None
    assert record["git"] == {"commit": None, "dirty": None}
