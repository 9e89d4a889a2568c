"""Entry points of the FPGA benchmark: :func:`run_fpga_benchmark` (rule ``benchmark_fpga``:
the three tiers of one model of ``benchmarks.models`` on seeded events of the test fold, or
a ``skipped`` record saying why, written as JSON with versions, tools and host) and
:func:`run_reference` (the tiers on the hls4ml jet-tagging reference MLP trained on toy
inputs), with the model-family lookup and the test-event selection they share."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from thetaflow.benchmarking.fixedpoint import FixedType
from thetaflow.benchmarking.fpga.bdt import bdt_tiers
from thetaflow.benchmarking.fpga.design import network_hardware
from thetaflow.benchmarking.fpga.models import (
    DenseNetwork,
    dense_layers,
    load_autoencoder,
    load_nn,
)
from thetaflow.benchmarking.fpga.networks import hls4ml_emulate, network_tiers
from thetaflow.benchmarking.fpga.quantization import layer_ranges, layer_types
from thetaflow.benchmarking.fpga.settings import FPGA_PATHS, LIBRARIES, FPGASettings
from thetaflow.benchmarking.hdl import UnsupportedModelError
from thetaflow.benchmarking.tools import host_info, library_versions, require_tools, tool_version
from thetaflow.core.io import read_table, write_json
from thetaflow.ml.folds import ml_inputs
from thetaflow.ml.models.nn import configure_tensorflow

log = logging.getLogger(__name__)


def model_family(config: Mapping, model: str) -> str:
    """``autoencoder`` or the family of an ``ml.models`` entry; an unknown name raises."""
    if model == "autoencoder":
        return "autoencoder"
    models = config.get("ml", {}).get("models", {})
    if model not in models:
        raise KeyError(
            f"benchmarks.models: '{model}' is neither 'autoencoder' nor an entry of ml.models "
            f"({', '.join(models)})"
        )
    return str(models[model]["family"])


def test_events(
    table_path: str, fold: int, limit: int, seed: int, columns: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training-fold rows, up to ``limit`` seeded test-fold rows) of the training table."""
    table = read_table(table_path, columns=[*dict.fromkeys(["fold", "label", *columns])])
    test = table[table["fold"] == fold]
    if len(test) == 0:
        raise ValueError(f"{table_path}: no event in fold {fold} (benchmarks.fold)")
    if 0 < limit < len(test):
        test = test.sample(n=limit, random_state=seed).sort_index()
    return table[table["fold"] != fold], test


def _skipped(model: str, family: str, note: str) -> dict:
    log.warning("%s: %s", model, note)
    return {"model": model, "family": family, "status": "skipped", "note": note}


