"""Provenance record of a workflow run: what ran, where, with which versions, how fast.

``collect`` builds the record that the ``provenance`` rule writes to
``core.paths.PROVENANCE``: git commit (and whether the tree had local changes), a hash of
the merged configuration, the versions of the installed packages the project depends on,
the host, the run's start and end, and per-rule wall time and peak memory summed up from the
Snakemake benchmark files (``core.paths.rule_benchmark``; one per job, Snakemake's
``benchmark:`` directive). Start and end come from the benchmark files too (a job's file is
written when it ends; its ``s`` column is its wall time), so a resumed run keeps the times of
the jobs the first attempt finished.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import socket
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from thetaflow.core.io import write_json

_WILDCARD = re.compile(r"\{\s*(\w+)\s*(?:,([^{}]*(?:\{[^{}]*\}[^{}]*)*))?\}")


def config_hash(config: dict[str, Any]) -> str:
    """sha256 of the configuration as canonical JSON (sorted keys): equal configs, equal hash."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def git_state(repo: Path) -> dict[str, Any]:
    """Commit of the repository and whether tracked files differ from it (``None`` if no git)."""

    def git(*args: str) -> str | None:
        try:
            run = subprocess.run(
                ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return run.stdout.strip() if run.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def package_versions(names: list[str]) -> dict[str, str | None]:
    """Installed version of each distribution (``None`` when it is not installed)."""
    versions: dict[str, str | None] = {}
    for name in sorted(set(names), key=str.lower):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def project_dependencies(pyproject: Path) -> list[str]:
    """Distribution names of pyproject's ``[project].dependencies`` (and thetaflow itself)."""
    data = tomllib.loads(Path(pyproject).read_text())
    names = [
        re.match(r"[A-Za-z0-9._-]+", line.strip()).group(0)  # type: ignore[union-attr]
        for line in data["project"].get("dependencies", [])
    ]
    return [data["project"]["name"], *names]


def pattern_regex(pattern: str, constraints: dict[str, str] | None = None) -> re.Pattern[str]:
    """A regex matching the paths a Snakemake file pattern such as ``a/{sample}.tsv`` names.

    Inline constraints (``{sample,[a-z]+}``) and ``constraints`` are honoured; other wildcards
    match one path component.
    """
    constraints = constraints or {}
    out, pos = [], 0
    for match in _WILDCARD.finditer(pattern):
        out.append(re.escape(pattern[pos : match.start()]))
        name, inline = match.group(1), match.group(2)
        regex = inline or constraints.get(name) or "[^/]+"
        out.append(f"(?:{regex})")
        pos = match.end()
    out.append(re.escape(pattern[pos:]))
    return re.compile("".join(out))


def read_benchmark(path: Path) -> dict[str, float]:
    """Wall time [s], peak RSS [MB], CPU time [s] and end time (file mtime) of one job."""
    frame = pd.read_csv(path, sep="\t")
    if frame.empty:
        raise ValueError(f"benchmark file {path} has no row")
    row = frame.iloc[-1]

    def number(column: str) -> float:
        value = pd.to_numeric(row.get(column), errors="coerce")
        return 0.0 if pd.isna(value) else float(value)

    return {
        "wall_s": number("s"),
        "max_rss_mb": number("max_rss"),
        "cpu_time_s": number("cpu_time"),
        "end": path.stat().st_mtime,
    }


def rule_statistics(
    benchmark_dir: Path,
    patterns: dict[str, str],
    constraints: dict[str, dict[str, str]] | None = None,
    workdir: Path = Path("."),
) -> tuple[dict[str, dict[str, Any]], float | None, float | None]:
    """Per-rule job count, summed and maximal wall time, peak memory, from benchmark files.

    ``patterns`` maps rule names to their benchmark patterns (relative to ``workdir``).
    A file that several rules' patterns match (rules sharing one pattern) is counted under
    the first such rule by name, and a file no pattern matches under its directory.
    Returns the statistics and the earliest start and latest end (epoch seconds).
    """
    constraints = constraints or {}
    regexes = {
        rule: pattern_regex(p, constraints.get(rule)) for rule, p in sorted(patterns.items())
    }
    stats: dict[str, dict[str, Any]] = {}
    start = end = None
    for path in sorted(Path(workdir, benchmark_dir).rglob("*.tsv")):
        relative = path.relative_to(workdir).as_posix()
        rule = next((r for r, rx in regexes.items() if rx.fullmatch(relative)), None)
        if rule is None:
            rule = path.parent.relative_to(Path(workdir, benchmark_dir)).as_posix()
        try:
            job = read_benchmark(path)
        except (ValueError, OSError, pd.errors.ParserError):
            continue  # a file a killed job left unfinished is no measurement
        entry = stats.setdefault(
            rule,
            {
                "jobs": 0,
                "wall_s_total": 0.0,
                "wall_s_max": 0.0,
                "max_rss_mb": 0.0,
                "cpu_time_s_total": 0.0,
            },
        )
        entry["jobs"] += 1
        entry["wall_s_total"] += job["wall_s"]
        entry["wall_s_max"] = max(entry["wall_s_max"], job["wall_s"])
        entry["max_rss_mb"] = max(entry["max_rss_mb"], job["max_rss_mb"])
        entry["cpu_time_s_total"] += job["cpu_time_s"]
        begin = job["end"] - job["wall_s"]
        start = begin if start is None else min(start, begin)
        end = job["end"] if end is None else max(end, job["end"])
    for entry in stats.values():
        for key in ("wall_s_total", "wall_s_max", "max_rss_mb", "cpu_time_s_total"):
            entry[key] = round(entry[key], 3)
    return dict(sorted(stats.items())), start, end


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


def collect(
    config: dict[str, Any],
    repo: Path,
    benchmark_dir: Path,
    patterns: dict[str, str],
    constraints: dict[str, dict[str, str]] | None = None,
    workdir: Path = Path("."),
) -> dict[str, Any]:
    """The whole provenance record (a JSON-serialisable dict)."""
    stats, start, end = rule_statistics(benchmark_dir, patterns, constraints, workdir)
    pyproject = Path(repo) / "pyproject.toml"
    names = project_dependencies(pyproject) if pyproject.is_file() else ["snakemake"]
    return {
        "git": git_state(repo),
        "config_sha256": config_hash(config),
        "python": sys.version.split()[0],
        "packages": package_versions(names),
        "host": {
            "name": socket.gethostname(),
            "platform": platform.platform(),
            "machine": platform.machine(),
            "processor": platform.processor() or None,
        },
        "run": {
            "start": _iso(start),
            "end": _iso(end),
            "wall_s": None if start is None or end is None else round(end - start, 1),
            "recorded": datetime.now(UTC).isoformat(),
        },
        "rules": stats,
    }


def write_provenance(path: Path, **kwargs: Any) -> dict[str, Any]:
    """Collect the record (see ``collect``) and write it atomically as JSON."""
    record = collect(**kwargs)
    write_json(path, record)
    return record
