"""The cutflow document of one sample, and the merge of all samples' cutflows into one table.

Ingestion writes one cutflow JSON per sample (:class:`Cutflow`): bookkeeping of what was read,
the normalisation factor the feature stage applies, per variation the events and Σ weight that
pass each cut, and how those passing every cut divide into the analysis regions.
:func:`cutflow_table` merges the nominal cutflows for the report.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from thetaflow.core.io import atomic_path, read_json, reading_result
from thetaflow.core.regions import INCLUSIVE

if TYPE_CHECKING:
    import pandas as pd

#: the region row of the events that pass every cut but fall in no region (dropped)
OUTSIDE_REGIONS = "outside_regions"


@dataclass(frozen=True)
class CutRow:
    """One cut of a cutflow: raw count, Σ weight and expected yield (Σw × norm) passing it."""

    cut: str
    events: int
    sumw: float
    expected: float

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this row (keys as in the cutflow file)."""
        return {
            "cut": self.cut,
            "events": self.events,
            "sumw": self.sumw,
            "expected": self.expected,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CutRow:
        """The row of a JSON object written by :meth:`to_json`."""
        return cls(data["cut"], data["events"], data["sumw"], data["expected"])


@dataclass(frozen=True)
class Cutflow:
    """What ingestion of one sample read and selected, and how the sample is normalised.

    ``norm_factor`` is σ × L / Σw for simulation (1 for data); ``sumw_source`` says where Σw
    came from (``Runs.genEventSumw`` over all generated events when every file has a Runs
    tree, else ``Events.genWeight`` over the events read). ``cutflow`` holds per variation
    the rows of the cuts in order, the first being ``all``; ``regions`` per variation one row
    per region (config order) and last :data:`OUTSIDE_REGIONS`, the events in none: they
    add up to the last row of ``cutflow``. ``selected`` counts the events written (those in a
    region).
    """

    sample: str
    is_data: bool
    files: list[str]
    events_read: int
    non_finite_events: int
    sumw_read: float
    events_generated: float | None
    sumw_generated: float | None
    sumw: float
    sumw_source: str
    xsec_pb: float | None
    lumi_fb: float
    norm_factor: float
    selected: dict[str, int]
    cutflow: dict[str, list[CutRow]]
    regions: dict[str, list[CutRow]]

    def region_rows(self, variation: str = "nominal") -> list[CutRow]:
        """The rows of the regions of ``variation``, without the events outside every region."""
        return [row for row in self.regions[variation] if row.cut != OUTSIDE_REGIONS]

    def to_json(self) -> dict[str, Any]:
        """The JSON document of the cutflow file (the values as they are, no conversion)."""
        return {
            "sample": self.sample,
            "is_data": self.is_data,
            "files": list(self.files),
            "events_read": self.events_read,
            "non_finite_events": self.non_finite_events,
            "sumw_read": self.sumw_read,
            "events_generated": self.events_generated,
            "sumw_generated": self.sumw_generated,
            "sumw": self.sumw,
            "sumw_source": self.sumw_source,
            "xsec_pb": self.xsec_pb,
            "lumi_fb": self.lumi_fb,
            "norm_factor": self.norm_factor,
            "selected": dict(self.selected),
            "cutflow": {
                name: [row.to_json() for row in rows] for name, rows in self.cutflow.items()
            },
            "regions": {
                name: [row.to_json() for row in rows] for name, rows in self.regions.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Cutflow:
        """The cutflow of a JSON document written by :meth:`to_json`."""
        return cls(
            sample=data["sample"],
            is_data=data["is_data"],
            files=list(data["files"]),
            events_read=data["events_read"],
            non_finite_events=data["non_finite_events"],
            sumw_read=data["sumw_read"],
            events_generated=data["events_generated"],
            sumw_generated=data["sumw_generated"],
            sumw=data["sumw"],
            sumw_source=data["sumw_source"],
            xsec_pb=data["xsec_pb"],
            lumi_fb=data["lumi_fb"],
            norm_factor=data["norm_factor"],
            selected=dict(data["selected"]),
            cutflow={
                name: [CutRow.from_json(row) for row in rows]
                for name, rows in data["cutflow"].items()
            },
            regions={
                name: [CutRow.from_json(row) for row in rows]
                for name, rows in data["regions"].items()
            },
        )

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Cutflow:
        """The cutflow of a file ingestion wrote (errors name the file)."""
        data = read_json(path)
        with reading_result(path):
            return cls.from_json(data)


def cutflow_frame(paths: Sequence[str]) -> pd.DataFrame:
    """One row per (sample, cut) of the nominal cutflow, with generated/read counts first and,
    where the analysis defines regions (more than the one inclusive region), a row per region
    (``region <name>``) and one of the events outside them."""
    # deferred: feature jobs read the cutflow through this module and must not load pandas
    import pandas as pd

    rows = []
    for path in paths:
        cf = Cutflow.read(path)
        if cf.events_generated is not None and cf.sumw_generated is not None:
            rows.append(
                {
                    "sample": cf.sample,
                    "cut": "generated",
                    "events": cf.events_generated,
                    "sumw": cf.sumw_generated,
                    "expected": cf.sumw_generated * cf.norm_factor,
                }
            )
        for row in cf.cutflow["nominal"]:
            rows.append(
                {
                    "sample": cf.sample,
                    **row.to_json(),
                    "cut": "read" if row.cut == "all" else row.cut,
                }
            )
        if [row.cut for row in cf.region_rows()] != [INCLUSIVE]:
            for row in cf.regions["nominal"]:
                cut = row.cut if row.cut == OUTSIDE_REGIONS else f"region {row.cut}"
                rows.append({"sample": cf.sample, **row.to_json(), "cut": cut})
    return pd.DataFrame(rows, columns=["sample", "cut", "events", "sumw", "expected"])


def cutflow_table(paths: Sequence[str], output: str) -> None:
    """Workflow entry point: write the merged nominal cutflow as CSV, atomically."""
    frame = cutflow_frame(paths)
    with atomic_path(output) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
