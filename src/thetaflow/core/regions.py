"""The analysis regions of config (``regions:``): named selections after the preselection.

Every event that passes the ordered ``selection.cuts`` (the common preselection) falls in at
most one region: ingestion labels it, the feature tables carry the label, training uses the
signal regions only and the fit models each region. Without ``regions:`` the analysis has one
signal region, :data:`INCLUSIVE`, holding every preselected event. Here is the typed view
several stages read; the expressions are parsed and checked by ingestion, which evaluates them
over its event variables.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class RegionKind(enum.StrEnum):
    """What a region is for: a signal region is trained on and measures the signal; a
    control region constrains backgrounds (scored and fitted, never trained on)."""

    SIGNAL = "signal"
    CONTROL = "control"


#: the one region of an analysis without ``regions:``: every preselected event
INCLUSIVE = "inclusive"
#: the column of the event and feature tables holding each event's region name
REGION_COLUMN = "region"


@dataclass(frozen=True)
class Region:
    """One analysis region: its name, kind and selection over the event variables (``None``:
    every preselected event)."""

    name: str
    kind: RegionKind
    expr: str | None

    @property
    def is_signal(self) -> bool:
        """Whether the region is a signal region (the training set is drawn from these)."""
        return self.kind == RegionKind.SIGNAL


def analysis_regions(config: Mapping[str, Any]) -> tuple[Region, ...]:
    """The regions of ``config`` in config order; without ``regions:`` the one signal region
    :data:`INCLUSIVE` holding every preselected event."""
    # optional key: its absence is the inclusive single-region analysis
    entries = config.get("regions")
    if not entries:
        return (Region(INCLUSIVE, RegionKind.SIGNAL, None),)
    return tuple(Region(e["name"], RegionKind(e["kind"]), e["expr"]) for e in entries)


def signal_region_names(config: Mapping[str, Any]) -> tuple[str, ...]:
    """Names of the signal regions of ``config`` (the events training may use)."""
    return tuple(r.name for r in analysis_regions(config) if r.is_signal)
