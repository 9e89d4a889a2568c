"""The HistFactory model, built with cabinetry from the rebinned templates of its regions.

cabinetry builds histograms from ntuples itself, but our templates already exist (fine
``hist`` histograms, rebinned here), so they are written in cabinetry's histogram-folder
format and cabinetry's ``templates.postprocess`` and ``workspace.build`` turn them into the
pyhf workspace: one region (channel) per entry of :class:`.model.ModelTemplates`, each
free parameter of :class:`.model.ModelSpec` (μ on the signal in today's single-region model)
as a free normalisation factor with its bounds, log-normal normalisation uncertainties,
normalisation-plus-shape modifiers (normsys + histosys) for the jet energy scale and the
weight systematics, and per-bin MC statistical uncertainties (staterror) on every sample of
every region. A process absent from a region (a control region has no signal) is restricted
to the regions it has templates in. The cabinetry configuration and templates are kept
beside ``workspace.json``, so the model can be inspected with cabinetry directly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import cabinetry
import hist
import numpy as np
import pyhf
import yaml

from thetaflow.core import paths
from thetaflow.core.io import atomic_directory, atomic_path, write_json
from thetaflow.inference.discriminants import binning_settings
from thetaflow.inference.histograms import (
    NOMINAL,
    TemplateSet,
    choose_bins,
    set_values,
    systematic_samples,
    variances,
)
from thetaflow.inference.model import (
    POI,
    ModelBuildError,
    ModelSpec,
    ModelTemplates,
    model_spec,
)

__all__ = [
    "DIRECTIONS",
    "POI",
    "ModelBuildError",
    "build_model_workspace",
    "build_workspace",
    "cabinetry_config",
    "usable_model",
    "usable_templates",
    "write_histograms",
]

log = logging.getLogger(__name__)


def usable_templates(templates: TemplateSet, region: str | None = None) -> TemplateSet:
    """Drop processes with no expected yield (warned), check everything else is fittable.

    A process whose nominal yield is zero or negative contributes nothing and is dropped with
    a warning; a region cannot be fitted without a background or with an empty data
    histogram, and a systematic template that is all zero while its nominal is not is a
    broken input — each of those is an error naming process, template and region (``region``,
    default: the discriminant's name). A region without signal (a control region) is fine:
    whether every free parameter acts on something is :func:`usable_model`'s check. Negative
    per-bin yields (negative generator weights) are set to zero, with a note in the log.
    """
    region = templates.discriminant if region is None else region
    if templates.data.values().sum() <= 0:
        raise ModelBuildError(
            f"region '{region}': the data histogram ({templates.data_sample}) is empty"
        )
    kept = {}
    for name, process in templates.processes.items():
        total = process.nominal.values().sum()
        if not total > 0:
            log.warning(
                "region '%s': process '%s' has zero expected yield (%.3g); dropped from the model",
                region,
                name,
                total,
            )
            continue
        for key, template in process.templates.items():
            if key != NOMINAL and not np.any(template.values() > 0):
                raise ModelBuildError(
                    f"region '{region}': template '{key}' of process '{name}' is empty or all zero "
                    f"while its nominal yield is {total:.4g}"
                )
            negative = template.values() < 0
            if negative.any():
                log.info(
                    "region '%s': %s/%s: %d bins with negative yield set to 0",
                    region,
                    name,
                    key,
                    negative.sum(),
                )
                set_values(template, np.where(negative, 0.0, template.values()))
        kept[name] = process
    result = TemplateSet(
        templates.discriminant, templates.label, templates.data_sample, templates.data, kept
    )
    if not result.background:
        raise ModelBuildError(
            f"region '{region}': no background process with a positive expected yield"
        )
    return result


def usable_model(model: ModelTemplates, spec: ModelSpec) -> ModelTemplates:
    """:func:`usable_templates` of every region; every free parameter must scale a process
    with a positive expected yield in some region (a POI with no sample is an error)."""
    usable = ModelTemplates({name: usable_templates(t, name) for name, t in model.channels.items()})
    processes = usable.processes
    for parameter in spec.parameters:
        if not any(p in parameter.samples for p in processes):
            where = ", ".join(f"'{r}'" for r in usable.channels)
            raise ModelBuildError(
                f"free parameter '{parameter.name}': none of its processes "
                f"({', '.join(parameter.samples) or 'none'}) has a positive expected yield "
                f"in region{'s' if len(usable.channels) > 1 else ''} {where}"
            )
    return usable


def _samples(model: ModelTemplates) -> list[dict]:
    """cabinetry's sample entries of the simulated processes; a process absent from some
    region is restricted to the regions it has templates in."""
    entries = []
    for p in model.processes:
        entry: dict[str, str | list[str]] = {
            "Name": p,
            "SamplePath": f"{p}/nominal.parquet",
            "Weight": "weight",
        }
        regions = model.regions_of(p)
        if len(regions) < len(model.channels):
            entry["Regions"] = regions
        entries.append(entry)
    return entries


def cabinetry_config(
    model: ModelTemplates | TemplateSet,
    inference: Mapping,
    histogram_folder: str,
    measurement: str,
    spec: ModelSpec | None = None,
) -> dict:
    """The cabinetry configuration describing the model of ``model``.

    ``spec``: the free parameters (default: today's, ``mu`` on the signal processes with
    ``inference.poi_bounds``). A single :class:`TemplateSet` is the one-region model.
    """
    if isinstance(model, TemplateSet):
        model = ModelTemplates.single(model)
    processes = model.processes
    if spec is None:
        spec = config_spec(inference, model)
    systematics = []
    for name, entry in inference["normalisation"].items():
        affected = systematic_samples(entry, processes)
        if affected:
            u = entry["uncertainty"]
            systematics.append(
                {
                    "Name": name,
                    "Type": "Normalization",
                    "Up": {"Normalization": u},
                    "Down": {"Normalization": -u},
                    "Samples": affected,
                }
            )
    for name, entry in inference["systematics"].items():
        affected = systematic_samples(entry, processes)
        if not affected:
            continue
        # documentation only: the templates are ours, cabinetry does not read ntuples here
        key = "SamplePath" if entry["type"] == "shape" else "Weight"
        systematics.append(
            {
                "Name": name,
                "Type": "NormPlusShape",
                "Up": {key: entry["up"]},
                "Down": {key: entry["down"]},
                "Samples": affected,
            }
        )
    return {
        "General": {
            "Measurement": measurement,
            "POI": spec.poi.name,
            "InputPath": paths.FEATURES_DIR + "/{SamplePath}",
            "HistogramFolder": histogram_folder,
        },
        "Regions": [
            {"Name": name, "Variable": t.label, "Binning": t.edges.tolist()}
            for name, t in model.channels.items()
        ],
        "Samples": [
            {
                "Name": model.data_sample,
                "Data": True,
                "SamplePath": f"{model.data_sample}/nominal.parquet",
            }
        ]
        + _samples(model),
        "NormFactors": [
            {
                "Name": parameter.name,
                "Samples": [p for p in processes if p in parameter.samples],
                "Nominal": parameter.nominal,
                "Bounds": list(parameter.bounds),
            }
            for parameter in spec.parameters
        ],
        "Systematics": systematics,
    }


#: cabinetry's names of the systematic templates, and ours.
DIRECTIONS: tuple[tuple[Literal["Up", "Down"], str], ...] = (("Up", "up"), ("Down", "down"))


def _save(h: hist.Hist, path: Path) -> None:
    """Save one template as cabinetry's histogram (``.npz``: bins, yields, stdev)."""
    edges, stdev = h.axes[0].edges, np.sqrt(variances(h))
    cabinetry.histo.Histogram.from_arrays(edges, h.values(), stdev).save(path)


def write_histograms(model: ModelTemplates | TemplateSet, config: Mapping) -> None:
    """Write every template of every region in cabinetry's histogram-folder format, then
    post-process them."""
    if isinstance(model, TemplateSet):
        model = ModelTemplates.single(model)
    folder = Path(config["General"]["HistogramFolder"])
    for region in config["Regions"]:
        templates = model.channels[region["Name"]]
        _save(templates.data, folder / cabinetry.histo.name(region, config["Samples"][0], {}))
        for entry in config["Samples"][1:]:
            if not cabinetry.configuration.region_contains_sample(region, entry):
                continue
            process = templates.processes[entry["Name"]]
            _save(process.nominal, folder / cabinetry.histo.name(region, entry, {}))
            for systematic in config["Systematics"]:
                if (
                    systematic["Type"] != "NormPlusShape"
                    or entry["Name"] not in systematic["Samples"]
                ):
                    continue
                for direction, template in DIRECTIONS:
                    _save(
                        process.templates[f"{systematic['Name']}_{template}"],
                        folder
                        / cabinetry.histo.name(region, entry, systematic, template=direction),
                    )
    cabinetry.templates.postprocess(dict(config))


def _binning_record(fine: TemplateSet, coarse: TemplateSet, binning: Mapping) -> dict:
    """What ``binning.json`` holds of one region."""
    return {
        "discriminant": fine.discriminant,
        "strategy": binning,
        "edges": coarse.edges.tolist(),
        "data": coarse.data.values().tolist(),
        "yields": {p: t.nominal.values().tolist() for p, t in coarse.processes.items()},
        "dropped_processes": sorted(set(fine.processes) - set(coarse.processes)),
    }


def build_model_workspace(
    config: Mapping,
    fine: ModelTemplates,
    outputs: Mapping[str, str],
    name: str,
    spec: ModelSpec | None = None,
) -> dict:
    """Rebin every region's fine histograms, build and validate the workspace, write outputs.

    ``name``: the model's (the measurement is ``{analysis.name}_{name}``); ``spec``: its free
    parameters (default: ``mu`` on the signal processes, bounds ``inference.poi_bounds``).
    ``outputs``: ``workspace`` (pyhf JSON), ``binning`` (edges and yields per bin, JSON: one
    region's record, or ``{"regions": {region: record}}`` for several), ``cabinetry``
    (cabinetry config, YAML) and ``templates`` (cabinetry histogram folder).
    """
    inference = config["inference"]
    if spec is None:
        spec = config_spec(inference, fine)
    usable = usable_model(fine, spec)
    channels, records = {}, {}
    for region, templates in usable.channels.items():
        binning = binning_settings(config, templates.discriminant, region)
        coarse = templates.rebinned(choose_bins(templates, binning))
        log.info(
            "%s: %d fine bins -> %d bins, edges %s",
            region,
            len(templates.edges) - 1,
            len(coarse.edges) - 1,
            np.round(coarse.edges, 4).tolist(),
        )
        channels[region] = coarse
        records[region] = _binning_record(fine.channels[region], coarse, binning)
    # the free parameters act on the processes left in the model (dropped ones are warned)
    model = ModelTemplates(channels)

    folder = Path(outputs["templates"])
    measurement = f"{config['analysis']['name']}_{name}"
    # cabinetry writes and reads the histograms in the temporary folder; the config kept on
    # disk names the final one
    with atomic_directory(folder) as tmp_folder:
        cab = cabinetry_config(model, inference, str(tmp_folder), measurement, spec)
        cabinetry.configuration.validate(cab)
        write_histograms(model, cab)
        workspace = cabinetry.workspace.build(cab)  # validates against the HistFactory schema
        pyhf.schema.validate(workspace, "workspace.json")
    cab["General"]["HistogramFolder"] = str(folder)
    with atomic_path(outputs["cabinetry"]) as tmp:
        tmp.write_text(yaml.safe_dump(cab, sort_keys=False))
    write_json(
        outputs["binning"],
        next(iter(records.values())) if len(records) == 1 else {"regions": records},
    )
    write_json(outputs["workspace"], workspace)
    return workspace


def config_spec(inference: Mapping, model: ModelTemplates) -> ModelSpec:
    """The free parameters of ``inference.parameters`` (:func:`.model.model_spec`), or ``mu``
    on the signal processes of ``model``."""
    signal = [p for t in model.channels.values() for p in t.signal]
    return model_spec(inference, list(dict.fromkeys(signal)))


def build_workspace(config: Mapping, fine_path: str, outputs: Mapping[str, str], name: str) -> dict:
    """The model of discriminant ``name`` (rule ``workspace``): its stored fine histograms
    of every region through :func:`build_model_workspace`, with the config's free parameters."""
    return build_model_workspace(config, ModelTemplates.load(fine_path), outputs, name)
