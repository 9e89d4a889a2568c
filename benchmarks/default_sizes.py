"""Are the default sample sizes large enough? Figures from the results of a default run.

For each background sample of the default config (config/config.yaml + config/samples.yaml),
from ``results/features/<sample>/nominal.parquet`` (column ``weight``, the normalised event
weight) after the full selection:

* effective simulated events  N_eff = (Σw)² / Σw²;
* expected data events        Σw;
* their ratio N_eff / Σw — the goal is ≥ 10, so that MC statistical uncertainties stay well
  below the data's.

Plus the summed background, the signal (for information) and the pseudo-data count. The
cutflows (``results/cutflow/<sample>.json``) say which luminosity and files a run used; if
they differ from the default config (e.g. a CI run on config/ci.yaml), or the config files
are newer than the results, a warning says so.

Also, if Snakemake's benchmark files
``results/benchmarks/rules/{simulate,ingest,features}/**/*.tsv`` exist, the wall time (column
``s``) is summed per rule over the jobs of the current config
(files left by runs with other sample sizes are counted apart, not summed).

Nothing is computed anew: run the default analysis first (``bash workflow/bootstrap.sh analysis``).

    .venv/bin/python benchmarks/default_sizes.py [--results results] [--json PATH]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from _common import (
    DEFAULT_CONFIG,
    REPO_ROOT,
    add_json_argument,
    environment,
    load_config,
    print_table,
    save_json,
)

from thetaflow.core import paths
from thetaflow.core.config import resolve_path
from thetaflow.core.samples import Sample, load_samples
from thetaflow.ingestion.ingest import variations
from thetaflow.simulation.production import sample_chunks

GOAL_RATIO = 10.0
RULES = ("simulate", "ingest", "features")
PRODUCE_COMMAND = "bash workflow/bootstrap.sh analysis"


def sample_paths(results: Path, name: str) -> tuple[Path, Path]:
    """The cutflow JSON and the nominal feature table of one sample."""
    return results / "cutflow" / f"{name}.json", results / "features" / name / "nominal.parquet"


def read_weights(path: Path) -> np.ndarray:
    """The normalised event weights of a feature table."""
    return pq.read_table(path, columns=["weight"]).column("weight").to_numpy().astype(np.float64)


def size_figures(name: str, weights: np.ndarray) -> dict:
    """Σw, Σw², N_eff = (Σw)²/Σw² and N_eff/Σw of one set of weights."""
    sumw, sumw2 = float(weights.sum()), float((weights**2).sum())
    n_eff = sumw**2 / sumw2 if sumw2 > 0 else 0.0
    ratio = n_eff / sumw if sumw > 0 else math.nan
    return {
        "sample": name,
        "mc_events_selected": int(weights.size),
        "expected_events": sumw,
        "sumw2": sumw2,
        "effective_mc_events": n_eff,
        "ratio": ratio,
        "goal_met": bool(ratio >= GOAL_RATIO),
    }


def provenance_problems(config: Mapping, sample: Sample, cutflow: Mapping) -> list[str]:
    """Ways in which a sample's cutflow does not come from the default config."""
    problems = []
    lumi = config["analysis"]["lumi_fb"]
    if not math.isclose(float(cutflow["lumi_fb"]), lumi):
        problems.append(f"lumi_fb {cutflow['lumi_fb']} (config: {lumi})")
    if sample.is_generated:
        chunks = sample_chunks(sample.spec["generate"], config["simulation"]["events_per_chunk"])
        if len(cutflow["files"]) != chunks:
            problems.append(f"{len(cutflow['files'])} input files (config: {chunks} chunks)")
    if not sample.is_data and not math.isclose(
        float(cutflow["xsec_pb"]), float(sample.spec["xsec_pb"])
    ):
        problems.append(f"xsec_pb {cutflow['xsec_pb']} (config: {sample.spec['xsec_pb']})")
    return problems


