"""Generated hardware designs: da4ml pipelines, GHDL cycle counts, Yosys synthesis.

* :func:`da4ml_design` turns a post-training quantized MLP (``ap_fixed`` weights, biases and
  layer results; ReLU, linear, or ELU as a lookup table exactly as hls4ml implements it),
  optionally followed by an autoencoder's reconstruction error (:class:`ErrorPath`), into
  da4ml's pipelined design — its stage count and LUT/FF estimate — and writes it as VHDL
  (for GHDL) and Verilog (for Yosys). :func:`fixed_point_forward` is an independent numpy
  model of the same arithmetic, bit for bit.
* :func:`ghdl_pipeline_latency` simulates the VHDL top module in GHDL: one input vector is
  applied before the first clock edge and the rising edges are counted until the output
  equals the design's own bit-exact prediction (registers start undefined, so nothing
  matches before the pipeline has delivered).
* :func:`ghdl_bdt_latency` does the same for conifer's VHDL BDT, from input-valid to
  output-valid.
* :func:`yosys_resources` runs ``synth_xilinx`` on the Verilog and counts LUT/FF/DSP/CARRY
  cells: an independent estimate from an open synthesis tool, not a vendor implementation.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from thetaflow.benchmarking.fixedpoint import FixedType
from thetaflow.core.errors import ThetaflowError

log = logging.getLogger(__name__)

GHDL = ["ghdl"]
GHDL_STD = "--std=08"
MAX_SIM_CYCLES = 1000


class HDLToolError(ThetaflowError, RuntimeError):
    """GHDL or Yosys failed on a generated design; the message names the design and the log."""


class UnsupportedModelError(ThetaflowError, ValueError):
    """A model has no path into a hardware tier (say which layer or family and skip)."""


#: hls4ml's ELU (``nnet::elu`` in nnet_activation.h, Vivado/Vitis templates, hls4ml 1.3):
#: x >= 0 passes unchanged; x < 0 reads entry floor(−x · size/range), clamped to the last, of a
#: table of e^t − 1 at t = −range · i/size (float32 exp, then the table type ap_fixed<18,8>,
#: hls4ml's default ``table_t``); both branches are cast to the activation's result type
ELU_TABLE_SIZE = 1024
ELU_TABLE_RANGE = 8
ELU_TABLE_TYPE = FixedType(18, 8)
#: hidden activations with a path into the da4ml design
DESIGN_ACTIVATIONS = ("relu", "linear", "elu")


def elu_table() -> np.ndarray:
    """hls4ml's ELU table: ``ELU_TABLE_TYPE`` values of e^t − 1 at t = −range·i/size, i < size.

    Computed as hls4ml's C++ does (t in double, rounded to float32; float32 exp; minus 1 in
    double, rounded to float32; truncated to the table type).
    """
    t = (-float(ELU_TABLE_RANGE) * np.arange(ELU_TABLE_SIZE) / float(ELU_TABLE_SIZE)).astype(
        np.float32
    )
    return ELU_TABLE_TYPE.quantize((np.exp(t).astype(np.float64) - 1.0).astype(np.float32))


def elu_index_bits() -> tuple[int, int]:
    """(integer, fractional) bits of the unsigned index variable −x clamped to [0, range):
    its code is floor(−x · size/range), the table row (size and range are powers of two)."""
    return int(math.log2(ELU_TABLE_RANGE)), int(math.log2(ELU_TABLE_SIZE // ELU_TABLE_RANGE))


def hls4ml_elu(x: np.ndarray, rtype: FixedType) -> np.ndarray:
    """ELU of fixed-point values ``x`` as hls4ml computes it, in the result type ``rtype``."""
    table = elu_table()
    _, fractional = elu_index_bits()
    index = np.clip(
        np.floor(-np.asarray(x, np.float64) * 2.0**fractional), 0, ELU_TABLE_SIZE - 1
    ).astype(int)
    return np.where(x >= 0, rtype.quantize(x), rtype.quantize(table[index]))


@dataclass(frozen=True)
class ErrorPath:
    """The autoencoder's reconstruction error in fixed point, after the network.

    With z the quantized input and x̂ the network's output: d = z − x̂ in ``difference``;
    s = d² in ``square``; the error is Σ_j w_j s_j (``mode`` mse or normalised, w_j = 1/n or
    1/(n·scale_j)) or max_j w_j s_j (``mode`` max, w_j = 1/scale_j), the weights in
    ``weight`` and the error in ``error`` (saturating types).
    """

    mode: str
    weights: np.ndarray
    difference: FixedType
    square: FixedType
    weight: FixedType
    error: FixedType

    def describe(self) -> dict:
        """JSON-ready types and weights."""
        return {
            "mode": self.mode,
            "difference": self.difference.hls(),
            "square": self.square.hls(),
            "weight": self.weight.hls(),
            "error": self.error.hls(),
            "weights": [float(w) for w in self.weight.quantize(self.weights)],
        }


@dataclass
class Da4mlDesign:
    """A da4ml pipeline written to ``directory`` (``vhdl/`` and ``verilog/``)."""

    directory: Path
    stages: int
    lut_estimate: float
    ff_estimate: int
    latency_cutoff: float
    comb: Any = field(repr=False)
    seconds: float = 0.0
    #: with an error path: da4ml's stages, LUT and FF estimates of the network alone
    network_only: dict[str, float] | None = None

    def predict(self, Z: np.ndarray) -> np.ndarray:
        """Bit-exact outputs of the design for standardised inputs ``Z`` (n, d_out)."""
        out = self.comb.predict(np.ascontiguousarray(Z, dtype=np.float32))
        return np.asarray(out, dtype=np.float64).reshape(len(Z), -1)


def _kif(ftype: FixedType) -> tuple[int, int, int]:
    """da4ml's (keep-sign, integer without sign, fractional) bits of a type."""
    return int(ftype.signed), ftype.integer - int(ftype.signed), ftype.fractional


