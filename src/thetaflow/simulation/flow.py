"""A conditional normalising flow in Keras 3: rational-quadratic spline couplings.

A flow maps a data point x (given a condition c) to a standard normal z through a chain of
invertible layers; its density is p(x | c) = N(z) |det ∂z/∂x|, exact, and sampling runs the
chain backwards from normal draws. Each layer here is a coupling (RealNVP, Dinh et al.,
arXiv:1605.08803): half of the coordinates pass through unchanged and, together with c, set
the parameters of a monotone rational-quadratic spline (Durkan et al., "Neural Spline
Flows", arXiv:1906.04032) that transforms the other half; coordinates outside [-bound, bound]
pass through (linear tails). The halves alternate from layer to layer.

Why this and not a library: TensorFlow Probability, the maintained flow library of the
TensorFlow stack, does not run on Keras 3 alone: 0.25 imports ``tf_keras`` as soon as Keras 3
is installed, and its bijector networks are ``tf_keras`` layers that a Keras 3 ``.keras`` file
cannot hold (checked with TF 2.21 / Keras 3.15, without tf-keras). nflows, zuko and normflows
are PyTorch, which the stack does not carry. The flow here is a few hundred lines of
backend-neutral ``keras.ops``, saved as ``.keras`` like every other network of the project.

Why splines, not affine couplings: with affine couplings every coordinate's conditional
distribution is a Gaussian reshaped only through the other coordinates; a jet's p_T response
near the storage threshold is a truncated, skewed distribution, which a spline of a handful of
bins fits directly.

Inputs and conditions are standardised inside the model (means and scales fixed at
construction), so the saved file evaluates and samples in the caller's units. The last dense
layer of every coupling starts at zero, which makes the untrained flow the identity in
standardised units. :class:`FlowSimulator` bundles a flow with an efficiency classifier and
fixed tables into one ``.keras`` model (a learned simulation); :func:`fit_model` trains either
network (Adam, cosine learning-rate decay, early stopping on a validation split).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import ops

#: smallest bin width and height (fraction of the interval) and smallest knot derivative:
#: they keep the spline and its inverse well conditioned
MIN_BIN = 1e-3
MIN_DERIVATIVE = 1e-3
#: softplus offset that makes a zero network output a unit derivative (the identity spline)
_DERIVATIVE_OFFSET = math.log(math.expm1(1.0 - MIN_DERIVATIVE))
_LOG_2PI = math.log(2.0 * math.pi)
#: fits of at most this many optimiser steps run eagerly (no graph tracing)
EAGER_STEPS = 64


def coupling_masks(n_features: int, n_layers: int) -> list[list[int]]:
    """Which coordinates each coupling leaves unchanged (1) and transforms (0).

    Halves alternate (first/second, then even/odd positions, and again), so that after four
    layers every coordinate has been transformed given each of the others. A single
    coordinate is transformed by every layer, conditioned on c alone.
    """
    if n_features == 1:
        return [[0] for _ in range(n_layers)]
    half = n_features // 2
    blocks = [1 if i < half else 0 for i in range(n_features)]
    parity = [1 if i % 2 == 0 else 0 for i in range(n_features)]
    patterns = [blocks, [1 - b for b in blocks], parity, [1 - p for p in parity]]
    return [patterns[k % 4] for k in range(n_layers)]


def _bin_edges(raw: Any, bound: float) -> tuple[Any, Any]:
    """Softmax bin sizes on [-bound, bound] → (edges (..., K+1), sizes (..., K))."""
    bins = raw.shape[-1]
    fraction = MIN_BIN + (1.0 - MIN_BIN * bins) * ops.softmax(raw, axis=-1)
    cumulative = ops.cumsum(fraction, axis=-1)
    inner = -bound + 2.0 * bound * cumulative[..., :-1]
    lower = ops.full_like(raw[..., :1], -bound)
    upper = ops.full_like(raw[..., :1], bound)
    edges = ops.concatenate([lower, inner, upper], axis=-1)
    return edges, edges[..., 1:] - edges[..., :-1]


def _gather(values: Any, index: Any) -> Any:
    return ops.take_along_axis(values, index[..., None], axis=-1)[..., 0]


def rational_quadratic_spline(
    x: Any, raw: Any, bound: float, *, inverse: bool = False
) -> tuple[Any, Any]:
    """Monotone rational-quadratic spline of every element of ``x`` (n, d).

    ``raw`` (n, d, 3K - 1) holds the unnormalised bin widths (K), heights (K) and interior
    knot derivatives (K - 1); the outer derivatives are 1 so that the identity tails join
    smoothly. Returns the transformed values and log |dy/dx| elementwise (forward) or the
    inverse values and log |dx/dy| (``inverse``).
    """
    bins = (raw.shape[-1] + 1) // 3
    x_edges, widths = _bin_edges(raw[..., :bins], bound)
    y_edges, heights = _bin_edges(raw[..., bins : 2 * bins], bound)
    ones = ops.ones_like(raw[..., :1])
    derivatives = ops.concatenate(
        [ones, MIN_DERIVATIVE + ops.softplus(raw[..., 2 * bins :] + _DERIVATIVE_OFFSET), ones],
        axis=-1,
    )
    inside = ops.logical_and(x > -bound, x < bound)
    v = ops.where(inside, x, ops.zeros_like(x))  # keeps the tails' arithmetic finite
    edges = y_edges if inverse else x_edges
    k = ops.sum(ops.cast(v[..., None] >= edges[..., 1:-1], "int32"), axis=-1)
    x_k, w_k = _gather(x_edges, k), _gather(widths, k)
    y_k, h_k = _gather(y_edges, k), _gather(heights, k)
    d_k, d_k1 = _gather(derivatives, k), _gather(derivatives, k + 1)
    slope = h_k / w_k
    curvature = d_k1 + d_k - 2.0 * slope
    if inverse:
        dy = v - y_k
        a = dy * curvature + h_k * (slope - d_k)
        b = h_k * d_k - dy * curvature
        c = -slope * dy
        discriminant = ops.maximum(b * b - 4.0 * a * c, 0.0)
        xi = 2.0 * c / (-b - ops.sqrt(discriminant))
        out = x_k + xi * w_k
    else:
        xi = (v - x_k) / w_k
        out = y_k + h_k * (slope * xi * xi + d_k * xi * (1.0 - xi)) / (
            slope + curvature * xi * (1.0 - xi)
        )
    xi1 = xi * (1.0 - xi)
    denominator = slope + curvature * xi1
    log_derivative = (
        2.0 * ops.log(slope)
        + ops.log(d_k1 * xi * xi + 2.0 * slope * xi1 + d_k * (1.0 - xi) ** 2)
        - 2.0 * ops.log(denominator)
    )
    log_jacobian = -log_derivative if inverse else log_derivative
    return ops.where(inside, out, x), ops.where(inside, log_jacobian, ops.zeros_like(x))


@keras.saving.register_keras_serializable(package="thetaflow")
class SplineCoupling(keras.layers.Layer):
    """One coupling: the coordinates with mask 0 are splined, given those with mask 1 and c."""

    def __init__(
        self,
        mask: Sequence[int],
        hidden_units: Sequence[int],
        bins: int,
        bound: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.mask = [int(m) for m in mask]
        self.hidden_units = [int(u) for u in hidden_units]
        self.bins = int(bins)
        self.bound = float(bound)
        self._kept = [i for i, m in enumerate(self.mask) if m]
        self._moved = [i for i, m in enumerate(self.mask) if not m]
        # concatenate([kept, moved]) reordered back to the input's coordinate order
        self._order = list(np.argsort(self._kept + self._moved))
        self._hidden = [
            keras.layers.Dense(units, activation="relu", name=f"hidden_{i}")
            for i, units in enumerate(self.hidden_units)
        ]
        self._params = keras.layers.Dense(
            len(self._moved) * (3 * self.bins - 1), kernel_initializer="zeros", name="spline"
        )

    def build(self, input_shape: Any) -> None:
        """Build the conditioner for ``(x shape, c shape)``."""
        x_shape, c_shape = input_shape
        width = len(self._kept) + int(c_shape[-1])
        for layer in self._hidden:
            layer.build((None, width))
            width = layer.units
        self._params.build((None, width))

    def _spline_parameters(self, kept: Any, condition: Any) -> Any:
        h = ops.concatenate([kept, condition], axis=-1) if self._kept else condition
        for layer in self._hidden:
            h = layer(h)
        return ops.reshape(self._params(h), (-1, len(self._moved), 3 * self.bins - 1))

    def transform(self, x: Any, condition: Any, *, inverse: bool = False) -> tuple[Any, Any]:
        """x → y with log |det ∂y/∂x| per row (``inverse``: y → x with log |det ∂x/∂y|)."""
        kept = ops.take(x, self._kept, axis=1) if self._kept else x[:, :0]
        moved = ops.take(x, self._moved, axis=1)
        raw = self._spline_parameters(kept, condition)
        out, log_jacobian = rational_quadratic_spline(moved, raw, self.bound, inverse=inverse)
        y = ops.take(ops.concatenate([kept, out], axis=1), self._order, axis=1)
        return y, ops.sum(log_jacobian, axis=1)

    def call(self, inputs: Any) -> Any:
        """Forward transform of ``(x, c)``."""
        x, condition = inputs
        return self.transform(x, condition)[0]

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for ``.keras`` saving."""
        return {
            **super().get_config(),
            "mask": self.mask,
            "hidden_units": self.hidden_units,
            "bins": self.bins,
            "bound": self.bound,
        }


