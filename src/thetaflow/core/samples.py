"""The sample list: one :class:`Sample` per entry, its :class:`Kind`, and the questions the
workflow asks of the list (which sample is the main data, which processes a pseudo-data
sample sums, which fit processes a sample splits into)."""

from __future__ import annotations

import difflib
import enum
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from thetaflow.core.config import read_yaml, resolve_path, validate
from thetaflow.core.errors import ConfigError
from thetaflow.core.expressions import Expression, ExpressionError, parse_expression

#: URL schemes read through fsspec (root:// by fsspec-xrootd): not checked for existence here
REMOTE_PREFIXES = ("root://", "http://", "https://", "s3://")
# generator parameters that only one generator model reads
MODEL_SPECIFIC_KEYS = {
    "higgs_mass_gev": "zh",
    "higgs_width_gev": "zh",
    "flavour_fractions": "zjets",
    "generated_flavour_fractions": "zjets",
    "dijet_mass_min_gev": "zjets",
    "dijet_mass_scale_gev": "zjets",
    "top_mass_gev": "ttbar",
    "top_width_gev": "ttbar",
    "resonance_mass_gev": "xzy",
    "resonance_width_gev": "xzy",
    "daughter_mass_gev": "xzy",
    "daughter_width_gev": "xzy",
}
#: The truth a fit-process expression may read: feature-table column -> NanoAOD branch (the
#: number of outgoing b and c partons of the hard process, as MadGraph NanoAOD stores them).
#: Ingestion carries these branches into the feature table of simulated samples.
PROCESS_TRUTH_COLUMNS: Final[dict[str, str]] = {"lhe_nb": "LHE_Nb", "lhe_nc": "LHE_Nc"}


@dataclass(frozen=True)
class FitProcess:
    """One process of the statistical model: a sample, or the part of a sample its truth
    expression ``expr`` selects (None: every event of the sample), with its legend label and
    colour."""

    name: str
    expr: str | None
    label: str
    color: str | None


class Kind(enum.StrEnum):
    """The role of a sample: known physics (signal, background), (pseudo-)data, or the blind
    search's unknown process (bsm: never trained on, never a template, never stacked)."""

    SIGNAL = "signal"
    BACKGROUND = "background"
    DATA = "data"
    BSM = "bsm"


@dataclass(frozen=True)
class Sample:
    """One entry of the sample list, with the derived facts the workflow branches on."""

    name: str
    spec: Mapping[str, Any]

    @property
    def kind(self) -> Kind:
        """What the sample is: signal, background, data or bsm (the blind search's unknown)."""
        return Kind(self.spec["kind"])

    @property
    def is_bsm(self) -> bool:
        """Whether this is the blind search's "unknown" process: never trained on, never a fit
        template, never stacked; it only enters a pseudo-data sample that names it."""
        return self.kind is Kind.BSM

    @property
    def is_standard_model_mc(self) -> bool:
        """Whether this is simulated known physics (kind signal or background)."""
        return self.kind in (Kind.SIGNAL, Kind.BACKGROUND)

    @property
    def is_data(self) -> bool:
        """Whether this is (pseudo-)data: unweighted, no truth, nominal variation only."""
        return self.kind is Kind.DATA

    @property
    def is_generated(self) -> bool:
        """Whether the embedded simulation produces this sample's files."""
        return "generate" in self.spec

    @property
    def is_pseudo_data(self) -> bool:
        """Whether this sample is pseudo-data summed from the MC processes."""
        return self.is_generated and "pseudo_data" in self.spec["generate"]

    @property
    def label(self) -> str:
        """Legend label."""
        return str(self.spec.get("label", self.name))

    @property
    def color(self) -> str | None:
        """Legend colour, if the sample list gives one."""
        color = self.spec.get("color")
        return None if color is None else str(color)

    @property
    def fit_processes(self) -> tuple[FitProcess, ...]:
        """The fit processes the sample splits into (``processes:``, in list order); without
        ``processes:``, the sample itself."""
        listed = self.spec.get("processes")
        if not listed:
            return (FitProcess(self.name, None, self.label, self.color),)
        return tuple(
            FitProcess(name, str(p["expr"]), str(p.get("label", name)), p.get("color"))
            for name, p in listed.items()
        )


