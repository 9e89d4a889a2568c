"""GPU and FPGA benchmark library: timing, fixed point, emulation, GHDL cycles, bad inputs.

The FPGA tests compile tiny models with g++ (hls4ml, conifer) and simulate them in GHDL; the
Debian packages come from workflow/install_system_packages.sh. No test needs a GPU: the GPU
benchmark is run with CUDA hidden and must say that no GPU was present.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from thetaflow.benchmarking import fpga, tools
from thetaflow.benchmarking.fixedpoint import FixedType, PrecisionError, fidelity, profile_inputs
from thetaflow.benchmarking.hdl import ghdl_bdt_latency, parse_yosys_stat
from thetaflow.benchmarking.timing import BenchmarkError, TimingSettings, time_calls

SEED = 7


def settings(**overrides: object) -> fpga.FPGASettings:
    base = {
        "clock_mhz": 200.0,
        "default_precision": FixedType.parse("ap_fixed<16,6>"),
        "scan_widths": (10, 16),
        "output_precision": FixedType.parse("ap_ufixed<16,0,AP_RND,AP_SAT>"),
        "min_agreement": 0.99,
        "background_efficiency": 0.1,
        "events": 600,
        "latency": True,
        "resources": True,
        "da4ml_latency_cutoff": 3.0,
        "yosys_max_luts": 1e9,
        "yosys_family": "xcup",
        "tool_timeout_s": 300.0,
        "allow_input_overflow": False,
        "seed": SEED,
    }
    base.update(overrides)
    return fpga.FPGASettings(**base)  # type: ignore[arg-type]


def toy(n: int = 600, d: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    Z = rng.normal(size=(n, d)).astype(np.float32)
    y = (Z[:, 0] + 0.8 * Z[:, 1] - 0.5 * Z[:, 2] + 0.5 * rng.normal(size=n) > 0).astype(int)
    return Z, y


def tiny_network() -> fpga.DenseNetwork:
    """4-8-1 ReLU/sigmoid network whose logit follows the toy's teacher."""
    rng = np.random.default_rng(SEED)
    W1 = rng.normal(scale=0.6, size=(4, 8))
    W1[:, 0] = [1.0, 0.8, -0.5, 0.0]
    W2 = np.zeros((8, 1))
    W2[0, 0] = 2.0
    W2[1:, 0] = rng.normal(scale=0.1, size=7)
    return fpga.DenseNetwork(
        "tiny",
        "classifier",
        ("a", "b", "c", "d"),
        np.zeros(4),
        np.ones(4),
        [(W1, np.zeros(8), "relu"), (W2, np.array([0.1]), "sigmoid")],
    )


# ----------------------------------------------------------------------------- timing


def test_timing_percentiles_and_throughput() -> None:
    result = time_calls(
        lambda: sum(range(100)),
        10,
        TimingSettings(warmup=2, min_calls=15, min_seconds=0.0, max_seconds=30.0),
        "toy",
    )
    assert result.calls >= 15
    assert 0 < result.p50_s <= result.p90_s <= result.p99_s
    assert result.events_per_s == pytest.approx(10 / result.mean_s)


def test_timing_below_minimum_count_is_an_error() -> None:
    slow = TimingSettings(warmup=0, min_calls=50, min_seconds=0.0, max_seconds=0.05)
    with pytest.raises(
        BenchmarkError, match=r"nn on cpu at batch 1: only \d+ timed calls .* below min_calls=50"
    ):
        time_calls(lambda: time.sleep(0.01), 1, slow, "nn on cpu at batch 1")


# ----------------------------------------------------------------------------- fixed point


def test_fixed_type_parse_range_and_quantize() -> None:
    t = FixedType.parse("ap_fixed<16,6>")
    assert (t.width, t.integer, t.fractional, t.low, t.high) == (16, 6, 10, -32.0, 32.0 - 2**-10)
    assert t.quantize(np.array([1.2345]))[0] == math.floor(1.2345 * 1024) / 1024
    assert t.quantize(np.array([33.0]))[0] == -31.0  # AP_WRAP
    sat = FixedType.parse("ap_ufixed<8,0,AP_RND,AP_SAT>")
    assert sat.quantize(np.array([1.5]))[0] == 1 - 2**-8
    with pytest.raises(
        PrecisionError, match="benchmarks.fpga.default_precision: 'fixed<16,6>' is not"
    ):
        FixedType.parse("fixed<16,6>", "benchmarks.fpga.default_precision")


