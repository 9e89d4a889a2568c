"""Throughput of the foundation stages on Z+jets: simulate → ingest → features, vs uproot.

Stages, each timed in its own fresh single process (see ``_common.run_isolated``):

(a) simulate: ``simulate_mc_chunk`` for the ``zjets`` sample of the default config, chunk
    after chunk, until the files hold ≥ ``--events`` events (events after the generator
    filter and the reco skim, i.e. the NanoAOD events ingestion reads);
(b) uproot: a plain ``uproot`` read of exactly the branches ingestion reads (NanoEvents'
    access log, ``thetaflow.ingestion.ingest.branches_read``: the selection's lepton and jet fields,
    jet truth, GenJet p_T, MET, ids, genWeight and the collection counters) from the same
    files, in the same entry ranges (``ingest.chunk_size``) — the reference of the goal; and,
    as a looser reference, of every branch of the collections ingestion uses (Muon_*,
    Electron_*, Jet_*, GenJet_*, MET_*...);
(c) ingest: ``ingest_sample`` (through ``ingest_from_config``, as the rule calls it) on the
    files, nominal + jes_up + jes_down from one read;
(d) features: ``build_features`` on the nominal events parquet.

The goal checked: (ingest + features throughput) ≥ 50 % of the uproot read throughput,
where the combined throughput is events read / (ingest seconds + features seconds). The
files are freshly written, so every read comes from the page cache for all stages alike.

    .venv/bin/python benchmarks/foundation_throughput.py [--events 1000000] [--json PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import uproot
from _common import (
    BENCH_SAMPLE,
    Measured,
    add_json_argument,
    environment,
    ingest_files,
    load_config,
    positive_int,
    print_table,
    run_isolated,
    save_json,
    scratch_dir,
    simulate_files,
)

from thetaflow.features.compute import build_features
from thetaflow.ingestion.ingest import branches_read, is_collection_branch
from thetaflow.ingestion.selection import Selection

GOAL_RATIO = 0.5


def read_with_uproot(files: list[str], branches: list[str], chunk_size: int) -> dict:
    """Read ``branches`` with plain uproot, entry range by entry range."""
    events = 0
    for path in files:
        with uproot.open(path) as handle:
            tree = handle["Events"]
            for start in range(0, tree.num_entries, chunk_size):
                stop = min(start + chunk_size, tree.num_entries)
                events += len(tree.arrays(branches, entry_start=start, entry_stop=stop))
    return {"events": events, "branches": branches}


def stage_record(name: str, events: int, input_events: int, run: Measured) -> dict:
    """One stage's figures: its own events/s and input (file) events/s, CPU, memory."""
    return {
        "stage": name,
        "events": events,
        "input_events": input_events,
        "wall_s": run.wall_s,
        "cpu_s": run.cpu_s,
        "events_per_s": events / run.wall_s,
        "input_events_per_s": input_events / run.wall_s,
        "peak_rss_mib": run.peak_rss_mib,
        "rss_after_imports_mib": run.rss_before_mib,
    }


