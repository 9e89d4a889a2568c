"""Config checks of ingestion: NanoAOD version, object and event selection, per-sample event
weights."""

from __future__ import annotations

from collections.abc import Mapping

from thetaflow.core.errors import ConfigError
from thetaflow.core.expressions import check_expression
from thetaflow.core.samples import Sample
from thetaflow.ingestion.nanoaod import AUTO, BRANCH_MAP_DIR, known_versions
from thetaflow.ingestion.selection import EVENT_VARIABLES


def check(config: Mapping, samples: Mapping[str, Sample]) -> None:
    """``nanoaod.version`` is ``auto`` or has a branch map; every selection and weight
    expression parses over the names it may use; cut names are unique (the cutflow is keyed
    by them)."""
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
    for sample in samples.values():
        if "weight" in sample.spec:
            check_expression(
                sample.spec["weight"], f"samples.{sample.name}.weight", EVENT_VARIABLES
            )
