"""The analysis at two commits, side by side: wall time, job CPU, per-rule CPU, the Snakemake
scheduler's own CPU, and the ratios head/base (the evidence of issue 20).

For ``--base`` (default: the commit before issue 20's work) and then ``--head`` (default
HEAD), one after the other on this machine:

1. a fresh clone of this repository (``git clone --no-local``) in a scratch directory, at the
   commit (committed code only: uncommitted changes of this checkout are not in it);
2. the commit's own setup, ``bash workflow/bootstrap.sh setup``. Its virtual environment is
   installed afresh, unless one is already stamped with the same pins hash, the hash
   bootstrap.sh writes to ``.venv/.thetaflow-installed`` (sha256 of ``pyproject.toml`` +
   ``constraints.txt``): this checkout's, or the other commit's. Then the clone's ``.venv`` is
   a symlink to it (this saves ~5 min), and the output says so; ``--fresh-venv`` turns that
   off. A shared venv's editable install points at another checkout, so the analysis runs with
   the clone's ``src`` first on PYTHONPATH (the workflow also puts it there itself), and the
   script checks that ``import thetaflow`` finds the clone's library before the run;
3. the README's command, from nothing (a fresh clone has no ``results/`` and no
   ``.snakemake/``): ``bash workflow/bootstrap.sh analysis --cores 2``, plus the
   ``--configfile`` and ``--targets`` given here. This is the run followed by the report.

What is measured, and how:

* **wall**: the whole analysis command (run and report), and the run's snakemake process on
  its own.
* **all CPU**: ``getrusage(RUSAGE_CHILDREN)`` of this script before and after the command, the
  user + system time of every process of it that was waited for (bash, both snakemake
  processes, every job and the jobs' own children).
* **the scheduler's own CPU**, measured directly. A ``sitecustomize`` module is put first on
  the command's PYTHONPATH. In a ``snakemake`` process that finds ``THETAFLOW_SCHEDULER_TIMES``
  in its environment, it removes that variable (so neither jobs nor a snakemake started by a
  job record themselves) and registers an ``atexit`` hook. The hook appends the process's
  ``os.times()`` to that file: its own user + system time (every thread: DAG, scheduling, job
  bookkeeping, the report) and, apart from it, that of its reaped children. Every other Python
  process does nothing with it. Local jobs are children of the scheduler, so their CPU is in
  the children's figure and not in the scheduler's own. The share of the run's CPU is
  own / (own + children); the share of a core is own / run wall.
* **job CPU**, two ways. Exactly: the user + system time of the scheduler's reaped children,
  which is every job with all its descendants. Per rule: the ``cpu_time`` column of the file
  Snakemake writes for each job under ``results/benchmarks/rules/`` (all rows summed, one per
  repeat), with rules named from the ``benchmark:`` lines of Snakemake's log in
  ``.snakemake/log/`` (a file the log does not name is grouped under its directory,
  ``dir/*``). Snakemake samples that column with psutil over the job's process tree, every
  0.5 s for 15 s and then every 30 s. It therefore misses the CPU after the last sample and
  children that came and went between samples: a job under 0.5 s reads about 0. The sum of the
  files over the exact figure is printed as their coverage.

Ratios are head/base. The second run finds the OS file cache warm; thetaflow keeps no cache
outside the clone. Run it on an otherwise idle machine (the load average at each start is
recorded). The default analysis takes ~45 min per commit on 2 cores. The script prints
figures, writes JSON and never asserts on timings. A smoke run on the toy config:

    .venv/bin/python benchmarks/compare_commits.py --base HEAD --head HEAD \\
        --configfile config/ci.yaml --targets results/features/zz/nominal.parquet
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

from _common import REPO_ROOT, add_json_argument, environment, print_table, save_json, scratch_dir

from thetaflow.core import paths

#: Issue 20's "today's main": the parent of 7ebef54, the issue's first commit (batched fits).
DEFAULT_BASE = "b84ba06cfe177002a7a5127cebe770992316a3fb"
VENV = ".venv"
#: bootstrap.sh's stamp in the venv: the pins hash of the last install.
STAMP = ".thetaflow-installed"
PIN_FILES = ("pyproject.toml", "constraints.txt")
SNAKEMAKE_LOG_DIR = ".snakemake/log"
TIMES_VARIABLE = "THETAFLOW_SCHEDULER_TIMES"
LOG_TAIL_CHARS = 4000

#: Module put first on the analysis command's PYTHONPATH. It runs in every Python process of
#: the command; only a snakemake process (console script or ``-m snakemake``) that inherits
#: TIMES_VARIABLE acts on it. It shadows an interpreter's own sitecustomize, if there is one
#: (the project's pyenv Python has none).
HOOK_SOURCE = f'''\
"""Written by thetaflow's benchmarks/compare_commits.py: a snakemake process started with
{TIMES_VARIABLE} set appends its os.times() to that file at exit."""

import os
import sys


def _record_scheduler_times():
    path = os.environ.get("{TIMES_VARIABLE}")
    if not path or not any(os.path.basename(a) == "snakemake" for a in sys.orig_argv[1:3]):
        return
    del os.environ["{TIMES_VARIABLE}"]  # jobs, and snakemakes they start, do not record
    import atexit
    import json
    import time

    start = time.perf_counter()

    def record():
        times = os.times()
        line = json.dumps({{
            "pid": os.getpid(),
            "argv": sys.argv[1:],
            "user_s": times.user,
            "system_s": times.system,
            "children_user_s": times.children_user,
            "children_system_s": times.children_system,
            "elapsed_s": time.perf_counter() - start,
        }})
        with open(path, "a") as out:
            out.write(line + "\\n")

    atexit.register(record)


_record_scheduler_times()
'''


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class JobCost:
    """One job's Snakemake benchmark file: its rule, wall time and sampled CPU time."""

    rule: str
    benchmark: str  # path relative to the checkout
    wall_s: float
    cpu_s: float | None  # None: Snakemake collected no sample ("NA")


