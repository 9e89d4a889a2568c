"""Wall time of the whole analysis with --cores 2 against --cores 1 (goal: speed-up ≥ 1.7×).

Runs the default analysis (every stage, from nothing to results/provenance.json) twice in
fresh temporary directories, once per core count, and prints both wall times, the
speed-up and the summed job time per rule of each run (from the benchmark files). On the
default config this takes about an hour on two cores; ``--configfile config/ci.yaml``
gives the toy version in a few minutes (its speed-up is lower: many short jobs, and
Snakemake's own start-up per job counts for more). Run it on an otherwise idle machine.

    .venv/bin/python benchmarks/cores_speedup.py [--configfile config/ci.yaml] [--cores 1 2] \\
        [TARGET...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO_ROOT, add_json_argument, environment, print_table, save_json

from thetaflow.core import paths
from thetaflow.operations.provenance import rule_statistics


def run_analysis(cores: int, configfiles: list[str], keep: Path | None, targets: list[str]) -> dict:
    """Wall time of one complete run with ``cores`` cores, and its per-rule job time."""
    with tempfile.TemporaryDirectory(prefix=f"thetaflow-cores{cores}-") as tmp:
        workdir = keep / f"cores{cores}" if keep else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "snakemake",
            *targets,
            "-s",
            str(REPO_ROOT / "Snakefile"),
            "--cores",
            str(cores),
            "--directory",
            str(workdir),
            "--quiet",
            "rules",
        ]
        if configfiles:
            cmd += ["--configfile", *configfiles]
        start = time.perf_counter()
        run = subprocess.run(
            cmd, capture_output=True, text=True, env={**os.environ, "MPLBACKEND": "Agg"}
        )
        wall = time.perf_counter() - start
        if run.returncode != 0:
            sys.exit(f"--cores {cores} run failed:\n{(run.stdout + run.stderr)[-4000:]}")
        stats, _, _ = rule_statistics(Path(paths.RULE_BENCHMARK_DIR), {}, workdir=workdir)
    return {
        "cores": cores,
        "wall_s": round(wall, 1),
        "job_s_by_dir": {k: v["wall_s_total"] for k, v in stats.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--configfile", nargs="*", default=[], help="config files merged over the default"
    )
    parser.add_argument("--cores", nargs=2, type=int, default=[1, 2], metavar=("FEW", "MANY"))
    parser.add_argument(
        "targets", nargs="*", default=[], help="targets (default: the whole analysis)"
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep the runs under this directory"
    )
    add_json_argument(parser, "cores_speedup")
    args = parser.parse_args()
    configfiles = [str(Path(c).resolve()) for c in args.configfile]
    few, many = sorted(args.cores)
    # the many-core run first: its wall time is the headline figure, printed as soon as it is known
    runs = []
    for cores in (many, few):
        runs.append(run_analysis(cores, configfiles, args.keep, args.targets))
        print(f"--cores {cores}: {runs[-1]['wall_s']:.0f} s wall", flush=True)
    runs.reverse()
    speedup = runs[0]["wall_s"] / runs[1]["wall_s"]
    print_table(
        f"whole analysis{' (' + ', '.join(args.configfile) + ')' if args.configfile else ''}: "
        f"--cores {args.cores[1]} vs --cores {args.cores[0]} (goal: speed-up >= 1.7)",
        ["cores", "wall s", "summed job s"],
        [[r["cores"], r["wall_s"], round(sum(r["job_s_by_dir"].values()), 1)] for r in runs],
    )
    print(f"\nspeed-up: {speedup:.2f}x")
    save_json(
        args.json,
        {
            "configfiles": args.configfile,
            "runs": runs,
            "speedup": round(speedup, 3),
            "goal": 1.7,
            "environment": environment(),
        },
    )


if __name__ == "__main__":
    main()
