"""GPU and CPU speed of the trained models: inference per batch size, and training steps.

For every model of ``benchmarks.models`` with a GPU path (the ``nn`` and ``bdt`` families and
the autoencoder) inference is timed on the CPU and on every visible GPU, in the same run,
at each batch size of ``benchmarks.gpu.batch_sizes``; the NN and BDT families also time a
fixed number of training steps (NN: optimizer steps of one batch; BDT: boosting rounds).

Each inference call goes from a host (NumPy) array to a host array, so host↔device copies
are included, as a trigger or a scoring job would see them. Keras models are called through
one traced ``tf.function`` placed on the device (``Model.predict`` costs ~40 ms per call);
xgboost predicts in place with ``device="cuda"`` on a GPU. Without a GPU the CPU is measured
and the output says plainly that no GPU was present.

The energy of each point's timed calls is measured too (:mod:`thetaflow.core.energy`: RAPL,
NVML for the GPU points, else an estimate from CPU time labelled ``estimate``), and the
per-model energy table puts joules per million inferences beside the joules of the
benchmarked fold's training job (from its ``training.json``).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from thetaflow.benchmarking.energy import (
    energy_table,
    estimate_note,
    joules_per_million,
    timed_with_energy,
)
from thetaflow.benchmarking.plots import gpu_figure, write_csv
from thetaflow.benchmarking.timing import BenchmarkError, TimingSettings
from thetaflow.benchmarking.tools import host_info, library_versions
from thetaflow.core.energy import EnergyMeasurement, EnergySettings
from thetaflow.core.io import read_table, write_json
from thetaflow.ml.folds import ml_inputs
from thetaflow.ml.models.nn import configure_tensorflow
from thetaflow.ml.scoring import load_fold_classifier
from thetaflow.unsupervised.autoencoder import anomaly_inputs, load_autoencoder_fold

log = logging.getLogger(__name__)

GPU_PATHS = ("nn", "bdt", "autoencoder")
LIBRARIES = ("tensorflow", "keras", "xgboost", "numpy")
NO_GPU = "no GPU present: only the CPU was measured (no GPU numbers, no speed-up)"


def visible_gpus() -> list[dict[str, Any]]:
    """GPUs TensorFlow can use, with name, memory and driver from nvidia-smi where available."""
    import tensorflow as tf  # deferred: heavy, and configure_tensorflow must run before it

    devices = [
        {"tf_name": d.name.replace("/physical_device:", "/"), "index": i}
        for i, d in enumerate(tf.config.list_physical_devices("GPU"))
    ]
    smi = shutil.which("nvidia-smi")
    if devices and smi:
        try:
            out = subprocess.run(
                [smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            ).stdout
            for device, line in zip(devices, out.strip().splitlines(), strict=False):
                name, memory, driver = (s.strip() for s in line.split(","))
                device.update(name=name, memory=memory, driver=driver)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            pass
    return devices


def xgboost_cuda() -> bool:
    """Whether this xgboost build can run on a GPU."""
    import xgboost as xgb  # deferred: heavy, only the benchmark run needs it

    return bool(xgb.build_info().get("USE_CUDA", False))


def _keras_call(model: Any, device: str, width: int) -> Callable[[np.ndarray], np.ndarray]:
    """A traced inference call of ``model`` on ``device``, host array in, host array out."""
    import tensorflow as tf  # deferred: heavy, and configure_tensorflow must run before it

    spec = tf.TensorSpec(shape=(None, width), dtype=tf.float32)

    @tf.function(input_signature=[spec])
    def forward(x: Any) -> Any:
        with tf.device(device):
            out = model(x, training=False)
        return out[0] if isinstance(out, (list, tuple)) else out

    def call(x: np.ndarray) -> np.ndarray:
        return forward(x).numpy()

    return call


def _bdt_call(booster: Any, device: str, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    booster.set_param({"device": device, "nthread": threads})

    def call(x: np.ndarray) -> np.ndarray:
        return np.asarray(booster.inplace_predict(x))

    return call


def _load(config: Mapping, model: str, directory: Path, threads: int) -> tuple[str, Any, list[str]]:
    """(family, loaded object, input features) of a benchmarked model, read (and checked to
    be fold ``benchmarks.fold``'s) by the loaders the scoring stages use."""
    fold, folds = int(config["benchmarks"]["fold"]), int(config["ml"]["folds"])
    if model == "autoencoder":
        ae = load_autoencoder_fold(directory, fold, folds, anomaly_inputs(config))
        std = ae.standardisation
        return (
            "autoencoder",
            (ae.model, np.asarray(std.mean), np.asarray(std.scale)),
            list(std.features),
        )
    clf = load_fold_classifier(config, model, directory, fold, folds)
    clf.threads = threads
    return config["ml"]["models"][model]["family"], clf, ml_inputs(config)


def inference_points(
    name: str,
    family: str,
    obj: Any,
    X: np.ndarray,
    devices: Sequence[tuple[str, str, str]],
    batches: Sequence[int],
    settings: TimingSettings,
    threads: int,
    energy: EnergySettings,
) -> list[dict]:
    """Timing and energy rows of one model on each (label, tf device, xgboost device) for each
    batch size."""
    rows = []
    if family == "autoencoder":
        X = ((X - obj[1]) / obj[2]).astype(np.float32)
    for label, tf_device, xgb_device in devices:
        if family == "bdt":
            call = _bdt_call(obj.booster, xgb_device, threads)
        elif family == "nn":
            call = _keras_call(obj.keras_model, tf_device, X.shape[1])
        else:
            call = _keras_call(obj[0], tf_device, X.shape[1])
        for batch in batches:
            rows_in = np.ascontiguousarray(X[np.arange(batch) % len(X)], dtype=np.float32)

            def infer(rows_in: np.ndarray = rows_in, call: Callable[..., Any] = call) -> None:
                """One timed inference call on this batch (bound now, not at loop end)."""
                call(rows_in)

            result, joules = timed_with_energy(
                infer,
                batch,
                settings,
                f"benchmark_gpu: {name} on {label} at batch {batch}",
                energy,
                gpus=label != "cpu",
            )
            rows.append(
                {
                    "model": name,
                    "family": family,
                    "device": label,
                    "batch": batch,
                    **result.as_dict(),
                    **_energy_fields(joules, result.calls * batch),
                }
            )
            log.info(
                "%s %s batch %d: p50 %.3g ms, %.3g events/s, %.3g J per million (%s)",
                name,
                label,
                batch,
                1e3 * result.p50_s,
                result.events_per_s,
                rows[-1]["joules_per_million"],
                joules.method,
            )
    return rows


def training_points(
    name: str,
    family: str,
    obj: Any,
    X: np.ndarray,
    y: np.ndarray,
    devices: Sequence[tuple[str, str, str]],
    spec: Mapping,
    threads: int,
    seed: int,
    energy: EnergySettings,
) -> list[dict]:
    """Time and energy per NN optimizer step (batch ``train_batch``) or per xgboost boosting
    round."""
    rows = []
    settings = TimingSettings(
        warmup=1,
        min_calls=int(spec["train_repeats"]),
        min_seconds=0.0,
        max_seconds=float(spec["max_seconds"]),
    )
    for label, tf_device, xgb_device in devices:
        if family == "nn":
            # deferred: heavy, and only the family being timed needs its library
            import keras
            import tensorflow as tf

            keras.utils.set_random_seed(seed)
            batch = int(spec["train_batch"])
            xb, yb = X[:batch], y[:batch].astype(np.float32)
            with tf.device(tf_device):
                net = obj._build(X)
                steps = int(spec["train_steps"])

                def run(
                    net: Any = net, steps: int = steps, xb: np.ndarray = xb, yb: np.ndarray = yb
                ) -> None:
                    for _ in range(steps):
                        net.train_on_batch(xb, yb)

                result, joules = timed_with_energy(
                    run,
                    steps * batch,
                    settings,
                    f"benchmark_gpu: training {name} on {label}",
                    energy,
                    gpus=label != "cpu",
                )
            unit = f"{steps} optimizer steps of {batch} events"
        elif family == "bdt":
            import xgboost as xgb  # deferred: heavy, only the family being timed needs it

            rounds = int(spec["train_rounds"])
            params = {
                "tree_method": "hist",
                "device": xgb_device,
                "nthread": threads,
                "objective": "binary:logistic",
                "max_depth": int(obj.params["max_depth"]),
                "seed": seed,
            }
            dtrain = xgb.DMatrix(X, label=y)

            def train(
                params: dict[str, Any] = params, dtrain: Any = dtrain, rounds: int = rounds
            ) -> None:
                """One timed training of ``rounds`` boosting rounds (bound now)."""
                xgb.train(params, dtrain, num_boost_round=rounds)

            result, joules = timed_with_energy(
                train,
                len(X) * rounds,
                settings,
                f"benchmark_gpu: training {name} on {label}",
                energy,
                gpus=label != "cpu",
            )
            unit = f"{rounds} boosting rounds on {len(X)} events"
        else:
            continue
        rows.append(
            {
                "model": name,
                "family": family,
                "device": label,
                "what": unit,
                **result.as_dict(),
                **_energy_fields(joules, result.calls * result.events_per_call),
            }
        )
        log.info("%s training on %s: %s in %.3g s (median)", name, label, unit, result.p50_s)
    return rows


def _energy_fields(measurement: EnergyMeasurement, events: int) -> dict[str, float | str]:
    """A timing row's energy columns: joules of its timed calls, per million events, how."""
    return {
        "joules": measurement.joules,
        "joules_per_million": joules_per_million(measurement, events),
        "energy_method": measurement.method,
        "energy_source": measurement.source,
    }


def speedups(rows: Sequence[dict]) -> list[dict]:
    """GPU/CPU speed-up of the median latency per model, GPU and batch size."""
    cpu = {(r["model"], r["batch"]): r["p50_s"] for r in rows if r["device"] == "cpu"}
    return [
        {
            "model": r["model"],
            "device": r["device"],
            "batch": r["batch"],
            "speedup": cpu[(r["model"], r["batch"])] / r["p50_s"],
        }
        for r in rows
        if r["device"] != "cpu" and (r["model"], r["batch"]) in cpu
    ]


def run_gpu_benchmark(
    config: Mapping,
    table_path: str,
    model_dirs: Mapping[str, str | None],
    outputs: Mapping[str, str],
    threads: int = 1,
) -> dict:
    """Workflow entry point of rule ``benchmark_gpu``: JSON, inference CSV, figure and, where
    ``outputs`` names one (``energy``), the per-model energy table (CSV)."""
    spec = config["benchmarks"]["gpu"]
    energy = EnergySettings.from_config(config)
    settings = TimingSettings.from_config(spec)
    batches = [int(b) for b in spec["batch_sizes"]]
    seed = int(config["benchmarks"]["seed"])
    configure_tensorflow(threads)
    gpus = visible_gpus()
    devices = [("cpu", "/CPU:0", "cpu")]
    devices += [(f"gpu{g['index']}", f"/GPU:{g['index']}", f"cuda:{g['index']}") for g in gpus]
    notes = [] if gpus else [NO_GPU]
    if gpus and not xgboost_cuda():
        notes.append("this xgboost build has no CUDA support: the BDT was measured on the CPU only")
    inference, training, families = [], [], {}
    for name, directory in model_dirs.items():
        family_name = (
            "autoencoder" if name == "autoencoder" else config["ml"]["models"][name]["family"]
        )
        if family_name not in GPU_PATHS:
            notes.append(
                f"{name}: family '{family_name}' has no GPU path (scikit-learn runs on the CPU "
                "only); skipped"
            )
            continue
        if directory is None:
            notes.append(
                f"{name}: not trained in this configuration (no 'anomaly' section); skipped"
            )
            continue
        if not Path(directory).is_dir():
            notes.append(f"{name}: no trained model at {directory}; skipped")
            continue
        family, obj, features = _load(config, name, Path(directory), threads)
        families[name] = family
        table = read_table(table_path, columns=[*features, "label", "fold"])
        table = table.sample(n=min(len(table), max(batches) * 2), random_state=seed)
        X = table[features].to_numpy(dtype=np.float32)
        y = (table["label"].to_numpy() == 1).astype(np.int8)
        use = devices if family != "bdt" or xgboost_cuda() else devices[:1]
        inference += inference_points(name, family, obj, X, use, batches, settings, threads, energy)
        training += training_points(name, family, obj, X, y, use, spec, threads, seed, energy)
    methods = {r["energy_method"] for r in inference + training}
    note = estimate_note(methods, energy)
    notes += [note] if note else []
    for note in notes:
        log.warning("%s", note)
    per_model = [r.as_dict() for r in energy_table(families, model_dirs, inference)]
    result = {
        "gpu_present": bool(gpus),
        "gpus": gpus,
        "notes": notes,
        "host": host_info(),
        "cpu_threads": threads,
        "versions": library_versions(LIBRARIES),
        "xgboost_cuda": xgboost_cuda(),
        "method": {
            "timer": "time.perf_counter_ns per call",
            "warmup_calls": settings.warmup,
            "min_calls": settings.min_calls,
            "min_seconds": settings.min_seconds,
            "max_seconds": settings.max_seconds,
            "call": "host array in, host array out (copies included); Keras via one traced "
            "tf.function",
        },
        "inference": inference,
        "training": training,
        "speedup": speedups(inference),
        "energy": {
            "cpu_watts_per_core": energy.cpu_watts_per_core,
            "methods": sorted(methods),
            "models": per_model,
        },
    }
    write_json(outputs["json"], result)
    write_csv(pd.DataFrame(inference), outputs["table"])
    if "energy" in outputs:
        write_csv(pd.DataFrame(per_model), outputs["energy"])
    gpu_figure(result, outputs["figure"])
    return result


__all__ = ["BenchmarkError", "run_gpu_benchmark", "speedups", "visible_gpus", "xgboost_cuda"]