def run_benchmark(config: dict, n_events: int, filtered_per_chunk: int, workdir: Path) -> dict:
    """Run the four stages on files under ``workdir``; return every figure."""
    chunk_size = config["ingest"]["chunk_size"]
    print(
        f"(a) simulating ≥ {n_events:,} {BENCH_SAMPLE} events in chunks of {filtered_per_chunk:,} "
        "filtered events ..."
    )
    sim = run_isolated(
        simulate_files, config, n_events, str(workdir / "simulation"), filtered_per_chunk
    )
    chunks = sim.result
    files = [c["path"] for c in chunks]
    written = sum(c["written"] for c in chunks)
    filtered = sum(c["filtered"] for c in chunks)
    generated = sum(c["generated"] for c in chunks)
    size_mb = sum(Path(f).stat().st_size for f in files) / 1e6

    branches = branches_read(
        files[0], "Events", Selection.from_config(config["selection"]), is_data=False
    )
    print(
        f"(b) plain uproot read of {written:,} events, {len(branches)} branches, from {len(files)} "
        "files ..."
    )
    read = run_isolated(read_with_uproot, files, branches, chunk_size)
    with uproot.open(files[0]) as handle:
        # a TTree iterates over its branches; keys() gives their names
        names = handle["Events"].keys()
        collections = [name for name in names if is_collection_branch(name)]
    print(
        f"    and of all {len(collections)} branches of the collections ingestion uses (a looser "
        "reference) ..."
    )
    read_collections = run_isolated(read_with_uproot, files, collections, chunk_size)
    print("(c) ingesting (nominal, jes_up, jes_down from one read) ...")
    ingest = run_isolated(ingest_files, config, files, str(workdir / "ingest"))
    events_read = ingest.result["events_read"]
    print("(d) building features of the nominal events ...")
    nominal = ingest.result["events_paths"]["nominal"]
    features = run_isolated(
        build_features,
        config,
        BENCH_SAMPLE,
        nominal,
        ingest.result["cutflow_path"],
        str(workdir / "features" / "nominal.parquet"),
    )

    stages = [
        stage_record("simulate (events written)", written, written, sim),
        stage_record("uproot read", read.result["events"], written, read),
        stage_record("ingest (3 variations)", events_read, events_read, ingest),
        stage_record("features (nominal rows)", features.result, events_read, features),
    ]
    chain_s = ingest.wall_s + features.wall_s
    chain_rate = events_read / chain_s
    uproot_rate = read.result["events"] / read.wall_s
    return {
        "benchmark": "foundation_throughput",
        "sample": BENCH_SAMPLE,
        "config": {
            "ingest.chunk_size": chunk_size,
            "simulation.events_per_chunk": filtered_per_chunk,
        },
        "files": len(files),
        "file_size_mb": size_mb,
        "events_requested": n_events,
        "simulation": {
            "written": written,
            "filtered": filtered,
            "generated": generated,
            "written_per_s": written / sim.wall_s,
            "filtered_per_s": filtered / sim.wall_s,
            "generated_per_s": generated / sim.wall_s,
        },
        "selected": ingest.result["selected"],
        "uproot_branches": read.result["branches"],
        "stages": stages,
        "ingest_plus_features": {"wall_s": chain_s, "input_events_per_s": chain_rate},
        "ratio_to_uproot": chain_rate / uproot_rate,
        "collection_branches": len(collections),
        "uproot_collections_wall_s": read_collections.wall_s,
        "ratio_to_uproot_collections": chain_rate
        / (read_collections.result["events"] / read_collections.wall_s),
        "ingest_only_ratio_to_uproot": (events_read / ingest.wall_s) / uproot_rate,
        "goal_ratio": GOAL_RATIO,
        "goal_met": chain_rate / uproot_rate >= GOAL_RATIO,
        "environment": environment(),
    }


def report(fig: dict) -> None:
    """Print the figures as a table and the goal verdict."""
    rows = [
        [
            s["stage"],
            s["events"],
            s["wall_s"],
            s["cpu_s"],
            s["events_per_s"],
            s["input_events_per_s"],
            s["peak_rss_mib"],
        ]
        for s in fig["stages"]
    ]
    chain = fig["ingest_plus_features"]
    events_read = fig["stages"][2]["events"]
    rows.append(
        [
            "ingest + features",
            events_read,
            chain["wall_s"],
            None,
            None,
            chain["input_events_per_s"],
            None,
        ]
    )
    sim = fig["simulation"]
    print_table(
        f"Foundation throughput, {fig['sample']}, one process per stage "
        f"({fig['files']} files, {fig['file_size_mb']:.0f} MB, entry ranges of "
        f"{fig['config']['ingest.chunk_size']:,})",
        ["stage", "events", "wall s", "CPU s", "events/s", "file events/s", "peak RSS MiB"],
        rows,
    )
    print(
        f"\nsimulation: {sim['written_per_s']:,.0f} written / {sim['filtered_per_s']:,.0f} "
        "filtered / "
        f"{sim['generated_per_s']:,.0f} generated events per second (one core)"
    )
    print(f"selected events per variation: {fig['selected']}")
    verdict = "MET" if fig["goal_met"] else "NOT MET"
    print(
        f"(ingest + features) / uproot read = {fig['ratio_to_uproot']:.1%} "
        f"(ingest alone {fig['ingest_only_ratio_to_uproot']:.1%}); goal ≥ {fig['goal_ratio']:.0%}: "
        f"{verdict}"
    )
    print(
        f"against a read of all {fig['collection_branches']} branches of the used collections "
        f"({fig['uproot_collections_wall_s']:.2f} s): {fig['ratio_to_uproot_collections']:.1%}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events",
        type=positive_int,
        default=1_000_000,
        help="NanoAOD events to simulate and process (default: %(default)s)",
    )
    parser.add_argument(
        "--sim-chunk",
        type=positive_int,
        default=None,
        help="filtered events per simulated chunk file (default: simulation.events_per_chunk)",
    )
    parser.add_argument(
        "--chunk-size",
        type=positive_int,
        default=None,
        help="entries per read for ingest and uproot (default: ingest.chunk_size)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="directory for the scratch files (default: %(default)s)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch files")
    add_json_argument(parser, "foundation_throughput")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON."""
    args = parse_args(argv)
    config = load_config({"ingest": {"chunk_size": args.chunk_size}} if args.chunk_size else None)
    filtered_per_chunk = args.sim_chunk or config["simulation"]["events_per_chunk"]
    with scratch_dir("thetaflow-throughput-", args.workdir, args.keep) as workdir:
        figures = run_benchmark(config, args.events, filtered_per_chunk, workdir)
    report(figures)
    save_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
