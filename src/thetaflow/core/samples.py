"""The sample list: one :class:`Sample` per entry, its :class:`Kind`, and the questions the
workflow asks of the list (which sample is the main data, which processes a pseudo-data
sample sums)."""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thetaflow.core.config import read_yaml, resolve_path, validate
from thetaflow.core.errors import ConfigError

REMOTE_PREFIXES = ("root://", "http://", "https://", "s3://", "xrootd://")
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
    gen = spec.get("generate", {})
    if sample.is_pseudo_data:
        for proc in gen["pseudo_data"].get("processes", []):
            if proc not in samples or samples[proc].is_data or not samples[proc].is_generated:
                raise ConfigError(
                    f"sample list key '{key}.generate.pseudo_data.processes': '{proc}' is not a "
                    "generated MC sample of this list"
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
