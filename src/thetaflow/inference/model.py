"""What a statistical model is made of: its regions' templates and its free parameters.

A model has one or more regions (HistFactory channels), each with its own observable,
binning, data and processes (:class:`ModelTemplates`), and a set of free normalisation
factors (:class:`ModelSpec`): the parameters of interest θ, each scaling some processes in
every region where they appear, with bounds from config and no prior. The first of them is
the measurement's POI (what significance, limits, impacts and the closure's likelihood pulls
are about); the others are profiled or reported beside it.

Without ``inference.parameters`` the model has one free parameter, ``mu`` on the signal
processes (:func:`single_poi_spec`); with it, the listed normalisation factors (:func:`model_spec`:
signal strengths of several processes, background normalisations measured in control
regions). A region without signal (a control region) is allowed; a free parameter must act
on some process in some region.

This module imports neither cabinetry nor pyhf, so config checks and the workflow can use it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from thetaflow.core.errors import ThetaflowError
from thetaflow.core.io import read_json, reading_result, write_json
from thetaflow.core.samples import Sample
from thetaflow.inference.histograms import TemplateSet, build_templates, region_names

log = logging.getLogger(__name__)

#: The name of the signal strength: the single-region model's POI (and its only free parameter).
POI = "mu"


class ModelBuildError(ThetaflowError, ValueError):
    """The templates or parameters cannot make a valid model; the message names the culprit
    (process, region or parameter)."""


@dataclass(frozen=True)
class FreeParameter:
    """A free normalisation factor: its name, the processes it scales, its bounds."""

    name: str
    samples: tuple[str, ...]
    bounds: tuple[float, float]
    nominal: float = 1.0

    def __post_init__(self) -> None:
        low, high = self.bounds
        if not low <= self.nominal <= high:
            raise ModelBuildError(
                f"free parameter '{self.name}': nominal {self.nominal} outside its bounds "
                f"[{low}, {high}]"
            )


@dataclass(frozen=True)
class ModelSpec:
    """The free parameters θ of a model; the first is the measurement's POI."""

    parameters: tuple[FreeParameter, ...]

    def __post_init__(self) -> None:
        if not self.parameters:
            raise ModelBuildError("a model needs at least one free parameter (its POI)")
        names = [p.name for p in self.parameters]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ModelBuildError(f"free parameters named twice: {', '.join(duplicated)}")

    @property
    def poi(self) -> FreeParameter:
        """The parameter of interest (the first)."""
        return self.parameters[0]

    @property
    def names(self) -> list[str]:
        """The free parameters' names, POI first."""
        return [p.name for p in self.parameters]

    @property
    def bounds(self) -> dict[str, tuple[float, float]]:
        """Bounds per free parameter (what :func:`.fit.par_bounds` takes)."""
        return {p.name: p.bounds for p in self.parameters}


def single_poi_spec(inference: Mapping, signal: Sequence[str]) -> ModelSpec:
    """Today's model: ``mu`` on the ``signal`` processes, bounded by ``inference.poi_bounds``."""
    low, high = inference["poi_bounds"]  # as written (an integer bound stays one in the JSON)
    return ModelSpec((FreeParameter(POI, tuple(signal), (low, high)),))


def model_spec(inference: Mapping, signal: Sequence[str]) -> ModelSpec:
    """The free parameters θ the config asks for.

    ``inference.parameters`` (name -> processes, bounds, nominal; the first is the POI) when
    given, else :func:`single_poi_spec` on the ``signal`` processes.
    """
    listed = inference.get("parameters")
    if not listed:
        return single_poi_spec(inference, signal)
    return ModelSpec(
        tuple(
            FreeParameter(
                name,
                tuple(entry["processes"]),
                (entry["bounds"][0], entry["bounds"][1]),
                entry.get("nominal", 1.0),
            )
            for name, entry in listed.items()
        )
    )


def free_parameter_bounds(inference: Mapping) -> dict[str, tuple[float, float]]:
    """Bounds of every free parameter the config names (``inference.parameters``, else ``mu``
    from ``poi_bounds``); what the fits of a built workspace take."""
    listed = inference.get("parameters")
    if listed:
        return {name: (entry["bounds"][0], entry["bounds"][1]) for name, entry in listed.items()}
    low, high = inference["poi_bounds"]
    return {POI: (low, high)}


@dataclass
class ModelTemplates:
    """The templates of every region of a model, keyed by region (channel) name.

    Each region's :class:`TemplateSet` holds its own edges, data and processes; its
    ``discriminant`` names the observable fitted there (whose binning settings apply) and may
    differ from the region's name.
    """

    channels: dict[str, TemplateSet]

    def __post_init__(self) -> None:
        if not self.channels:
            raise ModelBuildError("a model needs at least one region")
        data = {t.data_sample for t in self.channels.values()}
        if len(data) > 1:
            raise ModelBuildError(f"every region must fit the same data sample, not {sorted(data)}")

    @classmethod
    def single(cls, templates: TemplateSet) -> ModelTemplates:
        """The one-region model of a discriminant: the region is named after it."""
        return cls({templates.discriminant: templates})

    @property
    def data_sample(self) -> str:
        """The data sample fitted in every region."""
        return next(iter(self.channels.values())).data_sample

    @property
    def processes(self) -> list[str]:
        """Every process of any region, in first-appearance order."""
        return list(dict.fromkeys(p for t in self.channels.values() for p in t.processes))

    def regions_of(self, process: str) -> list[str]:
        """The regions where ``process`` has a template."""
        return [name for name, t in self.channels.items() if process in t.processes]

    def to_json(self) -> dict:
        """JSON-ready form: every region's :meth:`TemplateSet.to_json`, in order."""
        return {"regions": {name: t.to_json() for name, t in self.channels.items()}}

    @classmethod
    def from_json(cls, data: Mapping) -> ModelTemplates:
        """The templates written by :meth:`to_json`."""
        return cls({name: TemplateSet.from_json(t) for name, t in data["regions"].items()})

    def save(self, path: str) -> None:
        """Write the templates as JSON (atomically)."""
        write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str) -> ModelTemplates:
        """Read templates written by :meth:`save`."""
        data = read_json(path)
        with reading_result(path):
            return cls.from_json(data)


def build_model_templates(
    config: Mapping, samples: Mapping[str, Sample], name: str
) -> ModelTemplates:
    """The fine templates of the model of discriminant ``name``: one region of all selected
    events without ``regions:`` in config, else one per analysis region.

    A region that selects no event at all (no simulated yield, no data) is left out of the
    model with a warning; one with data but no background is refused later, by the workspace.
    """
    regions = region_names(config)
    if regions is None:
        return ModelTemplates.single(build_templates(config, samples, name))
    channels = {}
    for region in regions:
        templates = build_templates(config, samples, name, region)
        simulated = sum(t.nominal.values().sum() for t in templates.processes.values())
        if templates.data.values().sum() <= 0 and simulated <= 0:
            log.warning("region '%s' selects no event; left out of the model of '%s'", region, name)
            continue
        channels[region] = templates
    if not channels:
        raise ModelBuildError(f"model of '{name}': none of the regions {regions} selects an event")
    return ModelTemplates(channels)
