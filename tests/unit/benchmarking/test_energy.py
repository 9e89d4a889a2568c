"""Energy per model: RAPL counters from a fake powercap tree (deltas, wrap-around, unreadable
files), NVML from a fake pynvml, the labelled estimate, and the energy fields of a training
record and of the GPU benchmark's outputs."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from thetaflow.core import energy
from thetaflow.core.energy import (
    DEFAULT_CPU_WATTS_PER_CORE,
    EnergyError,
    EnergyMeasurement,
    EnergyMeter,
    EnergySettings,
    rapl_counters,
)

MAX_UJ = 262_143_328_850  # a real package's max_energy_range_uj


def domain(root: Path, name: str, label: str, uj: int, max_uj: int = MAX_UJ) -> Path:
    """A powercap domain directory as the kernel lays it out."""
    path = root / name
    path.mkdir(parents=True)
    (path / "name").write_text(label + "\n")
    (path / "energy_uj").write_text(f"{uj}\n")
    (path / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return path / "energy_uj"


@pytest.fixture
def powercap(tmp_path: Path) -> dict[str, Path]:
    """Two packages, plus the domains that overlap them and must not be added: a core
    subdomain, a platform (psys) domain and the MMIO duplicate of package 0."""
    root = tmp_path / "powercap"
    files = {
        "package-0": domain(root, "intel-rapl:0", "package-0", 1_000_000),
        "package-1": domain(root, "intel-rapl:1", "package-1", MAX_UJ - 500_000),
        "core": domain(root, "intel-rapl:0:0", "core", 10),
        "psys": domain(root, "intel-rapl:2", "psys", 10),
        "mmio": domain(root, "intel-rapl-mmio:0", "package-0", 10),
    }
    return {"root": root, **files}


def advance(path: Path, uj: int) -> None:
    path.write_text(f"{uj}\n")


def test_rapl_packages_give_the_joules_between_the_reads_across_a_wrap(powercap) -> None:
    """Package 0 counts 2.5 J up; package 1 wraps at max_energy_range_uj (0.5 J before the
    top, 1.5 J after zero: 2 J). Subdomains, psys and MMIO changes are not added."""
    meter = EnergyMeter(EnergySettings(), powercap=powercap["root"])
    meter.start()
    advance(powercap["package-0"], 3_500_000)
    advance(powercap["package-1"], 1_500_000)
    for overlapping in ("core", "psys", "mmio"):
        advance(powercap[overlapping], 10**9)
    result = meter.stop()
    assert result.joules == pytest.approx(4.5, abs=1e-9)
    assert result.method == "measured"
    assert result.source == "RAPL package-0, package-1 (powercap)"
    assert "whole CPU package" in result.note and "estimate" not in result.source


def test_a_counter_read_between_wraps_adds_every_lap(powercap) -> None:
    """The background poll reads the counter between two wraps: each lap is added once."""
    (counter, _), why = rapl_counters(powercap["root"])
    assert not why and counter.name == "package-0"
    steps = [MAX_UJ - 1_000_000, 2_000_000, MAX_UJ - 3_000_000, 500_000]
    for uj in steps:
        advance(powercap["package-0"], uj)
        counter.update()
    laps = (MAX_UJ - 1_000_000 - 1_000_000) + (2_000_000 + 1_000_000)
    laps += (MAX_UJ - 3_000_000 - 2_000_000) + (500_000 + 3_000_000)
    assert counter.total_uj == laps


def test_an_unreadable_counter_falls_back_to_the_labelled_estimate(
    powercap, monkeypatch: pytest.MonkeyPatch
) -> None:
    """energy_uj root-only (as on most hosts): no partial sum of the readable package, the
    estimate instead, and the note says which file could not be read."""
    read_text = Path.read_text

    def root_only(self: Path, *args: object, **kwargs: object) -> str:
        if self == powercap["package-1"]:
            raise PermissionError(13, "Permission denied", str(self))
        return read_text(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", root_only)
    with EnergyMeter(EnergySettings(5.0), powercap=powercap["root"]) as meter:
        advance(powercap["package-0"], 9_000_000)
    result = meter.result
    assert result.method == "estimate"
    assert "intel-rapl:1/energy_uj not readable by this user" in result.note
    assert result.joules == pytest.approx(result.cpu_seconds * 5.0)


def test_without_powercap_the_estimate_is_cpu_seconds_times_the_stated_power(
    tmp_path: Path,
) -> None:
    """CPU time of the process and its children × watts per core, labelled as an estimate."""
    settings = EnergySettings(cpu_watts_per_core=7.5)
    with EnergyMeter(settings, powercap=tmp_path / "absent") as meter:
        x = np.random.default_rng(0).normal(size=(300, 300))
        for _ in range(20):
            x = np.tanh(x @ x.T / 300)
    result = meter.result
    assert result.method == "estimate" and result.cpu_seconds > 0
    assert result.joules == pytest.approx(result.cpu_seconds * 7.5, rel=1e-12)
    assert "7.5 W per core" in result.source and "benchmarks.energy" in result.source
    assert "absent" in result.note
    assert EnergyMeasurement.from_dict(json.loads(json.dumps(result.as_dict()))) == result


def test_a_meter_read_before_its_block_ends_is_an_error() -> None:
    with pytest.raises(EnergyError, match="before its block was stopped"):
        _ = EnergyMeter(EnergySettings()).result


def fake_pynvml(energies_mj: list[list[int]]) -> types.ModuleType:
    """A pynvml whose GPU counters step through ``energies_mj`` (one list per read)."""
    module = types.ModuleType("pynvml")
    reads = iter(energies_mj)
    current: list[int] = []

    class NVMLError(Exception):
        pass

    def init() -> None:
        current[:] = next(reads)

    module.NVMLError = NVMLError  # type: ignore[attr-defined]
    module.nvmlInit = init  # type: ignore[attr-defined]
    module.nvmlShutdown = lambda: None  # type: ignore[attr-defined]
    module.nvmlDeviceGetCount = lambda: len(current)  # type: ignore[attr-defined]
    module.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    module.nvmlDeviceGetName = lambda i: b"Fake GPU"  # type: ignore[attr-defined]
    module.nvmlDeviceGetTotalEnergyConsumption = lambda i: current[i]  # type: ignore[attr-defined]
    return module


def test_nvml_counts_the_gpus_of_a_gpu_block(powercap, monkeypatch: pytest.MonkeyPatch) -> None:
    """GPU energy (mJ) adds to the measured packages; with no package counter the CPU part is
    estimated and the result is labelled mixed."""
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([[1000, 5000], [4000, 6000]]))
    with EnergyMeter(EnergySettings(), gpus=True, powercap=powercap["root"]) as meter:
        advance(powercap["package-0"], 2_000_000)
    result = meter.result
    assert result.method == "measured"
    assert result.joules == pytest.approx(1.0 + 3.0 + 1.0)
    assert result.source.endswith("NVML gpu0 (Fake GPU), gpu1 (Fake GPU)")

    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([[0], [2500]]))
    with EnergyMeter(EnergySettings(10.0), gpus=True, powercap=powercap["root"] / "no") as meter:
        pass
    result = meter.result
    assert result.method == "mixed"
    assert result.joules == pytest.approx(2.5 + result.cpu_seconds * 10.0)
    # a CPU block does not count the GPUs
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([[0], [2500]]))
    with EnergyMeter(EnergySettings(), powercap=powercap["root"]) as meter:
        pass
    assert "NVML" not in meter.result.source


def test_the_code_default_is_the_schema_default() -> None:
    """A job whose config slice lacks benchmarks.energy gets the schema's default."""
    schema_path = Path(energy.__file__).parent / "schemas" / "config.schema.yaml"
    schema = yaml.safe_load(schema_path.read_text())
    spec = schema["properties"]["benchmarks"]["properties"]["energy"]["properties"]
    assert spec["cpu_watts_per_core"]["default"] == DEFAULT_CPU_WATTS_PER_CORE
    assert EnergySettings.from_config({}).cpu_watts_per_core == DEFAULT_CPU_WATTS_PER_CORE
    config = {"benchmarks": {"energy": {"cpu_watts_per_core": 3.0}}}
    assert EnergySettings.from_config(config).cpu_watts_per_core == 3.0


