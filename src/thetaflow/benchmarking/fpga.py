"""FPGA-latency benchmark: three labelled tiers per model, no vendor tools.

1. **Fidelity (exact)** — bit-accurate fixed-point emulation compared with the float model on
   the events of one test fold: hls4ml (C++ emulation built with g++) for the NN and the
   autoencoder, conifer's C++ backend for the BDT, over a precision scan ``ap_fixed<W,I>``.
   Agreement is the fraction of events on the same side of the working-point cut; the run
   fails below ``benchmarks.fpga.min_agreement`` at the default precision.
2. **Latency in clock cycles of a generated design** (exact for that design; in ns assuming
   timing closure at ``clock_mhz``): for networks, the post-training quantized network as a
   da4ml pipeline (ELU hidden layers as hls4ml's lookup table; for the autoencoder the design
   goes on to its reconstruction error, the number a trigger cuts on), its cycles simulated
   in GHDL; for the BDT, conifer's VHDL simulated in GHDL from input-valid to output-valid,
   beside conifer's formula.
3. **Resource estimates** (labelled estimates): da4ml's LUT/FF cost model, Yosys
   ``synth_xilinx`` on the generated Verilog as an independent cross-check, conifer's
   estimator for the BDT.

Inputs. Every firmware model here takes *standardised* inputs, ``z = (x − μ)/σ``, computed
upstream of it (as a trigger's input scaling would): for the NN μ, σ are its own
``Normalization`` layer, for the autoencoder its recorded standardisation, for the BDT the
training folds' mean and standard deviation, with every split threshold transformed the same
way (exact in float). :func:`~thetaflow.benchmarking.fixedpoint.profile_inputs` reports any
input the chosen type cannot represent.
"""

from __future__ import annotations

import copy
import logging
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from thetaflow.benchmarking.fixedpoint import FixedType, PrecisionError, fidelity, profile_inputs
from thetaflow.benchmarking.hdl import (
    ErrorPath,
    HDLToolError,
    UnsupportedModelError,
    da4ml_design,
    fixed_point_forward,
    ghdl_bdt_latency,
    ghdl_pipeline_latency,
    yosys_resources,
)
from thetaflow.benchmarking.tools import (
    emulation_environment,
    host_info,
    library_versions,
    missing_tools,
    require_tools,
    tool_version,
)
from thetaflow.core.errors import ThetaflowError
from thetaflow.core.io import write_json
from thetaflow.ml.folds import ml_inputs
from thetaflow.ml.models.nn import configure_tensorflow

log = logging.getLogger(__name__)

#: model families with an FPGA path and the emulator of each
FPGA_PATHS = {"nn": "hls4ml", "bdt": "conifer", "autoencoder": "hls4ml"}
LIBRARIES = ("hls4ml", "conifer", "da4ml", "tensorflow", "keras", "xgboost", "numpy")
TOOLS = ("g++", "ghdl", "yosys", "nlohmann-json")
NORMALIZATION_EPSILON = 1e-7  # keras.config.epsilon(): Normalization divides by max(σ, ε)


class FidelityError(ThetaflowError, RuntimeError):
    """The fixed-point emulation agrees with the float model less than required."""


