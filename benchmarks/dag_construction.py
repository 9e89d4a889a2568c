"""How long does Snakemake take to build the DAG of a large analysis, in how much memory?

Writes, in a temporary directory, a sample list with the default samples plus synthetic
NanoAOD background samples up to ``--samples`` (default 200) in all, each reading
``--files-per-sample`` (empty placeholder) files, so that every sample has the default's
three variations (nominal, jes_up, jes_down); then times ``snakemake -n --quiet`` of the
whole default DAG (every stage) on it, ``--repeat`` times, and prints wall and CPU time, the
peak resident memory of the Snakemake process and the job count. Goals: ≤ 10 s for 200
samples of one file; ≤ 30 s and ≤ 2 GiB for 200 × 100 files (20,000 files).
``--profile`` also runs one dry run under cProfile and prints its top entries (cumulative).

    .venv/bin/python benchmarks/dag_construction.py [--samples 200] [--files-per-sample 100]
        [--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import json
import pstats
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _common import REPO_ROOT, add_json_argument, environment, print_table, save_json

SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO_ROOT / "Snakefile")]
#: Runs ``python -m snakemake ARGS`` in this process and prints its own peak RSS at exit, so
#: the figure is Snakemake's alone (RUSAGE_CHILDREN would give the largest child ever).
PEAK_RSS_WRAPPER = """
import atexit, resource, runpy, sys
atexit.register(lambda: print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                              file=sys.stderr))
sys.argv = ["snakemake", *sys.argv[1:]]
runpy.run_module("snakemake", run_name="__main__")
"""


def write_inputs(directory: Path, n_samples: int, files_per_sample: int = 1) -> Path:
    """A config (default analysis + a sample list of ``n_samples``, each synthetic one with
    ``files_per_sample`` files) in ``directory``."""
    samples = yaml.safe_load((REPO_ROOT / "config" / "samples.yaml").read_text())
    template = {"kind": "background", "label": "synthetic", "color": "#777777", "xsec_pb": 1.0}
    n_extra = max(0, n_samples - len(samples))
    for i in range(n_extra):
        files = []
        for k in range(files_per_sample):
            nano = directory / "nanoaod" / f"bkg_{i:03d}" / f"nano_{k:04d}.root"
            nano.parent.mkdir(parents=True, exist_ok=True)
            nano.touch()  # never read: the dry run only needs the file to exist
            files.append(str(nano))
        samples[f"bkg_{i:03d}"] = {**template, "files": files}
    (directory / "samples.yaml").write_text(yaml.safe_dump(samples, sort_keys=False))
    config = directory / "config.yaml"
    config.write_text(json.dumps({"samples": str(directory / "samples.yaml")}))
    return config


def dry_run(directory: Path, config: Path) -> dict:
    """Wall and CPU time and peak resident memory of one ``snakemake -n --quiet rules`` of
    the whole DAG, and its job count (each run in a fresh child that reports its own peak)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            PEAK_RSS_WRAPPER,
            *SNAKEMAKE[3:],  # the wrapper runs the snakemake module itself
            "-n",
            "--quiet",
            "rules",
            "--cores",
            "2",
            "--directory",
            str(directory),
            "--configfile",
            str(config),
        ],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode != 0:
        sys.exit(f"dry run failed:\n{(run.stdout + run.stderr)[-4000:]}")
    total = re.search(r"^total\s+(\d+)", run.stdout + run.stderr, re.M)
    peak = re.search(r"^PEAK_RSS_KB (\d+)$", run.stderr, re.M)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_mib": round(int(peak.group(1)) / 1024, 1) if peak else None,
        "jobs": int(total.group(1)) if total else None,
    }


def profile_parse(directory: Path, config: Path, top: int = 25) -> None:
    """Print the cProfile entries with the most cumulative time of one dry run."""
    out = directory / "dag.prof"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cProfile",
            "-o",
            str(out),
            "-m",
            "snakemake",
            "-s",
            str(REPO_ROOT / "Snakefile"),
            "-n",
            "--quiet",
            "--cores",
            "2",
            "--directory",
            str(directory),
            "--configfile",
            str(config),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    pstats.Stats(str(out)).sort_stats("cumulative").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--files-per-sample", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one dry run")
    add_json_argument(parser, "dag_construction")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="thetaflow-dag-") as tmp:
        directory = Path(tmp)
        config = write_inputs(directory, args.samples, args.files_per_sample)
        runs = [dry_run(directory, config) for _ in range(args.repeat)]
        if args.profile:
            profile_parse(directory, config)
    best = min(runs, key=lambda r: r["wall_s"])
    goal = "<= 10 s" if args.files_per_sample == 1 else "<= 30 s, <= 2 GiB"
    print_table(
        f"snakemake -n of the default DAG, {args.samples} samples x {args.files_per_sample} "
        f"files x 3 variations (goal {goal})",
        ["run", "wall s", "CPU s", "peak RSS MiB", "jobs"],
        [
            [i + 1, r["wall_s"], r["cpu_s"], r["peak_rss_mib"], r["jobs"]]
            for i, r in enumerate(runs)
        ],
    )
    save_json(
        args.json,
        {
            "samples": args.samples,
            "files_per_sample": args.files_per_sample,
            "runs": runs,
            "best_wall_s": best["wall_s"],
            "goal_s": 10.0 if args.files_per_sample == 1 else 30.0,
            "environment": environment(),
        },
    )


if __name__ == "__main__":
    main()
