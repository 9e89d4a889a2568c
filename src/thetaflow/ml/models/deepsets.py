"""Deep Sets / Particle Flow Network classifier (Keras 3 on TensorFlow).

Zaheer et al., NeurIPS 2017; Komiske, Metodiev, Thaler, JHEP 01 (2019) 121. Every object of
the event (leptons and jets, one set) goes through the same network Φ (``phi_layers``, Dense
layers applied per object); the sum or mean of Φ over the real objects (``pooling``) is
invariant under any reordering of them, and blind to the padded slots. The MET vector is
appended and the head F (``hidden_layers``) gives the score. Inputs, training and files as
:mod:`thetaflow.ml.models._particles` describes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from thetaflow.ml.models._particles import ParticleNet
from thetaflow.ml.models.nn import NeuralNet


class DeepSets(ParticleNet):
    """Φ: [Dense(relu)]×n per object → masked sum/mean → ⊕ MET → F: [Dense(relu) → Dropout]×m
    → Dense(1, sigmoid)."""

    family: ClassVar[str] = "deepsets"
    defaults: ClassVar[Mapping[str, Any]] = {
        **NeuralNet.defaults,
        "phi_layers": [64, 64],
        "pooling": "sum",
    }

    @classmethod
    def check_params(cls, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The particle families' checks, plus positive integer widths of Φ."""
        out = super().check_params(name, params)
        cls.check_widths(name, "phi_layers", out["phi_layers"])
        return out

    def _pooled(self, objects: Any, present: Any) -> Any:
        import keras

        from thetaflow.ml.models._particle_layers import MaskedPooling

        h = objects
        for i, units in enumerate(self.params["phi_layers"]):
            h = keras.layers.Dense(units, activation="relu", name=f"phi_{i}")(h)
        return MaskedPooling(self.params["pooling"], name="pool")(h, present)
