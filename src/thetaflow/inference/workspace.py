"""The HistFactory model of one discriminant, built with cabinetry from the rebinned templates.

cabinetry builds histograms from ntuples itself, but our templates already exist (fine
``hist`` histograms, rebinned here), so they are written in cabinetry's histogram-folder
format and cabinetry's ``templates.postprocess`` and ``workspace.build`` turn them into the
pyhf workspace: μ as a free normalisation factor on the signal, log-normal normalisation
uncertainties, normalisation-plus-shape modifiers (normsys + histosys) for the jet energy
scale and the weight systematics, and per-bin MC statistical uncertainties (staterror) on
every sample. The cabinetry configuration and templates are kept beside ``workspace.json``,
so the model can be inspected with cabinetry directly.
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
from thetaflow.core.errors import ThetaflowError
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

log = logging.getLogger(__name__)

POI = "mu"


class ModelBuildError(ThetaflowError, ValueError):
    """The templates cannot make a valid model; the message names process and region."""


def usable_templates(templates: TemplateSet) -> TemplateSet:
    """Drop processes with no expected yield (warned), check everything else is fittable.

    A process whose nominal yield is zero or negative contributes nothing and is dropped with
    a warning; the fit cannot proceed without a signal, without a background or with an empty
    data histogram, and a systematic template that is all zero while its nominal is not is a
    broken input — each of those is an error naming process, template and region. Negative
    per-bin yields (negative generator weights) are set to zero, with a note in the log.
    """
    region = templates.discriminant
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
    if not result.signal:
        raise ModelBuildError(
            f"region '{region}': no signal process with a positive expected yield"
        )
    if not result.background:
        raise ModelBuildError(
            f"region '{region}': no background process with a positive expected yield"
        )
    return result


def cabinetry_config(
    templates: TemplateSet, inference: Mapping, histogram_folder: str, measurement: str
) -> dict:
    """The cabinetry configuration describing the model of ``templates``."""
    processes = list(templates.processes)
    systematics = []
    for name, spec in inference["normalisation"].items():
        affected = systematic_samples(spec, processes)
        if affected:
            u = spec["uncertainty"]
            systematics.append(
                {
                    "Name": name,
                    "Type": "Normalization",
                    "Up": {"Normalization": u},
                    "Down": {"Normalization": -u},
                    "Samples": affected,
                }
            )
    for name, spec in inference["systematics"].items():
        affected = systematic_samples(spec, processes)
        if not affected:
            continue
        # documentation only: the templates are ours, cabinetry does not read ntuples here
        key = "SamplePath" if spec["type"] == "shape" else "Weight"
        systematics.append(
            {
                "Name": name,
                "Type": "NormPlusShape",
                "Up": {key: spec["up"]},
                "Down": {key: spec["down"]},
                "Samples": affected,
            }
        )
    return {
        "General": {
            "Measurement": measurement,
            "POI": POI,
            "InputPath": paths.FEATURES_DIR + "/{SamplePath}",
            "HistogramFolder": histogram_folder,
        },
        "Regions": [
            {
                "Name": templates.discriminant,
                "Variable": templates.label,
                "Binning": templates.edges.tolist(),
            }
        ],
        "Samples": [
            {
                "Name": templates.data_sample,
                "Data": True,
                "SamplePath": f"{templates.data_sample}/nominal.parquet",
            }
        ]
        + [
            {"Name": p, "SamplePath": f"{p}/nominal.parquet", "Weight": "weight"} for p in processes
        ],
        "NormFactors": [
            {
                "Name": POI,
                "Samples": templates.signal,
                "Nominal": 1.0,
                "Bounds": list(inference["poi_bounds"]),
            }
        ],
        "Systematics": systematics,
    }


#: cabinetry's names of the systematic templates, and ours.
DIRECTIONS: tuple[tuple[Literal["Up", "Down"], str], ...] = (("Up", "up"), ("Down", "down"))


def _save(h: hist.Hist, path: Path) -> None:
    """Save one template as cabinetry's histogram (``.npz``: bins, yields, stdev)."""
    edges, stdev = h.axes[0].edges, np.sqrt(variances(h))
    cabinetry.histo.Histogram.from_arrays(edges, h.values(), stdev).save(path)


def write_histograms(templates: TemplateSet, config: Mapping) -> None:
    """Write every template in cabinetry's histogram-folder format, then post-process them."""
    folder = Path(config["General"]["HistogramFolder"])
    region = config["Regions"][0]
    _save(templates.data, folder / cabinetry.histo.name(region, config["Samples"][0], {}))
    for entry in config["Samples"][1:]:
        process = templates.processes[entry["Name"]]
        _save(process.nominal, folder / cabinetry.histo.name(region, entry, {}))
        for systematic in config["Systematics"]:
            if systematic["Type"] != "NormPlusShape" or entry["Name"] not in systematic["Samples"]:
                continue
            for direction, template in DIRECTIONS:
                _save(
                    process.templates[f"{systematic['Name']}_{template}"],
                    folder / cabinetry.histo.name(region, entry, systematic, template=direction),
                )
    cabinetry.templates.postprocess(dict(config))


def build_workspace(config: Mapping, fine_path: str, outputs: Mapping[str, str]) -> dict:
    """Rebin the stored fine histograms, build and validate the workspace, write the outputs.

    ``outputs``: ``workspace`` (pyhf JSON), ``binning`` (edges and yields per bin, JSON),
    ``cabinetry`` (cabinetry config, YAML) and ``templates`` (cabinetry histogram folder).
    """
    fine = TemplateSet.load(fine_path)
    binning = binning_settings(config, fine.discriminant)
    templates = usable_templates(fine)
    boundaries = choose_bins(templates, binning)
    coarse = templates.rebinned(boundaries)
    log.info(
        "%s: %d fine bins -> %d bins, edges %s",
        fine.discriminant,
        len(fine.edges) - 1,
        len(coarse.edges) - 1,
        np.round(coarse.edges, 4).tolist(),
    )

    folder = Path(outputs["templates"])
    measurement = f"{config['analysis']['name']}_{fine.discriminant}"
    # cabinetry writes and reads the histograms in the temporary folder; the config kept on
    # disk names the final one
    with atomic_directory(folder) as tmp_folder:
        cab = cabinetry_config(coarse, config["inference"], str(tmp_folder), measurement)
        cabinetry.configuration.validate(cab)
        write_histograms(coarse, cab)
        workspace = cabinetry.workspace.build(cab)  # validates against the HistFactory schema
        pyhf.schema.validate(workspace, "workspace.json")
    cab["General"]["HistogramFolder"] = str(folder)
    with atomic_path(outputs["cabinetry"]) as tmp:
        tmp.write_text(yaml.safe_dump(cab, sort_keys=False))
    write_json(
        outputs["binning"],
        {
            "discriminant": fine.discriminant,
            "strategy": binning,
            "edges": coarse.edges.tolist(),
            "data": coarse.data.values().tolist(),
            "yields": {p: t.nominal.values().tolist() for p, t in coarse.processes.items()},
            "dropped_processes": sorted(set(fine.processes) - set(coarse.processes)),
        },
    )
    write_json(outputs["workspace"], workspace)
    return workspace
