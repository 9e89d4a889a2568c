"""benchmarks/device_check.sh's library: the Markdown table from a fixed benchmark.json, no
table without a GPU, the nvidia-smi probe, and the packed inputs (same events, same order).
No GPU, TensorFlow or trained model is needed: the benchmark itself is not run here."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from thetaflow.benchmarking import device_check
from thetaflow.benchmarking.device_check import Probe, markdown_table, pack_inputs
from thetaflow.core.errors import ThetaflowError

REPO = Path(__file__).resolve().parents[3]
NN_STEPS = "20 optimizer steps of 1024 events"
BDT_ROUNDS = "20 boosting rounds on 32768 events"


def timing(model: str, device: str, batch: int, p50_s: float) -> dict:
    """One inference row as rule benchmark_gpu writes it."""
    return {
        "model": model,
        "family": model,
        "device": device,
        "batch": batch,
        "calls": 30,
        "events_per_call": batch,
        "p50_s": p50_s,
        "p90_s": p50_s,
        "p99_s": p50_s,
        "mean_s": p50_s,
        "total_s": 30 * p50_s,
        "events_per_s": batch / p50_s,
    }


def gpu_result() -> dict:
    """A benchmark.json of a machine with one GPU (numbers made up, shapes real)."""
    inference = [
        timing("nn", "cpu", 1, 4e-4),
        timing("nn", "cpu", 16384, 8e-3),
        timing("nn", "gpu0", 1, 8e-4),
        timing("nn", "gpu0", 16384, 1e-3),
        timing("bdt", "cpu", 1, 2e-4),
        timing("bdt", "cpu", 16384, 0.136),
        timing("bdt", "gpu0", 1, 5e-4),
        timing("bdt", "gpu0", 16384, 2e-3),
    ]
    cpu = {(r["model"], r["batch"]): r["p50_s"] for r in inference if r["device"] == "cpu"}
    return {
        "gpu_present": True,
        "gpus": [
            {
                "index": 0,
                "tf_name": "/GPU:0",
                "name": "NVIDIA H100 80GB HBM3",
                "memory": "81559 MiB",
                "driver": "550.54.15",
            }
        ],
        "notes": [],
        "host": {"cpu": "AMD EPYC", "logical_cores": 16},
        "cpu_threads": 2,
        "versions": {"tensorflow": "2.21.0", "keras": "3.15.1", "xgboost": "3.2.0"},
        "xgboost_cuda": True,
        "method": {"min_calls": 30, "min_seconds": 1.0, "warmup_calls": 5},
        "inference": inference,
        "training": [
            {"model": "nn", "device": "cpu", "what": NN_STEPS, "p50_s": 0.5},
            {"model": "nn", "device": "gpu0", "what": NN_STEPS, "p50_s": 0.1},
            {"model": "bdt", "device": "cpu", "what": BDT_ROUNDS, "p50_s": 2.5},
        ],
        "speedup": [
            {"model": r["model"], "device": r["device"], "batch": r["batch"],
             "speedup": cpu[(r["model"], r["batch"])] / r["p50_s"]}
            for r in inference
            if r["device"] != "cpu"
        ],
    }  # fmt: skip


def test_markdown_table_of_a_gpu_run() -> None:
    text = markdown_table(gpu_result())
    lines = text.splitlines()
    assert lines[0].startswith("GPU 0: NVIDIA H100 80GB HBM3, 81559 MiB, driver 550.54.15; CPU")
    assert "CPU only" not in text
    header = "| model | device | p50 ms, batch 1 | p50 ms, batch 16 384 | events/s at 16 384 |"
    assert header + " GPU/CPU speed-up, batch 1 / 16 384 |" in lines
    assert "| nn | CPU (2 threads) | 0.4 | 8 | 2.05 M | – |" in lines
    assert "| nn | GPU 0 (NVIDIA H100 80GB HBM3) | 0.8 | 1 | 16.4 M | ×0.5 / ×8 |" in lines
    assert "| bdt | CPU (2 threads) | 0.2 | 136 | 120 k | – |" in lines
    assert "| bdt | GPU 0 (NVIDIA H100 80GB HBM3) | 0.5 | 2 | 8.19 M | ×0.4 / ×68 |" in lines
    # training: the CPU first, the GPU with its speed-up; a model timed on the CPU only
    assert "| nn | 20 optimizer steps of 1024 events | 500 | 100 (×5) |" in lines
    assert "| bdt | 20 boosting rounds on 32768 events | 2 500 | – |" in lines
    for line in lines:  # every table row has as many cells as its header
        if line.startswith("| "):
            assert line.count("|") in (7, 5)


def test_no_table_from_a_run_without_a_gpu() -> None:
    result = gpu_result() | {"gpu_present": False, "gpus": [], "speedup": []}
    for part in ("inference", "training"):
        result[part] = [r for r in result[part] if r["device"] == "cpu"]
    with pytest.raises(ValueError, match="no GPU present"):
        markdown_table(result)
    text = markdown_table(result, cpu_only=True)  # the plumbing check, labelled as such
    assert text.startswith(device_check.CPU_ONLY_TITLE)
    assert "GPU 0" not in text and "×" not in text


def fake_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    """An nvidia-smi on PATH that runs ``body``."""
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text(f"#!/bin/sh\n{body}\n")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{smi.parent}{os.pathsep}{os.environ['PATH']}")


def test_nvidia_smi_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvidia_smi(tmp_path, monkeypatch, 'echo "0, NVIDIA H200, 143771 MiB, 560.35.03"')
    gpus, note = device_check.probe_nvidia_smi()
    assert gpus == ("0: NVIDIA H200, 143771 MiB, 560.35.03",) and note.endswith("nvidia-smi")


def test_nvidia_smi_without_a_driver_is_no_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvidia_smi(tmp_path, monkeypatch, 'echo "NVIDIA-SMI has failed"; exit 9')
    gpus, note = device_check.probe_nvidia_smi()
    assert gpus == () and "exited 9: NVIDIA-SMI has failed" in note


def test_without_a_gpu_it_says_so_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    none = Probe((), "nvidia-smi not found", (), "TensorFlow 2.21.0", "xgboost 3.2.0")
    monkeypatch.setattr(device_check, "probe", lambda threads: none)
    out = tmp_path / "device_check.md"
    argv = ["--base-config", str(REPO / "config" / "config.yaml"), "--results", str(tmp_path)]
    assert device_check.main([*argv, "--out", str(out)]) == 0
    assert device_check.NO_GPU_MESSAGE in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
    # a GPU nvidia-smi sees but TensorFlow cannot use: status 3, still nothing written
    seen = Probe(("0: NVIDIA H100",), "nvidia-smi", (), "TensorFlow 2.21.0", "-")
    monkeypatch.setattr(device_check, "probe", lambda threads: seen)
    assert device_check.main([*argv, "--out", str(out)]) == device_check.EXIT_GPU_UNUSABLE
    assert list(tmp_path.iterdir()) == []


def test_pack_keeps_the_benchmarks_events_in_its_order(tmp_path: Path) -> None:
    config = {
        "features": ["a", "b"],
        "ml": {"inputs": [], "folds": 2},
        "benchmarks": {"models": ["nn"], "fold": 1, "seed": 7, "gpu": {"batch_sizes": [1, 16]}},
    }
    results, dest = tmp_path / "results", tmp_path / "packed"
    rng = np.random.default_rng(3)
    table = pd.DataFrame(
        {
            "event": np.arange(200, dtype=np.uint64),
            "a": rng.normal(size=200).astype(np.float32),
            "b": rng.normal(size=200).astype(np.float32),
            "label": rng.integers(0, 2, 200).astype(np.int8),
            "fold": (np.arange(200) % 2).astype(np.int8),
        }
    )
    (results / "ml").mkdir(parents=True)
    table.to_parquet(results / "ml" / "training.parquet", index=False)
    model = results / "models" / "nn" / "fold1"
    model.mkdir(parents=True)
    (model / "model.keras").write_bytes(b"weights")
    (model / "train_scores.parquet").write_bytes(b"not needed")
    manifest = pack_inputs(config, results, dest)
    packed = pd.read_parquet(dest / "ml" / "training.parquet")
    assert list(packed.columns) == ["a", "b", "label", "fold"]
    assert manifest["table"]["rows"] == len(packed) == 32  # twice the largest batch
    columns = ["a", "b", "label", "fold"]
    full = table[columns].sample(n=32, random_state=7).reset_index(drop=True)
    redrawn = packed.sample(n=32, random_state=7).reset_index(drop=True)
    pd.testing.assert_frame_equal(redrawn, full)  # what the benchmark draws, in its order
    copied = sorted(p.name for p in (dest / "models" / "nn" / "fold1").iterdir())
    assert copied == ["model.keras"]
    assert (dest / "device_check_pack.json").is_file()
    with pytest.raises(ThetaflowError, match="the --results folder itself"):
        pack_inputs(config, results, results)
    with pytest.raises(ThetaflowError, match="other files"):
        pack_inputs(config, results, results / "models")
    pack_inputs(config, results, dest)  # an earlier pack is refreshed
