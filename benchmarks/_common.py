"""Helpers shared by the foundation benchmarks (not a benchmark itself).

* configuration: the default analysis config, loaded as the Snakefile does;
* isolation: :func:`run_isolated` runs one stage in a fresh, spawned interpreter and reports
  its wall time, CPU time and its own peak RSS, so stages do not share imports, caches or
  memory high-water marks;
* simulation and ingestion of Z+jets files exactly as the workflow's rules do them;
* reporting: a plain-text table and the JSON file every benchmark writes.

Benchmarks print their figures and never assert on timings.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT / "src") not in sys.path:  # also without an editable install
    sys.path.insert(0, str(REPO_ROOT / "src"))

from thetaflow.analysis import load_analysis  # noqa: E402
from thetaflow.core import paths  # noqa: E402
from thetaflow.core.io import write_json  # noqa: E402
from thetaflow.core.samples import load_samples  # noqa: E402
from thetaflow.ingestion.ingest import ingest_from_config, variations  # noqa: E402
from thetaflow.simulation.production import SimulationSettings, model_settings, simulate_mc_chunk  # noqa: E402

DEFAULT_CONFIG = REPO_ROOT / "config" / "config.yaml"
JSON_DIR = REPO_ROOT / paths.FOUNDATION_BENCHMARK_DIR
BENCH_SAMPLE = "zjets"
KIB_PER_MIB = 1024.0

T = TypeVar("T")


# --------------------------------------------------------------------------- configuration


def load_config(overrides: Mapping | None = None) -> dict:
    """The default analysis config (config/config.yaml, validated), with ``overrides`` merged."""
    config, _ = load_analysis([DEFAULT_CONFIG], overrides)
    return config


def simulation_settings(config: Mapping) -> SimulationSettings:
    """SimulationSettings as the ``simulate`` rule builds them."""
    return SimulationSettings.from_config(
        {**config["simulation"], "seed": config["seeds"]["simulation"]}
    )


# --------------------------------------------------------------------------- isolation


@dataclass(frozen=True)
class Measured(Generic[T]):
    """What :func:`run_isolated` returns: the function's result and the child's costs.

    Memory figures are the child's own peak RSS (Linux ``VmHWM``): ``getrusage``'s
    ``ru_maxrss`` of a spawned child also counts its *parent's* RSS at the fork/exec, so it
    overstates a child started by a large parent; it is kept as ``ru_maxrss_mib``.
    """

    result: T
    wall_s: float
    cpu_s: float
    rss_before_mib: float  # child's peak RSS after imports, before the function ran
    peak_rss_mib: float  # child's peak RSS at the end (VmHWM)
    ru_maxrss_mib: float  # getrusage(RUSAGE_SELF).ru_maxrss at the end (see above)


def peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """``getrusage(who).ru_maxrss`` in MiB (Linux reports KiB).

    On Linux a process's ``ru_maxrss`` includes the RSS its parent had when it was
    forked/exec'd, and ``RUSAGE_CHILDREN`` is the largest of all reaped descendants: read
    it in a lean process whose only child is the one measured.
    """
    return resource.getrusage(who).ru_maxrss / KIB_PER_MIB


def own_peak_rss_mib() -> float:
    """Peak RSS of this process since its exec (Linux ``VmHWM``; ``ru_maxrss`` elsewhere)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / KIB_PER_MIB
    except OSError:
        pass
    return peak_rss_mib()


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measure(fn: Callable[..., T], args: tuple, kwargs: dict) -> Measured[T]:
    """Run in the child: time ``fn`` and read the child's own peak RSS around it."""
    before = own_peak_rss_mib()
    cpu0, t0 = _cpu_s(), time.perf_counter()
    result = fn(*args, **kwargs)
    wall, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
    return Measured(result, wall, cpu, before, own_peak_rss_mib(), peak_rss_mib())


def run_isolated(fn: Callable[..., T], *args: Any, **kwargs: Any) -> Measured[T]:
    """Run ``fn(*args, **kwargs)`` in a fresh spawned Python process and measure it.

    ``fn`` must be a module-level function (it is pickled by name); its arguments and result
    must be picklable and should be small. Module imports happen in the child before the
    timer starts; first-call costs inside ``fn`` (lazy imports, caches) are included.
    """
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_measure, fn, args, kwargs).result()


# --------------------------------------------------------------------------- simulation


