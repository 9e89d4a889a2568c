"""Fine histograms of a discriminant per process and template, and their rebinning.

The fine histograms (``hist``, weighted storage) are the stored product: one per process and
template (``nominal``, ``{systematic}_up``/``_down``) plus the pseudo-data. Their axis joins a
uniform grid over the discriminant's range and the quantiles of the nominal signal, so both
the signal peak (scores pile up near 1) and the background-only regions are resolved. Values
outside the range are clipped into the edge bins, so no event is lost.

The model is built from a coarser binning chosen here (:func:`choose_bins`): ``uniform`` or
``equal_signal`` bins, then neighbouring bins are merged until every bin has at least
``min_background`` expected background events and a relative MC statistical uncertainty on the
background of at most ``max_stat_uncertainty`` — so no bin is empty and the per-bin MC-stat
nuisance parameters stay meaningful.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import hist
import numpy as np
import pandas as pd

from thetaflow.core.errors import ConfigError
from thetaflow.core.regions import REGION_COLUMN, analysis_regions
from thetaflow.core.samples import PROCESS_TRUTH_COLUMNS, Sample, main_data_sample, process_masks
from thetaflow.inference.discriminants import (
    COUNT,
    Discriminant,
    binning_settings,
    discriminant,
    feature_path,
    fit_processes,
    read_values,
    region_observable,
)

log = logging.getLogger(__name__)

NOMINAL = "nominal"


def histogram(
    edges: np.ndarray | Sequence[float],
    values: np.ndarray | Sequence[float],
    variances: np.ndarray | Sequence[float],
) -> hist.Hist:
    """A weighted-storage histogram over ``edges`` holding ``values`` and ``variances``.

    The one histogram format of the templates: the sum of weights and of squared weights per
    bin, no under- or overflow. Contents are set exactly (no square root and back).
    """
    h = hist.Hist(
        hist.axis.Variable(edges, underflow=False, overflow=False), storage=hist.storage.Weight()
    )
    h[...] = np.stack([np.asarray(values, float), np.asarray(variances, float)], axis=-1)
    return h


def set_values(h: hist.Hist, values: np.ndarray | Sequence[float]) -> None:
    """Replace the sums of weights of ``h`` in place (its variances are kept)."""
    h[...] = np.stack([np.asarray(values, float), variances(h)], axis=-1)


def variances(h: hist.Hist) -> np.ndarray:
    """The sums of squared weights of a template (always stored: weighted storage)."""
    result = h.variances()
    if result is None:
        raise TypeError("a template needs weighted storage (hist.storage.Weight)")
    return result


def counts_histogram(edges: np.ndarray | Sequence[float], counts: np.ndarray) -> hist.Hist:
    """The (pseudo-)data histogram: event counts with their Poisson variance."""
    return histogram(edges, counts, counts)


def rebinned(h: hist.Hist, boundaries: Sequence[int]) -> hist.Hist:
    """``h`` on the coarse bins whose edges are its edges at fine-bin indices ``boundaries``.

    Values and variances of each group of fine bins are summed with NumPy (pairwise
    summation) rather than ``hist.rebin``, whose running sums round differently: the model
    and every fit number stay as they were.
    """
    values, sumw2 = np.array(h.values()), np.array(variances(h))
    return histogram(
        h.axes[0].edges[list(boundaries)],
        np.array([values[a:b].sum() for a, b in pairwise(boundaries)]),
        np.array([sumw2[a:b].sum() for a, b in pairwise(boundaries)]),
    )


@dataclass
class ProcessTemplates:
    """The templates of one simulated process, keyed ``nominal``, ``{systematic}_up``, ..."""

    kind: str
    templates: dict[str, hist.Hist] = field(default_factory=dict)

    @property
    def nominal(self) -> hist.Hist:
        """The nominal template."""
        return self.templates[NOMINAL]


@dataclass
class TemplateSet:
    """Every histogram of one discriminant on a common binning (the data's)."""

    discriminant: str
    label: str
    data_sample: str
    data: hist.Hist
    processes: dict[str, ProcessTemplates]

    @property
    def edges(self) -> np.ndarray:
        """The common bin edges."""
        return np.asarray(self.data.axes[0].edges)

    @property
    def signal(self) -> list[str]:
        """The signal processes, in order."""
        return [p for p, t in self.processes.items() if t.kind == "signal"]

    @property
    def background(self) -> list[str]:
        """The background processes, in order."""
        return [p for p, t in self.processes.items() if t.kind == "background"]

    def total(self, names: Sequence[str]) -> hist.Hist:
        """Nominal sum over processes ``names``."""
        n = len(self.edges) - 1
        result = histogram(self.edges, np.zeros(n), np.zeros(n))
        for p in names:
            result += self.processes[p].nominal
        return result

    def rebinned(self, boundaries: Sequence[int]) -> TemplateSet:
        """The set on the coarse bins whose edges are the fine edges at ``boundaries``."""
        return TemplateSet(
            self.discriminant,
            self.label,
            self.data_sample,
            rebinned(self.data, boundaries),
            {
                p: ProcessTemplates(
                    t.kind, {k: rebinned(v, boundaries) for k, v in t.templates.items()}
                )
                for p, t in self.processes.items()
            },
        )

    def to_json(self) -> dict:
        """JSON-ready form: edges, data counts, and per template ``sumw`` and ``sumw2``."""
        return {
            "discriminant": self.discriminant,
            "label": self.label,
            "edges": self.edges.tolist(),
            "data": {"sample": self.data_sample, "counts": self.data.values().tolist()},
            "processes": {
                p: {
                    "kind": t.kind,
                    "templates": {
                        k: {"sumw": v.values().tolist(), "sumw2": variances(v).tolist()}
                        for k, v in t.templates.items()
                    },
                }
                for p, t in self.processes.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping) -> TemplateSet:
        """The set written by :meth:`to_json`."""
        edges = np.asarray(data["edges"], dtype=float)
        return cls(
            data["discriminant"],
            data["label"],
            data["data"]["sample"],
            counts_histogram(edges, np.asarray(data["data"]["counts"], dtype=float)),
            {
                p: ProcessTemplates(
                    t["kind"],
                    {
                        k: histogram(
                            edges,
                            np.asarray(v["sumw"], dtype=float),
                            np.asarray(v["sumw2"], dtype=float),
                        )
                        for k, v in t["templates"].items()
                    },
                )
                for p, t in data["processes"].items()
            },
        )


# -- inputs -------------------------------------------------------------------------------------


def systematic_samples(spec: Mapping, processes: Sequence[str]) -> list[str]:
    """The processes a systematic or normalisation uncertainty acts on (default: all)."""
    listed = spec.get("samples")
    if listed is None:
        return list(processes)
    chosen = set(listed)  # a set: this runs for every process of a 200-sample list
    return [p for p in processes if p in chosen]


def fit_data_sample(config: Mapping, samples: Mapping[str, Sample]) -> str:
    """The data sample the fit uses (:func:`main_data_sample`); the fit cannot run without."""
    data = main_data_sample(config, samples)
    if data is None:
        raise ConfigError("sample list: the fit needs a data sample (kind 'data')")
    return data


def region_names(config: Mapping) -> list[str] | None:
    """The analysis regions a model has one channel each of, or None without ``regions:``
    (the model is then the one region of all selected events, named after its discriminant).
    """
    if "regions" not in config:
        return None
    return [r.name for r in analysis_regions(config)]


def model_observables(config: Mapping, name: str) -> list[str]:
    """The discriminants (or :data:`COUNT`) the model of discriminant ``name`` fits, over its
    regions, in order."""
    regions = region_names(config)
    if regions is None:
        return [name]
    return list(dict.fromkeys(region_observable(config, name, r) for r in regions))


def template_inputs(
    config: Mapping, samples: Mapping[str, Sample], name: str
) -> dict[str, list[str]]:
    """Every file the fine histograms of the model of discriminant ``name`` read, keyed by
    sample (every observable of every region).

    One function for Snakemake's input and for the builder, so the two cannot disagree.
    """
    signal, background = fit_processes(samples)
    systematics = config["inference"]["systematics"]
    shape = {
        syst: set(systematic_samples(spec, process_names(samples)))
        for syst, spec in systematics.items()
        if spec["type"] == "shape"
    }
    files: dict[str, list[str]] = {}
    data = fit_data_sample(config, samples)
    for observable in model_observables(config, name):
        disc = discriminant(config, observable)
        for sample in signal + background:
            processes = {p.name for p in samples[sample].fit_processes}
            variations = [NOMINAL] + [
                spec[d]
                for syst, spec in systematics.items()
                if syst in shape and processes & shape[syst]
                for d in ("up", "down")
            ]
            files.setdefault(sample, []).extend(_paths(disc, sample, variations))
        files.setdefault(data, []).extend(_paths(disc, data, [NOMINAL]))
    return {sample: list(dict.fromkeys(listed)) for sample, listed in files.items()}


def process_names(samples: Mapping[str, Sample]) -> list[str]:
    """Every fit process (templates of the model) of the signal and background samples, in
    sample-list order: a sample's own name, or the processes it is split into by truth."""
    signal, background = fit_processes(samples)
    return [p.name for s in signal + background for p in samples[s].fit_processes]


def _paths(disc: Discriminant, sample: str, variations: Sequence[str]) -> list[str]:
    """Feature table (and values file, unless a feature) of each variation of ``sample``."""
    paths = []
    for v in variations:
        paths.append(feature_path(sample, v))
        if disc.source not in ("feature", COUNT):
            paths.append(disc.path(sample, v))
    return paths


def fine_edges(
    signal_values: np.ndarray, signal_weights: np.ndarray, value_range: Sequence[float], n_fine: int
) -> np.ndarray:
    """Uniform edges over ``value_range`` joined with the weighted quantiles of the signal."""
    lo, hi = float(value_range[0]), float(value_range[1])
    uniform = np.linspace(lo, hi, n_fine + 1)
    inside = (signal_values > lo) & (signal_values < hi) & (signal_weights > 0)
    if not inside.any():
        return uniform
    order = np.argsort(signal_values[inside])
    values = signal_values[inside][order]
    cumulative = np.cumsum(signal_weights[inside][order])
    cumulative /= cumulative[-1]
    quantiles = np.interp(np.arange(1, n_fine) / n_fine, cumulative, values)
    edges = np.unique(np.concatenate([uniform, quantiles]))
    # drop edges closer than a tiny fraction of the range (ties in the quantiles)
    keep = np.concatenate([[True], np.diff(edges) > 1e-9 * (hi - lo)])
    edges = edges[keep]
    edges[-1] = hi
    return edges


def _fill(edges: np.ndarray, values: np.ndarray, weights: np.ndarray) -> hist.Hist:
    """Weighted histogram with values clipped into the range (no under/overflow loss)."""
    n = len(edges) - 1
    h = histogram(edges, np.zeros(n), np.zeros(n))
    top = np.nextafter(edges[-1], edges[0])
    h.fill(np.clip(values, edges[0], top), weight=weights)
    return h


def build_templates(
    config: Mapping, samples: Mapping[str, Sample], name: str, region: str | None = None
) -> TemplateSet:
    """Fill the fine histograms of discriminant ``name`` (paths relative to the working dir).

    With ``region``: only the events the ingestion labelled with that region, and the
    region's observable (:func:`region_observable`: ``name``, another discriminant, or one
    bin). A sample split into fit processes by truth (``processes:`` of the sample list)
    gives one template per process.
    """
    inf = config["inference"]
    observable = name if region is None else region_observable(config, name, region)
    disc = discriminant(config, observable)
    signal, background = fit_processes(samples)
    systematics = inf["systematics"]
    shape = {s: spec for s, spec in systematics.items() if spec["type"] == "shape"}
    weight = {s: spec for s, spec in systematics.items() if spec["type"] == "weight"}
    all_processes = process_names(samples)
    where = f"region '{region}'" if region else f"discriminant '{name}'"

    def load(sample: str, variation: str, columns: Sequence[str]) -> dict[str, pd.DataFrame]:
        """Values and weight ``columns`` of one sample and variation, in ``region``, per
        fit process of the sample."""
        spec = samples[sample]
        split = len(spec.fit_processes) > 1
        labels = ([REGION_COLUMN] if region else []) + (
            list(PROCESS_TRUTH_COLUMNS) if split else []
        )
        table = read_values(
            disc, disc.path(sample, variation), feature_path(sample, variation), columns, labels
        )
        if region:
            table = table[table[REGION_COLUMN].to_numpy() == region]
        if not split:
            return {spec.fit_processes[0].name: table}
        masks = process_masks(spec, {c: table[c].to_numpy() for c in PROCESS_TRUTH_COLUMNS})
        return {process: table[mask] for process, mask in masks.items()}

    def weight_columns(process: str) -> list[str]:
        return ["weight"] + [
            spec[d]
            for spec in weight.values()
            if process in systematic_samples(spec, all_processes)
            for d in ("up", "down")
        ]

    nominal: dict[str, pd.DataFrame] = {}
    kinds: dict[str, str] = {}
    for sample in signal + background:
        columns = list(
            dict.fromkeys(c for p in samples[sample].fit_processes for c in weight_columns(p.name))
        )
        for process, table in load(sample, NOMINAL, columns).items():
            nominal[process] = table
            kinds[process] = samples[sample].kind
    signal_tables = [nominal[p] for p in nominal if kinds[p] == "signal"]
    signal_values = np.concatenate([t["value"].to_numpy() for t in signal_tables] or [[]])
    signal_weights = np.concatenate([t["weight"].to_numpy() for t in signal_tables] or [[]])
    edges = fine_edges(
        signal_values,
        signal_weights,
        disc.value_range,
        binning_settings(config, observable, region)["fine_bins"],
    )
    result: dict[str, ProcessTemplates] = {}
    for sample in signal + background:
        varied = {
            (syst, d): load(sample, spec[d], ["weight"])
            for syst, spec in shape.items()
            if {p.name for p in samples[sample].fit_processes}
            & set(systematic_samples(spec, all_processes))
            for d in ("up", "down")
        }
        for fit_process in samples[sample].fit_processes:
            process = fit_process.name
            table = nominal[process]
            templates = {
                NOMINAL: _fill(edges, table["value"].to_numpy(), table["weight"].to_numpy())
            }
            for syst, spec in weight.items():
                if process in systematic_samples(spec, all_processes):
                    for d in ("up", "down"):
                        templates[f"{syst}_{d}"] = _fill(
                            edges, table["value"].to_numpy(), table[spec[d]].to_numpy()
                        )
            for syst, spec in shape.items():
                if process in systematic_samples(spec, all_processes):
                    for d in ("up", "down"):
                        other = varied[syst, d][process]
                        templates[f"{syst}_{d}"] = _fill(
                            edges, other["value"].to_numpy(), other["weight"].to_numpy()
                        )
            result[process] = ProcessTemplates(kinds[process], templates)
            yield_ = templates[NOMINAL].values().sum()
            log.info("%s: %s: %d events, nominal yield %.3f", where, process, len(table), yield_)
    data_name = fit_data_sample(config, samples)
    (data,) = load(data_name, NOMINAL, ["weight"]).values()
    counts = _fill(edges, data["value"].to_numpy(), data["weight"].to_numpy()).values()
    log.info("%s: %s: %d events in %d fine bins", where, data_name, counts.sum(), len(edges) - 1)
    label = disc.label if region is None else f"{disc.label} ({region})"
    return TemplateSet(observable, label, data_name, counts_histogram(edges, counts), result)


# -- binning ------------------------------------------------------------------------------------


def _initial_boundaries(fine: TemplateSet, binning: Mapping) -> list[int]:
    """Fine-bin indices of the coarse edges before the background constraints are applied."""
    n_fine = len(fine.edges) - 1
    n_bins = binning["n_bins"]
    if binning["strategy"] == "uniform":
        targets = np.linspace(fine.edges[0], fine.edges[-1], n_bins + 1)[1:-1]
        inner = np.abs(fine.edges[None, :] - targets[:, None]).argmin(axis=1)
    elif not fine.signal or fine.total(fine.signal).values().sum() <= 0:
        return _initial_boundaries(fine, {**binning, "strategy": "uniform"})  # no signal here
    else:  # equal_signal
        signal = np.clip(fine.total(fine.signal).values(), 0, None)
        cumulative = np.cumsum(signal) / max(signal.sum(), 1e-300)
        inner = np.searchsorted(cumulative, np.arange(1, n_bins) / n_bins) + 1
    return sorted({0, n_fine, *[int(i) for i in inner if 0 < i < n_fine]})


def choose_bins(fine: TemplateSet, binning: Mapping) -> list[int]:
    """Fine-bin indices of the model's bin edges (see the module docstring)."""
    boundaries = _initial_boundaries(fine, binning)
    background = fine.total(fine.background)
    values, sumw2 = np.array(background.values()), np.array(variances(background))
    min_bkg = binning["min_background"]
    max_rel = binning["max_stat_uncertainty"]
    while len(boundaries) > 2:
        b = np.array([values[a:c].sum() for a, c in pairwise(boundaries)])
        v = np.array([sumw2[a:c].sum() for a, c in pairwise(boundaries)])
        rel = np.where(b > 0, np.sqrt(v) / np.where(b > 0, b, 1), np.inf)
        bad = np.flatnonzero((b < min_bkg) | (rel > max_rel))
        if not len(bad):
            break
        i = bad[np.argmin(b[bad])]  # the emptiest offending bin is merged first
        if i == 0:
            neighbour = 1
        elif i == len(b) - 1:
            neighbour = i - 1
        else:
            neighbour = i - 1 if b[i - 1] <= b[i + 1] else i + 1
        del boundaries[max(i, neighbour)]  # the edge between the two bins
    return boundaries
