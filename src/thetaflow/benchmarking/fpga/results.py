"""Typed results of the FPGA benchmark: :class:`Fidelity` (tier 1 of one model, over the
precision scan), :class:`Hardware` (tiers 2 and 3 as their JSON sections) and
:class:`ModelTiers` (the three tiers of one model with what describes it), each writing its
sections of the benchmark JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple


@dataclass(frozen=True)
class Fidelity:
    """Tier 1 of one model: its bit-accurate fixed-point emulation against the float model,
    over the precision scan."""

    method: str
    default: dict[str, Any]  # the scan row of the default precision
    scan: list[dict[str, Any]]
    input_profile: dict[str, Any]
    #: what the backend adds: layer_integer_bits (hls4ml), conversion_check (conifer)
    details: dict[str, Any]
    exact: bool = True

    def to_json(self) -> dict[str, Any]:
        """The ``fidelity`` section of the benchmark JSON."""
        return {
            "method": self.method,
            "exact": self.exact,
            "default": self.default,
            "scan": self.scan,
            "input_profile": self.input_profile,
            **self.details,
        }


class Hardware(NamedTuple):
    """Tiers 2 and 3 of one model as their JSON sections: ``latency`` (cycles of a generated
    design) and ``resources`` (labelled estimates), each saying whether it is ``available``
    and, where not, why (``note``)."""

    latency: dict[str, Any]
    resources: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The ``latency`` and ``resources`` sections of the benchmark JSON."""
        return {"latency": self.latency, "resources": self.resources}


@dataclass(frozen=True)
class ModelTiers:
    """The three tiers of one model, and what describes the model that was benchmarked."""

    fidelity: Fidelity
    hardware: Hardware
    ensemble: dict[str, int] | None = None  # a BDT's n_trees, max_depth, n_features
    #: a network's [inputs, outputs, activation] per Dense layer
    architecture: list[list[int | str]] | None = None

    def to_json(self) -> dict[str, Any]:
        """The tier sections of the benchmark JSON (model description included)."""
        out: dict[str, Any] = {"fidelity": self.fidelity.to_json()}
        if self.ensemble is not None:
            out["ensemble"] = self.ensemble
        out.update(self.hardware.to_json())
        if self.architecture is not None:
            out["architecture"] = self.architecture
        return out