def run_fpga_benchmark(
    config: Mapping,
    model: str,
    table_path: str,
    model_dir: str | None,
    output: str,
    workdir: str | None = None,
) -> dict:
    """Workflow entry point of rule ``benchmark_fpga``: the three tiers of one model → JSON."""
    settings = FPGASettings.from_config(config)
    family = model_family(config, model)
    fold = int(config["benchmarks"]["fold"])
    header = {
        "model": model,
        "family": family,
        "fold": fold,
        "clock_mhz": settings.clock_mhz,
        "versions": library_versions(LIBRARIES),
        "tools": {t: tool_version(t) for t in ("g++", "ghdl", "yosys")},
        "host": host_info(),
    }
    if family not in FPGA_PATHS:
        result = {
            **header,
            **_skipped(
                model,
                family,
                (
                    f"family '{family}' has no FPGA path (hls4ml covers the nn family and the "
                    "autoencoder, conifer the bdt); "
                    "skipped"
                ),
            ),
        }
        write_json(output, result)
        return result
    if model_dir is None or not Path(model_dir).is_dir():
        result = {
            **header,
            **_skipped(model, family, f"no trained model directory ({model_dir}); skipped"),
        }
        write_json(output, result)
        return result
    scratch = Path(tempfile.mkdtemp(prefix=f"thetaflow-fpga-{model}-", dir=workdir))
    start = time.perf_counter()
    try:
        if family == "bdt":
            features = ml_inputs(config)
            train, test = test_events(table_path, fold, settings.events, settings.seed, features)
            labels = (test["label"].to_numpy() == 1).astype(int)
            tiers = bdt_tiers(
                Path(model_dir), features, train, test, labels, settings, scratch, model
            )
        else:
            try:
                net = (
                    load_nn(Path(model_dir), model)
                    if family == "nn"
                    else load_autoencoder(config, Path(model_dir), model)
                )
            except UnsupportedModelError as err:
                result = {**header, **_skipped(model, family, f"{err}; skipped")}
                write_json(output, result)
                return result
            _, test = test_events(table_path, fold, settings.events, settings.seed, net.features)
            labels = (test["label"].to_numpy() == 1).astype(int)
            tiers = network_tiers(net, net.standardise(test), labels, settings, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result = {
        **header,
        "status": "ok",
        "events": int(len(test)),
        "seconds": time.perf_counter() - start,
        "inputs": "standardised z = (x - mean)/std upstream of the firmware",
        **tiers.to_json(),
    }
    write_json(output, result)
    return result


def reference_network(
    seed: int, events: int = 20000, epochs: int = 5
) -> tuple[DenseNetwork, np.ndarray, np.ndarray]:
    """The hls4ml jet-tagging MLP 16-64-32-32-5 (ReLU, softmax) trained on toy inputs of that shape.

    Toy: 16 standard-normal inputs, 5 classes from a fixed random nonlinear teacher. Returns
    (network, test inputs, test labels).
    """
    import keras  # deferred: TensorFlow is heavy; only the reference run trains a network

    configure_tensorflow(1)
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2 * events, 16)).astype(np.float32)
    teacher = rng.normal(size=(16, 5))
    y = np.argmax(np.tanh(X @ teacher) + 0.3 * rng.normal(size=(2 * events, 5)), axis=1)
    x = keras.Input(shape=(16,))
    h = x
    for k, units in enumerate((64, 32, 32)):
        h = keras.layers.Dense(units, activation="relu", name=f"fc{k + 1}")(h)
    out = keras.layers.Dense(5, activation="softmax", name="output")(h)
    model = keras.Model(x, out)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(X[:events], y[:events], epochs=epochs, batch_size=256, verbose=0)
    net = DenseNetwork(
        "jet_tagging_reference",
        "classifier",
        tuple(f"x{i}" for i in range(16)),
        np.zeros(16),
        np.ones(16),
        dense_layers(model, "reference"),
    )
    return net, X[events:], y[events:]


def run_reference(config: Mapping, output: str, workdir: str | None = None) -> dict:
    """Workflow entry point: the tiers on the hls4ml jet-tagging MLP (16-64-32-32-5,
    ap_fixed<16,6>, reuse 1)."""
    settings = FPGASettings.from_config(config)
    spec = config["benchmarks"]["fpga"]
    require_tools(["g++"], "the hls4ml emulation of the reference network")
    net, X, y = reference_network(
        settings.seed, int(spec["reference_events"]), int(spec["reference_epochs"])
    )
    ftype = FixedType.parse("ap_fixed<16,6>")
    scratch = Path(tempfile.mkdtemp(prefix="thetaflow-fpga-reference-", dir=workdir))
    try:
        types = layer_types(net, layer_ranges(net, X), ftype, settings.layer_integer_bits)
        out, info = hls4ml_emulate(
            net, X, ftype, settings.output_precision, scratch / "hls4ml", types
        )
        float_out = net.forward(X)
        ref_settings = FPGASettings(**{**settings.__dict__, "default_precision": ftype})
        hardware = network_hardware(
            net, X, (y == 0).astype(int), float_out[:, 0], ref_settings, scratch
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result = {
        "model": net.name,
        "architecture": "16-64-32-32-5, ReLU, softmax",
        "precision": ftype.hls(),
        "reuse": 1,
        "toy": "16 standard-normal inputs, 5 classes from a random teacher",
        "events": int(len(X)),
        "fidelity": {
            "method": "hls4ml bit-accurate C++ emulation",
            "argmax_agreement": float(np.mean(out.argmax(1) == float_out.argmax(1))),
            "accuracy_float": float(np.mean(float_out.argmax(1) == y)),
            "accuracy_fixed": float(np.mean(out.argmax(1) == y)),
            **info,
        },
        "published": "hls4ml jet tagging (Duarte et al., JINST 13 (2018) P07027): latency of order "
        "100 ns "
        "(tens of cycles at 200 MHz) at ap_fixed<16,6>, reuse 1, from Vivado HLS",
        **hardware.to_json(),
        "clock_mhz": settings.clock_mhz,
        "versions": library_versions(LIBRARIES),
    }
    write_json(output, result)
    return result
