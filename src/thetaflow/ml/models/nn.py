"""Feed-forward neural network (Keras on TensorFlow).

Inputs are standardised by a ``Normalization`` layer adapted on the training features, so
the saved ``model.keras`` carries its own preprocessing. Training minimises the weighted
binary cross-entropy with the optimiser of the ``optimizer`` hyperparameter (Adam by
default; :data:`OPTIMIZERS`), halves the learning rate when the validation loss stalls and
stops early, restoring the weights of the best validation epoch. Runs are
deterministic for a given seed (seeded Keras/TF/NumPy, TF op determinism) and the same on
every AVX2 or AVX-512 machine (oneDNN kernels pinned, :mod:`thetaflow.core.determinism`).

Training runs a whole epoch per call of Keras' traced step function
(``steps_per_execution``): the same batches and updates as one call per batch, without the
per-batch Python and eager dispatch that made up ~30 % of the fit's CPU.

Prediction calls the model through one traced ``tf.function`` on large batches:
``model.predict`` costs ~40 ms of set-up per call, which dominates when scoring many small
tables. TensorFlow is imported on first use, so importing :mod:`thetaflow.ml.models` stays
cheap for the stages that never train a network.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from thetaflow.core.determinism import PINNED, pin_cpu_dispatch
from thetaflow.core.io import reading_result
from thetaflow.core.progress import Progress, keras_callback
from thetaflow.ml.models._inputs import check_fit_inputs, not_fitted, threads, unit_mean
from thetaflow.ml.models.base import Classifier, Dataset, FitReport, ModelConfigError

# keras/TensorFlow are imported where used: validating a model config (at every workflow
# parse) must not start TensorFlow
if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

PREDICT_BATCH = 65536


@dataclass(frozen=True)
class OptimizerKind:
    """One optimiser the ``optimizer`` hyperparameter can name: its Keras class, the
    momentum it takes (None: none; else the default) and whether it is Nesterov's."""

    keras_class: str
    momentum: float | None = None
    nesterov: bool = False


#: The optimisers of the ``optimizer.name`` hyperparameter. ``sgd_momentum`` and ``nesterov``
#: are Keras' SGD with (Nesterov) momentum; ``rmsprop``'s momentum is Keras' (0 by default).
OPTIMIZERS: Mapping[str, OptimizerKind] = {
    "sgd": OptimizerKind("SGD"),
    "sgd_momentum": OptimizerKind("SGD", momentum=0.9),
    "nesterov": OptimizerKind("SGD", momentum=0.9, nesterov=True),
    "adagrad": OptimizerKind("Adagrad"),
    "adadelta": OptimizerKind("Adadelta"),
    "rmsprop": OptimizerKind("RMSprop", momentum=0.0),
    "adam": OptimizerKind("Adam"),
}


class OptimizerError(ModelConfigError):
    """A bad ``optimizer`` hyperparameter; ``key`` is its key at fault (``name``, ...)."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


def check_optimizer(spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The ``optimizer`` hyperparameter ``{name, momentum}`` checked, its momentum default
    filled in for the optimisers that take one.

    Args:
        spec: the mapping as configured.
        where: the start of each message, naming the model (or study entry) at fault.

    Raises:
        OptimizerError: an unknown key or optimiser name, a momentum outside [0, 1) or one
            given to an optimiser without momentum; the message names ``optimizer.<key>``.
    """
    unknown = sorted(set(spec) - {"name", "momentum"})
    if unknown:
        raise OptimizerError(
            f"{where}: unknown key 'optimizer.{unknown[0]}'; allowed: momentum, name", unknown[0]
        )
    name = spec.get("name")
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise OptimizerError(
            f"{where}: hyperparameter 'optimizer.name' must be one of "
            f"{', '.join(OPTIMIZERS)}, got {name!r}",
            "name",
        )
    kind = OPTIMIZERS[name]
    if kind.momentum is None:
        if "momentum" in spec:
            takes = [n for n, k in OPTIMIZERS.items() if k.momentum is not None]
            raise OptimizerError(
                f"{where}: hyperparameter 'optimizer.momentum' does not apply to optimizer "
                f"'{name}' (only to {', '.join(takes)})",
                "momentum",
            )
        return {"name": name}
    momentum = spec.get("momentum", kind.momentum)
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)):
        raise OptimizerError(
            f"{where}: hyperparameter 'optimizer.momentum' must be a number, got {momentum!r}",
            "momentum",
        )
    if not 0.0 <= momentum < 1.0:
        raise OptimizerError(
            f"{where}: hyperparameter 'optimizer.momentum' must be in [0, 1), got {momentum!r}",
            "momentum",
        )
    return {"name": name, "momentum": float(momentum)}


