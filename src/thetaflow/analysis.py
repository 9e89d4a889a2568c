"""The composition root: the one way an analysis configuration is loaded and checked.

The Snakefile (through ``workflow/rules/common.smk``), the tests and the benchmarks all call
:func:`prepare` (a config already merged, as Snakemake holds it) or :func:`load_analysis`
(config files to merge first). Both validate the config against the packaged schema (filling
defaults), read the sample list, and run every stage's own ``check(config, samples)`` in the
order of the chain, so a bad key stops before any job runs. Only this module imports every
stage; no stage imports it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from thetaflow.benchmarking import checks as benchmark_checks
from thetaflow.core.config import deep_merge, read_yaml, resolve_path, validate
from thetaflow.core.errors import ConfigError
from thetaflow.core.samples import Sample, check_samples, load_samples
from thetaflow.features import checks as feature_checks
from thetaflow.inference import checks as inference_checks
from thetaflow.ingestion import checks as ingestion_checks
from thetaflow.ml import checks as ml_checks
from thetaflow.plotting import checks as plotting_checks
from thetaflow.simulation import checks as simulation_checks
from thetaflow.unsupervised import checks as unsupervised_checks

Check = Callable[[Mapping[str, Any], Mapping[str, Sample]], None]


def stage_checks(config: Mapping[str, Any]) -> list[Check]:
    """The checks of the stages this config switches on, in the order of the chain."""
    checks: list[Check] = [simulation_checks.check, ingestion_checks.check, feature_checks.check]
    if "ml" in config:
        checks.append(ml_checks.check)
    if "anomaly" in config or "diagnostics" in config:
        checks.append(unsupervised_checks.check)
    checks.append(lambda _config, samples: check_samples(samples))
    checks.append(plotting_checks.check)
    if "inference" in config:
        checks.append(inference_checks.check)
    if "benchmarks" in config:
        checks.append(benchmark_checks.check)
    return checks


def check_analysis(config: Mapping[str, Any], samples: Mapping[str, Sample]) -> None:
    """Every cross-check the schemas cannot express; raises ConfigError naming the key."""
    for check in stage_checks(config):
        check(config, samples)


def prepare(
    config: MutableMapping[str, Any],
    search: Iterable[str | os.PathLike[str]] = (),
    source: str = "config",
) -> dict[str, Sample]:
    """Validate a merged config in place (defaults filled), read its sample list and check both.

    The sample list path is looked up in the working directory, then in ``search``, and is
    written back absolute, so a job run from another directory reads the same list.
    """
    validate(config, "config.schema.yaml", source)
    path = resolve_path(config["samples"], search)
    if not path.is_file():
        raise ConfigError(f"{source}: key 'samples': sample list not found: {config['samples']}")
    config["samples"] = str(path.resolve())
    samples = load_samples(config)
    check_analysis(config, samples)
    return samples


def load_analysis(
    paths: list[str | os.PathLike[str]],
    overrides: Mapping[str, Any] | None = None,
    search: Iterable[str | os.PathLike[str]] | None = None,
) -> tuple[dict[str, Any], dict[str, Sample]]:
    """Load config files (later ones merged over earlier ones, then ``overrides``), validate
    and check them: what the workflow does at parse time, without Snakemake.

    A relative sample list is looked up in the working directory, then in ``search``
    (default: the folder above each config file's folder, the project root for
    ``config/*.yaml``).
    """
    config: dict[str, Any] = {}
    for path in paths:
        config = deep_merge(config, read_yaml(path) or {})
    if overrides:
        config = deep_merge(config, overrides)
    if search is None:
        search = [Path(p).resolve().parent.parent for p in paths]
    samples = prepare(config, search, ", ".join(str(p) for p in paths))
    return config, samples
