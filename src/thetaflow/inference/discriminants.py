"""What the fit reads: the discriminants named in config and the samples they are filled from.

A discriminant is either a model score (a model of ``ml.models`` or the ``autoencoder``; its
values live in the score files, ``core.paths.SCORE_FILE``) or one column of the
feature tables (``feature: m_bb_gev``) or of the b-jet regression outputs
(``feature: m_bb_regressed_gev``). Score and regression files hold one row per feature-table
row, in the same order; the loader checks the event ids agree, so a stale file is caught.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from thetaflow.core import paths
from thetaflow.core.errors import ConfigError, ThetaflowError
from thetaflow.core.io import read_table
from thetaflow.core.samples import Sample
from thetaflow.ml.folds import ID_COLUMNS

log = logging.getLogger(__name__)

#: Score producers besides the supervised models of ``ml.models``: name -> config section.
UNSUPERVISED_SCORES = {"autoencoder": "anomaly"}
#: Columns written by the b-jet energy regression (core.paths.REGRESSED_MBB).
REGRESSION_COLUMNS = ("m_bb_regressed_gev",)
#: Range of every score (classifier probabilities, the autoencoder's mapped score).
SCORE_RANGE = (0.0, 1.0)
#: The observable of a region fitted as one bin: its event count (``inference.regions``).
COUNT = "count"
#: The value ``inference.regions.<region>.observable`` takes for "the fitted discriminant".
OWN_DISCRIMINANT = "discriminant"


class InferenceInputError(ThetaflowError, ValueError):
    """An input of the fit is missing or inconsistent; the message names the file or key."""


@dataclass(frozen=True)
class Discriminant:
    """One fitted observable: where its values come from and the range its histograms cover."""

    name: str
    source: str  # "score", "feature", "regression" or "count"
    column: str
    value_range: tuple[float, float]
    label: str

    def path(self, sample: str, variation: str) -> str:
        """The file holding this discriminant's values for one sample and variation."""
        if self.source == "score":
            return paths.SCORE_FILE.format(model=self.name, sample=sample, variation=variation)
        if self.source == "regression":
            return paths.REGRESSED_MBB.format(sample=sample, variation=variation)
        return feature_path(sample, variation)


def feature_path(sample: str, variation: str) -> str:
    """The feature table of one sample and variation (weights and ids live there)."""
    return paths.FEATURE_TABLE.format(sample=sample, variation=variation)


def scan_figure_name(parameter: str) -> str:
    """File-name-safe form of a parameter name (``staterror_nn[3]`` -> ``staterror_nn_3``),
    for the scan figures ``core.paths.SCAN_FIGURE`` (here, not in :mod:`.beyond`, so that
    the workflow names its outputs without importing cabinetry)."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", parameter).strip("_")


def pair_name(first: str, second: str) -> str:
    """The key of the 2D scan of two parameters among the scans' figures (its figure is
    ``core.paths.SCAN_FIGURE`` with this as the parameter: ``scan_2d_mu_vs_mu_zz.png``)."""
    return f"2d_{first}_vs_{second}"


def discriminant(config: Mapping, name: str) -> Discriminant:
    """The discriminant ``name`` of ``inference.discriminants``, checked against the config;
    :data:`COUNT` is the one-bin observable of a region's event count."""
    if name == COUNT:
        return Discriminant(COUNT, COUNT, COUNT, (0.0, 1.0), "events")
    key = f"inference.discriminants.{name}"
    spec = config["inference"]["discriminants"][name]
    column = spec.get("feature")
    if column is None:
        models = config.get("ml", {}).get("models", {})
        if name not in models and UNSUPERVISED_SCORES.get(name) not in config:
            known = sorted(models) + [
                s for s, section in UNSUPERVISED_SCORES.items() if section in config
            ]
            raise ConfigError(
                f"config key '{key}': no scores exist for '{name}': it is neither a model of "
                f"'ml.models' nor a configured unsupervised score ({', '.join(known) or 'none'}); "
                "for a feature give 'feature: <column>'"
            )
        value_range = tuple(spec.get("range", SCORE_RANGE))
        return Discriminant(name, "score", "score", value_range, spec.get("label", f"{name} score"))
    if column in REGRESSION_COLUMNS:
        if "regression" not in config:
            raise ConfigError(
                f"config key '{key}.feature': '{column}' needs the 'regression' section"
            )
        source = "regression"
    elif column in config["features"]:
        source = "feature"
    else:
        raise ConfigError(
            f"config key '{key}.feature': '{column}' is neither in 'features' nor a regression "
            f"output ({', '.join(REGRESSION_COLUMNS)})"
        )
    if "range" not in spec:
        raise ConfigError(
            f"config key '{key}.range': a feature discriminant needs its histogram range "
            "[low, high]"
        )
    return Discriminant(name, source, column, tuple(spec["range"]), spec.get("label", column))


