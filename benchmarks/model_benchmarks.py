"""The GPU and FPGA benchmark stages on the models of a finished default run, with timings.

Runs what rules ``benchmark_fpga`` (per model), ``benchmark_fpga_reference`` and
``benchmark_gpu`` run, on ``<results>/models/{model}/fold{k}`` and the training table of a
finished default run (the autoencoder from ``--autoencoder`` if given), writing into
``--out``; prints the FPGA tiers table the README quotes and each job's wall time. Never
asserts.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from pathlib import Path

from _common import add_json_argument, load_config, print_table, save_json

from thetaflow.benchmarking.fpga import run_fpga_benchmark, run_reference
from thetaflow.benchmarking.gpu import run_gpu_benchmark
from thetaflow.benchmarking.plots import summarise_fpga
from thetaflow.core import paths


def _cpu_seconds() -> float:
    """User+system CPU time of this process and its finished children (g++, GHDL, Yosys)."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _fmt_pair(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{a:.4f} → {b:.4f}"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and print the tiers table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--results",
        type=Path,
        default=Path(paths.RESULTS),
        help="results directory of a default run",
    )
    parser.add_argument(
        "--autoencoder",
        type=Path,
        help="autoencoder fold directory (default <results>/models/autoencoder/fold<k>)",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="directory for the benchmark outputs"
    )
    parser.add_argument("--skip-gpu", action="store_true", help="only the FPGA tiers")
    parser.add_argument("--skip-fpga", action="store_true", help="only the GPU benchmark")
    add_json_argument(parser, "model_benchmarks")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = load_config()
    bench = config["benchmarks"]
    fold = bench["fold"]
    table = str(args.results / "ml" / "training.parquet")
    dirs = {m: args.results / "models" / m / f"fold{fold}" for m in bench["models"]}
    if args.autoencoder:
        dirs["autoencoder"] = args.autoencoder
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    jsons = []
    for model, directory in [] if args.skip_fpga else dirs.items():
        start, cpu0 = time.perf_counter(), _cpu_seconds()
        out = args.out / "fpga" / f"{model}.json"
        run_fpga_benchmark(
            config, model, table, str(directory) if directory.is_dir() else None, str(out)
        )
        wall[f"benchmark_fpga {model}"] = time.perf_counter() - start
        cpu[f"benchmark_fpga {model}"] = _cpu_seconds() - cpu0
        jsons.append(str(out))
    reference = None
    if bench["fpga"]["reference"] and not args.skip_fpga:
        start, cpu0 = time.perf_counter(), _cpu_seconds()
        reference = str(args.out / "fpga" / "reference.json")
        run_reference(config, reference)
        wall["benchmark_fpga_reference"] = time.perf_counter() - start
        cpu["benchmark_fpga_reference"] = _cpu_seconds() - cpu0
    frame = summarise_fpga(
        jsons,
        reference,
        {
            "table": str(args.out / "fpga" / "tiers.csv"),
            "figure": str(args.out / "fpga" / "precision_scan.png"),
        },
    )
    if not args.skip_gpu:
        start, cpu0 = time.perf_counter(), _cpu_seconds()
        run_gpu_benchmark(
            config,
            table,
            {m: str(d) for m, d in dirs.items()},
            {
                "json": str(args.out / "gpu" / "benchmark.json"),
                "table": str(args.out / "gpu" / "inference.csv"),
                "figure": str(args.out / "gpu" / "inference.png"),
            },
            threads=2,
        )
        wall["benchmark_gpu"] = time.perf_counter() - start
        cpu["benchmark_gpu"] = _cpu_seconds() - cpu0
    rows = []
    for r in frame.to_dict("records"):
        if r["status"] != "ok":
            rows.append([r["model"], "skipped", "-", "-", "-", "-", "-", r.get("note", "")])
            continue
        rows.append(
            [
                r["model"],
                r["precision"],
                r["agreement"],
                _fmt_pair(r["auc_float"], r["auc_fixed"]),
                r["cycles"],
                r["latency_ns"],
                r["lut_estimate"],
                r["yosys_lut"] if r["yosys_lut"] == r["yosys_lut"] else "-",
            ]
        )
    print_table(
        "FPGA tiers at the default precision",
        [
            "model",
            "precision",
            "agreement",
            "AUC float → fixed",
            "cycles",
            "ns",
            "LUT est.",
            "LUT Yosys",
        ],
        rows,
    )
    print_table(
        "Time per job", ["job", "wall s", "CPU s"], [[k, v, cpu[k]] for k, v in wall.items()]
    )
    save_json(args.json, {"tiers": frame.to_dict("records"), "wall_s": wall, "cpu_s": cpu})
    return 0


if __name__ == "__main__":
    sys.exit(main())
