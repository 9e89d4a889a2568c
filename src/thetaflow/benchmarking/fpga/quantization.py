"""Fixed-point types of a network from its float ranges: :class:`LayerTypes` (per Dense layer
its result and activation types at one width), the profiling of each layer's
pre-activation and activation on the test events, the per-layer types (``fixed`` or
``profile``, saturating), and the types and weights of the autoencoder's reconstruction
error in firmware (:func:`error_path`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from thetaflow.benchmarking.fixedpoint import FixedType, PrecisionError
from thetaflow.benchmarking.fpga.models import DenseNetwork, activate
from thetaflow.benchmarking.hdl import ErrorPath, UnsupportedModelError


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
        h = activate(pre, act)
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
