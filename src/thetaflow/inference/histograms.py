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

import hist
import numpy as np

from thetaflow.core.io import read_json, write_json
from thetaflow.core.samples import Sample, main_data_sample
from thetaflow.inference.discriminants import (
    Discriminant,
    binning_settings,
    discriminant,
    feature_path,
    fit_processes,
    read_values,
)

log = logging.getLogger(__name__)

NOMINAL = "nominal"


@dataclass
class Template:
    """Sum of weights and of squared weights per bin."""

    sumw: np.ndarray
    sumw2: np.ndarray

    def merged(self, groups: Sequence[np.ndarray]) -> Template:
        """The template with the fine bins of each group summed into one bin."""
        return Template(
            np.array([self.sumw[g].sum() for g in groups]),
            np.array([self.sumw2[g].sum() for g in groups]),
        )


@dataclass
class ProcessTemplates:
    """The templates of one simulated process, keyed ``nominal``, ``{systematic}_up``, ..."""

    kind: str
    templates: dict[str, Template] = field(default_factory=dict)

    @property
    def nominal(self) -> Template:
        return self.templates[NOMINAL]


@dataclass
class TemplateSet:
    """Every histogram of one discriminant on a common binning."""

    discriminant: str
    label: str
    edges: np.ndarray
    data_sample: str
    data: np.ndarray
    processes: dict[str, ProcessTemplates]

    @property
    def signal(self) -> list[str]:
        return [p for p, t in self.processes.items() if t.kind == "signal"]

    @property
    def background(self) -> list[str]:
        return [p for p, t in self.processes.items() if t.kind == "background"]

    def total(self, names: Sequence[str]) -> Template:
        """Nominal sum over processes ``names``."""
        n = len(self.edges) - 1
        sumw, sumw2 = np.zeros(n), np.zeros(n)
        for p in names:
            sumw += self.processes[p].nominal.sumw
            sumw2 += self.processes[p].nominal.sumw2
        return Template(sumw, sumw2)

    def rebinned(self, boundaries: Sequence[int]) -> TemplateSet:
        """The set on the coarse bins whose edges are the fine edges at ``boundaries``."""
        groups = [np.arange(a, b) for a, b in zip(boundaries[:-1], boundaries[1:])]
        return TemplateSet(
            self.discriminant,
            self.label,
            self.edges[list(boundaries)],
            self.data_sample,
            np.array([self.data[g].sum() for g in groups]),
            {
                p: ProcessTemplates(t.kind, {k: v.merged(groups) for k, v in t.templates.items()})
                for p, t in self.processes.items()
            },
        )

    def to_json(self) -> dict:
        return {
            "discriminant": self.discriminant,
            "label": self.label,
            "edges": self.edges.tolist(),
            "data": {"sample": self.data_sample, "counts": self.data.tolist()},
            "processes": {
                p: {
                    "kind": t.kind,
                    "templates": {
                        k: {"sumw": v.sumw.tolist(), "sumw2": v.sumw2.tolist()}
                        for k, v in t.templates.items()
                    },
                }
                for p, t in self.processes.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping) -> TemplateSet:
        return cls(
            data["discriminant"],
            data["label"],
            np.asarray(data["edges"], dtype=float),
            data["data"]["sample"],
            np.asarray(data["data"]["counts"], dtype=float),
            {
                p: ProcessTemplates(
                    t["kind"],
                    {
                        k: Template(
                            np.asarray(v["sumw"], dtype=float), np.asarray(v["sumw2"], dtype=float)
                        )
                        for k, v in t["templates"].items()
                    },
                )
                for p, t in data["processes"].items()
            },
        )

    def save(self, path: str) -> None:
        write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str) -> TemplateSet:
        return cls.from_json(read_json(path))


# -- inputs -------------------------------------------------------------------------------------


def systematic_samples(spec: Mapping, processes: Sequence[str]) -> list[str]:
    """The processes a systematic or normalisation uncertainty acts on (default: all)."""
    listed = spec.get("samples")
    if listed is None:
        return list(processes)
    chosen = set(listed)  # a set: this runs for every process of a 200-sample list
    return [p for p in processes if p in chosen]


def template_inputs(
    config: Mapping, samples: Mapping[str, Sample], name: str
) -> dict[str, list[str]]:
    """Every file the fine histograms of discriminant ``name`` read, keyed by sample.

    One function for Snakemake's input and for the builder, so the two cannot disagree.
    """
    disc = discriminant(config, name)
    signal, background = fit_processes(samples)
    systematics = config["inference"]["systematics"]
    processes = signal + background
    shape = {
        syst: set(systematic_samples(spec, processes))
        for syst, spec in systematics.items()
        if spec["type"] == "shape"
    }
    files: dict[str, list[str]] = {}
    for process in processes:
        variations = [NOMINAL] + [
            spec[d]
            for syst, spec in systematics.items()
            if syst in shape and process in shape[syst]
            for d in ("up", "down")
        ]
        files[process] = _paths(disc, process, variations)
    data = main_data_sample(config, samples)
    files[data] = _paths(disc, data, [NOMINAL])
    return files


