"""Are the rules' threads/mem_mb/runtime requests honest? Measured against benchmark files.

Reads Snakemake's per-job benchmark files (``results/benchmarks/rules/**.tsv``) of one or
more finished runs (``--results DIR ...``: the default analysis and/or toy runs), maps each
file to its rule by the rule's ``benchmark:`` pattern, and prints per rule the peak RSS and
longest wall time measured next to what the rule declares, with a suggested request:
mem_mb = 1.5 × peak RSS rounded up to 500 MB, runtime = 3 × longest wall time rounded up to
5 min (``thetaflow.operations.batch.suggest_resources``). A rule whose declared mem_mb is below its
measured peak, or whose runtime is below its longest job, is flagged ``LOW``. Batch systems
kill jobs that exceed their requests, and schedule by them: too high wastes the farm.

    .venv/bin/python benchmarks/resource_sizing.py --results results /tmp/toy/results
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import REPO_ROOT, add_json_argument, environment, print_table, save_json

from thetaflow.core import paths
from thetaflow.operations.batch import rule_resources, suggest_resources
from thetaflow.operations.provenance import rule_statistics


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--results",
        nargs="+",
        type=Path,
        default=[REPO_ROOT / paths.RESULTS],
        help="results directories of finished runs",
    )
    add_json_argument(parser, "resource_sizing")
    args = parser.parse_args()
    declared = rule_resources(sorted((REPO_ROOT / "workflow/rules").glob("*.smk")))
    patterns = {r: e["benchmark"] for r, e in declared.items() if "benchmark" in e}
    measured: dict[str, dict] = {}
    for results in args.results:
        workdir = results.resolve().parent
        stats, _, _ = rule_statistics(Path(paths.RULE_BENCHMARK_DIR), patterns, workdir=workdir)
        for rule, entry in stats.items():
            if rule not in declared:
                continue  # files no current rule writes
            best = measured.setdefault(rule, {"jobs": 0, "max_rss_mb": 0.0, "wall_s_max": 0.0})
            best["jobs"] += entry["jobs"]
            best["max_rss_mb"] = max(best["max_rss_mb"], entry["max_rss_mb"])
            best["wall_s_max"] = max(best["wall_s_max"], entry["wall_s_max"])
    rows, figures = [], {}
    for rule in sorted(declared):
        have = declared[rule]
        got = measured.get(rule)
        if got is None:
            rows.append(
                [
                    rule,
                    have.get("threads"),
                    have.get("mem_mb"),
                    have.get("runtime"),
                    "-",
                    "-",
                    "-",
                    "-",
                    "no run",
                ]
            )
            continue
        want = suggest_resources(got["max_rss_mb"], got["wall_s_max"])
        low = []
        if have.get("mem_mb", "").isdigit() and int(have["mem_mb"]) < got["max_rss_mb"]:
            low.append("mem LOW")
        if have.get("runtime", "").isdigit() and 60 * int(have["runtime"]) < got["wall_s_max"]:
            low.append("runtime LOW")
        rows.append(
            [
                rule,
                have.get("threads"),
                have.get("mem_mb"),
                have.get("runtime"),
                got["jobs"],
                round(got["max_rss_mb"]),
                round(got["wall_s_max"], 1),
                f"{want['mem_mb']} / {want['runtime']}",
                ", ".join(low) or "ok",
            ]
        )
        figures[rule] = {"declared": have, "measured": got, "suggested": want}
    print_table(
        "declared requests against measured jobs (peak RSS, longest wall time)",
        [
            "rule",
            "threads",
            "mem_mb",
            "runtime min",
            "jobs",
            "peak MB",
            "max wall s",
            "suggest mem/min",
            "check",
        ],
        rows,
    )
    save_json(
        args.json,
        {"results": [str(r) for r in args.results], "rules": figures, "environment": environment()},
    )


if __name__ == "__main__":
    main()