@dataclass(frozen=True)
class ChunkFile:
    """One simulated chunk file and its bookkeeping (events written, filtered, generated)."""

    path: str
    written: int
    filtered: int
    generated: int


# Skim efficiency guess for the first chunk; later chunks use the measured one.
_FIRST_SKIM_EFFICIENCY_GUESS = 0.6


def simulate_files(
    config: Mapping,
    n_written: int,
    outdir: str,
    filtered_per_chunk: int,
    sample: str = BENCH_SAMPLE,
) -> list[dict]:
    """Simulate chunks of ``sample`` with :func:`simulate_mc_chunk` until ≥ ``n_written``
    events are in the files (events after the generator filter *and* the reco skim, i.e.
    what ingestion reads). Chunks hold ``filtered_per_chunk`` filtered events; the last one
    is sized from the measured skim efficiency so the total overshoots little.

    Returns one :class:`ChunkFile` (as a dict) per file, named ``<outdir>/<chunk>.root``.
    """
    settings = simulation_settings(config)
    model = model_settings(load_samples(config)[sample].spec["generate"])
    Path(outdir).mkdir(parents=True, exist_ok=True)
    files: list[ChunkFile] = []
    written = filtered = 0
    while written < n_written:
        efficiency = written / filtered if filtered else _FIRST_SKIM_EFFICIENCY_GUESS
        wanted = math.ceil(1.02 * (n_written - written) / efficiency) + 100
        size = min(filtered_per_chunk, wanted)
        chunk = len(files)
        path = str(Path(outdir) / f"{chunk}.root")
        # chunk_size(n, size, chunk) == size when n == (chunk + 1) * size: every chunk is full
        counts = simulate_mc_chunk(
            replace(settings, events_per_chunk=size), model, sample, chunk, (chunk + 1) * size, path
        )
        files.append(
            ChunkFile(
                path, int(counts["written"]), int(counts["filtered"]), int(counts["generated"])
            )
        )
        written += files[-1].written
        filtered += files[-1].filtered
    return [asdict(f) for f in files]


# --------------------------------------------------------------------------- ingestion


def ingest_files(
    config: Mapping, files: Sequence[str], outdir: str, sample: str = BENCH_SAMPLE
) -> dict:
    """Ingest ``files`` as ``sample`` exactly as the ``ingest_simulation`` rule does (every
    variation from one read) into ``<outdir>/events/<variation>.parquet`` and
    ``<outdir>/cutflow.json``; return a small summary of the cutflow."""
    out = Path(outdir)
    outputs = {
        v.name: str(out / "events" / f"{v.name}.parquet") for v in variations(config, is_data=False)
    }
    cutflow = ingest_from_config(config, sample, list(files), outputs, str(out / "cutflow.json"))
    return {
        "events_read": cutflow.events_read,
        "selected": cutflow.selected,
        "variations": list(outputs),
        "events_paths": outputs,
        "cutflow_path": str(out / "cutflow.json"),
    }


# --------------------------------------------------------------------------- reporting


@contextlib.contextmanager
def scratch_dir(prefix: str, parent: str | None, keep: bool) -> Iterator[Path]:
    """A temporary directory for benchmark files, removed afterwards unless ``keep``."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield workdir
    finally:
        if keep:
            print(f"scratch files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def add_json_argument(parser: argparse.ArgumentParser, name: str) -> None:
    """``--json PATH`` with the default ``results/benchmarks/foundation/<name>.json``."""
    parser.add_argument(
        "--json",
        type=Path,
        default=JSON_DIR / f"{name}.json",
        help="where to write the figures as JSON (default: %(default)s)",
    )


def positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1 (accepts 1_000_000 and 1e6)."""
    value = int(float(text.replace("_", "")))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {text}")
    return value


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print an aligned plain-text table (numbers right-aligned, text left-aligned)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    numeric = [
        any(isinstance(row[i], (int, float)) for row in rows)
        and all(row[i] is None or isinstance(row[i], (int, float)) for row in rows)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=False)
        ).rstrip()

    print(f"\n{title}")
    print(line(list(headers)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print(line(row))


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else ("yes" if value else "no")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return str(value)


def save_json(path: Path, data: Mapping) -> None:
    """Write the benchmark's figures as JSON (atomically) and say where."""
    write_json(path, data)
    print(f"\nfigures written to {path}")


def environment() -> dict:
    """Machine facts recorded with every benchmark (figures depend on them)."""
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_start": os.getloadavg()[0],
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