def _overflow(ftype: FixedType) -> str:
    return "SAT" if ftype.overflow.startswith("AP_SAT") else "WRAP"


def _check_activations(layers: Sequence[tuple[np.ndarray, np.ndarray, str]], name: str) -> None:
    for k, (_, _, act) in enumerate(layers[:-1]):
        if act not in DESIGN_ACTIVATIONS:
            raise UnsupportedModelError(
                f"{name}: hidden layer {k} uses activation '{act}'; the da4ml tier implements "
                f"{', '.join(DESIGN_ACTIVATIONS)} hidden layers only (ELU as hls4ml's lookup table)"
            )


def _da4ml_elu(x: Any, rtype: FixedType) -> Any:
    """hls4ml's ELU on a da4ml array: a lookup table on the clamped index for x < 0, x cast
    to ``rtype`` for x >= 0, the sign bit of x choosing between them."""
    # deferred: da4ml is a heavy dependency that only the FPGA design tiers use
    from da4ml.trace import FixedVariableArray
    from da4ml.trace.ops import quantize

    integer, fractional = elu_index_bits()
    table = elu_table()

    def negative_branch(
        v: np.ndarray,
    ) -> np.ndarray:  # v: the index variable's values, row / 2^fractional
        return rtype.quantize(
            table[np.clip(np.round(np.asarray(v) * 2.0**fractional), 0, len(table) - 1).astype(int)]
        )

    index = quantize(
        -x, 0, integer, fractional, overflow_mode="SAT"
    )  # floor(−x·size/range), clamped
    negative = index.apply(negative_branch).quantize(*_kif(rtype))
    positive = quantize(x, *_kif(rtype), overflow_mode=_overflow(rtype))
    out = [
        xv.msb_mux(nv, pv)
        for xv, nv, pv in zip(
            x._vars.ravel(), negative._vars.ravel(), positive._vars.ravel(), strict=True
        )
    ]
    return FixedVariableArray(
        np.array(out).reshape(x._vars.shape), x.solver_options, hwconf=x.hwconf
    )