def stale_results(config: Mapping, cutflows: list[Path]) -> list[str]:
    """A warning if the config or sample list changed after the oldest cutflow was written."""
    present = [p for p in cutflows if p.exists()]
    if not present:
        return []
    inputs = [DEFAULT_CONFIG, resolve_path(config["samples"], [REPO_ROOT]).resolve()]
    newest = max(inputs, key=lambda p: p.stat().st_mtime)
    oldest = min(present, key=lambda p: p.stat().st_mtime)
    if newest.stat().st_mtime > oldest.stat().st_mtime:
        return [
            f"{newest.relative_to(REPO_ROOT)} changed after {oldest} was written (results may be "
            "stale)"
        ]
    return []


def sample_sizes(config: Mapping, samples: Mapping[str, Sample], results: Path) -> dict:
    """Per-sample figures from the results present; lists what is missing or off-config."""
    missing, warnings = [], []
    backgrounds, signal, data = [], [], []
    bkg_weights = []
    for name, sample in samples.items():
        cutflow_path, features_path = sample_paths(results, name)
        absent = [
            str(p.relative_to(results)) for p in (cutflow_path, features_path) if not p.exists()
        ]
        if absent:
            missing.append({"sample": name, "files": absent})
            continue
        cutflow = json.loads(cutflow_path.read_text())
        warnings += [f"{name}: {p}" for p in provenance_problems(config, sample, cutflow)]
        weights = read_weights(features_path)
        configured = sample.spec.get("generate", {}).get("n_events")
        extra = {"configured_n_events": configured, "events_read": cutflow["events_read"]}
        if sample.is_data:
            data.append(
                {
                    "sample": name,
                    "events_read": cutflow["events_read"],
                    "selected": int(weights.size),
                }
            )
        elif sample.kind == "signal":
            signal.append(size_figures(name, weights) | extra)
        else:
            backgrounds.append(size_figures(name, weights) | extra)
            bkg_weights.append(weights)
    warnings += stale_results(config, [sample_paths(results, name)[0] for name in samples])
    total = size_figures("all backgrounds", np.concatenate(bkg_weights)) if bkg_weights else None
    expected_total = sum(r["expected_events"] for r in backgrounds + signal)
    return {
        "backgrounds": backgrounds,
        "background_total": total,
        "signal": signal,
        "pseudo_data": data,
        "expected_total_events": expected_total,
        "missing": missing,
        "provenance_warnings": warnings,
    }


def expected_job_files(config: Mapping, samples: Mapping[str, Sample]) -> dict[str, set[str]]:
    """Benchmark files (relative to the rule's directory) of the jobs the config defines."""
    mc_variations = [v.name for v in variations(config, is_data=False)]
    jobs: dict[str, set[str]] = {rule: set() for rule in RULES}
    for name, sample in samples.items():
        if sample.is_generated:
            chunks = sample_chunks(
                sample.spec["generate"], config["simulation"]["events_per_chunk"]
            )
            jobs["simulate"] |= {f"{name}/{c}.tsv" for c in range(chunks)}
        jobs["ingest"].add(f"{name}.tsv")
        jobs["features"] |= {
            f"{name}/{v}.tsv" for v in (["nominal"] if sample.is_data else mc_variations)
        }
    return jobs


