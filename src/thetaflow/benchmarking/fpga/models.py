"""The models the FPGA benchmark reads, in standardised units: :class:`DenseNetwork` (a plain
MLP with its input μ and σ, its float forward pass, score and Keras rebuild), the activations
and Dense layers of a Keras model, and the loading of the NN (``model.keras`` and its
Normalization layer), the plain autoencoder (its recorded standardisation) and the xgboost
BDT (as a conifer ensemble with standardised thresholds) from their model directories."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from thetaflow.benchmarking.hdl import UnsupportedModelError
from thetaflow.core.io import reading_result
from thetaflow.ml.record import TrainingRecord
from thetaflow.unsupervised.autoencoder import anomaly_inputs, load_autoencoder_fold

NORMALIZATION_EPSILON = 1e-7  # keras.config.epsilon(): Normalization divides by max(σ, ε)


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
            h = activate(h @ W.astype(np.float32) + b.astype(np.float32), act)
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


def activate(h: np.ndarray, act: str) -> np.ndarray:
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


def dense_layers(model: Any, where: str) -> list[tuple[np.ndarray, np.ndarray, str]]:
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

    record = TrainingRecord.read(directory)
    path = Path(directory) / "model.keras"
    with reading_result(path):
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
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
        dense_layers(model, f"model '{name}'"),
    )


def load_autoencoder(config: Mapping, directory: Path, name: str = "autoencoder") -> DenseNetwork:
    """The autoencoder's ``model.keras`` and recorded standardisation (plain AE only), read
    and checked to be fold ``benchmarks.fold``'s by the scoring stage's loader."""
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
        dense_layers(model, name),
        error_mode=str(record.get("error", "mse")),
        feature_scale=None if scale is None else np.asarray(scale, np.float64),
    )


def load_bdt_ensemble(directory: Path, mean: np.ndarray, scale: np.ndarray) -> tuple[Any, dict]:
    """(xgboost booster, conifer ensemble dict with standardised thresholds, true depth)."""
    import xgboost as xgb
    from conifer.converters import xgboost as conifer_xgb

    path = Path(directory) / "model.ubj"
    with reading_result(path):
        booster = xgb.Booster(model_file=str(path))
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
