"""The benchmark rules in the toy run (config/ci.yaml): GPU timing and the FPGA tiers table."""

from __future__ import annotations

import json

import pandas as pd
import pytest


def test_toy_run_gpu_benchmark_says_what_it_measured(toy_run):
    result = json.loads((toy_run / "results/benchmarks/gpu/benchmark.json").read_text())
    check_gpu_benchmark(result)
    assert (toy_run / "results/benchmarks/gpu/inference.png").stat().st_size > 10_000


def check_gpu_benchmark(result: dict) -> None:
    """What benchmark.json must say, with or without a GPU (config/ci.yaml: batches 1 and
    256, at least 5 timed calls)."""
    rows = result["inference"]
    devices = {row["device"] for row in rows}
    assert {row["batch"] for row in rows} == {1, 256}
    assert {row["model"] for row in rows} == {"nn", "bdt", "autoencoder"}
    for row in rows:  # every timing is a real measurement of `batch` events per call
        assert row["calls"] >= 5 and row["events_per_call"] == row["batch"]
        assert 0 < row["p50_s"] <= row["p90_s"] <= row["p99_s"]
        assert row["events_per_s"] == pytest.approx(row["batch"] / row["mean_s"], rel=1e-6)
    cpu = {(r["model"], r["batch"]): r for r in rows if r["device"] == "cpu"}
    assert len(cpu) == 6  # every model at every batch size on the CPU
    no_gpu_note = [note for note in result["notes"] if note.startswith("no GPU present")]
    if not result["gpu_present"]:  # no GPU: said plainly, nothing but the CPU
        assert devices == {"cpu"} and result["speedup"] == [] and result["gpus"] == []
        assert no_gpu_note
        return
    # a GPU: each visible GPU measured for every model with a GPU path, and the speed-up of
    # each (model, GPU, batch) is the CPU's median latency over the GPU's
    assert result["gpus"] and not no_gpu_note
    labels = {f"gpu{g['index']}" for g in result["gpus"]}
    assert devices == {"cpu"} | labels
    on_gpu = {"nn", "autoencoder"} | ({"bdt"} if result["xgboost_cuda"] else set())
    gpu_rows = {(r["model"], r["device"], r["batch"]): r for r in rows if r["device"] != "cpu"}
    assert set(gpu_rows) == {(m, d, b) for m in on_gpu for d in labels for b in (1, 256)}
    speedups = {(s["model"], s["device"], s["batch"]): s["speedup"] for s in result["speedup"]}
    assert set(speedups) == set(gpu_rows)
    for (model, device, batch), speedup in speedups.items():
        gpu = gpu_rows[(model, device, batch)]
        assert speedup == pytest.approx(cpu[(model, batch)]["p50_s"] / gpu["p50_s"])
        assert speedup > 0


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
