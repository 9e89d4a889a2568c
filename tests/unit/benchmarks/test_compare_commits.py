"""benchmarks/compare_commits.py's pure parts: Snakemake benchmark files and logs read into
per-rule CPU, the scheduler's CPU from its hook's records, ratios and the tables' rows, the
pins hash as bootstrap.sh computes it, and the hook itself in real processes (a fake
``snakemake`` that burns CPU and starts a child). No analysis is run here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.append(str(REPO / "benchmarks"))  # appended: nothing installed is shadowed

import compare_commits as cc  # noqa: E402

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def tsv(*rows: tuple[str, str]) -> str:
    """A benchmark file as Snakemake 9 writes it, one row per (wall, cpu_time)."""
    body = "".join(
        f"{s}\t0:00:01\t100.0\t200.0\t90.0\t95.0\t1.0\t2.0\t50.0\t{c}\n" for s, c in rows
    )
    return HEADER + body


# --------------------------------------------------------------------------- benchmark files


def test_benchmark_file_wall_and_cpu() -> None:
    assert cc.parse_benchmark_tsv(tsv(("12.5", "20.25"))) == (12.5, 20.25)


def test_benchmark_file_repeats_are_summed() -> None:
    assert cc.parse_benchmark_tsv(tsv(("1.0", "2.0"), ("3.0", "4.0"))) == (4.0, 6.0)


def test_benchmark_file_without_cpu_sample() -> None:
    assert cc.parse_benchmark_tsv(tsv(("0.3", "NA"))) == (0.3, None)


def test_benchmark_file_without_row_is_refused() -> None:
    with pytest.raises(ValueError, match="without a row"):
        cc.parse_benchmark_tsv(HEADER)


LOG = textwrap.dedent(
    """\
    Building DAG of jobs...
    [Sun Dec  7 21:00:00 2026]
    rule simulate:
        output: results/simulation/zz/0.root
        log: results/logs/simulate/zz/0.log
        jobid: 3
        benchmark: results/benchmarks/rules/simulate/zz/0.tsv
        reason: Missing output files: results/simulation/zz/0.root
        wildcards: sample=zz, chunk=0
        resources: tmpdir=/tmp
    [Sun Dec  7 21:00:01 2026]
    localrule cutflow_table:
        jobid: 4
        benchmark: results/benchmarks/rules/cutflow_table.tsv
    [Sun Dec  7 21:00:02 2026]
    localrule all:
        jobid: 0
    [Sun Dec  7 21:00:03 2026]
        rule features:
            jobid: 5
            benchmark: results/benchmarks/rules/features/zz/nominal.tsv
    """
)


def test_log_names_each_benchmark_file_s_rule() -> None:
    assert cc.benchmark_rules(LOG) == {
        "results/benchmarks/rules/simulate/zz/0.tsv": "simulate",
        "results/benchmarks/rules/cutflow_table.tsv": "cutflow_table",
        "results/benchmarks/rules/features/zz/nominal.tsv": "features",  # a group job's block
    }


def test_unnamed_file_grouped_by_directory() -> None:
    assert cc.fallback_rule("results/benchmarks/rules/fit/nn/toys.tsv") == "fit/nn/*"
    assert cc.fallback_rule("results/benchmarks/rules/summary.tsv") == "*"


def test_job_costs_read_from_checkout(tmp_path: Path) -> None:
    rules_dir = tmp_path / "results" / "benchmarks" / "rules"
    for relative, text in {
        "simulate/zz/0.tsv": tsv(("10", "9.5")),
        "simulate/zz/1.tsv": tsv(("11", "NA")),
        "fit/nn/toys.tsv": tsv(("5", "4")),
        "ingest/zz.tsv": "",  # a killed job's empty file
    }.items():
        (rules_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        (rules_dir / relative).write_text(text)
    rules = {
        "results/benchmarks/rules/simulate/zz/0.tsv": "simulate",
        "results/benchmarks/rules/simulate/zz/1.tsv": "simulate",
    }
    jobs = cc.read_job_costs(tmp_path, rules)
    assert [(j.rule, j.benchmark, j.wall_s, j.cpu_s) for j in jobs] == [
        ("fit/nn/*", "results/benchmarks/rules/fit/nn/toys.tsv", 5.0, 4.0),
        ("simulate", "results/benchmarks/rules/simulate/zz/0.tsv", 10.0, 9.5),
        ("simulate", "results/benchmarks/rules/simulate/zz/1.tsv", 11.0, None),
    ]


def test_rule_costs_summed_and_sorted_by_cpu() -> None:
    jobs = [
        cc.JobCost("ingest", "a", 1.0, 2.0),
        cc.JobCost("train", "b", 10.0, 30.0),
        cc.JobCost("ingest", "c", 1.5, None),
        cc.JobCost("ingest", "d", 2.0, 3.5),
        cc.JobCost("fit", "e", 3.0, 5.5),
    ]
    assert cc.rule_costs(jobs) == {
        "train": cc.RuleCost(1, 30.0, 10.0, 0),
        "fit": cc.RuleCost(1, 5.5, 3.0, 0),
        "ingest": cc.RuleCost(3, 5.5, 4.5, 1),
    }
    assert list(cc.rule_costs(jobs)) == ["train", "fit", "ingest"]  # equal CPU: by name


# --------------------------------------------------------------------------- scheduler


def record(argv: list[str], user: float, system: float, cu: float, cs: float, wall: float) -> str:
    return json.dumps(
        {
            "pid": 1,
            "argv": argv,
            "user_s": user,
            "system_s": system,
            "children_user_s": cu,
            "children_system_s": cs,
            "elapsed_s": wall,
        }
    )


def test_scheduler_cost_of_run_and_report() -> None:
    text = "\n".join(
        [
            record(
                ["--profile", "profiles/default", "--cores", "2"], 40.0, 10.0, 800.0, 150.0, 500
            ),
            record(["--report", "results/report.html", "--cores", "2"], 6.0, 1.0, 0.5, 0.1, 12.0),
            "",
        ]
    )
    records = cc.read_process_times(text)
    assert [r.is_report for r in records] == [False, True]
    assert records[0].own_cpu_s == 50.0 and records[0].children_cpu_s == 950.0
    cost = cc.scheduler_cost(records)
    assert cost == cc.SchedulerCost(50.0, 950.0, 500.0, 7.0, 12.0)
    assert cost.share_of_run_cpu == pytest.approx(0.05)
    assert cost.cores == pytest.approx(0.1)


def test_scheduler_cost_without_records() -> None:
    cost = cc.scheduler_cost([])
    assert cost == cc.SchedulerCost(None, None, None, None, None)
    assert cost.share_of_run_cpu is None and cost.cores is None


def test_report_flag_with_equals_sign() -> None:
    assert cc.ProcessTimes(("--report=r.html",), 0, 0, 0, 0, 0).is_report


# --------------------------------------------------------------------------- ratios and rows


def run(label: str, wall: float, job_cpu: float, rules: dict[str, cc.RuleCost]) -> cc.CommitRun:
    return cc.CommitRun(
        label=label,
        rev=label,
        commit="0" * 40,
        subject="s",
        venv="shared",
        setup_wall_s=3.0,
        load_average_at_start=0.1,
        wall_s=wall,
        cpu_s=2 * job_cpu,
        scheduler=cc.SchedulerCost(20.0, 2 * job_cpu - 20.0, wall - 5.0, 4.0, 5.0),
        jobs=sum(r.jobs for r in rules.values()),
        job_cpu_from_files_s=job_cpu,
        rules=rules,
    )


def test_ratio() -> None:
    assert cc.ratio(200.0, 100.0) == 0.5
    assert cc.ratio(0.0, 1.0) is None
    assert cc.ratio(None, 1.0) is None
    assert cc.ratio(1.0, None) is None


def test_headline_rows_carry_head_over_base() -> None:
    base = run("base", 2000.0, 1000.0, {"train": cc.RuleCost(5, 1000.0, 900.0, 0)})
    head = run("head", 1000.0, 400.0, {"train": cc.RuleCost(5, 400.0, 300.0, 0)})
    rows = {row[0]: row[1:] for row in cc.headline_rows(base, head)}
    assert rows["wall s, analysis command (run + report)"] == [2000.0, 1000.0, 0.5]
    assert rows["job CPU s, sum of benchmark files"] == [1000.0, 400.0, 0.4]
    assert rows["job CPU s, exact (scheduler's reaped children)"] == [1980.0, 780.0, 780 / 1980]
    assert rows["scheduler own CPU s (run)"] == [20.0, 20.0, 1.0]
    assert rows["jobs (benchmark files)"] == [5, 5, 1.0]


def test_rule_rows_union_sorted_by_either_commit_s_cpu() -> None:
    base = {"train": cc.RuleCost(5, 400.0, 1, 0), "evaluate": cc.RuleCost(2, 100.0, 1, 0)}
    head = {"train": cc.RuleCost(1, 200.0, 1, 0), "features_in_ingest": cc.RuleCost(8, 500.0, 1, 0)}
    assert cc.rule_rows(base, head) == [
        ["features_in_ingest", None, None, 8, 500.0, None],
        ["train", 5, 400.0, 1, 200.0, 0.5],
        ["evaluate", 2, 100.0, None, None, None],
    ]


# --------------------------------------------------------------------------- setting up


def test_pins_hash_is_bootstrap_s() -> None:
    shell = subprocess.run(
        "cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1",
        shell=True,
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    assert cc.pins_hash(REPO) == shell.stdout.strip()


def test_only_a_venv_with_the_same_pins_is_shared(tmp_path: Path) -> None:
    def venv(name: str, stamp: str | None) -> Path:
        (tmp_path / name / "bin").mkdir(parents=True)
        (tmp_path / name / "bin" / "python").touch()
        if stamp is not None:
            (tmp_path / name / cc.STAMP).write_text(stamp + "\n")
        return tmp_path / name

    other, unstamped, same = venv("other", "b" * 64), venv("half", None), venv("same", "a" * 64)
    assert cc.shareable_venv("a" * 64, [other, unstamped, same]) == same.resolve()
    assert cc.shareable_venv("c" * 64, [other, unstamped, same]) is None


def test_configfile_relative_to_clone_else_caller(tmp_path: Path) -> None:
    clone, caller = tmp_path / "clone", tmp_path / "caller"
    (clone / "config").mkdir(parents=True)
    (clone / "config" / "ci.yaml").touch()
    caller.mkdir()
    (caller / "my.yaml").touch()
    assert cc.configfile_argument("config/ci.yaml", clone, caller) == "config/ci.yaml"
    assert cc.configfile_argument("my.yaml", clone, caller) == str((caller / "my.yaml").resolve())
    assert cc.configfile_argument("/abs/x.yaml", clone, caller) == "/abs/x.yaml"


# --------------------------------------------------------------------------- the hook


FAKE_SNAKEMAKE = """\
import subprocess, sys, time


def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


if "--child" in sys.argv:
    burn(0.5)
else:
    # a child that is a "snakemake" too: it must not record (the variable is removed)
    subprocess.run([sys.executable, __file__, "--child"], check=True)
    burn(0.3)
"""


def test_hook_records_the_scheduler_s_own_and_children_s_cpu(tmp_path: Path) -> None:
    hook = cc.write_hook(tmp_path / "hook")
    times = tmp_path / "times.jsonl"
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "snakemake"
    fake.write_text(FAKE_SNAKEMAKE)
    env = {**os.environ, "PYTHONPATH": str(hook), cc.TIMES_VARIABLE: str(times)}
    subprocess.run([sys.executable, str(fake), "--report", "r.html"], env=env, check=True)
    # any other Python process leaves the file alone
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    [recorded] = cc.read_process_times(times.read_text())
    assert recorded.argv == ("--report", "r.html") and recorded.is_report
    assert 0.25 <= recorded.own_cpu_s < 0.5 + 0.25  # its own loop, not the child's
    assert recorded.children_cpu_s >= 0.45  # the child's loop
    assert recorded.elapsed_s >= recorded.own_cpu_s
