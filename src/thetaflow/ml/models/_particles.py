"""What the particle-list families share: inputs, standardisation, head, training.

A particle model's inputs are the columns of an object table
(:attr:`thetaflow.features.objects.ObjectLayout.columns`, one row per event), so it takes the
flat ``X`` of every family and its saved ``.keras`` model takes that row too. Inside the
network :class:`~thetaflow.ml.models._particle_layers.ParticleInputs` gives the row back its
object structure. A family supplies :meth:`ParticleNet._pooled`, the permutation-invariant
part from the encoded objects to one vector per event; the MET vector is appended to it and
the dense head of the NN family (``hidden_layers``, ``dropout``) gives the score.

Training, prediction, saving and the optimiser are the NN family's
(:class:`~thetaflow.ml.models.nn.NeuralNet`): weighted cross-entropy with the class-balanced
training weights, early stopping on the validation loss, seeded, native ``.keras`` files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from thetaflow.features.objects import ObjectLayout
from thetaflow.ml.models.base import ModelConfigError
from thetaflow.ml.models.nn import NeuralNet, configure_tensorflow, make_optimizer

if TYPE_CHECKING:
    from pathlib import Path

    import keras

POOLINGS = ("sum", "mean")


class ParticleNet(NeuralNet):
    """Base of the particle-list families (not a family itself)."""

    def __init__(
        self, name: str, params: Mapping[str, Any], seed: int, feature_names: Sequence[str]
    ) -> None:
        super().__init__(name, params, seed, feature_names)
        try:
            self.layout = ObjectLayout.from_columns(self.feature_names)
        except ValueError as err:
            raise ModelConfigError(
                f"model '{name}' (family '{self.family}') reads the object lists "
                f"(thetaflow.features.objects), not flat features: {err}"
            ) from None

    @classmethod
    def check_params(cls, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The NN family's checks, plus a known ``pooling``."""
        out = super().check_params(name, params)
        if out["pooling"] not in POOLINGS:
            raise ModelConfigError(
                f"model '{name}' (family '{cls.family}'): hyperparameter 'pooling' must be one "
                f"of {', '.join(POOLINGS)}, got {out['pooling']!r}"
            )
        return out

    @classmethod
    def check_widths(cls, name: str, key: str, widths: Any) -> None:
        """Raise ModelConfigError unless ``widths`` is a non-empty list of positive ints."""
        if not widths or not all(
            isinstance(u, int) and not isinstance(u, bool) and u > 0 for u in widths
        ):
            raise ModelConfigError(
                f"model '{name}' (family '{cls.family}'): hyperparameter '{key}' must be a "
                f"non-empty list of positive integers, got {widths!r}"
            )

    def _pooled(self, objects: Any, present: Any) -> Any:
        """Family network: encoded objects (n, slots, d) and their mask → (n, width)."""
        raise NotImplementedError

    def _build(self, X: np.ndarray, steps_per_execution: int = 1) -> keras.Model:
        """The compiled, untrained network, its input standardisation taken from the real
        objects of ``X``."""
        import keras

        from thetaflow.ml.models._particle_layers import ParticleInputs

        layout = self.layout
        objects, present, met = ParticleInputs(layout.max_leptons, layout.max_jets)(X)
        real = np.asarray(objects)[np.asarray(present)]
        met = np.asarray(met)
        standardise = ParticleInputs(
            layout.max_leptons,
            layout.max_jets,
            object_mean=real.mean(axis=0).tolist(),
            object_std=_nonzero(real.std(axis=0)),
            met_mean=met.mean(axis=0).tolist(),
            met_std=_nonzero(met.std(axis=0)),
            name="objects",
        )
        inputs = keras.Input(shape=(len(layout.columns),), name="x")
        objects, present, met = standardise(inputs)
        h = keras.layers.Concatenate(name="event")([self._pooled(objects, present), met])
        for i, units in enumerate(self.params["hidden_layers"]):
            h = keras.layers.Dense(units, activation="relu", name=f"head_{i}")(h)
            if self.params["dropout"] > 0:
                h = keras.layers.Dropout(self.params["dropout"], name=f"head_dropout_{i}")(h)
        outputs = keras.layers.Dense(1, activation="sigmoid", name="score")(h)
        model = keras.Model(inputs, outputs, name=self.family)
        model.compile(
            optimizer=make_optimizer(self.params["optimizer"], self.params["learning_rate"]),
            loss="binary_crossentropy",
            steps_per_execution=max(1, steps_per_execution),
        )
        return model

    @classmethod
    def load(
        cls,
        directory: Path,
        name: str,
        params: Mapping[str, Any],
        seed: int,
        feature_names: Sequence[str],
    ) -> ParticleNet:
        """Read ``model.keras`` (its custom layers registered first)."""
        configure_tensorflow(cls.threads)  # before the layers' module imports TensorFlow
        import thetaflow.ml.models._particle_layers  # noqa: F401  (registers the layers)

        return cast(ParticleNet, super().load(directory, name, params, seed, feature_names))


def _nonzero(std: np.ndarray) -> list[float]:
    """Standard deviations with zeros (a constant feature, e.g. no electron) set to 1."""
    return np.where(std > 0, std, 1.0).tolist()