@dataclass(frozen=True)
class RuleCost:
    """One rule's jobs summed."""

    jobs: int
    cpu_s: float
    wall_s: float
    jobs_without_cpu: int


@dataclass(frozen=True)
class ProcessTimes:
    """``os.times()`` of one snakemake process at its exit, as the hook wrote it."""

    argv: tuple[str, ...]
    user_s: float
    system_s: float
    children_user_s: float
    children_system_s: float
    elapsed_s: float

    @property
    def own_cpu_s(self) -> float:
        return self.user_s + self.system_s

    @property
    def children_cpu_s(self) -> float:
        return self.children_user_s + self.children_system_s

    @property
    def is_report(self) -> bool:
        return any(a == "--report" or a.startswith("--report=") for a in self.argv)


@dataclass(frozen=True)
class SchedulerCost:
    """The snakemake processes of one analysis command: the run's and the report's.

    A field is None when its process recorded nothing (it did not exit normally)."""

    own_cpu_s: float | None  # the run's scheduler, own user + system
    children_cpu_s: float | None  # the run's reaped children: every job with its descendants
    wall_s: float | None  # the run's snakemake process, start to exit
    report_own_cpu_s: float | None
    report_wall_s: float | None

    @property
    def share_of_run_cpu(self) -> float | None:
        if self.own_cpu_s is None or self.children_cpu_s is None:
            return None
        total = self.own_cpu_s + self.children_cpu_s
        return self.own_cpu_s / total if total > 0 else None

    @property
    def cores(self) -> float | None:
        """Mean cores the scheduler kept busy: own CPU over the run's wall time."""
        if self.own_cpu_s is None or not self.wall_s:
            return None
        return self.own_cpu_s / self.wall_s


@dataclass(frozen=True)
class CommitRun:
    """Everything measured for one commit."""

    label: str  # "base" or "head"
    rev: str  # as given
    commit: str
    subject: str
    venv: str  # how the clone got its venv
    setup_wall_s: float
    load_average_at_start: float
    wall_s: float  # the analysis command: run and report
    cpu_s: float  # every process of the analysis command
    scheduler: SchedulerCost
    jobs: int
    job_cpu_from_files_s: float
    rules: dict[str, RuleCost]


# --------------------------------------------------------------------------- pure parts