def binning_settings(config: Mapping, name: str, region: str | None = None) -> dict:
    """``inference.binning`` with the discriminant's own ``binning`` entries on top, then
    those of ``inference.regions.<region>``; the :data:`COUNT` observable has one bin."""
    inf = config["inference"]
    if name == COUNT:
        return {**inf["binning"], "strategy": "uniform", "n_bins": 1, "fine_bins": 1}
    own = inf["discriminants"][name].get("binning", {})
    regional = inf.get("regions", {}).get(region, {}).get("binning", {}) if region else {}
    return {**inf["binning"], **own, **regional}


def region_observable(config: Mapping, name: str, region: str) -> str:
    """What the model of discriminant ``name`` fits in ``region``: ``name`` itself unless
    ``inference.regions.<region>.observable`` names another discriminant or :data:`COUNT`."""
    spec = config["inference"].get("regions", {}).get(region, {})
    observable = spec.get("observable", OWN_DISCRIMINANT)
    return name if observable == OWN_DISCRIMINANT else observable


def fit_processes(samples: Mapping[str, Sample]) -> tuple[list[str], list[str]]:
    """(signal, background) sample names that become fit templates, in sample-list order.

    Only kinds ``signal`` and ``background`` are templates; data, and any other kind (for
    example an unmodelled BSM process kept for a blind search), never are.
    """
    signal = [s.name for s in samples.values() if s.kind == "signal"]
    background = [s.name for s in samples.values() if s.kind == "background"]
    return signal, background


def read_values(
    disc: Discriminant,
    values_path: str,
    features_path: str,
    weight_columns: Sequence[str],
    label_columns: Sequence[str] = (),
) -> pd.DataFrame:
    """The discriminant values (column ``value``) and weight columns of one sample and
    variation, with ``label_columns`` of the feature table (region, truth) as they are.

    Score and regression files are aligned row by row with the feature table; their event ids
    must agree, otherwise the file is stale (written from other feature tables) and named.
    """
    columns = [*ID_COLUMNS, *weight_columns, *label_columns] + (
        [disc.column] if disc.source == "feature" else []
    )
    table = _read(features_path, columns, disc)
    if disc.source == "feature":
        return _values(table[disc.column], table, weight_columns, label_columns)
    if disc.source == COUNT:  # one bin: every event at its centre
        return _values(pd.Series(np.full(len(table), 0.5)), table, weight_columns, label_columns)
    if not Path(values_path).exists():
        raise InferenceInputError(
            f"discriminant '{disc.name}' has no values: {values_path} not found"
        )
    other = _read(values_path, [*ID_COLUMNS, disc.column], disc)
    if len(other) != len(table) or any(
        not np.array_equal(other[c].to_numpy(), table[c].to_numpy()) for c in ID_COLUMNS
    ):
        raise InferenceInputError(
            f"{values_path}: its events do not match {features_path} "
            f"({len(other)} vs {len(table)} rows); rerun the step that wrote it"
        )
    return _values(other[disc.column], table, weight_columns, label_columns)


def _read(path: str, columns: Sequence[str], disc: Discriminant) -> pd.DataFrame:
    """Columns of a parquet file; a missing file is named with the discriminant."""
    try:
        return read_table(path, columns)
    except FileNotFoundError as err:
        raise InferenceInputError(f"{path}: not found (discriminant '{disc.name}')") from err


def _values(
    values: pd.Series,
    table: pd.DataFrame,
    weight_columns: Sequence[str],
    label_columns: Sequence[str],
) -> pd.DataFrame:
    """The table :func:`read_values` returns: ``value`` and the weight columns as float64,
    the label columns as read."""
    return pd.DataFrame(
        {
            "value": values.to_numpy(dtype=np.float64),
            **{c: table[c].to_numpy(dtype=np.float64) for c in weight_columns},
            **{c: table[c].to_numpy() for c in label_columns},
        }
    )


def closure_discriminants(config: Mapping) -> list[str]:
    """Discriminants validated with Asimov fits and toys (default: headline and reference)."""
    inf = config["inference"]
    listed = inf["closure"].get("discriminants")
    return list(
        dict.fromkeys(listed if listed is not None else [inf["headline"], inf["reference"]])
    )