# ------------------------------------------------------------- training record, GPU benchmark


@pytest.fixture
def trained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, Path, Path]:
    """A 2-fold toy training table, a BDT trained on fold 0 by the training job's code, on a
    host made counter-less (so the numbers are the estimate on every machine)."""
    from thetaflow.ml.training import prepare_training_data, train_fold

    monkeypatch.setattr(energy, "rapl_counters", lambda root=None: ([], "test: no counter"))
    monkeypatch.setattr(energy, "nvml_energy_mj", lambda: ({}, ""))
    rng = np.random.default_rng(3)
    files = {}
    for name, label, n in (("sig", 1, 400), ("bkg", 0, 800)):
        frame = pd.DataFrame(
            {
                "run": np.ones(n, np.uint32),
                "luminosityBlock": np.ones(n, np.uint32),
                "event": np.arange(1, n + 1, dtype=np.uint64) + (0 if label else 10_000),
                "sample": name,
                "label": np.full(n, label, np.int8),
                "weight": rng.uniform(0.5, 1.5, n),
                "region": "inclusive",  # the one region of a config without regions
            }
        )
        for i, feature in enumerate("abcd"):
            frame[feature] = rng.normal(0.7 * label * (i % 2), 1.0, n).astype(np.float32)
        files[name] = str(tmp_path / f"{name}.parquet")
        frame.to_parquet(files[name])
    config = {
        "features": list("abcd"),
        "ml": {
            "seed": 2,
            "folds": 2,
            "validation_fraction": 0.25,
            "negative_weights": "abs",
            "inputs": [],
            "max_train_events": 0,
            "models": {"bdt": {"family": "bdt", "params": {"n_estimators": 5}}},
        },
        "benchmarks": {
            "seed": 4,
            "fold": 0,
            "energy": {"cpu_watts_per_core": 7.5},
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
    table = tmp_path / "training.parquet"
    prepare_training_data(config, files, str(table), str(tmp_path / "folds.json"))
    model_dir = tmp_path / "models" / "bdt" / "fold0"
    train_fold(config, "bdt", 0, str(table), str(model_dir))
    return config, table, model_dir


def test_the_training_record_holds_the_fits_energy(trained) -> None:
    from thetaflow.ml.record import TRAINING_RECORD, TrainingRecord

    _, _, model_dir = trained
    written = json.loads((model_dir / TRAINING_RECORD).read_text())["energy"]
    assert written["method"] == "estimate" and "7.5 W per core" in written["source"]
    assert written["joules"] == pytest.approx(written["cpu_seconds"] * 7.5)
    assert written["cpu_seconds"] > 0 and written["seconds"] > 0
    assert TrainingRecord.read(model_dir).energy == EnergyMeasurement.from_dict(written)


def test_gpu_benchmark_reports_joules_per_training_and_per_million_inferences(
    trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CPU only (no GPU, TensorFlow not started: only the BDT is measured): every timing row
    carries its energy, the energy table has the training job's joules and each batch's
    joules per million inferences, and the output says the figures are estimates."""
    from thetaflow.benchmarking import gpu
    from thetaflow.ml.record import TrainingRecord

    monkeypatch.setattr(gpu, "visible_gpus", lambda: [])
    monkeypatch.setattr(gpu, "configure_tensorflow", lambda threads: None)
    config, table, model_dir = trained
    outputs = {
        name: str(tmp_path / "out" / file)
        for name, file in (
            ("json", "gpu.json"),
            ("table", "gpu.csv"),
            ("figure", "gpu.png"),
            ("energy", "energy.csv"),
        )
    }
    result = gpu.run_gpu_benchmark(config, str(table), {"bdt": str(model_dir)}, outputs)
    for row in result["inference"] + result["training"]:
        assert row["energy_method"] == "estimate" and row["joules"] > 0
        events = row["calls"] * row["events_per_call"]
        assert row["joules_per_million"] == pytest.approx(row["joules"] * 1e6 / events)
    assert result["energy"]["methods"] == ["estimate"]
    note = "energy: no CPU energy counter read ("
    assert any(n.startswith(note) and "not a measurement" in n for n in result["notes"])
    energy_csv = pd.read_csv(outputs["energy"])
    assert list(energy_csv["what"]) == ["training", "inference", "inference"]
    training = energy_csv.iloc[0]
    assert training["joules"] == pytest.approx(TrainingRecord.read(model_dir).energy.joules)
    inference = energy_csv.iloc[1:].set_index("batch")
    rows = {r["batch"]: r for r in result["inference"]}
    for batch in (1, 16):
        assert inference.loc[batch, "joules"] == pytest.approx(rows[batch]["joules_per_million"])
        assert inference.loc[batch, "per"] == "million inferences"
    assert set(energy_csv["method"]) == {"estimate"}
    assert "joules_per_million" in pd.read_csv(outputs["table"]).columns
