"""Peak memory of ingestion vs file size: a 1 M-event and a 10 M-event NanoAOD file.

Ingestion reads entry ranges of ``ingest.chunk_size`` and streams the selected events to
parquet, so its peak memory should follow the chunk size, not the file size. This checks
it: the peak RSS of ingesting the large file over that of the small one (goal ≤ 1.3).

How the files are made: one batch of ``--batch`` Z+jets events (default 500 000, events in
the file after filter and skim) is simulated once with ``simulate_mc_chunk`` (default
config), read back, and written repeatedly with uproot's ``TTree.extend`` until each file
holds its number of events. Events therefore repeat (every ``--batch`` events), which does
not matter for memory. Each ``extend`` call writes one basket per branch; it is done in
slices of ``--basket-entries`` entries. The files carry no ``Runs`` tree (ingestion then
normalises with Σ genWeight of the events read; irrelevant here). They are written under
``--workdir`` (default /tmp) and deleted at the end.

Processes: this script only orchestrates (it stays small). The files are made in one child.
Each ingestion (all variations, as the rule does) runs in its own fresh spawned process,
started from a fresh, lean intermediary process whose only child it is; reported per file:

* the ingestion process's own peak RSS (``VmHWM``, read in it at its end) — the figure the
  goal is checked on;
* ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` read in the intermediary after the ingestion
  process ended. Because on Linux a child's ``ru_maxrss`` also counts the RSS its parent
  had at fork/exec, and ``RUSAGE_CHILDREN`` is the largest over all reaped children, this
  is only meaningful from a lean parent with no other children — hence the intermediary.

The default sizes (1 M and 10 M) take about 5.5 minutes on two cores (writing and ingesting
the 3 GB file is most of it); ``--small 200000 --large 2000000`` takes about 1.5 minutes.

    .venv/bin/python benchmarks/ingest_memory.py [--small 1000000] [--large 10000000] [--json PATH]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
from pathlib import Path

import awkward as ak
import numpy as np
import uproot
from _common import (
    add_json_argument,
    environment,
    ingest_files,
    load_config,
    peak_rss_mib,
    positive_int,
    print_table,
    run_isolated,
    save_json,
    scratch_dir,
    simulate_files,
)

GOAL_RATIO = 1.3
TREE = "Events"


def simulate_batch(config: dict, n_events: int, workdir: Path) -> dict[str, np.ndarray | ak.Array]:
    """Simulate ≥ ``n_events`` file events, read them back; return exactly ``n_events``
    as NanoAOD-style columns: flat branches as NumPy arrays, collections as jagged records."""
    chunks = simulate_files(
        config, n_events, str(workdir / "batch"), config["simulation"]["events_per_chunk"]
    )
    parts = []
    for chunk in chunks:
        with uproot.open(chunk["path"]) as handle:
            parts.append(handle[TREE].arrays(how="zip"))
    events = ak.concatenate(parts)[:n_events]
    shutil.rmtree(workdir / "batch")
    collections = {f for f in events.fields if events[f].ndim > 1}
    counters = {f"n{c}" for c in collections}
    return {
        f: events[f] if f in collections else ak.to_numpy(events[f])
        for f in events.fields
        if f not in counters  # mktree re-creates the nX counters
    }


def write_repeated(
    path: Path,
    batch: dict[str, np.ndarray | ak.Array],
    n_events: int,
    basket_entries: int,
    compression_level: int,
) -> float:
    """Write ``n_events`` events to ``path`` by extending the tree with the batch (repeated,
    in slices of ``basket_entries``), with the simulation's naming and compression; return
    the seconds taken."""
    start = time.perf_counter()
    batch_len = len(next(iter(batch.values())))
    with uproot.recreate(path, compression=uproot.ZLIB(compression_level)) as handle:
        tree = handle.mktree(
            TREE,
            {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in batch.items()},
            field_name=lambda outer, inner: f"{outer}_{inner}",
            counter_name=lambda counted: "n" + counted,
        )
        written = 0
        while written < n_events:
            offset = written % batch_len
            take = min(basket_entries, batch_len - offset, n_events - written)
            tree.extend({k: v[offset : offset + take] for k, v in batch.items()})
            written += take
    return time.perf_counter() - start


def make_files(
    config: dict, sizes: dict[str, int], batch_size: int, basket_entries: int, workdir: str
) -> dict:
    """Simulate the batch once and write one file per entry of ``sizes`` (label → events);
    return label → {path, write_s}. Runs in a child, so the batch never inflates this process."""
    batch = simulate_batch(config, batch_size, Path(workdir))
    files = {}
    for label, n in sizes.items():
        path = Path(workdir) / f"{label}_{n}.root"
        print(f"writing {n:,} events to {path} ...", flush=True)
        seconds = write_repeated(
            path, batch, n, basket_entries, config["simulation"]["compression_level"]
        )
        files[label] = {"path": str(path), "write_s": seconds}
    return files


def ingest_and_read_children_rusage(config: dict, path: str, outdir: str) -> dict:
    """In a lean intermediary: ingest ``path`` in a fresh child, then read RUSAGE_CHILDREN,
    whose only (reaped) child is that ingestion."""
    run = run_isolated(ingest_files, config, [path], outdir)
    return {"ingest": run, "rusage_children_max_rss_mib": peak_rss_mib(resource.RUSAGE_CHILDREN)}


def measure(config: dict, label: str, path: Path, n_events: int, workdir: Path) -> dict:
    """Ingest one file (fresh child under a fresh intermediary); return time and memory."""
    outdir = workdir / f"ingest-{label}"
    inner = run_isolated(ingest_and_read_children_rusage, config, str(path), str(outdir)).result
    shutil.rmtree(outdir, ignore_errors=True)
    run = inner["ingest"]
    return {
        "file": label,
        "events": n_events,
        "events_read": run.result["events_read"],
        "file_size_mb": path.stat().st_size / 1e6,
        "wall_s": run.wall_s,
        "cpu_s": run.cpu_s,
        "events_per_s": run.result["events_read"] / run.wall_s,
        "peak_rss_mib": run.peak_rss_mib,
        "rss_after_imports_mib": run.rss_before_mib,
        "ru_maxrss_mib": run.ru_maxrss_mib,
        "rusage_children_max_rss_mib": inner["rusage_children_max_rss_mib"],
    }


def run_benchmark(args: argparse.Namespace, workdir: Path) -> dict:
    """Make both files (in a child), ingest each in its own child, return every figure."""
    config = load_config()
    batch_size = min(args.batch, args.large)
    sizes = {"small": args.small, "large": args.large}
    print(
        f"simulating one batch of {batch_size:,} zjets events and writing the files (one child) ..."
    )
    made = run_isolated(make_files, config, sizes, batch_size, args.basket_entries, str(workdir))
    results = []
    for label, n in sizes.items():
        print(f"ingesting the {label} file ({n:,} events) in a fresh process ...")
        path = Path(made.result[label]["path"])
        results.append(
            measure(config, label, path, n, workdir) | {"write_s": made.result[label]["write_s"]}
        )
    small, large = results
    ratio = large["peak_rss_mib"] / small["peak_rss_mib"]
    small_growth = small["peak_rss_mib"] - small["rss_after_imports_mib"]
    growth = (
        (large["peak_rss_mib"] - large["rss_after_imports_mib"]) / small_growth
        if small_growth > 0
        else None
    )
    return {
        "benchmark": "ingest_memory",
        "config": {
            "ingest.chunk_size": config["ingest"]["chunk_size"],
            "batch": batch_size,
            "basket_entries": args.basket_entries,
        },
        "files": results,
        "file_maker": {"wall_s": made.wall_s, "peak_rss_mib": made.peak_rss_mib},
        "peak_rss_ratio": ratio,
        "peak_rss_above_imports_ratio": growth,
        "goal_ratio": GOAL_RATIO,
        "goal_met": ratio <= GOAL_RATIO,
        "environment": environment(),
    }


def report(fig: dict) -> None:
    """Print the per-file table and the goal verdict."""
    rows = [
        [
            f["file"],
            f["events_read"],
            f["file_size_mb"],
            f["write_s"],
            f["wall_s"],
            f["events_per_s"],
            f["rss_after_imports_mib"],
            f["peak_rss_mib"],
            f["rusage_children_max_rss_mib"],
        ]
        for f in fig["files"]
    ]
    print_table(
        "Ingestion peak memory vs file size (entry ranges of "
        f"{fig['config']['ingest.chunk_size']:,}; "
        f"one fresh process per file)",
        [
            "file",
            "events",
            "MB",
            "write s",
            "ingest s",
            "events/s",
            "RSS after imports MiB",
            "peak RSS MiB",
            "RUSAGE_CHILDREN MiB",
        ],
        rows,
    )
    verdict = "MET" if fig["goal_met"] else "NOT MET"
    growth = fig["peak_rss_above_imports_ratio"]
    print(
        f"\npeak RSS large / small = {fig['peak_rss_ratio']:.3f} (goal ≤ {fig['goal_ratio']}): "
        f"{verdict}; "
        f"growth above the post-import RSS: {'n/a' if growth is None else f'{growth:.3f}'}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--small",
        type=positive_int,
        default=1_000_000,
        help="events in the small file (default: %(default)s)",
    )
    parser.add_argument(
        "--large",
        type=positive_int,
        default=10_000_000,
        help="events in the large file (default: %(default)s)",
    )
    parser.add_argument(
        "--batch",
        type=positive_int,
        default=500_000,
        help="distinct simulated events, repeated to fill the files (default: %(default)s)",
    )
    parser.add_argument(
        "--basket-entries",
        type=positive_int,
        default=100_000,
        help="entries per TTree.extend call, i.e. per basket (default: %(default)s)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("/tmp"),
        help="where the files go (default: %(default)s)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the files")
    add_json_argument(parser, "ingest_memory")
    args = parser.parse_args(argv)
    if args.small >= args.large:
        parser.error("--small must be smaller than --large")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON, delete the files."""
    args = parse_args(argv)
    with scratch_dir("thetaflow-ingest-memory-", args.workdir, args.keep) as workdir:
        figures = run_benchmark(args, workdir)
    report(figures)
    save_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
