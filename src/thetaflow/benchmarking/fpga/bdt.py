"""The conifer path of the xgboost BDT: the VHDL project of a conifer model simulated in
GHDL, and :func:`bdt_tiers`, the three tiers of a BDT (precision scan of conifer's C++
emulation, built once for every precision by :mod:`~thetaflow.benchmarking.fpga.conifer_cpp`;
GHDL cycles of the VHDL beside conifer's formula; conifer's resource estimator)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from thetaflow.benchmarking.fixedpoint import FixedType
from thetaflow.benchmarking.fpga.conifer_cpp import build_emulation, save_ensemble
from thetaflow.benchmarking.fpga.models import load_bdt_ensemble
from thetaflow.benchmarking.fpga.results import Fidelity, Hardware, ModelTiers
from thetaflow.benchmarking.fpga.scan import (
    check_default,
    check_input_range,
    precision_scan,
    scan_types,
    sigmoid,
)
from thetaflow.benchmarking.fpga.settings import FPGASettings
from thetaflow.benchmarking.hdl import HDLToolError, ghdl_bdt_latency
from thetaflow.benchmarking.tools import emulation_environment, missing_tools, require_tools


def conifer_vhdl(ensemble: dict, precision: str, workdir: Path) -> Any:
    """conifer's VHDL project of ``ensemble`` at ``precision``, compiled in GHDL."""
    import conifer  # deferred: optional FPGA dependency, only the BDT tiers need it
    from conifer.backends.vhdl import simulators  # deferred with conifer

    cfg = conifer.backends.vhdl.auto_config()
    cfg["OutputDir"] = str(workdir)
    cfg["Precision"] = precision
    with emulation_environment(workdir):
        simulators.set_simulator("ghdl")
        model = conifer.model.make_model(copy.deepcopy(ensemble), cfg)
        if not model.compile():
            raise HDLToolError(
                f"conifer VHDL project in {workdir}: GHDL compilation failed (see ghdl_compile.log "
                "there)"
            )
    return model


def vhdl_predict(model: Any, Z: np.ndarray, workdir: Path) -> np.ndarray:
    """The VHDL BDT's fixed-point logit for standardised ``Z``, simulated in GHDL."""
    with emulation_environment(workdir):
        return np.asarray(
            model.decision_function(np.ascontiguousarray(Z, dtype=np.float64)), dtype=np.float64
        ).reshape(len(Z), -1)[:, 0]


def bdt_tiers(
    directory: Path,
    features: Sequence[str],
    train: pd.DataFrame,
    test: pd.DataFrame,
    labels: np.ndarray,
    settings: FPGASettings,
    workdir: Path,
    name: str,
) -> ModelTiers:
    """The three tiers of an xgboost BDT (conifer C++ emulation, conifer VHDL in GHDL)."""
    import xgboost as xgb  # deferred: heavy, only the BDT path needs it

    require_tools(["g++", "nlohmann-json"], f"the conifer emulation of '{name}'")
    Xtrain = train[list(features)].to_numpy(dtype=np.float64)
    mean, scale = Xtrain.mean(axis=0), Xtrain.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    booster, ensemble = load_bdt_ensemble(directory, mean, scale)
    X = test[list(features)].to_numpy(dtype=np.float32)
    Z = np.ascontiguousarray((X.astype(np.float64) - mean) / scale)
    profile = check_input_range(Z, features, settings, name)
    float_logit = np.asarray(booster.predict(xgb.DMatrix(X), output_margin=True), dtype=np.float64)
    float_score = sigmoid(float_logit)
    emulation = build_emulation(
        ["double", *(ftype.hls() for ftype in scan_types(settings))],
        workdir / "conifer_cpp",
        settings.tool_timeout_s,
    )
    model_json = save_ensemble(ensemble, workdir / "conifer_cpp" / "model.json")
    double = emulation.predict(model_json, "double", Z)
    conversion = float(np.abs(double - float_logit).max())

    emulated: dict[int, np.ndarray] = {}

    def emulate(ftype: FixedType) -> tuple[np.ndarray, dict]:
        start = time.perf_counter()
        emulated[ftype.width] = emulation.predict(model_json, ftype.hls(), Z)
        return emulated[ftype.width], {"predict_s": time.perf_counter() - start}

    rows = precision_scan(settings, emulate, float_score, labels, sigmoid, name)
    default = check_default(rows, settings, name)
    n_trees, depth = int(ensemble["n_trees"]), int(ensemble["max_depth"])
    fidelity = Fidelity(
        method="conifer C++ backend, bit-accurate ap_fixed emulation (g++); inputs, thresholds "
        "and scores in the scanned type; score = sigmoid of the fixed-point sum",
        default=default,
        scan=rows,
        input_profile=profile,
        details={
            "conversion_check": {"conifer_double_vs_xgboost_max_abs_logit_difference": conversion},
            "emulation_build": emulation.to_json(),
        },
    )
    ensemble_info = {"n_trees": n_trees, "max_depth": depth, "n_features": len(features)}
    formula = 2 + depth + math.ceil(math.log2(n_trees))
    latency: dict[str, Any] = {"available": False}
    resources: dict[str, Any] = {"label": "estimates", "available": False}
    if settings.latency or settings.resources:
        missing = missing_tools(["ghdl"])
        vhdl = None
        if missing:
            latency["note"] = (
                "GHDL (Debian package ghdl) not installed: the VHDL BDT was not simulated"
            )
        else:
            vhdl = conifer_vhdl(
                ensemble, settings.default_precision.hls(), workdir / "conifer_vhdl"
            )
        if settings.latency and vhdl is not None:
            cycles = ghdl_bdt_latency(workdir / "conifer_vhdl", settings.tool_timeout_s)
            n_check = min(len(Z), 64)
            sim = vhdl_predict(vhdl, Z[:n_check], workdir)
            cpp = emulated[settings.default_precision.width][:n_check]
            latency = {
                "available": True,
                "method": "conifer VHDL backend simulated in GHDL, input-valid to output-valid",
                "precision": settings.default_precision.hls(),
                "cycles": cycles,
                "ns": cycles * settings.clock_period_ns,
                "formula_2_depth_log2trees": formula,
                "conifer_report_formula_1_depth_log2trees": 1
                + depth
                + math.ceil(math.log2(n_trees)),
                "formula_matches": cycles == formula,
                "vhdl_vs_cpp_identical_fraction": float(np.mean(sim == cpp)),
                "vhdl_checked_events": n_check,
                "clock_mhz": settings.clock_mhz,
                "assumption": f"assuming timing closure at {settings.clock_mhz:g} MHz",
            }
        if settings.resources and vhdl is not None:
            # deferred: optional FPGA dependency, only this estimate needs it
            from conifer.utils.performance.prediction import performance_estimates

            est = performance_estimates(vhdl)
            resources = {
                "label": "estimates",
                "available": True,
                "conifer": {
                    "lut": int(est["lut"]),
                    "ff": int(est["ff"]),
                    "latency_cycles": int(est["latency"]),
                    "method": "conifer's fitted VHDL-backend estimator (experimental)",
                },
                "yosys": {
                    "available": False,
                    "note": "not run: Debian's Yosys has no VHDL front end (ghdl plugin)",
                },
            }
    else:
        latency["note"] = resources["note"] = (
            "switched off (benchmarks.fpga.latency and .resources are false)"
        )
    return ModelTiers(fidelity, Hardware(latency, resources), ensemble=ensemble_info)