def test_profile_names_the_overflowing_input() -> None:
    Z = np.zeros((10, 2))
    Z[3, 1] = 9.5
    report = profile_inputs(Z, ["m_bb_gev", "pt_ll_gev"], FixedType.parse("ap_fixed<8,3>"))
    assert not report.ok and list(report.overflowing) == ["pt_ll_gev"]
    assert "pt_ll_gev: 1 of 10 events outside (max |x| = 9.5)" in report.message()


def test_precision_that_cannot_hold_the_inputs_is_an_error() -> None:
    Z = np.array([[0.5, 12.0], [0.1, -0.3]])
    with pytest.raises(
        PrecisionError,
        match=r"tiny: inputs outside the range \[-4, 3.96875\] of ap_fixed<8,3>: "
        r"pt_ll_gev: 1 of 2 events",
    ):
        fpga.check_input_range(
            Z,
            ["m_bb_gev", "pt_ll_gev"],
            settings(default_precision=FixedType.parse("ap_fixed<8,3>")),
            "tiny",
        )
    allowed = fpga.check_input_range(
        Z,
        ["m_bb_gev", "pt_ll_gev"],
        settings(default_precision=FixedType.parse("ap_fixed<8,3>"), allow_input_overflow=True),
        "tiny",
    )
    assert "pt_ll_gev" in allowed["overflowing"]


def test_layer_types_from_profiling() -> None:
    net = tiny_network()
    ranges = [(150.0, 150.0), (3.0, 0.9)]  # the first layer reaches ±150 on the test events
    types = fpga.layer_types(net, ranges, FixedType.parse("ap_fixed<16,6>"), "profile")
    assert types.dense[0].hls() == "ap_fixed<16,9,AP_TRN,AP_SAT>" and types.dense[1].integer == 6
    with pytest.raises(
        PrecisionError,
        match=r"tiny: layer dense_0 pre-activations reach 150 .* outside ap_fixed<16,6>",
    ):
        fpga.layer_types(net, ranges, FixedType.parse("ap_fixed<16,6>"), "fixed")
    with pytest.raises(
        PrecisionError, match=r"tiny: layer dense_0 .* 9 integer bits needed, 8-bit ap_fixed cannot"
    ):
        fpga.layer_types(net, ranges, FixedType.parse("ap_fixed<8,6>"), "profile")


def test_fidelity_of_identical_and_of_coarse_scores() -> None:
    _, y = toy()
    score = np.linspace(0, 1, len(y))
    same = fidelity(score, score, y, 0.1)
    assert same.agreement == 1.0 and same.auc_fixed == same.auc_float
    coarse = fidelity(score, np.round(score, 1), y, 0.1)
    assert coarse.agreement < 1.0


def test_agreement_below_the_gate_is_an_error() -> None:
    rows = [{"width": 16, "precision": "ap_fixed<16,6>", "agreement": 0.97}]
    with pytest.raises(
        fpga.FidelityError,
        match=r"nn: .* ap_fixed<16,6> agrees .* on 0.9700 .*\.min_agreement = 0.99",
    ):
        fpga.check_default(rows, settings(), "nn")


# ----------------------------------------------------------------------------- system tools


def test_missing_system_tool_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    real = tools.find_tool
    monkeypatch.setattr(tools, "find_tool", lambda name: None if name == "ghdl" else real(name))
    assert tools.missing_tools(["g++", "ghdl"]) == ["ghdl"]
    with pytest.raises(
        tools.MissingToolError, match=r"cycle count needs ghdl \(Debian package ghdl\), not found"
    ):
        tools.require_tools(["g++", "ghdl"], "cycle count")


def test_system_tools_installed_by_the_project_are_present() -> None:
    assert tools.missing_tools(list(tools.SYSTEM_TOOLS)) == [], f"run bash {tools.INSTALLER}"


# ----------------------------------------------------------------------------- emulation and cycles


@pytest.fixture(scope="module")
def network_result(tmp_path_factory: pytest.TempPathFactory) -> fpga.ModelTiers:
    """The three tiers of the tiny network, computed once (hls4ml compiles twice, da4ml, GHDL,
    Yosys)."""
    Z, y = toy()
    return fpga.network_tiers(tiny_network(), Z, y, settings(), tmp_path_factory.mktemp("fpga_nn"))


def test_emulation_agrees_with_the_float_network(network_result: fpga.ModelTiers) -> None:
    fid = network_result.fidelity
    assert [r["width"] for r in fid.scan] == [10, 16]
    default = fid.default
    assert default["precision"] == "ap_fixed<16,6>"
    assert default["output_precision"] == "ap_ufixed<16,0,AP_RND,AP_SAT>"
    assert default["agreement"] >= 0.99
    assert abs(default["auc_fixed"] - default["auc_float"]) < 0.01
    assert (
        fid.scan[0]["max_abs_difference"] > default["max_abs_difference"]
    )  # fewer bits, larger error