def make_optimizer(spec: Mapping[str, Any], learning_rate: float) -> keras.optimizers.Optimizer:
    """The Keras optimiser of a checked ``optimizer`` hyperparameter (:func:`check_optimizer`)."""
    import keras

    kind = OPTIMIZERS[spec["name"]]
    cls = getattr(keras.optimizers, kind.keras_class)
    if kind.momentum is None:
        return cls(learning_rate)
    if kind.keras_class == "SGD":
        return cls(learning_rate, momentum=spec["momentum"], nesterov=kind.nesterov)
    return cls(learning_rate, momentum=spec["momentum"])


class NeuralNet(Classifier):
    """MLP: Normalization → [Dense(relu) → Dropout]×n → Dense(1, sigmoid).

    The caller may set ``threads`` (int, default 1) before the first ``fit``/``load`` of
    the process; TensorFlow fixes its thread pools once it has started.
    """

    family: ClassVar[str] = "nn"
    defaults: ClassVar[Mapping[str, Any]] = {
        "hidden_layers": [64, 64],
        "dropout": 0.1,
        "learning_rate": 1.0e-3,
        "optimizer": {"name": "adam"},
        "epochs": 30,
        "batch_size": 1024,
        "patience": 5,
        "lr_patience": 2,
        "lr_factor": 0.5,
    }
    filename: ClassVar[str] = "model.keras"

    def __init__(
        self, name: str, params: Mapping[str, Any], seed: int, feature_names: Sequence[str]
    ) -> None:
        super().__init__(name, params, seed, feature_names)
        self._model: keras.Model | None = None
        self._forward: Callable[[np.ndarray], Any] | None = None

    @classmethod
    def check_params(cls, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The base checks, plus positive integer layer widths, a dropout rate in [0, 1), a
        positive learning rate and a known optimiser (:func:`check_optimizer`)."""
        out = super().check_params(name, params)
        where = f"model '{name}' (family '{cls.family}')"
        out["optimizer"] = check_optimizer(out["optimizer"], where)
        if not out["learning_rate"] > 0:
            raise ModelConfigError(
                f"{where}: hyperparameter 'learning_rate' must be positive, "
                f"got {out['learning_rate']!r}"
            )
        layers = out["hidden_layers"]
        if not layers or not all(
            isinstance(u, int) and not isinstance(u, bool) and u > 0 for u in layers
        ):
            raise ModelConfigError(
                f"model '{name}' (family '{cls.family}'): hyperparameter 'hidden_layers' must be a "
                f"non-empty list of positive integers, got {layers!r}"
            )
        if not 0.0 <= out["dropout"] < 1.0:
            raise ModelConfigError(
                f"model '{name}' (family '{cls.family}'): hyperparameter 'dropout' must be in "
                f"[0, 1), got {out['dropout']!r}"
            )
        return out

    @property
    def keras_model(self) -> keras.Model:
        """The fitted Keras model (input standardisation included)."""
        if self._model is None:
            raise not_fitted(self)
        return self._model

    def fit(self, train: Dataset, valid: Dataset) -> FitReport:
        """Train with weighted BCE; early stopping and LR reduction on the validation loss."""
        check_fit_inputs(self, train, valid)
        configure_tensorflow(threads(self))  # before keras imports TensorFlow
        import keras

        keras.utils.set_random_seed(self.seed)
        start = time.perf_counter()
        # a whole epoch per call of the traced train/test step: the same batches, in the same
        # order, through the same ops (bit-identical weights), without the Python and eager
        # dispatch of one call per batch (~0.7x the CPU of the default network's fit)
        model = self._build(
            train.X, steps_per_execution=math.ceil(len(train) / self.params["batch_size"])
        )
        stopping = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=self.params["patience"], restore_best_weights=True
        )
        reduce_lr = keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=self.params["lr_factor"], patience=self.params["lr_patience"]
        )
        history = model.fit(
            train.X,
            train.y.astype(np.float32),
            sample_weight=unit_mean(train.w),
            validation_data=(valid.X, valid.y.astype(np.float32), unit_mean(valid.w)),
            epochs=self.params["epochs"],
            batch_size=self.params["batch_size"],
            shuffle=True,
            verbose=0,
            callbacks=[
                stopping,
                reduce_lr,
                keras_callback(
                    Progress(log, f"{self.name} training", self.params["epochs"], "epochs")
                ),
            ],
        )
        self._set_model(model)
        report = FitReport(
            train_seconds=time.perf_counter() - start,
            n_train=len(train),
            n_valid=len(valid),
            iterations=len(history.history["val_loss"]),
            extra={
                "best_epoch": stopping.best_epoch + 1,
                "best_valid_loss": float(stopping.best),
                "final_learning_rate": float(model.optimizer.learning_rate),
                "valid_loss": [float(v) for v in history.history["val_loss"]],
            },
        )
        log.info(
            "%s: %d epochs, best %d (valid loss %.4f), %.1f s",
            self.name,
            report.iterations,
            report.extra["best_epoch"],
            report.extra["best_valid_loss"],
            report.train_seconds,
        )
        return report

    def _build(self, X: np.ndarray, steps_per_execution: int = 1) -> keras.Model:
        """The compiled, untrained network, its input layer adapted on ``X``; ``fit`` and
        ``evaluate`` run ``steps_per_execution`` batches per call (``train_on_batch`` one)."""
        import keras

        inputs = keras.Input(shape=(X.shape[1],), name="x")
        normalise = keras.layers.Normalization(name="normalise")
        normalise.adapt(X)
        h = normalise(inputs)
        for i, units in enumerate(self.params["hidden_layers"]):
            h = keras.layers.Dense(units, activation="relu", name=f"dense_{i}")(h)
            if self.params["dropout"] > 0:
                h = keras.layers.Dropout(self.params["dropout"], name=f"dropout_{i}")(h)
        outputs = keras.layers.Dense(1, activation="sigmoid", name="score")(h)
        model = keras.Model(inputs, outputs, name="mlp")
        model.compile(
            optimizer=make_optimizer(self.params["optimizer"], self.params["learning_rate"]),
            loss="binary_crossentropy",
            steps_per_execution=max(1, steps_per_execution),
        )
        return model

    def _set_model(self, model: keras.Model) -> None:
        """Keep ``model`` and trace its inference call once for any batch size."""
        import tensorflow as tf

        spec = tf.TensorSpec(shape=(None, len(self.feature_names)), dtype=tf.float32)
        self._model = model
        self._forward = tf.function(lambda x: model(x, training=False), input_signature=[spec])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Network output for each row, computed in batches of ``PREDICT_BATCH``."""
        if self._forward is None:
            raise not_fitted(self)
        X = np.ascontiguousarray(X, dtype=np.float32)
        out = np.empty(len(X), dtype=np.float64)
        for lo in range(0, len(X), PREDICT_BATCH):
            out[lo : lo + PREDICT_BATCH] = self._forward(X[lo : lo + PREDICT_BATCH]).numpy().ravel()
        return out

    def save(self, directory: Path) -> None:
        """Write ``model.keras`` (Keras' zip of config JSON and weights, no pickle)."""
        directory.mkdir(parents=True, exist_ok=True)
        self.keras_model.save(directory / self.filename)

    @classmethod
    def load(
        cls,
        directory: Path,
        name: str,
        params: Mapping[str, Any],
        seed: int,
        feature_names: Sequence[str],
    ) -> NeuralNet:
        """Read ``model.keras`` in Keras' safe mode; its input width must match."""
        model = cls(name, params, seed, feature_names)
        configure_tensorflow(threads(model))  # before keras imports TensorFlow
        import keras

        with reading_result(directory / cls.filename):
            net = keras.saving.load_model(directory / cls.filename, compile=False, safe_mode=True)
        if net.input_shape[-1] != len(model.feature_names):
            raise ValueError(
                f"model '{name}': {directory / cls.filename} takes {net.input_shape[-1]} features, "
                f"expected {len(model.feature_names)}"
            )
        model._set_model(net)
        return model


def configure_tensorflow(n_threads: int) -> None:
    """Pinned CPU kernels, deterministic ops and ``n_threads`` intra-op threads, if TF has
    not started yet.

    TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` when it is imported: the CPU pin of
    :func:`thetaflow.core.determinism.pin_cpu_dispatch` (already in the environment of every
    workflow job) is set here before the import, for processes started outside the workflow,
    and a warning is logged when TensorFlow was imported unpinned.
    """
    changed = [k for k in pin_cpu_dispatch() if k in PINNED]
    if changed and "tensorflow" in sys.modules:
        log.warning(
            "TensorFlow was imported before its CPU kernels were pinned (%s): its results "
            "may depend on this machine's instruction set",
            ", ".join(changed),
        )
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    if tf.config.threading.get_intra_op_parallelism_threads() == n_threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(n_threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        log.warning(
            "TensorFlow already started; keeping its thread pools (asked for %d threads)", n_threads
        )