def _number(text: str | None) -> float | None:
    """A TSV cell as a number; None for "NA", NaN or nothing."""
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def parse_benchmark_tsv(text: str) -> tuple[float, float | None]:
    """Wall time [s] and CPU time [s] of one Snakemake benchmark file (``s`` and ``cpu_time``
    columns), summed over its rows (one per repeat). CPU is None if no row has a value."""
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
    if not rows:
        raise ValueError("benchmark file without a row")
    walls = [_number(row.get("s")) for row in rows]
    if any(w is None for w in walls):
        raise ValueError("benchmark file without a wall time")
    cpus = [c for c in (_number(row.get("cpu_time")) for row in rows) if c is not None]
    return sum(w for w in walls if w is not None), (sum(cpus) if cpus else None)


_RULE_LINE = re.compile(r"^\s*(?:local)?(?:rule|checkpoint) (?P<rule>\S+):\s*$")
_BENCHMARK_LINE = re.compile(r"^\s+benchmark: (?P<path>\S.*?)\s*$")


def benchmark_rules(log_text: str) -> dict[str, str]:
    """Benchmark file -> rule, from the job blocks of a Snakemake log (``rule NAME:`` followed
    by the job's indented items, one of them ``benchmark: PATH``)."""
    rules: dict[str, str] = {}
    rule = None
    for line in log_text.splitlines():
        if match := _RULE_LINE.match(line):
            rule = match["rule"]
        elif rule is not None and (match := _BENCHMARK_LINE.match(line)):
            rules[match["path"]] = rule
    return rules


def fallback_rule(benchmark: str, benchmark_dir: str = paths.RULE_BENCHMARK_DIR) -> str:
    """The group of a benchmark file no log names: its directory, ``fit/nn/*``."""
    parent = Path(benchmark).parent.as_posix()
    relative = parent.removeprefix(benchmark_dir).strip("/")
    return f"{relative}/*" if relative else "*"


def read_job_costs(checkout: Path, rules: Mapping[str, str]) -> list[JobCost]:
    """Every job's benchmark file under the checkout's ``results/benchmarks/rules/``; files a
    killed job left unreadable are skipped."""
    jobs = []
    for path in sorted((checkout / paths.RULE_BENCHMARK_DIR).rglob("*.tsv")):
        relative = path.relative_to(checkout).as_posix()
        try:
            wall, cpu = parse_benchmark_tsv(path.read_text())
        except (OSError, ValueError, csv.Error):
            continue
        jobs.append(JobCost(rules.get(relative) or fallback_rule(relative), relative, wall, cpu))
    return jobs


def rule_costs(jobs: Iterable[JobCost]) -> dict[str, RuleCost]:
    """Jobs summed per rule, the most CPU first (ties by name)."""
    by_rule: dict[str, list[JobCost]] = {}
    for job in jobs:
        by_rule.setdefault(job.rule, []).append(job)
    costs = {
        rule: RuleCost(
            jobs=len(rule_jobs),
            cpu_s=round(sum(j.cpu_s or 0.0 for j in rule_jobs), 3),
            wall_s=round(sum(j.wall_s for j in rule_jobs), 3),
            jobs_without_cpu=sum(j.cpu_s is None for j in rule_jobs),
        )
        for rule, rule_jobs in by_rule.items()
    }
    return dict(sorted(costs.items(), key=lambda item: (-item[1].cpu_s, item[0])))


def read_process_times(text: str) -> list[ProcessTimes]:
    """The hook's records, one JSON object a line."""
    records = []
    for line in text.splitlines():
        if line.strip():
            data = json.loads(line)
            records.append(
                ProcessTimes(
                    tuple(data["argv"]),
                    *(
                        float(data[k])
                        for k in (
                            "user_s",
                            "system_s",
                            "children_user_s",
                            "children_system_s",
                            "elapsed_s",
                        )
                    ),
                )
            )
    return records


def scheduler_cost(records: Sequence[ProcessTimes]) -> SchedulerCost:
    """The run's figures from its snakemake process(es), the report's from the ``--report``
    one(s); both summed if there were several."""
    run = [r for r in records if not r.is_report]
    report = [r for r in records if r.is_report]

    def total(values: list[float]) -> float | None:
        return round(sum(values), 3) if values else None

    return SchedulerCost(
        own_cpu_s=total([r.own_cpu_s for r in run]),
        children_cpu_s=total([r.children_cpu_s for r in run]),
        wall_s=total([r.elapsed_s for r in run]),
        report_own_cpu_s=total([r.own_cpu_s for r in report]),
        report_wall_s=total([r.elapsed_s for r in report]),
    )