def read_benchmark(path: Path) -> tuple[float, float | None] | None:
    """(wall s, max RSS MB) of one Snakemake benchmark file; several rows (``repeat()``)
    count with their mean wall time."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows:
        return None
    rss = [float(r["max_rss"]) for r in rows if r.get("max_rss") not in (None, "", "-", "NA")]
    return float(np.mean([float(r["s"]) for r in rows])), max(rss, default=None)


def rule_wall_times(results: Path, expected: Mapping[str, set[str]]) -> dict:
    """Σ wall seconds (column ``s``) of Snakemake's benchmark files per rule, over the jobs
    of the current config; files of other jobs (left by runs with other sizes) are counted
    apart, as ``other_files``, and not summed."""
    out = {}
    for rule in RULES:
        base = results / "benchmarks" / "rules" / rule
        files = sorted(base.glob("**/*.tsv"))
        if not files:
            continue
        seconds, rss, other = [], [], []
        for path in files:
            name = path.relative_to(base).as_posix()
            figures = read_benchmark(path) if name in expected[rule] else None
            if figures is None:
                other.append(name)
                continue
            seconds.append(figures[0])
            rss += [figures[1]] if figures[1] is not None else []
        out[rule] = {
            "jobs": len(seconds),
            "jobs_expected": len(expected[rule]),
            "total_s": float(sum(seconds)),
            "max_job_s": max(seconds, default=0.0),
            "max_rss_mb": max(rss, default=None),
            "other_files": other,
        }
    return out


def _size_row(r: Mapping, label: str, goal: bool | None) -> list:
    return [
        label,
        r.get("configured_n_events"),
        r.get("events_read"),
        r["mc_events_selected"],
        r["effective_mc_events"],
        r["expected_events"],
        r["ratio"],
        goal,
    ]


def report(fig: dict) -> None:
    """Print the tables, the pseudo-data count, warnings and what is missing."""
    sizes = fig["sizes"]
    if sizes["missing"]:
        print(f"results of a default run are missing or incomplete under {fig['results']}:")
        for m in sizes["missing"]:
            print(f"  {m['sample']}: no {' nor '.join(m['files'])}")
        print(
            f"  produce them with: {PRODUCE_COMMAND}  (Snakemake, profiles/default, "
            "config/config.yaml)"
        )
    total = [sizes["background_total"]] if sizes["background_total"] else []
    rows = [_size_row(r, r["sample"], r["goal_met"]) for r in sizes["backgrounds"] + total]
    rows += [_size_row(r, f"{r['sample']} (signal, info)", None) for r in sizes["signal"]]
    if rows:
        print_table(
            f"MC size after selection vs expected data ({fig['lumi_fb']} fb^-1 in config; goal "
            f"N_eff/expected ≥ {GOAL_RATIO:g})",
            [
                "sample",
                "n_events (config)",
                "events read",
                "MC selected",
                "N_eff",
                "expected",
                "N_eff/expected",
                "goal",
            ],
            rows,
        )
    for d in sizes["pseudo_data"]:
        print(
            f"\npseudo-data '{d['sample']}': {d['selected']:,} events selected "
            f"({d['events_read']:,} read); "
            f"expected (signal + backgrounds): {sizes['expected_total_events']:,.1f}"
        )
    if sizes["provenance_warnings"]:
        print(
            "\nWARNING: these results may not come from the current default config; the figures "
            "describe the run that made them:\n  "
            + "\n  ".join(sizes["provenance_warnings"])
            + f"\n  a default run: {PRODUCE_COMMAND}"
        )
    rules = fig["rules"]
    if rules:
        print_table(
            "Snakemake rule wall time (results/benchmarks/rules)",
            [
                "rule",
                "jobs",
                "of config's",
                "Σ wall s",
                "max job s",
                "max RSS MB",
                "other files (ignored)",
            ],
            [
                [
                    k,
                    v["jobs"],
                    v["jobs_expected"],
                    v["total_s"],
                    v["max_job_s"],
                    v["max_rss_mb"],
                    len(v["other_files"]),
                ]
                for k, v in rules.items()
            ]
            + [
                [
                    "all three",
                    sum(v["jobs"] for v in rules.values()),
                    None,
                    sum(v["total_s"] for v in rules.values()),
                    None,
                    None,
                    None,
                ]
            ],
        )
    else:
        print(
            f"\nno Snakemake benchmark files under results/benchmarks/rules/{{{','.join(RULES)}}}/"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--results",
        type=Path,
        default=REPO_ROOT / paths.RESULTS,
        help="results directory of a default run (default: %(default)s)",
    )
    add_json_argument(parser, "default_sizes")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Compute, print and write the figures."""
    args = parse_args(argv)
    config = load_config()
    samples = load_samples(config)
    figures = {
        "benchmark": "default_sizes",
        "results": str(args.results),
        "lumi_fb": config["analysis"]["lumi_fb"],
        "goal_ratio": GOAL_RATIO,
        "sizes": sample_sizes(config, samples, args.results),
        "rules": rule_wall_times(args.results, expected_job_files(config, samples)),
        "environment": environment(),
    }
    report(figures)
    save_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
