"""Config checks of ingestion: NanoAOD version, object and event selection, analysis regions,
per-sample event weights."""

from __future__ import annotations

from collections.abc import Mapping

from thetaflow.core.errors import ConfigError
from thetaflow.core.expressions import ExpressionError, check_expression, parse_expression
from thetaflow.core.regions import RegionKind
from thetaflow.core.samples import Sample
from thetaflow.ingestion.cutflow import OUTSIDE_REGIONS
from thetaflow.ingestion.nanoaod import AUTO, BRANCH_MAP_DIR, known_versions
from thetaflow.ingestion.selection import EVENT_VARIABLES


def check(config: Mapping, samples: Mapping[str, Sample]) -> None:
    """``nanoaod.version`` is ``auto`` or has a branch map; every selection and weight
    expression parses over the names it may use; cut names are unique (the cutflow is keyed
    by them); the regions are usable (:func:`check_regions`)."""
    version = config.get("nanoaod", {}).get("version", AUTO)
    if version != AUTO and version not in known_versions():
        files = [
            f"'{s.name}' ({', '.join(s.spec['files'])})"
            for s in samples.values()
            if "files" in s.spec
        ]
        raise ConfigError(
            f"config key 'nanoaod.version': unknown NanoAOD version '{version}' (auto or one of "
            f"{', '.join(known_versions())}: the branch maps in {BRANCH_MAP_DIR}); it would apply "
            f"to the NanoAOD files of sample(s) {'; '.join(files) or 'none (all simulated)'}"
        )
    for obj in ("muon", "electron", "jet"):
        check_expression(config["selection"]["objects"][obj], f"selection.objects.{obj}")
    names = [c["name"] for c in config["selection"]["cuts"]]
    if len(set(names)) != len(names):
        raise ConfigError(f"config key 'selection.cuts': cut names must be unique, got {names}")
    for i, cut in enumerate(config["selection"]["cuts"]):
        check_expression(cut["expr"], f"selection.cuts[{i}].expr", EVENT_VARIABLES)
    check_regions(config)
    for sample in samples.values():
        if "weight" in sample.spec:
            check_expression(
                sample.spec["weight"], f"samples.{sample.name}.weight", EVENT_VARIABLES
            )


def check_regions(config: Mapping) -> None:
    """``regions:`` (optional): unique names, none the cutflow's :data:`OUTSIDE_REGIONS` row,
    every expression over the event variables, at least one signal region (the training set
    is drawn from the signal regions)."""
    # optional key: without it the analysis has the one inclusive signal region
    regions = config.get("regions") or []
    names = [r["name"] for r in regions]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(
            f"config key 'regions': region name(s) {', '.join(repeated)} defined more than once; "
            "every region needs a name of its own"
        )
    if OUTSIDE_REGIONS in names:
        raise ConfigError(
            f"config key 'regions[{names.index(OUTSIDE_REGIONS)}].name': '{OUTSIDE_REGIONS}' is "
            "reserved (the cutflow row of the events in no region)"
        )
    for i, region in enumerate(regions):
        key = f"regions[{i}].expr"
        try:
            parse_expression(region["expr"], allowed_names=EVENT_VARIABLES, context=key)
        except ExpressionError as err:
            raise ConfigError(
                f"config key '{key}' (region '{region['name']}'): {err.detail} in "
                f"{region['expr']!r}"
            ) from err
    if regions and not any(r["kind"] == RegionKind.SIGNAL for r in regions):
        raise ConfigError(
            f"config key 'regions': no region of kind 'signal' (all of {', '.join(names)} are "
            "control regions); the classifiers train on the signal regions"
        )
