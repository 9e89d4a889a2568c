"""FPGA-latency benchmark: three labelled tiers per model, no vendor tools.

1. **Fidelity (exact)** — bit-accurate fixed-point emulation compared with the float model on
   the events of one test fold: hls4ml (C++ emulation built with g++) for the NN and the
   autoencoder, conifer's C++ backend for the BDT, over a precision scan ``ap_fixed<W,I>``.
   Agreement is the fraction of events on the same side of the working-point cut; the run
   fails below ``benchmarks.fpga.min_agreement`` at the default precision.
2. **Latency in clock cycles of a generated design** (exact for that design; in ns assuming
   timing closure at ``clock_mhz``): for networks, the post-training quantized network as a
   da4ml pipeline (ELU hidden layers as hls4ml's lookup table; for the autoencoder the design
   goes on to its reconstruction error, the number a trigger cuts on), its cycles simulated
   in GHDL; for the BDT, conifer's VHDL simulated in GHDL from input-valid to output-valid,
   beside conifer's formula.
3. **Resource estimates** (labelled estimates): da4ml's LUT/FF cost model, Yosys
   ``synth_xilinx`` on the generated Verilog as an independent cross-check, conifer's
   estimator for the BDT.

Inputs. Every firmware model here takes *standardised* inputs, ``z = (x − μ)/σ``, computed
upstream of it (as a trigger's input scaling would): for the NN μ, σ are its own
``Normalization`` layer, for the autoencoder its recorded standardisation, for the BDT the
training folds' mean and standard deviation, with every split threshold transformed the same
way (exact in float). :func:`~thetaflow.benchmarking.fixedpoint.profile_inputs` reports any
input the chosen type cannot represent.

Modules. :mod:`~thetaflow.benchmarking.fpga.settings` (the ``benchmarks.fpga`` block),
:mod:`~thetaflow.benchmarking.fpga.results` (typed tier results),
:mod:`~thetaflow.benchmarking.fpga.models` (the networks and the BDT read from their model
directories), :mod:`~thetaflow.benchmarking.fpga.quantization` (per-layer fixed-point types),
:mod:`~thetaflow.benchmarking.fpga.scan` (tier 1 precision scan and checks),
:mod:`~thetaflow.benchmarking.fpga.networks` (hls4ml: tier 1 of a network, its three tiers),
:mod:`~thetaflow.benchmarking.fpga.design` (da4ml, GHDL, Yosys: tiers 2 and 3 of a network),
:mod:`~thetaflow.benchmarking.fpga.conifer_cpp` (conifer's C++ emulation of every precision
from one g++ build), :mod:`~thetaflow.benchmarking.fpga.bdt` (conifer: the three tiers of the
BDT) and :mod:`~thetaflow.benchmarking.fpga.run` (the workflow entry points). This package
re-exports what the workflow scripts, benchmarks and tests use.
"""

from __future__ import annotations

from thetaflow.benchmarking.fpga.bdt import bdt_tiers, conifer_vhdl
from thetaflow.benchmarking.fpga.conifer_cpp import ConiferEmulation, build_emulation, save_ensemble
from thetaflow.benchmarking.fpga.design import network_hardware
from thetaflow.benchmarking.fpga.models import DenseNetwork, load_bdt_ensemble
from thetaflow.benchmarking.fpga.networks import hls4ml_emulate, network_tiers
from thetaflow.benchmarking.fpga.quantization import (
    LayerTypes,
    error_path,
    layer_ranges,
    layer_types,
)
from thetaflow.benchmarking.fpga.results import ModelTiers
from thetaflow.benchmarking.fpga.run import run_fpga_benchmark, run_reference
from thetaflow.benchmarking.fpga.scan import check_default, check_input_range
from thetaflow.benchmarking.fpga.settings import FidelityError, FPGASettings

__all__ = [
    "ConiferEmulation",
    "DenseNetwork",
    "FPGASettings",
    "FidelityError",
    "LayerTypes",
    "ModelTiers",
    "bdt_tiers",
    "build_emulation",
    "check_default",
    "check_input_range",
    "conifer_vhdl",
    "error_path",
    "hls4ml_emulate",
    "layer_ranges",
    "layer_types",
    "load_bdt_ensemble",
    "network_hardware",
    "network_tiers",
    "run_fpga_benchmark",
    "run_reference",
    "save_ensemble",
]