def da4ml_design(
    layers: Sequence[tuple[np.ndarray, np.ndarray, str]],
    ftype: FixedType,
    directory: Path,
    latency_cutoff: float,
    clock_period_ns: float,
    name: str,
    results: Sequence[FixedType] | None = None,
    activations: Sequence[FixedType] | None = None,
    error: ErrorPath | None = None,
) -> Da4mlDesign:
    """Trace a quantized MLP into a da4ml pipeline and write it (VHDL and Verilog).

    Every layer mirrors the hls4ml emulation: inputs, weights and biases in ``ftype``, each
    Dense result in its type of ``results`` (default ``ftype``; truncation, wrap-around or
    saturation as the type says), then the activation: ReLU; ELU as hls4ml's lookup table
    (:func:`hls4ml_elu`), its result in the layer's type of ``activations``; linear. Products
    and sums are exact before each layer's cast (hls4ml casts each product to the accumulator
    type first, so the two can differ in the last bits). A classifier's last activation
    (sigmoid/softmax) is left out, its argument (the logit) is the design's output — a cut on
    it is the same selection as a cut on the sigmoid. With ``error`` the design continues
    into the autoencoder's reconstruction error and outputs that one number.
    """
    # deferred: da4ml is a heavy dependency that only the FPGA design tiers use
    from da4ml.codegen import RTLModel
    from da4ml.trace import FixedVariableArrayInput, comb_trace
    from da4ml.trace.ops import quantize, relu
    from da4ml.trace.pipeline import to_pipeline

    _check_activations(layers, name)
    start = time.perf_counter()
    inp = FixedVariableArrayInput((layers[0][0].shape[0],))
    z = quantize(inp, *_kif(ftype))
    x = z
    for n, (weight, bias, act) in enumerate(layers):
        x = x @ ftype.quantize(weight) + ftype.quantize(bias)
        rtype = results[n] if results is not None else ftype
        x = quantize(x, *_kif(rtype), overflow_mode=_overflow(rtype))
        if n < len(layers) - 1 and act == "relu":
            x = relu(x)
        elif n < len(layers) - 1 and act == "elu":
            x = _da4ml_elu(x, activations[n] if activations is not None else ftype)
    network_only = None
    if error is not None:
        network = comb_trace(inp, x)
        pipe = to_pipeline(network, latency_cutoff, verbose=False)
        network_only = {
            "stages": len(pipe.solutions),
            "lut": float(network.cost),
            "ff": int(pipe.reg_bits),
        }
        x = _da4ml_error(z, x, error)
    comb = comb_trace(inp, x)
    stages = ff = 0
    for flavor in ("vhdl", "verilog"):
        rtl = RTLModel(
            comb,
            "model",
            directory / flavor,
            flavor=flavor,
            latency_cutoff=latency_cutoff,
            clock_period=clock_period_ns,
            print_latency=False,
        )
        rtl.write()
        meta = json.loads((directory / flavor / "metadata.json").read_text())
        stages, ff = int(meta["latency"]), int(meta["reg_bits"])
    design = Da4mlDesign(
        directory,
        stages,
        float(comb.cost),
        ff,
        latency_cutoff,
        comb,
        time.perf_counter() - start,
        network_only,
    )
    log.info(
        "%s: da4ml design with %d pipeline stages, ~%.0f LUT, %d FF (%.1f s)",
        name,
        stages,
        comb.cost,
        ff,
        design.seconds,
    )
    return design


def _da4ml_error(z: Any, xhat: Any, error: ErrorPath) -> Any:
    """The reconstruction error of :class:`ErrorPath` on da4ml arrays (one output)."""
    # deferred: da4ml is a heavy dependency that only the FPGA design tiers use
    from da4ml.trace import FixedVariableArray
    from da4ml.trace.ops import quantize

    d = quantize(z - xhat, *_kif(error.difference), overflow_mode=_overflow(error.difference))
    squares = quantize(d * d, *_kif(error.square), overflow_mode=_overflow(error.square))
    weights = error.weight.quantize(error.weights)
    if error.mode == "max":
        terms = [squares[j] * float(weights[j]) for j in range(len(weights))]
        total = terms[0]
        for term in terms[1:]:
            total = total.max_of(term)
        total = FixedVariableArray(np.array([total]), squares.solver_options, hwconf=squares.hwconf)
    else:
        total = squares @ weights[:, None]
    return quantize(total, *_kif(error.error), overflow_mode=_overflow(error.error))


