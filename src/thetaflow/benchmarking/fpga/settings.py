"""Settings of the FPGA benchmark: the ``benchmarks.fpga`` config block parsed into
:class:`FPGASettings`, the model families with an FPGA path, the libraries and system tools
the benchmark reports, and :class:`FidelityError`, raised when the emulation at the default
precision agrees with the float model less than required."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from thetaflow.benchmarking.fixedpoint import FixedType, PrecisionError
from thetaflow.core.errors import ThetaflowError

#: model families with an FPGA path and the emulator of each
FPGA_PATHS = {"nn": "hls4ml", "bdt": "conifer", "autoencoder": "hls4ml"}
LIBRARIES = ("hls4ml", "conifer", "da4ml", "tensorflow", "keras", "xgboost", "numpy")
TOOLS = ("g++", "ghdl", "yosys", "nlohmann-json")


class FidelityError(ThetaflowError, RuntimeError):
    """The fixed-point emulation agrees with the float model less than required."""


@dataclass(frozen=True)
class FPGASettings:
    """The ``benchmarks.fpga`` config block, parsed."""

    clock_mhz: float
    default_precision: FixedType
    scan_widths: tuple[int, ...]
    output_precision: FixedType
    min_agreement: float
    background_efficiency: float
    events: int
    latency: bool
    resources: bool
    da4ml_latency_cutoff: float
    yosys_max_luts: float
    yosys_family: str
    tool_timeout_s: float
    allow_input_overflow: bool
    seed: int
    layer_integer_bits: str = "profile"

    @classmethod
    def from_config(cls, config: Mapping) -> FPGASettings:
        """From ``benchmarks.fpga`` (schema defaults), errors naming the key."""
        spec = config["benchmarks"]["fpga"]
        default = FixedType.parse(spec["default_precision"], "benchmarks.fpga.default_precision")
        out = FixedType.parse(spec["output_precision"], "benchmarks.fpga.output_precision")
        widths = tuple(int(w) for w in spec["scan_widths"])
        bad = [w for w in widths if w <= default.integer]
        if bad:
            raise PrecisionError(
                f"benchmarks.fpga.scan_widths: widths {bad} leave no fractional bit with the "
                f"{default.integer} "
                f"integer bits of default_precision {default.hls()}"
            )
        return cls(
            clock_mhz=float(spec["clock_mhz"]),
            default_precision=default,
            scan_widths=tuple(sorted(set(widths) | {default.width})),
            output_precision=out,
            min_agreement=float(spec["min_agreement"]),
            background_efficiency=float(spec["background_efficiency"]),
            events=int(spec["events"]),
            latency=bool(spec["latency"]),
            resources=bool(spec["resources"]),
            da4ml_latency_cutoff=float(spec["da4ml_latency_cutoff"]),
            yosys_max_luts=float(spec["yosys_max_luts"]),
            yosys_family=str(spec["yosys_family"]),
            tool_timeout_s=float(spec["tool_timeout_s"]),
            allow_input_overflow=bool(spec["allow_input_overflow"]),
            seed=int(config["benchmarks"]["seed"]),
            layer_integer_bits=str(spec.get("layer_integer_bits", "profile")),
        )

    @property
    def clock_period_ns(self) -> float:
        """Clock period in ns."""
        return 1e3 / self.clock_mhz
