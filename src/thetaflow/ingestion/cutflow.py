"""Merge the per-sample cutflow JSON files into one table for the report."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from thetaflow.core.io import atomic_path, read_json


def cutflow_frame(paths: Sequence[str]) -> pd.DataFrame:
    """One row per (sample, cut) of the nominal cutflow, with generated/read counts first."""
    rows = []
    for path in paths:
        cf = read_json(path)
        sample = cf["sample"]
        if cf["events_generated"] is not None:
            rows.append(
                {
                    "sample": sample,
                    "cut": "generated",
                    "events": cf["events_generated"],
                    "sumw": cf["sumw_generated"],
                    "expected": cf["sumw_generated"] * cf["norm_factor"],
                }
            )
        for row in cf["cutflow"]["nominal"]:
            rows.append(
                {"sample": sample, **row, "cut": "read" if row["cut"] == "all" else row["cut"]}
            )
    return pd.DataFrame(rows, columns=["sample", "cut", "events", "sumw", "expected"])


def cutflow_table(paths: Sequence[str], output: str) -> None:
    """Workflow entry point: write the merged nominal cutflow as CSV, atomically."""
    frame = cutflow_frame(paths)
    with atomic_path(output) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
