"""The benchmark rules in the toy run (config/ci.yaml): GPU timing and the FPGA tiers table."""

from __future__ import annotations

import json

import pandas as pd


def test_toy_run_gpu_benchmark_says_what_it_measured(toy_run):
    result = json.loads((toy_run / "results/benchmarks/gpu/benchmark.json").read_text())
    devices = {row["device"] for row in result["inference"]}
    assert "cpu" in devices
    if not result["gpu_present"]:  # no GPU: said plainly, nothing but the CPU
        assert devices == {"cpu"} and result["speedup"] == []
        assert any(note.startswith("no GPU present") for note in result["notes"])
    assert {row["batch"] for row in result["inference"]} == {1, 256}
    assert {row["model"] for row in result["inference"]} == {"nn", "bdt", "autoencoder"}
    assert (toy_run / "results/benchmarks/gpu/inference.png").stat().st_size > 10_000


def test_toy_run_fpga_tiers(toy_run):
    table = pd.read_csv(toy_run / "results/benchmarks/fpga/tiers.csv").set_index("model")
    assert set(table.index) == {"nn", "bdt", "autoencoder"}
    assert (table["status"] == "ok").all()
    assert (table["agreement"] >= 0.95).all()  # config/ci.yaml's gate
    assert table.loc["nn", "cycles"] == table.loc["nn", "da4ml_stages"] + 1
    assert table.loc["bdt", "cycles"] > 0 and table.loc["bdt", "formula_cycles"] > 0
    assert table.loc["nn", "latency_ns"] == table.loc["nn", "cycles"] * 5.0
    bdt = json.loads((toy_run / "results/benchmarks/fpga/bdt.json").read_text())
    assert bdt["latency"]["vhdl_vs_cpp_identical_fraction"] == 1.0
    assert bdt["resources"]["label"] == "estimates"
    assert (toy_run / "results/benchmarks/fpga/precision_scan.png").stat().st_size > 10_000