def _paths(disc: Discriminant, sample: str, variations: Sequence[str]) -> list[str]:
    paths = []
    for v in variations:
        paths.append(feature_path(sample, v))
        if disc.source != "feature":
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


def _fill(edges: np.ndarray, values: np.ndarray, weights: np.ndarray) -> Template:
    """Weighted histogram with values clipped into the range (no under/overflow loss)."""
    h = hist.Hist(
        hist.axis.Variable(edges, underflow=False, overflow=False), storage=hist.storage.Weight()
    )
    top = np.nextafter(edges[-1], edges[0])
    h.fill(np.clip(values, edges[0], top), weight=weights)
    return Template(h.values().copy(), h.variances().copy())


def build_templates(config: Mapping, samples: Mapping[str, Sample], name: str) -> TemplateSet:
    """Fill the fine histograms of discriminant ``name`` (paths relative to the working dir)."""
    inf = config["inference"]
    disc = discriminant(config, name)
    signal, background = fit_processes(samples)
    processes = signal + background
    systematics = inf["systematics"]
    shape = {s: spec for s, spec in systematics.items() if spec["type"] == "shape"}
    weight = {s: spec for s, spec in systematics.items() if spec["type"] == "weight"}

    def load(sample: str, variation: str, columns: Sequence[str]):
        return read_values(
            disc, disc.path(sample, variation), feature_path(sample, variation), list(columns)
        )

    nominal = {}
    for p in processes:
        columns = ["weight"] + [
            spec[d]
            for spec in weight.values()
            if p in systematic_samples(spec, processes)
            for d in ("up", "down")
        ]
        nominal[p] = load(p, NOMINAL, columns)
    sig = [nominal[p] for p in signal]
    edges = fine_edges(
        np.concatenate([t["value"].to_numpy() for t in sig]),
        np.concatenate([t["weight"].to_numpy() for t in sig]),
        disc.value_range,
        binning_settings(config, name)["fine_bins"],
    )
    result: dict[str, ProcessTemplates] = {}
    for p in processes:
        table = nominal[p]
        templates = {NOMINAL: _fill(edges, table["value"].to_numpy(), table["weight"].to_numpy())}
        for syst, spec in weight.items():
            if p in systematic_samples(spec, processes):
                for d in ("up", "down"):
                    templates[f"{syst}_{d}"] = _fill(
                        edges, table["value"].to_numpy(), table[spec[d]].to_numpy()
                    )
        for syst, spec in shape.items():
            if p in systematic_samples(spec, processes):
                for d in ("up", "down"):
                    varied = load(p, spec[d], ["weight"])
                    templates[f"{syst}_{d}"] = _fill(
                        edges, varied["value"].to_numpy(), varied["weight"].to_numpy()
                    )
        result[p] = ProcessTemplates(samples[p].kind, templates)
        log.info("%s: %d events, nominal yield %.3f", p, len(table), templates[NOMINAL].sumw.sum())
    data_name = main_data_sample(config, samples)
    data = load(data_name, NOMINAL, ["weight"])
    counts = _fill(edges, data["value"].to_numpy(), data["weight"].to_numpy()).sumw
    log.info("%s: %d events in %d fine bins", data_name, counts.sum(), len(edges) - 1)
    return TemplateSet(name, disc.label, edges, data_name, counts, result)


# -- binning ------------------------------------------------------------------------------------


def _initial_boundaries(fine: TemplateSet, binning: Mapping) -> list[int]:
    """Fine-bin indices of the coarse edges before the background constraints are applied."""
    n_fine = len(fine.edges) - 1
    n_bins = binning["n_bins"]
    if binning["strategy"] == "uniform":
        targets = np.linspace(fine.edges[0], fine.edges[-1], n_bins + 1)[1:-1]
        inner = np.abs(fine.edges[None, :] - targets[:, None]).argmin(axis=1)
    else:  # equal_signal
        signal = np.clip(fine.total(fine.signal).sumw, 0, None)
        cumulative = np.cumsum(signal) / max(signal.sum(), 1e-300)
        inner = np.searchsorted(cumulative, np.arange(1, n_bins) / n_bins) + 1
    return sorted({0, n_fine, *[int(i) for i in inner if 0 < i < n_fine]})


def choose_bins(fine: TemplateSet, binning: Mapping) -> list[int]:
    """Fine-bin indices of the model's bin edges (see the module docstring)."""
    boundaries = _initial_boundaries(fine, binning)
    background = fine.total(fine.background)
    min_bkg = binning["min_background"]
    max_rel = binning["max_stat_uncertainty"]
    while len(boundaries) > 2:
        b = np.array([background.sumw[a:c].sum() for a, c in zip(boundaries[:-1], boundaries[1:])])
        v = np.array([background.sumw2[a:c].sum() for a, c in zip(boundaries[:-1], boundaries[1:])])
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
