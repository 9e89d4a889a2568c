"""The hls4ml path of the dense networks (NN classifier and autoencoder): the tier-1
bit-accurate hls4ml emulation (io_parallel, Latency strategy, reuse 1) with per-layer types,
and :func:`network_tiers`, the three tiers of a network (its precision scan, then the da4ml
design of :mod:`~thetaflow.benchmarking.fpga.design`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from thetaflow.benchmarking.fixedpoint import FixedType
from thetaflow.benchmarking.fpga.design import network_hardware
from thetaflow.benchmarking.fpga.models import DenseNetwork
from thetaflow.benchmarking.fpga.quantization import LayerTypes, layer_ranges, layer_types
from thetaflow.benchmarking.fpga.results import Fidelity, ModelTiers
from thetaflow.benchmarking.fpga.scan import check_default, check_input_range, precision_scan
from thetaflow.benchmarking.fpga.settings import FPGASettings
from thetaflow.benchmarking.tools import emulation_environment, require_tools


def hls4ml_emulate(
    net: DenseNetwork,
    Z: np.ndarray,
    ftype: FixedType,
    output_type: FixedType,
    workdir: Path,
    types: LayerTypes | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Bit-accurate hls4ml emulation (io_parallel, Latency strategy, reuse 1) of ``net``.

    Inputs, weights and biases are ``ftype``; each Dense layer's accumulator and result and
    each activation's result get the layer's type from ``types`` (default: ``ftype``). The
    output layer's result is set explicitly — ``output_type`` after a sigmoid/softmax
    (automatic precision can saturate them), the layer type for a linear output. Lookup
    tables keep hls4ml's defaults.
    """
    import hls4ml  # deferred: heavy (imports TensorFlow), only the emulation needs it

    n = len(net.layers)
    types = types or LayerTypes(ftype.width, (ftype,) * n, (ftype,) * n, ((0.0, 0.0),) * n)
    model = net.keras_model()
    cfg = hls4ml.utils.config_from_keras_model(
        model, granularity="name", default_precision=ftype.hls(), backend="Vitis"
    )
    for name, layer_cfg in cfg["LayerName"].items():
        precision = layer_cfg.get("Precision", {})
        for key in precision:
            if "table" not in key:
                precision[key] = ftype.hls()
        base, _, suffix = name.partition("_")
        if base != "dense" or not suffix:
            continue
        index, _, act = suffix.partition("_")
        k = int(index)
        if act:
            precision["result"] = types.activation[k].hls()
        else:
            for key in ("result", "accum"):
                if key in precision:
                    precision[key] = types.dense[k].hls()
    last = f"dense_{n - 1}"
    act = net.layers[-1][2]
    out_name = f"{last}_{act}" if f"{last}_{act}" in cfg["LayerName"] else last
    out_precision = output_type if act in ("sigmoid", "softmax") else types.dense[-1]
    cfg["LayerName"][out_name]["Precision"]["result"] = out_precision.hls()
    start = time.perf_counter()
    hls_model = hls4ml.converters.convert_from_keras_model(
        model, hls_config=cfg, output_dir=str(workdir), backend="Vitis", io_type="io_parallel"
    )
    with emulation_environment(workdir):
        hls_model.compile()
    compiled = time.perf_counter() - start
    out = np.asarray(
        hls_model.predict(np.ascontiguousarray(Z, dtype=np.float32)), dtype=np.float64
    ).reshape(len(Z), -1)
    return out, {
        "output_layer": out_name,
        "output_precision": out_precision.hls(),
        "compile_s": compiled,
        "predict_s": time.perf_counter() - start - compiled,
        "layers": types.describe(),
    }


def network_tiers(
    net: DenseNetwork, Z: np.ndarray, labels: np.ndarray, settings: FPGASettings, workdir: Path
) -> ModelTiers:
    """The three tiers of a dense network (NN classifier or autoencoder)."""
    require_tools(["g++"], f"the hls4ml emulation of '{net.name}'")
    profile = check_input_range(Z, net.features, settings, net.name)
    float_score = net.score(net.forward(Z), Z)

    ranges = layer_ranges(net, Z)

    def emulate(ftype: FixedType) -> tuple[np.ndarray, dict]:
        types = layer_types(net, ranges, ftype, settings.layer_integer_bits)
        return hls4ml_emulate(
            net, Z, ftype, settings.output_precision, workdir / f"hls4ml_{ftype.width}", types
        )

    def to_score(out: np.ndarray) -> np.ndarray:
        return net.score(out, settings.default_precision.quantize(Z))

    rows = precision_scan(settings, emulate, float_score, labels, to_score, net.name)
    default = check_default(rows, settings, net.name)
    fidelity = Fidelity(
        method="hls4ml bit-accurate C++ emulation (g++), io_parallel, Latency strategy, reuse 1",
        default=default,
        scan=rows,
        input_profile=profile,
        details={"layer_integer_bits": settings.layer_integer_bits},
    )
    return ModelTiers(
        fidelity,
        network_hardware(net, Z, labels, float_score, settings, workdir),
        architecture=[[int(W.shape[0]), int(W.shape[1]), act] for W, _, act in net.layers],
    )