@keras.saving.register_keras_serializable(package="thetaflow")
class ConditionalFlow(keras.Model):
    """p(x | c) as a chain of :class:`SplineCoupling` layers over a standard normal.

    ``x_mean``/``x_scale`` and ``c_mean``/``c_scale`` standardise data and conditions inside
    the model (the log-density includes the standardisation's Jacobian). Called on
    ``(x, c)`` it returns the negative log-density per row, the training loss.
    """

    def __init__(
        self,
        x_mean: Sequence[float],
        x_scale: Sequence[float],
        c_mean: Sequence[float],
        c_scale: Sequence[float],
        coupling_layers: int = 4,
        hidden_units: Sequence[int] = (64, 64),
        bins: int = 8,
        bound: float = 5.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.x_mean = [float(v) for v in x_mean]
        self.x_scale = [float(v) for v in x_scale]
        self.c_mean = [float(v) for v in c_mean]
        self.c_scale = [float(v) for v in c_scale]
        self.coupling_layers = int(coupling_layers)
        self.hidden_units = [int(u) for u in hidden_units]
        self.bins = int(bins)
        self.bound = float(bound)
        self.couplings = [
            SplineCoupling(mask, self.hidden_units, self.bins, self.bound, name=f"coupling_{i}")
            for i, mask in enumerate(coupling_masks(self.n_features, self.coupling_layers))
        ]
        self._log_scale = float(np.sum(np.log(self.x_scale)))
        self._sampler: Callable[[np.ndarray, np.ndarray], Any] | None = None

    @property
    def n_features(self) -> int:
        """Dimension of x."""
        return len(self.x_mean)

    @property
    def n_conditions(self) -> int:
        """Dimension of c."""
        return len(self.c_mean)

    def build(self, input_shape: Any = None) -> None:
        """Build every coupling (shapes follow from the constructor's arguments)."""
        for coupling in self.couplings:
            coupling.build(((None, self.n_features), (None, self.n_conditions)))
        self.built = True

    def _condition(self, c: Any) -> Any:
        return (ops.cast(c, self.compute_dtype) - self.c_mean) / self.c_scale

    def to_latent(self, x: Any, c: Any) -> tuple[Any, Any]:
        """x → z and log |det ∂z/∂x| per row."""
        z = (ops.cast(x, self.compute_dtype) - self.x_mean) / self.x_scale
        condition = self._condition(c)
        log_det = ops.zeros_like(z[:, 0]) - self._log_scale
        for coupling in self.couplings:
            z, step = coupling.transform(z, condition)
            log_det = log_det + step
        return z, log_det

    def from_latent(self, z: Any, c: Any) -> Any:
        """z → x, the inverse of :meth:`to_latent`."""
        x = ops.cast(z, self.compute_dtype)
        condition = self._condition(c)
        for coupling in reversed(self.couplings):
            x, _ = coupling.transform(x, condition, inverse=True)
        return x * self.x_scale + self.x_mean

    def sampler(self) -> Callable[[np.ndarray, np.ndarray], Any]:
        """:meth:`from_latent` as one traced graph for any batch size (TensorFlow backend;
        eagerly elsewhere): ~3x faster than eager calls on large batches on a CPU."""
        if self._sampler is None:
            self._sampler = self.from_latent
            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                self._sampler = tf.function(
                    self.from_latent,
                    input_signature=[
                        tf.TensorSpec((None, self.n_features), tf.float32),
                        tf.TensorSpec((None, self.n_conditions), tf.float32),
                    ],
                )
        return self._sampler

    def log_prob(self, x: Any, c: Any) -> Any:
        """log p(x | c) per row."""
        z, log_det = self.to_latent(x, c)
        return -0.5 * ops.sum(z * z, axis=1) - 0.5 * self.n_features * _LOG_2PI + log_det

    def call(self, inputs: Any) -> Any:
        """Negative log-density of ``(x, c)`` per row."""
        x, c = inputs
        return -self.log_prob(x, c)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for ``.keras`` saving."""
        return {
            "name": self.name,
            "x_mean": self.x_mean,
            "x_scale": self.x_scale,
            "c_mean": self.c_mean,
            "c_scale": self.c_scale,
            "coupling_layers": self.coupling_layers,
            "hidden_units": self.hidden_units,
            "bins": self.bins,
            "bound": self.bound,
        }


@keras.saving.register_keras_serializable(package="thetaflow")
class FlowSimulator(keras.Model):
    """A conditional flow, an efficiency classifier on the same conditions, named fixed
    arrays (frequency tables) and JSON metadata: a learned simulation as one ``.keras`` file.

    Called on conditions it returns the efficiency. The tables are non-trainable float64
    weights, set with :meth:`set_tables` and read with :meth:`table`; ``metadata`` holds what
    the caller needs to interpret them (field names, acceptance edges).
    """

    def __init__(
        self,
        flow: dict[str, Any],
        efficiency_units: Sequence[int],
        table_shapes: dict[str, Sequence[int]],
        metadata: dict[str, Any],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.flow_config = dict(flow)
        self.efficiency_units = [int(u) for u in efficiency_units]
        self.table_shapes = {k: [int(d) for d in v] for k, v in table_shapes.items()}
        self.metadata = dict(metadata)
        self.flow = ConditionalFlow(**self.flow_config)
        self.flow.build()
        self.efficiency = keras.Sequential(
            [
                keras.Input((self.flow.n_conditions,)),
                keras.layers.Normalization(
                    mean=self.flow.c_mean, variance=np.square(self.flow.c_scale)
                ),
                *(keras.layers.Dense(u, activation="relu") for u in self.efficiency_units),
                keras.layers.Dense(1, activation="sigmoid"),
            ],
            name="efficiency",
        )
        self._tables = {
            name: self.add_weight(
                shape=tuple(shape), initializer="zeros", trainable=False, name=name, dtype="float64"
            )
            for name, shape in self.table_shapes.items()
        }
        self.build()

    def build(self, input_shape: Any = None) -> None:
        """Every weight exists from the constructor on: nothing left to build."""
        self.built = True

    def call(self, c: Any) -> Any:
        """Efficiency per row of conditions ``c``."""
        return self.efficiency(c)[:, 0]

    def set_tables(self, tables: Mapping[str, np.ndarray]) -> None:
        """Store every table (shapes as declared)."""
        for name, variable in self._tables.items():
            variable.assign(np.asarray(tables[name], np.float64))

    def table(self, name: str) -> np.ndarray:
        """One table as a numpy array."""
        return np.asarray(ops.convert_to_numpy(self._tables[name]))

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for ``.keras`` saving."""
        return {
            "name": self.name,
            "flow": self.flow_config,
            "efficiency_units": self.efficiency_units,
            "table_shapes": self.table_shapes,
            "metadata": self.metadata,
        }


@keras.saving.register_keras_serializable(package="thetaflow")
def negative_log_likelihood(y_true: Any, y_pred: Any) -> Any:
    """The loss of a model whose output is already −log p per row (``y_true`` unused)."""
    del y_true
    return y_pred


@dataclass(frozen=True)
class TrainingSettings:
    """How a network of this module is fitted: Adam with a cosine learning-rate decay to
    ``final_lr_fraction`` of ``learning_rate`` over ``epochs``, early stopping after
    ``patience`` epochs without improvement on a validation split."""

    epochs: int
    batch_size: int
    learning_rate: float
    validation_fraction: float = 0.2
    patience: int = 5
    final_lr_fraction: float = 0.01


@dataclass(frozen=True)
class FitSummary:
    """What a fit did: epochs run, the best epoch and its validation loss, the losses."""

    epochs: int
    best_epoch: int
    best_valid_loss: float
    valid_loss: list[float]


def fit_model(
    model: keras.Model,
    inputs: Any,
    targets: np.ndarray,
    settings: TrainingSettings,
    loss: Any,
    rng: np.random.Generator,
) -> FitSummary:
    """Fit ``model`` with Adam on a random validation split drawn from ``rng``, the learning
    rate decaying along a cosine (small final steps pin the densities' fine details, such as
    a b-tag mean, that a constant rate leaves noisy); stop when the validation loss has not
    improved for ``settings.patience`` epochs and keep the best epoch's weights. ``inputs`` is
    an array or a tuple of arrays with one row per target.

    Tracing the training and validation steps into graphs costs seconds; a fit of at most
    :data:`EAGER_STEPS` steps runs eagerly instead, which is faster for such small fits.
    """
    arrays = inputs if isinstance(inputs, tuple) else (inputs,)
    n = len(targets)
    order = rng.permutation(n)
    n_valid = max(1, int(round(settings.validation_fraction * n)))
    valid, train = order[:n_valid], order[n_valid:]

    def rows(index: np.ndarray) -> Any:
        taken = tuple(np.asarray(a)[index] for a in arrays)
        return taken if isinstance(inputs, tuple) else taken[0]

    steps = settings.epochs * math.ceil(len(train) / settings.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        settings.learning_rate, decay_steps=steps, alpha=settings.final_lr_fraction
    )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=loss,
        run_eagerly=steps <= EAGER_STEPS,
    )
    stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=settings.patience, restore_best_weights=True
    )
    history = model.fit(
        rows(train),
        targets[train],
        validation_data=(rows(valid), targets[valid]),
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[stopping],
    )
    valid_loss = [float(v) for v in history.history["val_loss"]]
    best = int(np.argmin(valid_loss))
    return FitSummary(len(valid_loss), best + 1, valid_loss[best], valid_loss)