def fixed_point_forward(
    layers: Sequence[tuple[np.ndarray, np.ndarray, str]],
    ftype: FixedType,
    Z: np.ndarray,
    results: Sequence[FixedType] | None = None,
    activations: Sequence[FixedType] | None = None,
    error: ErrorPath | None = None,
) -> np.ndarray:
    """What :func:`da4ml_design` computes, in numpy with :meth:`FixedType.quantize`: an
    independent model of the design's arithmetic (exact in float64 at these widths)."""
    z = ftype.quantize(np.asarray(Z, np.float64))
    h = z
    for n, (weight, bias, act) in enumerate(layers):
        h = (results[n] if results is not None else ftype).quantize(
            h @ ftype.quantize(weight) + ftype.quantize(bias)
        )
        if n < len(layers) - 1 and act == "relu":
            h = np.maximum(h, 0.0)
        elif n < len(layers) - 1 and act == "elu":
            h = hls4ml_elu(h, activations[n] if activations is not None else ftype)
    if error is None:
        return h
    squares = error.square.quantize(error.difference.quantize(z - h) ** 2)
    terms = squares * error.weight.quantize(error.weights)
    total = terms.max(axis=1) if error.mode == "max" else terms.sum(axis=1)
    return error.error.quantize(total)[:, None]


def _bits(value: float, width: int, frac: int) -> str:
    """Two's-complement (or unsigned) bit string of ``value`` truncated to ``frac`` fractional
    bits."""
    return (
        format(int(np.floor(np.float64(value) * 2.0**frac)) % (1 << width), f"0{width}b")
        if width > 0
        else ""
    )


