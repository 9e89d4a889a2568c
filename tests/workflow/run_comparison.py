"""Comparing two runs of the workflow: same physics numbers, same model scores.

Used by the resume/determinism tests (a killed-and-resumed run against an uninterrupted one)
and by the SLURM test (the toy workflow through the batch system against the local run).
Timings, throughputs, hosts and paths measure the machine, not the physics, and are left out.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

# keys whose values measure the machine, not the physics (timings, throughputs, hosts)
MACHINE_KEYS = re.compile(
    r"seconds|_s$|_ms$|time|latency|throughput|per_s|host|date|path|file", re.IGNORECASE
)


def json_numbers(data, prefix: str = "") -> dict[str, object]:
    """Flatten a JSON document to {dotted.key: leaf}, leaving out machine-dependent keys."""
    out: dict[str, object] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            if not MACHINE_KEYS.search(str(key)):
                out.update(json_numbers(value, f"{prefix}{key}."))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out.update(json_numbers(value, f"{prefix}{i}."))
    else:
        out[prefix.rstrip(".")] = data
    return out


def assert_same_numbers(a: Path, b: Path) -> None:
    """Same keys, same strings and integers, floats equal to 1e-9 relative (the last bits of
    a float may follow the summation order a BLAS library picks; anything physics-relevant
    or seed-related differs by far more)."""
    left, right = json_numbers(json.loads(a.read_text())), json_numbers(json.loads(b.read_text()))
    assert left.keys() == right.keys(), (a, set(left) ^ set(right))
    for key, value in left.items():
        other = right[key]
        if isinstance(value, float) and isinstance(other, (int, float)):
            if math.isnan(value):
                assert math.isnan(other), (str(a), key)
            else:
                assert math.isclose(value, other, rel_tol=1e-9, abs_tol=1e-12), (
                    str(a),
                    key,
                    value,
                    other,
                )
        else:
            assert value == other, (str(a), key, value, other)


def assert_same_scores(a_root: Path, b_root: Path) -> int:
    """Every score file of every model equal in both runs (to 1e-12: one ulp of BLAS order);
    returns how many files were compared."""
    files = sorted(p.relative_to(a_root) for p in a_root.glob("results/scores/*/*/*.parquet"))
    assert files, "no score files"
    for rel in files:
        a, b = pd.read_parquet(a_root / rel), pd.read_parquet(b_root / rel)
        assert list(a.columns) == list(b.columns) and len(a) == len(b), rel
        for column in a.columns:
            if column == "score":
                np.testing.assert_allclose(
                    b[column], a[column], rtol=0, atol=1e-12, err_msg=str(rel)
                )
            else:
                assert a[column].equals(b[column]), (rel, column)
    return len(files)


def assert_same_result_numbers(a_root: Path, b_root: Path) -> int:
    """Every per-item JSON result of run ``a`` (fits, limits, metrics, closure tests:
    results/<stage>/<item>/*.json, benchmarks aside) present in run ``b`` with the same
    numbers; returns how many files were compared.

    A file missing from ``b`` fails when ``b`` made that kind of file (the same stage and
    name) for any item: an item that silently lost its result is an error. Only a kind that
    ``b`` made for no item at all (a run of fewer targets, e.g. without rankings) is left out.
    """
    compared = 0
    missing = []
    for path in sorted(a_root.glob("results/*/*/*.json")):
        rel = path.relative_to(a_root)
        if "benchmarks" in rel.parts:
            continue
        other = b_root / rel
        if other.exists():
            assert_same_numbers(path, other)
            compared += 1
        elif list(b_root.glob(f"results/{rel.parts[1]}/*/{rel.name}")):
            missing.append(str(rel))
    assert not missing, f"{b_root} lacks results that {a_root} has: {missing}"
    return compared


def assert_same_headline(a_root: Path, b_root: Path) -> None:
    """The analysis' headline numbers equal in both runs: results/summary.json and the
    discriminant comparison table results/fit/comparison.csv (machine columns aside)."""
    assert_same_numbers(a_root / "results/summary.json", b_root / "results/summary.json")
    a, b = (pd.read_csv(root / "results/fit/comparison.csv") for root in (a_root, b_root))
    numeric = [c for c in a.columns if not MACHINE_KEYS.search(c)]
    pd.testing.assert_frame_equal(a[numeric], b[numeric])