def test_network_design_cycles_and_resources(network_result: fpga.ModelTiers) -> None:
    lat, res = network_result.hardware
    assert lat["cycles"] == lat["da4ml_stages"] + 1  # GHDL: input register + one per pipeline stage
    assert lat["ns"] == pytest.approx(lat["cycles"] * 5.0)
    assert lat["design_fidelity"]["agreement"] >= 0.99
    assert res["label"] == "estimates" and res["da4ml"]["lut"] > 0
    assert res["yosys"]["available"] and res["yosys"]["lut"] > 0 and res["yosys"]["ff"] > 0


def test_parse_yosys_stat() -> None:
    text = (
        "   Number of cells:                 12\n     CARRY4   2\n     FDRE    5\n     LUT2   "
        "3\n     LUT6   2\n"
    )
    assert parse_yosys_stat(text) == {"lut": 5, "ff": 5, "dsp": 0, "carry": 2, "cells": 12}


def test_bdt_cycles_in_ghdl_against_conifers_formula(tmp_path: Path) -> None:
    """Small BDT: conifer VHDL simulated in GHDL, input-valid to output-valid.

    conifer's latency formula is 2 + depth + ceil(log2 n_trees). The GHDL count of the VHDL
    conifer 1.11 generates is 4 + depth + ceil(log2(n_trees + 1)) (its adder tree also sums
    the initial prediction): the formula undercounts by 2-3 cycles, which the benchmark reports.
    """
    import xgboost as xgb

    Z, y = toy(800, 5)
    n_trees, depth = 6, 3
    booster = (
        xgb.XGBClassifier(n_estimators=n_trees, max_depth=depth, random_state=SEED)
        .fit(Z, y)
        .get_booster()
    )
    booster.save_model(tmp_path / "model.ubj")
    _, ensemble = fpga.load_bdt_ensemble(tmp_path, np.zeros(5), np.ones(5))
    assert ensemble["max_depth"] == depth
    fpga.conifer_vhdl(ensemble, "ap_fixed<16,6>", tmp_path / "vhdl")
    cycles = ghdl_bdt_latency(tmp_path / "vhdl")
    formula = 2 + depth + math.ceil(math.log2(n_trees))
    assert cycles == 4 + depth + math.ceil(math.log2(n_trees + 1))
    assert cycles - formula == 2


def test_bdt_tiers_agree_and_simulate(tmp_path: Path) -> None:
    import xgboost as xgb

    X, y = toy(800, 4)
    X = X * np.array([50.0, 1.0, 10.0, 2.0]) + np.array(
        [120.0, 0.0, 40.0, 1.0]
    )  # raw, GeV-like scales
    xgb.XGBClassifier(n_estimators=5, max_depth=2, random_state=SEED).fit(
        X, y
    ).get_booster().save_model(tmp_path / "model.ubj")
    frame = pd.DataFrame(X, columns=list("abcd"))
    result = fpga.bdt_tiers(
        tmp_path,
        list("abcd"),
        frame,
        frame,
        y,
        settings(scan_widths=(16,)),
        tmp_path / "work",
        "bdt",
    )
    assert result.fidelity.default["agreement"] >= 0.99
    conversion = result.fidelity.details["conversion_check"]
    assert conversion["conifer_double_vs_xgboost_max_abs_logit_difference"] < 1e-4
    build = result.fidelity.details["emulation_build"]
    assert build["precisions"] == ["double", "ap_fixed<16,6>"] and build["compile_s"] > 0
    assert result.ensemble is not None and result.ensemble["n_features"] == 4
    lat = result.hardware.latency
    assert lat["vhdl_vs_cpp_identical_fraction"] == 1.0
    assert lat["cycles"] == 4 + 2 + math.ceil(math.log2(6)) and lat["ns"] == lat["cycles"] * 5.0
    assert result.hardware.resources["conifer"]["lut"] > 0
    # the JSON sections, in the layout the benchmark file has
    assert list(result.to_json()) == ["fidelity", "ensemble", "latency", "resources"]
    assert result.to_json()["fidelity"]["conversion_check"] == conversion


# ---------------------------------------------------------------------- entry points, bad input