@dataclass(frozen=True)
class FPGASettings:
    """The ``benchmarks.fpga`` config block, parsed."""

    clock_mhz: float
    default_precision: FixedType
    scan_widths: tuple[int, ...]
    output_precision: FixedType
    min_agreement: float
    background_efficiency: float
    events: int
    latency: bool
    resources: bool
    da4ml_latency_cutoff: float
    yosys_max_luts: float
    yosys_family: str
    tool_timeout_s: float
    allow_input_overflow: bool
    seed: int
    layer_integer_bits: str = "profile"

    @classmethod
    def from_config(cls, config: Mapping) -> FPGASettings:
        """From ``benchmarks.fpga`` (schema defaults), errors naming the key."""
        spec = config["benchmarks"]["fpga"]
        default = FixedType.parse(spec["default_precision"], "benchmarks.fpga.default_precision")
        out = FixedType.parse(spec["output_precision"], "benchmarks.fpga.output_precision")
        widths = tuple(int(w) for w in spec["scan_widths"])
        bad = [w for w in widths if w <= default.integer]
        if bad:
            raise PrecisionError(
                f"benchmarks.fpga.scan_widths: widths {bad} leave no fractional bit with the "
                f"{default.integer} "
                f"integer bits of default_precision {default.hls()}"
            )
        return cls(
            clock_mhz=float(spec["clock_mhz"]),
            default_precision=default,
            scan_widths=tuple(sorted(set(widths) | {default.width})),
            output_precision=out,
            min_agreement=float(spec["min_agreement"]),
            background_efficiency=float(spec["background_efficiency"]),
            events=int(spec["events"]),
            latency=bool(spec["latency"]),
            resources=bool(spec["resources"]),
            da4ml_latency_cutoff=float(spec["da4ml_latency_cutoff"]),
            yosys_max_luts=float(spec["yosys_max_luts"]),
            yosys_family=str(spec["yosys_family"]),
            tool_timeout_s=float(spec["tool_timeout_s"]),
            allow_input_overflow=bool(spec["allow_input_overflow"]),
            seed=int(config["benchmarks"]["seed"]),
            layer_integer_bits=str(spec.get("layer_integer_bits", "profile")),
        )

    @property
    def clock_period_ns(self) -> float:
        """Clock period in ns."""
        return 1e3 / self.clock_mhz


# ----------------------------------------------------------------------------- tiers


@dataclass(frozen=True)
class Fidelity:
    """Tier 1 of one model: its bit-accurate fixed-point emulation against the float model,
    over the precision scan."""

    method: str
    default: dict[str, Any]  # the scan row of the default precision
    scan: list[dict[str, Any]]
    input_profile: dict[str, Any]
    #: what the backend adds: layer_integer_bits (hls4ml), conversion_check (conifer)
    details: dict[str, Any]
    exact: bool = True

    def to_json(self) -> dict[str, Any]:
        """The ``fidelity`` section of the benchmark JSON."""
        return {
            "method": self.method,
            "exact": self.exact,
            "default": self.default,
            "scan": self.scan,
            "input_profile": self.input_profile,
            **self.details,
        }


class Hardware(NamedTuple):
    """Tiers 2 and 3 of one model as their JSON sections: ``latency`` (cycles of a generated
    design) and ``resources`` (labelled estimates), each saying whether it is ``available``
    and, where not, why (``note``)."""

    latency: dict[str, Any]
    resources: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The ``latency`` and ``resources`` sections of the benchmark JSON."""
        return {"latency": self.latency, "resources": self.resources}


@dataclass(frozen=True)
class ModelTiers:
    """The three tiers of one model, and what describes the model that was benchmarked."""

    fidelity: Fidelity
    hardware: Hardware
    ensemble: dict[str, int] | None = None  # a BDT's n_trees, max_depth, n_features
    #: a network's [inputs, outputs, activation] per Dense layer
    architecture: list[list[int | str]] | None = None

    def to_json(self) -> dict[str, Any]:
        """The tier sections of the benchmark JSON (model description included)."""
        out: dict[str, Any] = {"fidelity": self.fidelity.to_json()}
        if self.ensemble is not None:
            out["ensemble"] = self.ensemble
        out.update(self.hardware.to_json())
        if self.architecture is not None:
            out["architecture"] = self.architecture
        return out


# ----------------------------------------------------------------------------- networks


@dataclass
class DenseNetwork:
    """A plain MLP in standardised units: ``layers`` = [(W, b, activation)], input μ and σ."""

    name: str
    kind: str  # "classifier" (last activation sigmoid/softmax) or "autoencoder" (linear output)
    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    layers: list[tuple[np.ndarray, np.ndarray, str]]
    error_mode: str = (
        "mse"  # autoencoder error: mse, normalised or max (thetaflow.unsupervised.autoencoder)
    )
    feature_scale: np.ndarray | None = None  # per-feature typical squared error (normalised, max)

    def standardise(self, frame: pd.DataFrame) -> np.ndarray:
        """z = (x − μ)/σ of the network's features (float32, contiguous)."""
        X = frame[list(self.features)].to_numpy(dtype=np.float64)
        return np.ascontiguousarray((X - self.mean) / self.scale, dtype=np.float32)

    def forward(self, Z: np.ndarray) -> np.ndarray:
        """Float outputs (float32 arithmetic, as the Keras model)."""
        h = np.asarray(Z, dtype=np.float32)
        for W, b, act in self.layers:
            h = _activate(h @ W.astype(np.float32) + b.astype(np.float32), act)
        return h.astype(np.float64)

    def score(self, outputs: np.ndarray, Z: np.ndarray) -> np.ndarray:
        """Score from network outputs: the sigmoid output, or the autoencoder's reconstruction
        error as :mod:`thetaflow.unsupervised.autoencoder` defines it (mse, normalised or max;
        no KL term)."""
        if self.kind == "autoencoder":
            terms = (np.asarray(Z, np.float64) - outputs) ** 2
            if self.error_mode != "mse" and self.feature_scale is not None:
                terms = terms / np.maximum(self.feature_scale, 1e-12)
            return terms.max(axis=1) if self.error_mode == "max" else terms.mean(axis=1)
        return outputs[:, 0] if outputs.shape[1] == 1 else outputs.argmax(axis=1).astype(np.float64)

    def keras_model(self) -> Any:
        """A fresh Keras model of Dense layers with these weights (what hls4ml converts)."""
        import keras  # deferred: TensorFlow is heavy; the tier-1 emulation alone needs it

        x = keras.Input(shape=(self.layers[0][0].shape[0],), name="z")
        h = x
        for k, (W, b, act) in enumerate(self.layers):
            layer = keras.layers.Dense(W.shape[1], activation=act, name=f"dense_{k}")
            h = layer(h)
            layer.set_weights([W.astype(np.float32), b.astype(np.float32)])
        return keras.Model(x, h, name=self.name)