def ratio(base: float | None, head: float | None) -> float | None:
    """head / base; None where either is missing or base is 0."""
    if base is None or head is None or base == 0:
        return None
    return head / base


def _share(part: float | None, whole: float | None) -> float | None:
    return None if part is None or not whole else part / whole


def headline(run: CommitRun) -> dict[str, float | None]:
    """The figures compared between commits, by printed name."""
    s = run.scheduler
    return {
        "wall s, analysis command (run + report)": run.wall_s,
        "wall s, run (snakemake process)": s.wall_s,
        "CPU s, every process of the command": run.cpu_s,
        "job CPU s, exact (scheduler's reaped children)": s.children_cpu_s,
        "job CPU s, sum of benchmark files": run.job_cpu_from_files_s,
        "benchmark files' share of exact job CPU": _share(
            run.job_cpu_from_files_s, s.children_cpu_s
        ),
        "scheduler own CPU s (run)": s.own_cpu_s,
        "scheduler share of the run's CPU": s.share_of_run_cpu,
        "scheduler cores (own CPU / run wall)": s.cores,
        "report step wall s": s.report_wall_s,
        "report step own CPU s": s.report_own_cpu_s,
        "jobs (benchmark files)": run.jobs,
        "setup wall s (not in the above)": run.setup_wall_s,
    }


def headline_rows(base: CommitRun, head: CommitRun) -> list[list[Any]]:
    """[figure, base, head, head/base] rows."""
    b, h = headline(base), headline(head)
    return [[name, b[name], h[name], ratio(b[name], h[name])] for name in b]


def rule_rows(base: Mapping[str, RuleCost], head: Mapping[str, RuleCost]) -> list[list[Any]]:
    """[rule, base jobs, base CPU, head jobs, head CPU, head/base] for every rule of either,
    the most CPU (of either commit) first; a rule one commit lacks has None there."""
    names = sorted(
        set(base) | set(head),
        key=lambda r: (-max(c.cpu_s for c in (base.get(r), head.get(r)) if c), r),
    )
    rows = []
    for name in names:
        b, h = base.get(name), head.get(name)
        rows.append(
            [
                name,
                b.jobs if b else None,
                b.cpu_s if b else None,
                h.jobs if h else None,
                h.cpu_s if h else None,
                ratio(b.cpu_s if b else None, h.cpu_s if h else None),
            ]
        )
    return rows


# --------------------------------------------------------------------------- setting up


def pins_hash(checkout: Path) -> str:
    """The hash bootstrap.sh stamps its venv with: ``cat pyproject.toml constraints.txt |
    sha256sum``."""
    digest = hashlib.sha256()
    for name in PIN_FILES:
        digest.update((checkout / name).read_bytes())
    return digest.hexdigest()


def venv_stamp(venv: Path) -> str | None:
    """The pins hash a venv was installed with (None: no complete install)."""
    try:
        return (venv / STAMP).read_text().strip() or None
    except OSError:
        return None


def shareable_venv(want: str, candidates: Iterable[Path]) -> Path | None:
    """The first candidate venv installed with pins hash ``want`` (resolved), if any."""
    for venv in candidates:
        if venv_stamp(venv) == want and (venv / "bin" / "python").exists():
            return venv.resolve()
    return None


def configfile_argument(path: str, checkout: Path, cwd: Path) -> str:
    """A ``--configfile`` as given for the clone: a relative path names the clone's own file
    (each commit's ``config/ci.yaml``) if it has one, else the caller's file."""
    if Path(path).is_absolute() or (checkout / path).exists():
        return path
    return str((cwd / path).resolve())