def _run(cmd: Sequence[str], cwd: Path, what: str, timeout: float) -> str:
    """Run a tool, returning stdout+stderr; a failure raises naming ``what`` and the log."""
    try:
        proc = subprocess.run(
            list(cmd), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise HDLToolError(
            f"{what}: `{' '.join(cmd)}` did not finish in {timeout:g} s (in {cwd})"
        ) from err
    out = proc.stdout + proc.stderr
    with (cwd / f"{Path(cmd[0]).name}-commands.log").open("a") as stream:
        stream.write(f"$ {' '.join(cmd)}\n{out}\n")
    if proc.returncode != 0:
        raise HDLToolError(
            f"{what}: `{' '.join(cmd)}` failed (exit {proc.returncode}) in {cwd}: "
            f"{out.strip()[-800:]}"
        )
    return out


_PIPE_TB = """library ieee;
use ieee.std_logic_1164.all;
entity latency_tb is end entity;
architecture sim of latency_tb is
  signal clk : std_logic := '0';
  signal done : boolean := false;
  signal inp : std_logic_vector({in_hi} downto 0) := "{in_bits}";
  signal outp : std_logic_vector({out_hi} downto 0);
  constant expected : std_logic_vector({out_hi} downto 0) := "{out_bits}";
begin
  clk <= not clk after 2.5 ns when not done else '0';
  dut : entity work.model port map(clk => clk, model_inp => inp, model_out => outp);
  process
  begin
    for n in 1 to {max_cycles} loop
      wait until rising_edge(clk);
      wait for 1 ns;
      if outp = expected then
        report "LATENCY_CYCLES=" & integer'image(n);
        done <= true;
        wait;
      end if;
    end loop;
    report "NO_MATCH" severity failure;
    wait;
  end process;
end architecture;
"""


def ghdl_pipeline_latency(design: Da4mlDesign, z: np.ndarray, timeout: float = 600.0) -> int:
    """Clock cycles from input to output of the da4ml VHDL design, simulated in GHDL.

    ``z`` is one standardised input vector; the expected output is the design's own
    prediction for it, so the count also checks that the VHDL computes it.
    """
    # deferred: da4ml is a heavy dependency that only the FPGA design tiers use
    from da4ml.codegen.rtl.rtl_model import get_io_kifs

    vhdl = design.directory / "vhdl"
    kif_in, kif_out = get_io_kifs(design.comb)
    y = design.predict(z[None, :])[0]
    in_bits = "".join(
        _bits(v, int(k + i + f), int(f))
        for v, k, i, f in reversed(list(zip(z, *kif_in, strict=True)))
    )
    out_bits = "".join(
        _bits(v, int(k + i + f), int(f))
        for v, k, i, f in reversed(list(zip(y, *kif_out, strict=True)))
    )
    (vhdl / "latency_tb.vhd").write_text(
        _PIPE_TB.format(
            in_hi=len(in_bits) - 1,
            in_bits=in_bits,
            out_hi=len(out_bits) - 1,
            out_bits=out_bits,
            max_cycles=MAX_SIM_CYCLES,
        )
    )
    tables = _stage_memfiles(vhdl)
    sources = sorted((vhdl / "src" / "static").glob("*.vhd"))
    sources = [s for s in sources if s.name != "lookup_table.vhd" or tables]
    sources += sorted(
        (vhdl / "src").glob("model_stage*.vhd"), key=lambda p: int(re.sub(r"\D", "", p.stem))
    )
    sources += [vhdl / "src" / "model.vhd", vhdl / "latency_tb.vhd"]
    for source in sources:
        _run(
            [*GHDL, "-a", GHDL_STD, str(source.relative_to(vhdl))],
            vhdl,
            f"GHDL analysis of {source.name}",
            timeout,
        )
    _run(
        [*GHDL, "-e", GHDL_STD, "latency_tb"], vhdl, "GHDL elaboration of the da4ml design", timeout
    )
    out = _run(
        [*GHDL, "-r", GHDL_STD, "latency_tb"], vhdl, "GHDL simulation of the da4ml design", timeout
    )
    return _latency_from(out, vhdl)


def _stage_memfiles(root: Path) -> list[Path]:
    """Copy the design's lookup-table contents (``src/memfiles/*.mem``) into ``root``, where
    the tools run: the generated ROMs name their file without a directory."""
    copies = []
    for mem in sorted((root / "src" / "memfiles").glob("*.mem")):
        shutil.copyfile(mem, root / mem.name)
        copies.append(root / mem.name)
    return copies


def _latency_from(out: str, where: Path) -> int:
    m = re.search(r"LATENCY_CYCLES=(\d+)", out)
    if not m:
        raise HDLToolError(
            f"GHDL simulation in {where} produced no LATENCY_CYCLES line: {out.strip()[-500:]}"
        )
    return int(m.group(1))


_BDT_TB = """library ieee;
use ieee.std_logic_1164.all;
library BDT;
use BDT.Constants.all;
use BDT.Types.all;
entity latency_tb is end entity;
architecture sim of latency_tb is
  signal clk : std_logic := '0';
  signal done : boolean := false;
  signal X : txArray(0 to nFeatures - 1) := (others => to_tx(0));
  signal X_vld : boolean := false;
  signal y : tyArray(0 to nClasses - 1) := (others => to_ty(0));
  signal y_vld : boolArray(0 to nClasses - 1) := (others => false);
begin
  clk <= not clk after 2.5 ns when not done else '0';
  UUT : entity BDT.BDTTop port map(clk, X, X_vld, y, y_vld);
  process
  begin
    for n in 1 to 4 loop
      wait until rising_edge(clk);
    end loop;
    wait for 1 ns;
    X_vld <= true;
    for n in 1 to {max_cycles} loop
      wait until rising_edge(clk);
      wait for 1 ns;
      X_vld <= false;
      if y_vld(0) then
        report "LATENCY_CYCLES=" & integer'image(n);
        done <= true;
        wait;
      end if;
    end loop;
    report "NO_VALID" severity failure;
    wait;
  end process;
end architecture;
"""


def ghdl_bdt_latency(project: Path, timeout: float = 600.0) -> int:
    """Cycles from input-valid to output-valid of a written+compiled conifer VHDL project.

    ``X_vld`` is raised between two clock edges; the edge that samples it counts as cycle 1,
    and the count stops at the first edge after which ``y_vld`` is true.
    """
    (project / "latency_tb.vhd").write_text(_BDT_TB.format(max_cycles=MAX_SIM_CYCLES))
    _run(
        [*GHDL, "-a", GHDL_STD, "--work=xil_defaultlib", "latency_tb.vhd"],
        project,
        "GHDL analysis of the BDT testbench",
        timeout,
    )
    _run(
        [*GHDL, "-e", GHDL_STD, "--work=xil_defaultlib", "latency_tb"],
        project,
        "GHDL elaboration of the BDT",
        timeout,
    )
    out = _run(
        [*GHDL, "-r", GHDL_STD, "--work=xil_defaultlib", "latency_tb"],
        project,
        "GHDL simulation of the BDT",
        timeout,
    )
    return _latency_from(out, project)


def yosys_resources(design: Da4mlDesign, family: str, timeout: float) -> dict[str, int]:
    """LUT/FF/DSP/CARRY cells after Yosys ``synth_xilinx`` of the design's Verilog.

    Lookup tables (ELU) are ROMs with an asynchronous read; they are mapped to logic (LUTs and
    MUXF7-9, as a distributed ROM is built) before ``synth_xilinx``, without merging the next
    pipeline register into them — left to ``synth_xilinx`` they would become block RAMs with
    that register absorbed.
    """
    verilog = design.directory / "verilog"
    static = [
        p for p in sorted((verilog / "src" / "static").glob("*.v")) if p.name != "lookup_table.v"
    ]
    tables = _stage_memfiles(verilog)
    if tables:
        static.append(verilog / "src" / "static" / "lookup_table.v")
    stages = sorted(
        (verilog / "src").glob("model_stage*.v"), key=lambda p: int(re.sub(r"\D", "", p.stem))
    )
    script = verilog / "synth.ys"
    files = " ".join(
        str(p.relative_to(verilog)) for p in [*static, *stages, verilog / "src" / "model.v"]
    )
    # -defer: the ROM module is elaborated with each instance's table file, never with its default
    roms = "hierarchy -top model\nproc\nflatten\nmemory -nomap -nordff\nmemory_map\n"
    read = f"read_verilog -sv -defer {files}\n{roms}" if tables else f"read_verilog -sv {files}\n"
    script.write_text(
        f"{read}synth_xilinx -top model -flatten -family {family}\ntee -o yosys_stat.txt stat\n"
    )
    _run(
        ["yosys", "-q", "-s", script.name],
        verilog,
        "Yosys synth_xilinx of the da4ml design",
        timeout,
    )
    return parse_yosys_stat((verilog / "yosys_stat.txt").read_text())


def parse_yosys_stat(text: str) -> dict[str, int]:
    """Sum Yosys ``stat`` cell counts into LUT, FF, DSP, CARRY and total cells."""
    out = {"lut": 0, "ff": 0, "dsp": 0, "carry": 0, "cells": 0}
    for name, count in re.findall(r"^\s+(\S+)\s+(\d+)\s*$", text, flags=re.M):
        n = int(count)
        if re.match(r"^(\$_?)?LUT\d", name):
            out["lut"] += n
        elif re.match(r"^FD[A-Z]*$", name):
            out["ff"] += n
        elif name.startswith("DSP"):
            out["dsp"] += n
        elif name.startswith("CARRY"):
            out["carry"] += n
    m = re.search(r"Number of cells:\s+(\d+)", text)
    out["cells"] = int(m.group(1)) if m else sum(v for k, v in out.items() if k != "cells")
    return out