def _activate(h: np.ndarray, act: str) -> np.ndarray:
    if act == "relu":
        return np.maximum(h, 0)
    if act == "elu":
        return np.where(h > 0, h, np.expm1(np.minimum(h, 0)))
    if act == "tanh":
        return np.tanh(h)
    if act == "sigmoid":
        return 1.0 / (1.0 + np.exp(-h))
    if act == "softmax":
        e = np.exp(h - h.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if act == "linear":
        return h
    raise UnsupportedModelError(f"activation '{act}' is not supported by the FPGA benchmark")


def _dense_layers(model: Any, where: str) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(W, b, activation) of each Dense layer of a Keras model; other layers have no path."""
    import keras  # deferred: TensorFlow is heavy; only reading a network needs it

    layers = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            W, b = (np.asarray(w, dtype=np.float64) for w in layer.get_weights())
            layers.append((W, b, layer.activation.__name__))
        elif not isinstance(
            layer, (keras.layers.InputLayer, keras.layers.Dropout, keras.layers.Normalization)
        ):
            raise UnsupportedModelError(
                f"{where}: layer '{layer.name}' ({type(layer).__name__}) has no FPGA path"
            )
    if not layers:
        raise UnsupportedModelError(f"{where}: no Dense layer")
    return layers


def load_nn(directory: Path, name: str) -> DenseNetwork:
    """The NN family's ``model.keras``: its Normalization layer becomes μ, σ."""
    import keras

    from thetaflow.ml.training import TrainingRecord

    record = TrainingRecord.read(directory)
    model = keras.saving.load_model(Path(directory) / "model.keras", compile=False, safe_mode=True)
    norm = [layer for layer in model.layers if isinstance(layer, keras.layers.Normalization)]
    if len(norm) != 1:
        raise UnsupportedModelError(
            f"model '{name}' ({directory}): expected one Normalization layer, found {len(norm)}"
        )
    mean = np.asarray(norm[0].mean, dtype=np.float64).ravel()
    scale = np.maximum(
        np.sqrt(np.asarray(norm[0].variance, dtype=np.float64).ravel()), NORMALIZATION_EPSILON
    )
    return DenseNetwork(
        name,
        "classifier",
        tuple(record.inputs),
        mean,
        scale,
        _dense_layers(model, f"model '{name}'"),
    )


def load_autoencoder(config: Mapping, directory: Path, name: str = "autoencoder") -> DenseNetwork:
    """The autoencoder's ``model.keras`` and recorded standardisation (plain AE only), read
    and checked to be fold ``benchmarks.fold``'s by the scoring stage's loader."""
    from thetaflow.unsupervised.autoencoder import anomaly_inputs, load_autoencoder_fold

    fold, folds = int(config["benchmarks"]["fold"]), int(config["ml"]["folds"])
    autoencoder = load_autoencoder_fold(directory, fold, folds, anomaly_inputs(config))
    record = autoencoder.record
    if record.get("kind", "ae") != "ae":
        raise UnsupportedModelError(
            f"{name}: kind '{record.get('kind')}' (variational autoencoder) has no FPGA path here: "
            "its scoring "
            "model has three outputs and a KL term; only the plain autoencoder "
            "(anomaly.model.kind: ae) is benchmarked"
        )
    std = record["standardisation"]
    model = autoencoder.model
    scale = record.get("feature_scale")
    return DenseNetwork(
        name,
        "autoencoder",
        tuple(std["features"]),
        np.asarray(std["mean"], np.float64),
        np.asarray(std["scale"], np.float64),
        _dense_layers(model, name),
        error_mode=str(record.get("error", "mse")),
        feature_scale=None if scale is None else np.asarray(scale, np.float64),
    )


@dataclass(frozen=True)
class LayerTypes:
    """Fixed-point types of one network at one width: per Dense layer its result (and
    accumulator) type and its activation's result type, with the float ranges behind them."""

    width: int
    dense: tuple[FixedType, ...]
    activation: tuple[FixedType, ...]
    ranges: tuple[tuple[float, float], ...]  # (max |pre-activation|, max |activation|) per layer

    def describe(self) -> list[dict]:
        """JSON-ready per-layer types and ranges."""
        return [
            {
                "layer": f"dense_{k}",
                "result": d.hls(),
                "activation_result": a.hls(),
                "max_abs_pre_activation": r[0],
                "max_abs_activation": r[1],
            }
            for k, (d, a, r) in enumerate(
                zip(self.dense, self.activation, self.ranges, strict=True)
            )
        ]


def layer_ranges(net: DenseNetwork, Z: np.ndarray) -> list[tuple[float, float]]:
    """(max |pre-activation|, max |activation|) of each layer on the float network."""
    h = np.asarray(Z, dtype=np.float64)
    out = []
    for W, b, act in net.layers:
        pre = h @ W + b
        h = _activate(pre, act)
        out.append((float(np.abs(pre).max()), float(np.abs(h).max())))
    return out


def _integer_bits_for(max_abs: float) -> int:
    """Integer bits (sign included) holding ±max_abs."""
    return int(math.floor(math.log2(max(max_abs, 1e-9)))) + 2


def layer_types(
    net: DenseNetwork, ranges: Sequence[tuple[float, float]], ftype: FixedType, mode: str
) -> LayerTypes:
    """Per-layer types at ``ftype``'s width: ``ftype`` itself (mode ``fixed``), or with the
    integer bits raised where profiling shows larger values (mode ``profile``, never fewer
    than ``ftype``'s) and saturation instead of wrap-around beyond them. A layer needing more
    integer bits than the width leaves raises :class:`PrecisionError` naming the layer — also
    in ``fixed`` mode, where the type would overflow silently."""
    dense, activation = [], []
    for k, (pre, post) in enumerate(ranges):
        types = []
        for value, what in ((pre, "pre-activation"), (post, "activation")):
            need = _integer_bits_for(value)
            if mode == "fixed":
                if value > ftype.high:
                    raise PrecisionError(
                        f"{net.name}: layer dense_{k} {what}s reach {value:.3g} on the test "
                        "events, outside "
                        f"{ftype.hls()} (±{2.0 ** (ftype.integer - 1):g}); use "
                        "benchmarks.fpga.layer_integer_bits: profile "
                        f"or more integer bits"
                    )
                types.append(ftype)
                continue
            integer = max(ftype.integer, need)
            if integer >= ftype.width:
                raise PrecisionError(
                    f"{net.name}: layer dense_{k} {what}s reach {value:.3g} on the test events "
                    "(profiling): "
                    f"{integer} integer bits needed, {ftype.width}-bit ap_fixed cannot hold them "
                    "with any fraction"
                )
            types.append(FixedType(ftype.width, integer, ftype.signed, ftype.rounding, "AP_SAT"))
        dense.append(types[0])
        activation.append(types[1])
    return LayerTypes(
        ftype.width, tuple(dense), tuple(activation), tuple((float(a), float(b)) for a, b in ranges)
    )


def _unsigned_integer_bits_for(max_value: float) -> int:
    """Integer bits of an unsigned type holding [0, max_value]."""
    return int(math.floor(math.log2(max(max_value, 1e-9)))) + 1


def error_weights(net: DenseNetwork) -> np.ndarray:
    """w_j of the reconstruction error: 1/n (mse), 1/(n·scale_j) (normalised), 1/scale_j (max)."""
    n = len(net.features)
    if net.error_mode == "mse" or net.feature_scale is None:
        return np.full(n, 1.0 / n)
    inverse = 1.0 / np.maximum(np.asarray(net.feature_scale, np.float64), 1e-12)
    return inverse if net.error_mode == "max" else inverse / n


def error_path(net: DenseNetwork, Z: np.ndarray, ftype: FixedType, mode: str) -> ErrorPath:
    """Fixed-point types of the autoencoder's error in firmware, at ``ftype``'s width.

    The difference z − x̂ is signed, the squares, weights and the error unsigned; integer bits
    come from the float network on the test events as for the layers (:func:`layer_types`:
    never fewer than ``ftype``'s, saturating; mode ``fixed`` raises where ``ftype`` is too
    narrow), the weights get the integer bits their largest value needs.
    """
    if net.error_mode not in ("mse", "normalised", "max"):
        raise UnsupportedModelError(
            f"{net.name}: error mode '{net.error_mode}' has no firmware error path"
        )
    weights = error_weights(net)
    zq = ftype.quantize(np.asarray(Z, np.float64))
    difference = zq - net.forward(Z)
    terms = difference**2 * weights
    error = terms.max(axis=1) if net.error_mode == "max" else terms.sum(axis=1)
    types = []
    for value, what, signed in (
        (float(np.abs(difference).max()), "difference z - x_hat", True),
        (float((difference**2).max()), "squared difference", False),
        (float(error.max()), "reconstruction error", False),
    ):
        need = _integer_bits_for(value) if signed else _unsigned_integer_bits_for(value)
        if mode == "fixed" and need > ftype.integer:
            raise PrecisionError(
                f"{net.name}: the {what} reaches {value:.3g} on the test events, outside "
                f"{ftype.integer} integer bits "
                f"of {ftype.hls()}; use benchmarks.fpga.layer_integer_bits: profile or more "
                "integer bits"
            )
        integer = max(ftype.integer, need)
        if integer >= ftype.width:
            raise PrecisionError(
                f"{net.name}: the {what} reaches {value:.3g} on the test events (profiling): "
                f"{integer} integer bits needed, {ftype.width} bits cannot hold them with any "
                "fraction"
            )
        types.append(FixedType(ftype.width, integer, signed, ftype.rounding, "AP_SAT"))
    weight = FixedType(ftype.width, _unsigned_integer_bits_for(float(weights.max())), False)
    return ErrorPath(net.error_mode, weights, types[0], types[1], weight, types[2])


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


# ----------------------------------------------------------------------------- BDT


def load_bdt_ensemble(directory: Path, mean: np.ndarray, scale: np.ndarray) -> tuple[Any, dict]:
    """(xgboost booster, conifer ensemble dict with standardised thresholds, true depth)."""
    import xgboost as xgb
    from conifer.converters import xgboost as conifer_xgb

    booster = xgb.Booster(model_file=str(Path(directory) / "model.ubj"))
    ensemble = conifer_xgb.convert(booster)
    depth = 0
    for trees in ensemble["trees"]:
        for tree in trees:
            left, right = tree["children_left"], tree["children_right"]
            for node, feature in enumerate(tree["feature"]):
                if left[node] != -1:
                    # conifer reads thresholds from xgboost's text dump (9 digits): snap back to the
                    # float32 xgboost compares with, else x == threshold events go the wrong way
                    exact = float(np.float32(tree["threshold"][node]))
                    tree["threshold"][node] = float((exact - mean[feature]) / scale[feature])
            depth = max(depth, _depth(left, right))
    # xgboost's saved model does not carry max_depth; conifer then assumes xgboost's default 6
    ensemble["max_depth"] = depth
    return booster, ensemble


def _depth(left: Sequence[int], right: Sequence[int], node: int = 0) -> int:
    if left[node] == -1:
        return 0
    return 1 + max(_depth(left, right, left[node]), _depth(left, right, right[node]))


def conifer_model(ensemble: dict, precision: str, backend: str, workdir: Path) -> Any:
    """A compiled conifer model (``cpp`` emulation or ``vhdl`` project simulated in GHDL)."""
    import conifer  # deferred: optional FPGA dependency, only the BDT tiers need it

    module = conifer.backends.cpp if backend == "cpp" else conifer.backends.vhdl
    cfg = module.auto_config()
    cfg["OutputDir"] = str(workdir)
    cfg["Precision"] = precision
    with emulation_environment(workdir):
        if backend == "vhdl":
            from conifer.backends.vhdl import simulators  # deferred with conifer (above)

            simulators.set_simulator("ghdl")
        model = conifer.model.make_model(copy.deepcopy(ensemble), cfg)
        ok = model.compile()
        if backend == "vhdl" and not ok:
            raise HDLToolError(
                f"conifer VHDL project in {workdir}: GHDL compilation failed (see ghdl_compile.log "
                "there)"
            )
    return model


def conifer_predict(model: Any, Z: np.ndarray, workdir: Path) -> np.ndarray:
    """The BDT's fixed-point logit for standardised ``Z``."""
    with emulation_environment(workdir):
        return np.asarray(
            model.decision_function(np.ascontiguousarray(Z, dtype=np.float64)), dtype=np.float64
        ).reshape(len(Z), -1)[:, 0]


# ----------------------------------------------------------------------------- tiers


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def precision_scan(
    settings: FPGASettings,
    emulate: Callable[[FixedType], tuple[np.ndarray, dict]],
    float_score: np.ndarray,
    labels: np.ndarray,
    to_score: Callable[[np.ndarray], np.ndarray],
    name: str,
) -> list[dict]:
    """Fidelity of every ``ap_fixed<W,I>`` of the scan (I from the default precision)."""
    rows = []
    for width in settings.scan_widths:
        ftype = settings.default_precision.with_width(width)
        try:
            out, info = emulate(ftype)
        except PrecisionError as err:
            if width == settings.default_precision.width:
                raise
            log.warning("%s", err)
            rows.append(
                {
                    "precision": ftype.hls(),
                    "width": width,
                    "agreement": None,
                    "note": f"not emulated: {err}",
                }
            )
            continue
        fid = fidelity(float_score, to_score(out), labels, settings.background_efficiency)
        rows.append({"precision": ftype.hls(), "width": width, **fid.as_dict(), **info})
        log.info(
            "%s %s: agreement %.4f, AUC %.4f (float %.4f)",
            name,
            ftype.hls(),
            fid.agreement,
            fid.auc_fixed,
            fid.auc_float,
        )
    return rows


def check_default(rows: Sequence[dict], settings: FPGASettings, name: str) -> dict:
    """The default precision's row; below ``min_agreement`` raises :class:`FidelityError`."""
    row = next(r for r in rows if r["width"] == settings.default_precision.width)
    if row["agreement"] < settings.min_agreement:
        raise FidelityError(
            f"{name}: fixed-point emulation at {row['precision']} agrees with the float model on "
            f"{row['agreement']:.4f} of the events, below benchmarks.fpga.min_agreement = "
            f"{settings.min_agreement}; "
            f"choose a wider benchmarks.fpga.default_precision (see the scan in the log)"
        )
    return row


def check_input_range(
    Z: np.ndarray, features: Sequence[str], settings: FPGASettings, name: str
) -> dict:
    """Input profile against the default precision; overflow raises unless allowed."""
    report = profile_inputs(Z, features, settings.default_precision)
    if not report.ok:
        if not settings.allow_input_overflow:
            raise PrecisionError(
                f"{name}: {report.message()} — these would wrap around in the firmware; widen the "
                "integer part "
                "of benchmarks.fpga.default_precision or set "
                "benchmarks.fpga.allow_input_overflow: true"
            )
        log.warning("%s: %s", name, report.message())
    return {
        "type": report.type,
        "range": [report.low, report.high],
        "overflowing": report.overflowing,
        "max_abs_input": float(np.abs(Z).max()),
        "message": report.message(),
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
        _network_hardware(net, Z, labels, float_score, settings, workdir),
        architecture=[[int(W.shape[0]), int(W.shape[1]), act] for W, _, act in net.layers],
    )


def _network_hardware(
    net: DenseNetwork,
    Z: np.ndarray,
    labels: np.ndarray,
    float_score: np.ndarray,
    settings: FPGASettings,
    workdir: Path,
) -> Hardware:
    """Tiers 2 and 3 of a network: da4ml design, GHDL cycles, resource estimates."""
    latency: dict[str, Any] = {"available": False}
    resources: dict[str, Any] = {"label": "estimates", "available": False}
    if not (settings.latency or settings.resources):
        note = "switched off (benchmarks.fpga.latency and .resources are false)"
        return Hardware({**latency, "note": note}, {**resources, "note": note})
    ftype = settings.default_precision
    try:
        types = layer_types(net, layer_ranges(net, Z), ftype, settings.layer_integer_bits)
        error = (
            error_path(net, Z, ftype, settings.layer_integer_bits)
            if net.kind == "autoencoder"
            else None
        )
        design = da4ml_design(
            net.layers,
            ftype,
            workdir / "da4ml",
            settings.da4ml_latency_cutoff,
            settings.clock_period_ns,
            net.name,
            types.dense,
            types.activation,
            error,
        )
    except UnsupportedModelError as err:
        note = f"not available: {err}"
        log.warning("%s", note)
        return Hardware({**latency, "note": note}, {**resources, "note": note})
    outputs = design.predict(Z)
    reference = fixed_point_forward(net.layers, ftype, Z, types.dense, types.activation, error)
    design_fid: dict[str, Any]
    if net.kind == "classifier" and outputs.shape[1] > 1:
        design_fid = {
            "argmax_agreement": float(np.mean(outputs.argmax(1) == net.forward(Z).argmax(1)))
        }
    else:
        design_score = outputs[:, 0] if error is not None else _sigmoid(outputs)[:, 0]
        design_fid = fidelity(
            float_score, design_score, labels, settings.background_efficiency
        ).as_dict()
    activations = sorted({act for _, _, act in net.layers[:-1]})
    if error is not None:
        what = (
            "da4ml pipeline of the post-training quantized autoencoder and its reconstruction "
            "error "
            f"({error.mode}: difference, square, weighted "
            f"{'maximum' if error.mode == 'max' else 'sum'}; "
            "output = the error a trigger cuts on)"
        )
    else:
        what = "da4ml pipeline of the post-training quantized network (logit output, no sigmoid)"
    if "elu" in activations:
        what += ", ELU as hls4ml's lookup table (1024 entries over [-8, 0))"
    design_info = {
        "precision": ftype.hls(),
        "da4ml_stages": design.stages,
        "latency_cutoff": design.latency_cutoff,
        "design_fidelity": design_fid,
        "hidden_activations": activations,
        "identical_to_numpy_model_fraction": float(np.mean(np.all(outputs == reference, axis=1))),
    }
    if error is not None and design.network_only is not None:  # set together by da4ml_design
        design_info["error_path"] = error.describe()
        design_info["network_only_da4ml_stages"] = design.network_only["stages"]
    if settings.latency:
        latency = {
            "available": True,
            "method": f"{what}, cycles counted in a GHDL simulation of its VHDL",
            **design_info,
            "clock_mhz": settings.clock_mhz,
            "assumption": f"assuming timing closure at {settings.clock_mhz:g} MHz",
        }
        missing = missing_tools(["ghdl"])
        if missing:
            latency.update(
                cycles=None,
                ns=None,
                note="GHDL (Debian package ghdl) not installed: cycles not simulated",
            )
        else:
            cycles = ghdl_pipeline_latency(design, Z[0], settings.tool_timeout_s)
            relation = (
                "the input register adds one cycle to da4ml's stage count"
                if cycles == design.stages + 1
                else f"da4ml reports {design.stages} stages"
            )
            latency.update(cycles=cycles, ns=cycles * settings.clock_period_ns, note=relation)
    if settings.resources:
        resources = {
            "label": "estimates",
            "available": True,
            "da4ml": {
                "lut": design.lut_estimate,
                "ff": design.ff_estimate,
                "dsp": 0,
                "method": "da4ml cost model (constant multiplications as shift-add, no DSP; "
                "lookup tables as distributed ROM)",
            },
        }
        if design.network_only is not None:
            resources["da4ml"]["network_only"] = {
                "lut": design.network_only["lut"],
                "ff": design.network_only["ff"],
                "stages": design.network_only["stages"],
            }
        resources["yosys"] = _yosys(design, settings, net.name)
    return Hardware(latency, resources)


def _yosys(design: Any, settings: FPGASettings, name: str) -> dict:
    if missing_tools(["yosys"]):
        return {"available": False, "note": "Yosys (Debian package yosys) not installed"}
    if design.lut_estimate > settings.yosys_max_luts:
        return {
            "available": False,
            "note": (
                f"skipped: da4ml estimates {design.lut_estimate:.0f} LUT, above "
                "benchmarks.fpga.yosys_max_luts = "
                f"{settings.yosys_max_luts:g} (Yosys synthesis time grows with the design; raise "
                "the cap to run it)"
            ),
        }
    start = time.perf_counter()
    cells = yosys_resources(design, settings.yosys_family, settings.tool_timeout_s)
    return {
        "available": True,
        **cells,
        "seconds": time.perf_counter() - start,
        "method": f"Yosys synth_xilinx -family {settings.yosys_family} -flatten (open-source "
        "synthesis, no place-and-route)",
        "version": tool_version("yosys"),
    }


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
    float_score = _sigmoid(float_logit)
    double = conifer_predict(
        conifer_model(ensemble, "double", "cpp", workdir / "conifer_double"), Z, workdir
    )
    conversion = float(np.abs(double - float_logit).max())

    compiled: dict[int, Any] = {}

    def emulate(ftype: FixedType) -> tuple[np.ndarray, dict]:
        start = time.perf_counter()
        compiled[ftype.width] = conifer_model(
            ensemble, ftype.hls(), "cpp", workdir / f"conifer_{ftype.width}"
        )
        return conifer_predict(compiled[ftype.width], Z, workdir), {
            "seconds": time.perf_counter() - start
        }

    rows = precision_scan(settings, emulate, float_score, labels, _sigmoid, name)
    default = check_default(rows, settings, name)
    n_trees, depth = int(ensemble["n_trees"]), int(ensemble["max_depth"])
    fidelity = Fidelity(
        method="conifer C++ backend, bit-accurate ap_fixed emulation (g++); inputs, thresholds "
        "and scores in the scanned type; score = sigmoid of the fixed-point sum",
        default=default,
        scan=rows,
        input_profile=profile,
        details={
            "conversion_check": {"conifer_double_vs_xgboost_max_abs_logit_difference": conversion}
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
            vhdl = conifer_model(
                ensemble, settings.default_precision.hls(), "vhdl", workdir / "conifer_vhdl"
            )
        if settings.latency and vhdl is not None:
            cycles = ghdl_bdt_latency(workdir / "conifer_vhdl", settings.tool_timeout_s)
            n_check = min(len(Z), 64)
            sim = conifer_predict(vhdl, Z[:n_check], workdir)
            cpp = conifer_predict(compiled[settings.default_precision.width], Z[:n_check], workdir)
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


# ----------------------------------------------------------------------------- entry points


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
    table = pd.read_parquet(table_path, columns=[*dict.fromkeys(["fold", "label", *columns])])
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
        _dense_layers(model, "reference"),
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
        hardware = _network_hardware(
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