def write_hook(directory: Path) -> Path:
    """Write the scheduler-times ``sitecustomize`` into ``directory``; return the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(HOOK_SOURCE)
    return directory


def _git(*args: str, cwd: Path = REPO_ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def resolve_commit(rev: str) -> tuple[str, str]:
    """Full hash and subject of ``rev`` in this repository."""
    try:
        commit = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except subprocess.CalledProcessError:
        sys.exit(f"compare_commits: {rev!r} is no commit of {REPO_ROOT}")
    return commit, _git("log", "-1", "--format=%s", commit)


def clone(commit: str, dest: Path) -> None:
    """A fresh clone of this repository at ``commit``."""
    _git("clone", "--no-local", "--quiet", str(REPO_ROOT), str(dest))
    _git("checkout", "--quiet", "--detach", commit, cwd=dest)


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_logged(cmd: Sequence[str], cwd: Path, env: Mapping[str, str], log: Path) -> int:
    with open(log, "w") as out:
        return subprocess.run(
            cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
        ).returncode


def _fail(what: str, log: Path) -> NoReturn:
    tail = log.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    sys.exit(f"compare_commits: {what} failed (log {log}, removed unless --keep):\n{tail}")


def set_up(checkout: Path, candidates: Sequence[Path], share: bool, log: Path) -> tuple[str, float]:
    """``bootstrap.sh setup`` in the clone, on a shared venv where the pins hash allows it.
    Returns how the venv came about and the setup's wall time."""
    want = pins_hash(checkout)
    shared = shareable_venv(want, candidates) if share else None
    if shared is not None:
        (checkout / VENV).symlink_to(shared, target_is_directory=True)
        how = f"shared: symlink to {shared} (same pins hash {want[:12]})"
    else:
        how = f"own: installed by bootstrap.sh (pins hash {want[:12]})"
    start = time.perf_counter()
    if _run_logged(["bash", "workflow/bootstrap.sh", "setup"], checkout, os.environ, log):
        _fail(f"setup of {checkout}", log)
    return how, time.perf_counter() - start


def analysis_environment(checkout: Path, hook_dir: Path, times: Path) -> dict[str, str]:
    """The caller's environment with the hook and the clone's library first on PYTHONPATH."""
    entries = [e for e in os.environ.get("PYTHONPATH", "").split(os.pathsep) if e]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(hook_dir), str(checkout / "src"), *entries]),
        TIMES_VARIABLE: str(times),
    }


def check_library(checkout: Path, env: Mapping[str, str]) -> None:
    """Stop unless the clone's venv Python imports the clone's thetaflow."""
    found = subprocess.run(
        [
            str(checkout / VENV / "bin" / "python"),
            "-c",
            "import thetaflow; print(thetaflow.__file__)",
        ],
        cwd=checkout,
        env={k: v for k, v in env.items() if k != TIMES_VARIABLE},
        capture_output=True,
        text=True,
    )
    location = Path(found.stdout.strip()).resolve()
    if found.returncode or not location.is_relative_to(checkout.resolve()):
        sys.exit(
            f"compare_commits: in {checkout}, thetaflow is imported from {location or '?'},"
            f" not the clone\n{found.stderr[-LOG_TAIL_CHARS:]}"
        )


# --------------------------------------------------------------------------- one commit