def ml_config(tmp_path: Path) -> tuple[dict, Path]:
    """A config with nn, bdt and svm entries and a training table of the toy."""
    X, y = toy(1200, 4)
    table = pd.DataFrame(X, columns=list("abcd"))
    table["label"] = y
    table["fold"] = np.arange(len(y)) % 2
    path = tmp_path / "training.parquet"
    table.to_parquet(path)
    config = {
        "features": list("abcd"),
        "ml": {
            "seed": 1,
            "folds": 2,
            "inputs": [],
            "models": {
                "nn": {"family": "nn", "params": {}},
                "bdt": {"family": "bdt", "params": {}},
                "svm": {"family": "svm", "params": {}},
            },
        },
        "benchmarks": {
            "seed": SEED,
            "fold": 0,
            "gpu": {
                "batch_sizes": [1, 16],
                "warmup_calls": 1,
                "min_calls": 3,
                "min_seconds": 0.0,
                "max_seconds": 30.0,
                "train_steps": 2,
                "train_batch": 32,
                "train_rounds": 2,
                "train_repeats": 1,
            },
        },
    }
    return config, path


def test_family_without_fpga_path_is_skipped_with_a_note(tmp_path: Path) -> None:
    config, table = ml_config(tmp_path)
    config["benchmarks"]["fpga"] = {
        "clock_mhz": 200.0,
        "default_precision": "ap_fixed<16,6>",
        "scan_widths": [16],
        "output_precision": "ap_ufixed<16,0,AP_RND,AP_SAT>",
        "min_agreement": 0.99,
        "background_efficiency": 0.1,
        "events": 500,
        "latency": True,
        "resources": True,
        "da4ml_latency_cutoff": 5.0,
        "yosys_max_luts": 0,
        "yosys_family": "xcup",
        "tool_timeout_s": 60.0,
        "allow_input_overflow": False,
    }
    out = tmp_path / "svm.json"
    result = fpga.run_fpga_benchmark(config, "svm", str(table), str(tmp_path), str(out))
    assert result["status"] == "skipped"
    assert "family 'svm' has no FPGA path" in json.loads(out.read_text())["note"]


def test_gpu_benchmark_without_a_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CUDA hidden: the CPU is measured, the output says no GPU was present, nothing is invented."""
    from thetaflow.benchmarking import gpu
    from thetaflow.ml.models import build_classifier
    from thetaflow.ml.models.base import Dataset
    from thetaflow.ml.record import TrainingRecord

    monkeypatch.setattr(gpu, "visible_gpus", lambda: [])
    config, table = ml_config(tmp_path)
    frame = pd.read_parquet(table)
    data = Dataset(
        frame[list("abcd")].to_numpy(np.float32),
        frame["label"].to_numpy(),
        np.ones(len(frame)),
        tuple("abcd"),
    )
    dirs = {}
    for name, params in (("nn", {"epochs": 1, "hidden_layers": [8]}), ("bdt", {"n_estimators": 5})):
        config["ml"]["models"][name]["params"] = params
        model = build_classifier(name, name, params, 1, list("abcd"))
        model.fit(data, data)
        model.save(tmp_path / name / "fold0")
        record = TrainingRecord(
            model=name,
            family=name,
            params=params,
            inputs=list("abcd"),
            fold=0,
            folds=config["ml"]["folds"],
            seed=1,
            n_train=len(frame),
            n_valid=len(frame),
            train_ids="",
            valid_ids="",
            train_seconds=0.0,
            iterations=None,
            extra={},
        )
        (tmp_path / name / "fold0" / "training.json").write_text(record.to_json())
        dirs[name] = str(tmp_path / name / "fold0")
    dirs["svm"] = str(tmp_path)
    dirs["autoencoder"] = None
    outputs = {
        "json": str(tmp_path / "gpu.json"),
        "table": str(tmp_path / "gpu.csv"),
        "figure": str(tmp_path / "gpu.png"),
    }
    result = gpu.run_gpu_benchmark(config, str(table), dirs, outputs)
    assert result["gpu_present"] is False and result["speedup"] == []
    assert gpu.NO_GPU in result["notes"]
    assert any("svm: family 'svm' has no GPU path" in n for n in result["notes"])
    assert {(r["model"], r["device"], r["batch"]) for r in result["inference"]} == {
        (m, "cpu", b) for m in ("nn", "bdt") for b in (1, 16)
    }
    assert {r["model"] for r in result["training"]} == {"nn", "bdt"}
    assert all(r["calls"] >= 3 and r["p50_s"] > 0 for r in result["inference"])
    assert Path(outputs["figure"]).stat().st_size > 0 and len(pd.read_csv(outputs["table"])) == 4
