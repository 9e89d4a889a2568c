"""Tiers 2 and 3 of a network: the post-training quantized network (and, for the
autoencoder, its reconstruction error) as a da4ml pipeline, checked against the float model
and the numpy fixed-point model, its clock cycles counted in a GHDL simulation, and its
resource estimates from da4ml's cost model and Yosys ``synth_xilinx``."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from thetaflow.benchmarking.fixedpoint import fidelity
from thetaflow.benchmarking.fpga.models import DenseNetwork
from thetaflow.benchmarking.fpga.quantization import error_path, layer_ranges, layer_types
from thetaflow.benchmarking.fpga.results import Hardware
from thetaflow.benchmarking.fpga.scan import sigmoid
from thetaflow.benchmarking.fpga.settings import FPGASettings
from thetaflow.benchmarking.hdl import (
    UnsupportedModelError,
    da4ml_design,
    fixed_point_forward,
    ghdl_pipeline_latency,
    yosys_resources,
)
from thetaflow.benchmarking.tools import missing_tools, tool_version

log = logging.getLogger(__name__)


def network_hardware(
    net: DenseNetwork,
    Z: np.ndarray,
    labels: np.ndarray,
    float_score: np.ndarray,
    settings: FPGASettings,
    workdir: Path,
) -> Hardware:
    """Tiers 2 and 3 of a network: da4ml design, GHDL cycles, resource estimates."""
    latency: dict[str, Any] = {"available": False}
    resources: dict[str, Any] = {"label": "estimates", "available": False}
    if not (settings.latency or settings.resources):
        note = "switched off (benchmarks.fpga.latency and .resources are false)"
        return Hardware({**latency, "note": note}, {**resources, "note": note})
    ftype = settings.default_precision
    try:
        types = layer_types(net, layer_ranges(net, Z), ftype, settings.layer_integer_bits)
        error = (
            error_path(net, Z, ftype, settings.layer_integer_bits)
            if net.kind == "autoencoder"
            else None
        )
        design = da4ml_design(
            net.layers,
            ftype,
            workdir / "da4ml",
            settings.da4ml_latency_cutoff,
            settings.clock_period_ns,
            net.name,
            types.dense,
            types.activation,
            error,
        )
    except UnsupportedModelError as err:
        note = f"not available: {err}"
        log.warning("%s", note)
        return Hardware({**latency, "note": note}, {**resources, "note": note})
    outputs = design.predict(Z)
    reference = fixed_point_forward(net.layers, ftype, Z, types.dense, types.activation, error)
    design_fid: dict[str, Any]
    if net.kind == "classifier" and outputs.shape[1] > 1:
        design_fid = {
            "argmax_agreement": float(np.mean(outputs.argmax(1) == net.forward(Z).argmax(1)))
        }
    else:
        design_score = outputs[:, 0] if error is not None else sigmoid(outputs)[:, 0]
        design_fid = fidelity(
            float_score, design_score, labels, settings.background_efficiency
        ).as_dict()
    activations = sorted({act for _, _, act in net.layers[:-1]})
    if error is not None:
        what = (
            "da4ml pipeline of the post-training quantized autoencoder and its reconstruction "
            "error "
            f"({error.mode}: difference, square, weighted "
            f"{'maximum' if error.mode == 'max' else 'sum'}; "
            "output = the error a trigger cuts on)"
        )
    else:
        what = "da4ml pipeline of the post-training quantized network (logit output, no sigmoid)"
    if "elu" in activations:
        what += ", ELU as hls4ml's lookup table (1024 entries over [-8, 0))"
    design_info = {
        "precision": ftype.hls(),
        "da4ml_stages": design.stages,
        "latency_cutoff": design.latency_cutoff,
        "design_fidelity": design_fid,
        "hidden_activations": activations,
        "identical_to_numpy_model_fraction": float(np.mean(np.all(outputs == reference, axis=1))),
    }
    if error is not None and design.network_only is not None:  # set together by da4ml_design
        design_info["error_path"] = error.describe()
        design_info["network_only_da4ml_stages"] = design.network_only["stages"]
    if settings.latency:
        latency = {
            "available": True,
            "method": f"{what}, cycles counted in a GHDL simulation of its VHDL",
            **design_info,
            "clock_mhz": settings.clock_mhz,
            "assumption": f"assuming timing closure at {settings.clock_mhz:g} MHz",
        }
        missing = missing_tools(["ghdl"])
        if missing:
            latency.update(
                cycles=None,
                ns=None,
                note="GHDL (Debian package ghdl) not installed: cycles not simulated",
            )
        else:
            cycles = ghdl_pipeline_latency(design, Z[0], settings.tool_timeout_s)
            relation = (
                "the input register adds one cycle to da4ml's stage count"
                if cycles == design.stages + 1
                else f"da4ml reports {design.stages} stages"
            )
            latency.update(cycles=cycles, ns=cycles * settings.clock_period_ns, note=relation)
    if settings.resources:
        resources = {
            "label": "estimates",
            "available": True,
            "da4ml": {
                "lut": design.lut_estimate,
                "ff": design.ff_estimate,
                "dsp": 0,
                "method": "da4ml cost model (constant multiplications as shift-add, no DSP; "
                "lookup tables as distributed ROM)",
            },
        }
        if design.network_only is not None:
            resources["da4ml"]["network_only"] = {
                "lut": design.network_only["lut"],
                "ff": design.network_only["ff"],
                "stages": design.network_only["stages"],
            }
        resources["yosys"] = _yosys(design, settings, net.name)
    return Hardware(latency, resources)


def _yosys(design: Any, settings: FPGASettings, name: str) -> dict:
    if missing_tools(["yosys"]):
        return {"available": False, "note": "Yosys (Debian package yosys) not installed"}
    if design.lut_estimate > settings.yosys_max_luts:
        return {
            "available": False,
            "note": (
                f"skipped: da4ml estimates {design.lut_estimate:.0f} LUT, above "
                "benchmarks.fpga.yosys_max_luts = "
                f"{settings.yosys_max_luts:g} (Yosys synthesis time grows with the design; raise "
                "the cap to run it)"
            ),
        }
    start = time.perf_counter()
    cells = yosys_resources(design, settings.yosys_family, settings.tool_timeout_s)
    return {
        "available": True,
        **cells,
        "seconds": time.perf_counter() - start,
        "method": f"Yosys synth_xilinx -family {settings.yosys_family} -flatten (open-source "
        "synthesis, no place-and-route)",
        "version": tool_version("yosys"),
    }