def measure_commit(
    label: str, rev: str, workdir: Path, candidates: list[Path], args: argparse.Namespace
) -> CommitRun:
    """Clone, set up and run the analysis of one commit; read what it measured."""
    commit, subject = resolve_commit(rev)
    checkout = workdir / label
    print(f"\n{label}: {commit[:12]} {subject}", flush=True)
    clone(commit, checkout)
    venv, setup_s = set_up(
        checkout, candidates, not args.fresh_venv, workdir / f"{label}-setup.log"
    )
    if not (checkout / VENV).is_symlink():
        candidates.append(checkout / VENV)  # the other commit may share it
    print(f"  venv {venv}; setup {setup_s:.0f} s", flush=True)

    times = workdir / f"{label}-snakemake-times.jsonl"
    env = analysis_environment(checkout, workdir / "hook", times)
    check_library(checkout, env)
    cmd = ["bash", "workflow/bootstrap.sh", "analysis", *args.targets, "--cores", str(args.cores)]
    if args.configfile:
        cwd = Path.cwd()
        cmd += ["--configfile", *(configfile_argument(c, checkout, cwd) for c in args.configfile)]
    print(f"  {' '.join(cmd)}", flush=True)
    load = os.getloadavg()[0]
    log = workdir / f"{label}-analysis.log"
    cpu0, start = _children_cpu_s(), time.perf_counter()
    returncode = _run_logged(cmd, checkout, env, log)
    wall, cpu = time.perf_counter() - start, _children_cpu_s() - cpu0
    if returncode:
        _fail(f"the analysis of {label} ({commit[:12]})", log)

    rules: dict[str, str] = {}
    for snakemake_log in sorted((checkout / SNAKEMAKE_LOG_DIR).glob("*.log")):
        rules.update(benchmark_rules(snakemake_log.read_text(errors="replace")))
    jobs = read_job_costs(checkout, rules)
    scheduler = scheduler_cost(read_process_times(times.read_text() if times.exists() else ""))
    run = CommitRun(
        label=label,
        rev=rev,
        commit=commit,
        subject=subject,
        venv=venv,
        setup_wall_s=round(setup_s, 1),
        load_average_at_start=load,
        wall_s=round(wall, 1),
        cpu_s=round(cpu, 1),
        scheduler=scheduler,
        jobs=len(jobs),
        job_cpu_from_files_s=round(sum(j.cpu_s or 0.0 for j in jobs), 1),
        rules=rule_costs(jobs),
    )
    own = "-" if scheduler.own_cpu_s is None else f"{scheduler.own_cpu_s:.0f} s"
    print(
        f"  {run.wall_s:.0f} s wall, {run.cpu_s:.0f} s CPU, {run.jobs} jobs,"
        f" scheduler {own} own CPU",
        flush=True,
    )
    return run


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--base", default=DEFAULT_BASE, help="the reference commit (default: %(default).12s)"
    )
    parser.add_argument("--head", default="HEAD", help="the new commit (default: %(default)s)")
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores (default: 2)")
    parser.add_argument(
        "--configfile",
        nargs="+",
        default=[],
        help="passed to the analysis; a relative path names the clone's own file if it has one",
    )
    parser.add_argument(
        "--targets", nargs="+", default=[], help="passed to the analysis (default: everything)"
    )
    parser.add_argument(
        "--fresh-venv",
        action="store_true",
        help="install each clone's venv, even where one with the same pins hash exists",
    )
    parser.add_argument("--keep", action="store_true", help="keep the clones and logs")
    parser.add_argument(
        "--scratch", default=None, help="where the clones go (default: the temporary directory)"
    )
    add_json_argument(parser, "compare_commits")
    args = parser.parse_args()

    env = environment()
    print(f"load average at start: {env['load_average_1min_at_start']:.2f}")
    candidates = [REPO_ROOT / VENV]
    with scratch_dir("thetaflow-compare-", args.scratch, args.keep) as workdir:
        write_hook(workdir / "hook")
        base = measure_commit("base", args.base, workdir, candidates, args)
        head = measure_commit("head", args.head, workdir, candidates, args)

    what = " ".join([*args.targets, *(f"--configfile {c}" for c in args.configfile[:1])])
    print_table(
        f"analysis from nothing, --cores {args.cores}{' (' + what + ')' if what else ''}:"
        f" base {base.commit[:12]} vs head {head.commit[:12]}",
        ["figure", "base", "head", "head/base"],
        headline_rows(base, head),
    )
    print_table(
        "job CPU per rule, s (benchmark files; sampled, see the coverage above)",
        ["rule", "base jobs", "base CPU s", "head jobs", "head CPU s", "head/base"],
        rule_rows(base.rules, head.rules),
    )
    for run in (base, head):
        print(f"\n{run.label} venv: {run.venv}")
    save_json(
        args.json,
        {
            "cores": args.cores,
            "configfiles": args.configfile,
            "targets": args.targets,
            "runs": {run.label: asdict(run) for run in (base, head)},
            "headline": {run.label: headline(run) for run in (base, head)},
            "ratios": {row[0]: row[3] for row in headline_rows(base, head)},
            "rule_ratios": {row[0]: row[5] for row in rule_rows(base.rules, head.rules)},
            "environment": env,
        },
    )


if __name__ == "__main__":
    main()