def load_samples(
    config: Mapping, search: Iterable[str | os.PathLike[str]] = ()
) -> dict[str, Sample]:
    """Read and validate the sample list named by ``config['samples']`` (a relative path is
    looked up in the working directory, then in ``search``). A job's settings
    (:mod:`thetaflow.core.settings`) hold the specs themselves, already validated: name -> spec.
    """
    if isinstance(config["samples"], Mapping):
        return {name: Sample(name, spec) for name, spec in config["samples"].items()}
    path = resolve_path(config["samples"], search)
    raw = read_yaml(path)
    validate(raw, "samples.schema.yaml", str(path))
    return {name: Sample(name, spec) for name, spec in raw.items()}


def check_samples(samples: Mapping[str, Sample]) -> None:
    """Cross-checks of the whole list: a signal exists, and each entry is consistent."""
    if not any(s.kind is Kind.SIGNAL for s in samples.values()):
        raise ConfigError("sample list: no sample has kind 'signal'")
    for sample in samples.values():
        check_sample(sample, samples)


def check_sample(sample: Sample, samples: Mapping[str, Sample]) -> None:
    """Cross-checks of one sample-list entry the schema cannot express."""
    key = f"samples.{sample.name}"
    spec = sample.spec
    if sample.is_data and "xsec_pb" in spec:
        raise ConfigError(f"sample list key '{key}.xsec_pb': data samples have no cross-section")
    if not sample.is_data and "xsec_pb" not in spec:
        raise ConfigError(
            f"sample list key '{key}': simulated samples need 'xsec_pb' (σ × BR in pb)"
        )
    if sample.is_pseudo_data != (sample.is_data and sample.is_generated):
        raise ConfigError(
            f"sample list key '{key}.generate': pseudo_data is for kind 'data', "
            "a generator model for kind 'signal' or 'background'"
        )
    if "processes" in spec:
        _check_fit_processes(sample, samples)
    gen = spec.get("generate", {})
    if sample.is_pseudo_data:
        for proc in gen["pseudo_data"].get("processes", []):
            if proc not in samples or samples[proc].is_data or not samples[proc].is_generated:
                raise ConfigError(
                    f"sample list key '{key}.generate.pseudo_data.processes': '{proc}' is not a "
                    "generated MC sample of this list"
                )
        known = {
            p.name
            for name in pseudo_data_processes(sample, samples)
            for p in samples[name].fit_processes
        }
        for proc in gen["pseudo_data"].get("normalisation", {}):
            if proc not in known:
                close = difflib.get_close_matches(proc, known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(
                    f"sample list key '{key}.generate.pseudo_data.normalisation.{proc}': '{proc}' "
                    f"is not a fit process of the samples this pseudo-data sums{hint}; they are "
                    f"{', '.join(sorted(known))}"
                )
    elif sample.is_generated:
        for param, model in MODEL_SPECIFIC_KEYS.items():
            if param in gen and gen["model"] != model:
                raise ConfigError(
                    f"sample list key '{key}.generate.{param}': a parameter of model '{model}', "
                    f"not of model '{gen['model']}'"
                )
    for i, path in enumerate(spec.get("files", [])):
        if not path.startswith(REMOTE_PREFIXES) and not Path(path).exists():
            raise ConfigError(f"sample list key '{key}.files[{i}]': file not found: {path}")


def _check_fit_processes(sample: Sample, samples: Mapping[str, Sample]) -> None:
    """``processes:`` only on signal and background samples, with expressions over
    :data:`PROCESS_TRUTH_COLUMNS` and names no other sample or fit process has."""
    key = f"samples.{sample.name}.processes"
    if not sample.is_standard_model_mc:
        raise ConfigError(
            f"sample list key '{key}': only signal and background samples split into fit "
            f"processes, not kind '{sample.kind}'"
        )
    for proc in sample.fit_processes:
        _process_expression(sample, proc)
        for other in samples.values():
            if other.name == sample.name:
                continue
            if proc.name == other.name:
                raise ConfigError(
                    f"sample list key '{key}.{proc.name}': the name of sample '{other.name}'; "
                    "fit processes and samples need names of their own"
                )
            if proc.name in other.spec.get("processes", {}):
                raise ConfigError(
                    f"sample list key '{key}.{proc.name}': also a fit process of sample "
                    f"'{other.name}'; fit processes need names of their own"
                )


def _process_expression(sample: Sample, proc: FitProcess) -> Expression | None:
    """The parsed truth expression of a fit process (None: every event of the sample); an
    unknown name is a ConfigError naming the key."""
    if proc.expr is None:
        return None
    try:
        return parse_expression(
            proc.expr,
            allowed_names=PROCESS_TRUTH_COLUMNS,
            context=f"samples.{sample.name}.processes.{proc.name}.expr",
        )
    except ExpressionError as err:
        raise ConfigError(
            f"sample list key '{err.context}': expression {proc.expr!r}: {err.detail}"
        ) from err


def process_masks(sample: Sample, columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Which events of ``sample`` belong to each of its fit processes: process name -> mask.

    ``columns`` maps the names of :data:`PROCESS_TRUTH_COLUMNS` (and maybe others: a feature
    table) to arrays of the sample's events; the expressions of ``processes:`` are evaluated
    on them. Without ``processes:`` the sample is one process holding every event. The
    processes must partition the events: an event in no process or in two is a ConfigError
    naming the sample, the processes and that event's truth.
    """
    first_column = next(iter(columns), None)
    if first_column is None:
        raise ValueError(f"sample '{sample.name}': no columns to tell its events' processes")
    n = len(columns[first_column])
    masks: dict[str, np.ndarray] = {}
    for proc in sample.fit_processes:
        expression = _process_expression(sample, proc)
        if expression is None:
            masks[proc.name] = np.ones(n, bool)
            continue
        namespace = {
            name: np.asarray(columns[name]) for name in expression.names if name in columns
        }
        selected = np.asarray(expression.evaluate(namespace))
        if selected.dtype != bool:
            raise ConfigError(
                f"sample list key '{expression.context}': {proc.expr!r} must select events "
                f"(a comparison, true or false per event), not give {selected.dtype} values"
            )
        masks[proc.name] = np.broadcast_to(selected, (n,)).copy()
    in_processes = np.sum(list(masks.values()), axis=0)
    for bad, what in ((in_processes == 0, "in none"), (in_processes > 1, "in more than one")):
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            truth = ", ".join(
                f"{name}={np.asarray(columns[name])[first]}"
                for name in PROCESS_TRUTH_COLUMNS
                if name in columns
            )
            involved = [name for name, mask in masks.items() if mask[first]] or list(masks)
            raise ConfigError(
                f"sample list key 'samples.{sample.name}.processes': the fit processes must "
                f"split the events, but {int(bad.sum())} of {n} events are {what} of "
                f"{', '.join(involved)} (the first has {truth or 'no truth columns'})"
            )
    return masks


def main_data_sample(config: Mapping, samples: Mapping[str, Sample]) -> str | None:
    """The data sample of the main result (fit, control plots): ``inference.data`` if set,
    else the only data sample, else the one named ``data``; None if there is no data sample.

    Other data samples (for example a pseudo-data set with a BSM process injected for the
    blind search) are only read by the stages that ask for them.
    """
    named = config.get("inference", {}).get("data")
    if named:
        if named not in samples or not samples[named].is_data:
            raise ConfigError(
                f"config key 'inference.data': '{named}' is not a data sample of the sample list"
            )
        return str(named)
    data = [s.name for s in samples.values() if s.is_data]
    if len(data) == 1:
        return data[0]
    return "data" if "data" in data else (data[0] if data else None)


def pseudo_data_processes(sample: Sample, samples: Mapping[str, Sample]) -> list[str]:
    """The MC samples summed into a pseudo-data sample.

    Default: every generated signal and background sample; a ``bsm`` sample enters only a
    pseudo-data sample that lists it in ``processes`` (signal injection for the blind search).
    """
    listed = sample.spec["generate"]["pseudo_data"].get("processes")
    if listed:
        return list(listed)
    return [s.name for s in samples.values() if s.is_generated and s.is_standard_model_mc]


def pseudo_data_factors(sample: Sample, samples: Mapping[str, Sample]) -> dict[str, float]:
    """The true normalisation factor of every fit process of the samples a pseudo-data sample
    sums: its ``normalisation`` entry (default 1), times ``mu_injected`` for the processes of
    signal samples. The simulation draws the pseudo-data with them; a closure test compares
    the fitted values with them."""
    pseudo_data = sample.spec["generate"]["pseudo_data"]
    normalisation = pseudo_data.get("normalisation", {})
    factors = {}
    for name in pseudo_data_processes(sample, samples):
        mu = pseudo_data["mu_injected"] if samples[name].kind is Kind.SIGNAL else 1.0
        for proc in samples[name].fit_processes:
            factors[proc.name] = mu * normalisation.get(proc.name, 1.0)
    return factors
