"""Device check: rule ``benchmark_gpu`` on the models of a finished run, as one short command.

``benchmarks/device_check.sh`` runs ``python -m thetaflow.benchmarking.device_check``. It
first asks whether a GPU is present (nvidia-smi, then what TensorFlow and xgboost see):

* no GPU anywhere: it says so plainly, runs nothing, writes nothing, and exits 0;
* a GPU nvidia-smi sees but TensorFlow cannot use (a TensorFlow without CUDA libraries): it
  says so and exits 3, writing nothing;
* a GPU TensorFlow can use: it runs :func:`thetaflow.benchmarking.gpu.run_gpu_benchmark` (the
  entry point of rule ``benchmark_gpu``, one code path) on the inputs that rule reads in a
  finished run (``<results>/ml/training.parquet`` and ``<results>/models/<m>/fold<k>`` of
  every ``benchmarks.models`` entry), writes its JSON, CSV and figure next to the Markdown
  table (``<out without .md>/``; the workflow's own outputs are left alone), writes the table
  and prints it. Nothing of the analysis chain is rerun.

``--cpu-only`` hides every GPU (``CUDA_VISIBLE_DEVICES=""``, set before TensorFlow starts)
and runs the same code path on the CPU: a check of the plumbing, whose table opens with a
"CPU only" line and goes to ``device_check_cpu.md`` by default. ``--pack DIR`` copies what
the benchmark reads into a small results directory for a machine that gets only a few MiB of
files: the model directories of the benchmarked fold (without ``train_scores.parquet``)
and, of the training table, only the columns and the rows the benchmark uses, ordered so
that the benchmark draws the same events in the same order from it as from the full table.

The config is ``--base-config`` (the default ``config/config.yaml``) with each ``--configfile``
merged over it, as Snakemake merges ``--configfile``; it is validated against the packaged
schema (defaults filled) and by the benchmarks' own checks.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# only the standard library and thetaflow.core's stdlib-only modules at import: the probe must
# answer "no GPU present" even with a Python that lacks the analysis' packages
from thetaflow.benchmarking.inputs import benchmark_model_dir
from thetaflow.core import paths
from thetaflow.core.errors import ConfigError, ThetaflowError
from thetaflow.core.io import atomic_path, read_json, read_table, write_json, write_table

log = logging.getLogger(__name__)
_STARTED = time.perf_counter()  # the wall time reported includes the imports

EXIT_OK = 0
EXIT_ERROR = 1  # a diagnosed problem: a bad config, an unreadable model or table
EXIT_INPUTS = 2  # a benchmark input is missing (no finished run at --results)
EXIT_GPU_UNUSABLE = 3  # nvidia-smi sees a GPU, TensorFlow cannot use it
GOAL_SECONDS = 300.0  # the device check must fit in 5 minutes
PACK_MANIFEST = "device_check_pack.json"
CPU_ONLY_TITLE = (
    "**CPU only** (`--cpu-only`: every GPU hidden; a check of the plumbing, not a GPU benchmark)"
)
NO_GPU_MESSAGE = "no GPU present: nothing was benchmarked and no table was written"


# --------------------------------------------------------------------------- inputs


def load_config(base: Path, overlays: Sequence[Path] = ()) -> dict[str, Any]:
    """``base`` with each of ``overlays`` merged over it (Snakemake's ``--configfile``),
    validated against the packaged schema (defaults filled) and by the benchmarks' checks."""
    from thetaflow.benchmarking import checks  # deferred: numpy, jsonschema, PyYAML
    from thetaflow.core.config import deep_merge, read_yaml, validate

    config: dict[str, Any] = {}
    for path in (base, *overlays):
        config = deep_merge(config, read_yaml(path) or {})
    source = " + ".join(str(p) for p in (base, *overlays))
    validate(config, "config.schema.yaml", source)
    if "benchmarks" not in config or "ml" not in config:
        raise ConfigError(f"{source}: no 'benchmarks' or 'ml' section: nothing to benchmark")
    checks.check(config, {})
    return config


def _under(results: Path, template: str) -> Path:
    """A ``results/...`` path of :mod:`thetaflow.core.paths`, under another results folder."""
    return results / Path(template).relative_to(paths.RESULTS)


def benchmark_inputs(config: Mapping, results: Path) -> tuple[Path, dict[str, str | None]]:
    """The training table and the benchmarked fold's directory of each ``benchmarks.models``
    entry (None: an autoencoder this config does not train), as rule ``benchmark_gpu`` gets
    them (both ask :func:`thetaflow.benchmarking.inputs.benchmark_model_dir`)."""
    dirs: dict[str, str | None] = {}
    for name in config["benchmarks"]["models"]:
        directory = benchmark_model_dir(config, name)
        dirs[name] = None if directory is None else str(_under(results, directory))
    return _under(results, paths.TRAINING_TABLE), dirs


def missing_inputs(table: Path, dirs: Mapping[str, str | None]) -> list[str]:
    """The inputs of :func:`benchmark_inputs` that are not there."""
    missing = [] if table.is_file() else [str(table)]
    return missing + [d for d in dirs.values() if d is not None and not Path(d).is_dir()]


def table_columns(config: Mapping) -> list[str]:
    """The training-table columns the benchmark reads: every benchmarked model's inputs
    (the classifiers' and, if trained, the autoencoder's), ``label`` and ``fold``."""
    from thetaflow.ml.folds import ml_inputs  # deferred: only --pack needs it
    from thetaflow.unsupervised.autoencoder import anomaly_inputs

    columns = list(ml_inputs(config))
    if "anomaly" in config and "autoencoder" in config["benchmarks"]["models"]:
        columns += [c for c in anomaly_inputs(config) if c not in columns]
    return [*columns, "label", "fold"]


def benchmark_rows(config: Mapping) -> int:
    """How many training-table rows the benchmark draws (twice the largest batch)."""
    return 2 * max(int(b) for b in config["benchmarks"]["gpu"]["batch_sizes"])


def pack_inputs(config: Mapping, results: Path, dest: Path) -> dict[str, Any]:
    """Copy what the benchmark reads from ``results`` into the results folder ``dest``.

    The model directories of the benchmarked fold are copied whole but for
    ``train_scores.parquet`` (the evaluation's, not read here). Of the training table only
    :func:`table_columns` and the rows the benchmark samples are kept, stored so that the
    benchmark's own draw (``DataFrame.sample(n, random_state=benchmarks.seed)``) gives the
    same events in the same order as from the full table. Returns the manifest it writes to
    ``dest/device_check_pack.json``. ``dest`` must be new, empty or an earlier pack: a
    results folder of a run is never written into.
    """
    import numpy as np  # deferred: only --pack needs them
    import pandas as pd

    from thetaflow.ml.record import TRAIN_SCORES

    if dest.resolve() == results.resolve():
        raise ThetaflowError(f"--pack {dest}: that is the --results folder itself")
    if dest.is_dir() and any(dest.iterdir()) and not (dest / PACK_MANIFEST).is_file():
        raise ThetaflowError(
            f"--pack {dest}: a folder with other files in it (no {PACK_MANIFEST}); "
            "give a new or empty folder"
        )
    table_path, dirs = benchmark_inputs(config, results)
    missing = missing_inputs(table_path, dirs)
    if missing:
        raise FileNotFoundError("benchmark inputs not found: " + ", ".join(missing))
    seed = int(config["benchmarks"]["seed"])
    columns = table_columns(config)
    table = read_table(table_path, columns=columns)
    n = min(len(table), benchmark_rows(config))
    drawn = table.sample(n=n, random_state=seed)  # the benchmark's own draw
    # the benchmark will draw a permutation p of the n stored rows: store row i at p[i]
    permutation = pd.DataFrame(index=pd.RangeIndex(n)).sample(n=n, random_state=seed).index
    stored = drawn.iloc[np.argsort(permutation.to_numpy())].reset_index(drop=True)
    redrawn = stored.sample(n=n, random_state=seed)
    if not redrawn.reset_index(drop=True).equals(drawn.reset_index(drop=True)):
        raise RuntimeError("the packed table does not give back the benchmark's draw")
    out_table, out_dirs = benchmark_inputs(config, dest)
    write_table(out_table, stored)
    for name, directory in dirs.items():
        target = out_dirs[name]
        if directory is None or target is None:
            continue
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(directory, target, ignore=shutil.ignore_patterns(TRAIN_SCORES))
    provenance = _under(results, paths.PROVENANCE)
    if provenance.is_file():
        shutil.copy2(provenance, _under(dest, paths.PROVENANCE))
    files = [p for p in dest.rglob("*") if p.is_file()]
    manifest = {
        "source": str(results.resolve()),
        "table": {
            "source_rows": len(table),
            "rows": n,
            "columns": columns,
            "bytes": out_table.stat().st_size,
        },
        "models": {k: v for k, v in out_dirs.items() if v is not None},
        "bytes": sum(p.stat().st_size for p in files),
        "note": "only what rule benchmark_gpu reads; the benchmark draws the same events in "
        "the same order as from the full training table",
    }
    write_json(dest / PACK_MANIFEST, manifest)
    return manifest


# --------------------------------------------------------------------------- probing


@dataclass(frozen=True)
class Probe:
    """What this machine says about its GPUs.

    ``smi`` and ``tensorflow`` list the GPUs nvidia-smi and TensorFlow see; each ``*_note``
    says which software answered (or why it could not).
    """

    smi: tuple[str, ...]
    smi_note: str
    tensorflow: tuple[str, ...]
    tensorflow_note: str
    xgboost_note: str

    @property
    def gpu_present(self) -> bool:
        """Whether any GPU is there at all (nvidia-smi or TensorFlow sees one)."""
        return bool(self.smi or self.tensorflow)

    @property
    def gpu_usable(self) -> bool:
        """Whether the benchmark can use a GPU (TensorFlow sees one)."""
        return bool(self.tensorflow)

    def lines(self) -> list[str]:
        """One line per probe, for the log and the report."""
        smi = "; ".join(self.smi) if self.smi else "no GPU"
        tf = ", ".join(self.tensorflow) if self.tensorflow else "no GPU"
        return [
            f"nvidia-smi: {smi} ({self.smi_note})",
            f"TensorFlow: {tf} ({self.tensorflow_note})",
            f"xgboost: {self.xgboost_note}",
        ]


def probe_nvidia_smi(timeout_s: float = 30.0) -> tuple[tuple[str, ...], str]:
    """GPUs nvidia-smi lists (``index: name, memory, driver``), and where the answer came from."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return (), "nvidia-smi not found"
    query = "--query-gpu=index,name,memory.total,driver_version"
    try:
        done = subprocess.run(
            [smi, query, "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return (), f"{smi} failed: {type(err).__name__}: {err}"
    if done.returncode != 0:
        why = (done.stdout + done.stderr).strip().splitlines() or [""]
        return (), f"{smi} exited {done.returncode}: {why[0]}"
    gpus = []
    for line in done.stdout.strip().splitlines():
        index, _, rest = line.partition(",")
        gpus.append(f"{index.strip()}: {rest.strip()}")
    return tuple(gpus), smi


def probe_frameworks(threads: int) -> tuple[tuple[str, ...], str, str]:
    """GPUs TensorFlow sees (through the benchmark's own ``visible_gpus``), a note on the
    TensorFlow build, and a note on the xgboost build. TensorFlow is configured with
    ``threads`` first, as the benchmark does, because its thread pools are fixed at start."""
    try:
        from thetaflow.ml.models.nn import configure_tensorflow

        configure_tensorflow(threads)
        import tensorflow as tf  # deferred: heavy; configure_tensorflow must run before it

        from thetaflow.benchmarking.gpu import visible_gpus
    except ImportError as err:
        return (), f"cannot import TensorFlow or the benchmark: {type(err).__name__}: {err}", "-"
    gpus = tuple(g["tf_name"] + (f" = {g['name']}" if "name" in g else "") for g in visible_gpus())
    cuda = "yes" if tf.test.is_built_with_cuda() else "no"
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    tf_note = f"TensorFlow {tf.__version__}, built with CUDA: {cuda}" + (
        f"; CUDA_VISIBLE_DEVICES={hidden!r}" if hidden is not None else ""
    )
    try:
        import xgboost as xgb  # deferred: heavy

        from thetaflow.benchmarking.gpu import xgboost_cuda

        xgb_note = (
            f"xgboost {xgb.__version__}, built with CUDA: {'yes' if xgboost_cuda() else 'no'}"
        )
    except ImportError as err:
        xgb_note = f"cannot import xgboost: {err}"
    return gpus, tf_note, xgb_note


def probe(threads: int) -> Probe:
    """nvidia-smi, then TensorFlow and xgboost: what this machine says about its GPUs."""
    smi, smi_note = probe_nvidia_smi()
    tensorflow, tensorflow_note, xgboost_note = probe_frameworks(threads)
    return Probe(smi, smi_note, tensorflow, tensorflow_note, xgboost_note)


# --------------------------------------------------------------------------- the table


def _ms(seconds: float) -> str:
    """A median time in ms: 3 significant figures, whole ms from 1 000 ms on."""
    ms = 1e3 * seconds
    return _count(round(ms)) if ms >= 1000 else f"{ms:.3g}"


def _rate(events_per_s: float) -> str:
    """A throughput as docs/benchmarks.md writes them: 1.96 M, 120 k (events/s)."""
    if events_per_s >= 1e6:
        return f"{events_per_s / 1e6:.3g} M"
    return f"{events_per_s / 1e3:.3g} k"


def _count(n: int) -> str:
    """An event count with a space between thousands (16 384)."""
    return f"{n:,}".replace(",", " ")


def _device_label(device: str, gpus: Sequence[Mapping[str, Any]], threads: int) -> str:
    """``cpu`` → ``CPU (2 threads)``; ``gpu0`` → ``GPU 0 (its nvidia-smi name)``."""
    if device == "cpu":
        return f"CPU ({threads} threads)"
    names = {f"gpu{g['index']}": g.get("name") for g in gpus}
    name = names.get(device)
    return f"GPU {device.removeprefix('gpu')}" + (f" ({name})" if name else "")


def markdown_table(result: Mapping[str, Any], cpu_only: bool = False) -> str:
    """The device check's Markdown from a ``benchmark.json`` of rule ``benchmark_gpu``: a
    line naming the machine and software, the inference table (median latency per batch size,
    throughput and GPU/CPU speed-up at the largest batch), the training table and the notes.

    Refuses (ValueError) a result without a GPU unless ``cpu_only``: a table that looks like a
    GPU benchmark is never written from CPU numbers alone.
    """
    if not result["gpu_present"] and not cpu_only:
        raise ValueError(f"{NO_GPU_MESSAGE} (benchmark.json says gpu_present: false)")
    threads = int(result["cpu_threads"])
    gpus = result["gpus"]
    inference = result["inference"]
    batches = sorted({int(r["batch"]) for r in inference})
    largest = batches[-1] if batches else 0
    versions = result["versions"]
    software = ", ".join(f"{k} {versions[k]}" for k in sorted(versions) if versions[k])
    machine = "; ".join(
        f"GPU {g['index']}: {g.get('name', g['tf_name'])}"
        + (f", {g['memory']}, driver {g['driver']}" if "memory" in g else "")
        for g in gpus
    )
    host = result["host"]
    lines = []
    if cpu_only:
        lines += [CPU_ONLY_TITLE, ""]
    gpu_text = machine or ("GPUs hidden" if cpu_only else "no GPU")
    method = result["method"]
    lines.append(
        f"{gpu_text}; CPU {host.get('cpu', '?')}, {threads} threads of "
        f"{host.get('logical_cores', '?')}; {software}; xgboost CUDA build: "
        f"{'yes' if result['xgboost_cuda'] else 'no'}. Median of ≥ {method['min_calls']} calls "
        f"and ≥ {method['min_seconds']:g} s per point after {method['warmup_calls']} warm-up "
        "calls; host arrays in and out."
    )
    lines.append("")
    speedup = {(s["model"], s["device"], s["batch"]): s["speedup"] for s in result["speedup"]}
    header = [
        "model",
        "device",
        *(f"p50 ms, batch {_count(b)}" for b in batches),
        f"events/s at {_count(largest)}",
        "GPU/CPU speed-up, batch " + " / ".join(_count(b) for b in batches),
    ]
    lines += ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    order: dict[tuple[str, str], dict[int, Mapping[str, Any]]] = {}
    for row in inference:
        order.setdefault((row["model"], row["device"]), {})[int(row["batch"])] = row
    for (model, device), by_batch in order.items():
        ratio = " / ".join(
            f"×{speedup[(model, device, b)]:.3g}" if (model, device, b) in speedup else "–"
            for b in batches
        )
        cells = [
            model,
            _device_label(device, gpus, threads),
            *(_ms(by_batch[b]["p50_s"]) if b in by_batch else "–" for b in batches),
            _rate(by_batch[largest]["events_per_s"]) if largest in by_batch else "–",
            "–" if device == "cpu" else ratio,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    training = result["training"]
    if training:
        devices = sorted({r["device"] for r in training}, key=lambda d: (d != "cpu", d))
        times = {(r["model"], r["device"]): r for r in training}
        header = [
            "model",
            "what is timed",
            *(f"{_device_label(d, gpus, threads)}, median ms" for d in devices),
        ]
        lines += [
            "",
            "| " + " | ".join(header) + " |",
            "| " + " | ".join("---" for _ in header) + " |",
        ]
        for model in dict.fromkeys(r["model"] for r in training):
            what = next(r["what"] for r in training if r["model"] == model)
            cpu = times.get((model, "cpu"))
            cells = [model, what]
            for d in devices:
                row = times.get((model, d))
                cell = "–" if row is None else _ms(row["p50_s"])
                if row is not None and cpu is not None and d != "cpu":
                    cell += f" (×{cpu['p50_s'] / row['p50_s']:.3g})"
                cells.append(cell)
            lines.append("| " + " | ".join(cells) + " |")
    if result["notes"]:
        lines += ["", *(f"Note: {note}." for note in result["notes"])]
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, text: str) -> None:
    """Write the table atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


# --------------------------------------------------------------------------- command line


def run_benchmark(
    config: Mapping[str, Any], results: Path, outdir: Path, threads: int
) -> dict[str, Any]:
    """Rule ``benchmark_gpu``'s library entry point on a finished run's inputs; its JSON, CSV
    and figure go to ``outdir``."""
    from thetaflow.benchmarking.gpu import run_gpu_benchmark  # deferred: heavy

    table, dirs = benchmark_inputs(config, results)
    outputs = {
        "json": str(outdir / "benchmark.json"),
        "table": str(outdir / "inference.csv"),
        "figure": str(outdir / "inference.png"),
    }
    return run_gpu_benchmark(config, str(table), dirs, outputs, threads=threads)


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m thetaflow.benchmarking.device_check``."""
    p = argparse.ArgumentParser(
        prog="device_check",
        description="GPU benchmark (rule benchmark_gpu) of a finished run's models; without a "
        "GPU it says so and exits 0.",
    )
    p.add_argument(
        "--results",
        type=Path,
        default=Path(paths.RESULTS),
        help="results folder of a finished run (default: %(default)s)",
    )
    p.add_argument(
        "--base-config",
        type=Path,
        default=Path("config/config.yaml"),
        help="the default config (default: %(default)s)",
    )
    p.add_argument(
        "--configfile",
        type=Path,
        action="append",
        default=[],
        help="config merged over the base one, as snakemake --configfile (repeatable)",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="Markdown table (default: <results>/benchmarks/gpu/device_check.md; with "
        "--cpu-only device_check_cpu.md); JSON, CSV and figure go to the same path without .md",
    )
    p.add_argument(
        "--threads", type=int, default=2, help="CPU threads, as rule benchmark_gpu (default: 2)"
    )
    p.add_argument(
        "--cpu-only",
        action="store_true",
        help="hide every GPU and run the same code on the CPU (a plumbing check, labelled CPU)",
    )
    p.add_argument(
        "--pack",
        type=Path,
        metavar="DIR",
        help="copy only what the benchmark reads from --results into the results folder DIR "
        "(a few MiB) and stop; no GPU needed",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Probe, then benchmark (or pack); returns the exit status. A diagnosed problem (a bad
    config, a missing input or package, an unreadable file) is one line on stderr and status 1."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        return _run(args)
    except (ThetaflowError, FileNotFoundError, ImportError) as err:
        print(f"device check: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_ERROR


def _run(args: argparse.Namespace) -> int:
    """What :func:`main` does, once the arguments are parsed."""
    if args.pack:
        manifest = pack_inputs(
            load_config(args.base_config, args.configfile), args.results, args.pack
        )
        print(json.dumps(manifest, indent=2))
        print(f"\npacked into {args.pack}: {manifest['bytes'] / 2**20:.2f} MiB")
        return EXIT_OK
    if args.cpu_only:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before TensorFlow starts (in the probe)
    found = probe(args.threads)
    print("\n".join(found.lines()))
    if args.cpu_only:
        print("--cpu-only: every GPU hidden; the benchmark runs on the CPU only")
    elif not found.gpu_present:
        print(f"\n{NO_GPU_MESSAGE}.")
        return EXIT_OK
    elif not found.gpu_usable:
        if found.tensorflow_note.startswith("cannot import"):
            fix = "install the project's packages: bash workflow/bootstrap.sh setup"
        else:  # TensorFlow runs, without its CUDA libraries (or a driver too old for them)
            fix = "TensorFlow needs its CUDA libraries: pip install 'tensorflow[and-cuda]~=2.21'"
        print(
            f"\nnvidia-smi sees a GPU that TensorFlow cannot use ({found.tensorflow_note}; "
            f"{fix}): nothing was benchmarked and no table was written."
        )
        return EXIT_GPU_UNUSABLE
    config = load_config(args.base_config, args.configfile)
    table, dirs = benchmark_inputs(config, args.results)
    missing = missing_inputs(table, dirs)
    if missing:
        print(
            "\nbenchmark inputs not found (a finished run of this config, or its --pack, at "
            f"--results {args.results}): " + ", ".join(missing)
        )
        return EXIT_INPUTS
    name = "device_check_cpu.md" if args.cpu_only else "device_check.md"
    out = args.out or _under(args.results, paths.GPU_BENCHMARK).parent / name
    result = run_benchmark(config, args.results, out.with_suffix(""), args.threads)
    if not result["gpu_present"] and not args.cpu_only:
        print(f"\nthe benchmark saw no GPU after all: {NO_GPU_MESSAGE}.")
        return EXIT_GPU_UNUSABLE
    text = markdown_table(read_json(out.with_suffix("") / "benchmark.json"), args.cpu_only)
    write_markdown(out, text)
    wall = time.perf_counter() - _STARTED
    print("\n" + text)
    print(f"table written to {out}; JSON, CSV and figure in {out.with_suffix('')}/")
    over = f" (over the {GOAL_SECONDS:.0f} s goal)" if wall > GOAL_SECONDS else ""
    print(f"device check: {wall:.0f} s of wall time{over}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
