"""Transformer classifier on the object set (Keras 3 on TensorFlow).

In the spirit of the Particle Transformer (Qu, Li, Qian, arXiv:2202.03772) without its
pairwise features: each object (leptons and jets, one set) is embedded by a Dense layer
(``embed_dim``), then ``n_blocks`` pre-norm blocks of multi-head self-attention
(``num_heads``) and a feed-forward network (``ff_dim``), each with a residual connection.
The attention mask lets objects attend only to real objects; there is no positional
encoding, so the blocks are permutation-equivariant and the masked pooling (``pooling``)
after them invariant. The MET vector is appended and the head (``hidden_layers``) gives the
score. Inputs, training and files as :mod:`thetaflow.ml.models._particles` describes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from thetaflow.ml.models._inputs import require_positive
from thetaflow.ml.models._particles import ParticleNet
from thetaflow.ml.models.base import ModelConfigError
from thetaflow.ml.models.nn import NeuralNet


class Transformer(ParticleNet):
    """Dense embedding → [LN → MHA → + ; LN → FFN → +]×n → LN → masked sum/mean ⊕ MET →
    [Dense(relu) → Dropout]×m → Dense(1, sigmoid)."""

    family: ClassVar[str] = "transformer"
    defaults: ClassVar[Mapping[str, Any]] = {
        **NeuralNet.defaults,
        # sized for 2 cores: ~20 µs per event and epoch, so 30 epochs of 120k training and
        # 30k validation events take ~1.5 min (embed_dim 32, 4 heads, ff_dim 64: 2.5x that)
        "embed_dim": 16,
        "num_heads": 2,
        "n_blocks": 2,
        "ff_dim": 32,
        "pooling": "mean",
    }

    @classmethod
    def check_params(cls, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The particle families' checks, plus positive sizes and heads dividing the
        embedding."""
        out = super().check_params(name, params)
        require_positive(cls, name, out, ("embed_dim", "num_heads", "n_blocks", "ff_dim"))
        if out["embed_dim"] % out["num_heads"]:
            raise ModelConfigError(
                f"model '{name}' (family '{cls.family}'): hyperparameter 'embed_dim' "
                f"({out['embed_dim']}) must be a multiple of 'num_heads' ({out['num_heads']})"
            )
        return out

    def _pooled(self, objects: Any, present: Any) -> Any:
        import keras

        from thetaflow.ml.models._particle_layers import MaskedPooling, PairMask

        width = self.params["embed_dim"]
        heads = self.params["num_heads"]
        attend = PairMask(name="attention_mask")(present)
        h = keras.layers.Dense(width, name="embed")(objects)
        for i in range(self.params["n_blocks"]):
            a = keras.layers.LayerNormalization(name=f"block{i}_norm_attention")(h)
            a = keras.layers.MultiHeadAttention(heads, width // heads, name=f"block{i}_attention")(
                a, a, attention_mask=attend
            )
            h = keras.layers.Add(name=f"block{i}_residual_attention")([h, a])
            f = keras.layers.LayerNormalization(name=f"block{i}_norm_ff")(h)
            f = keras.layers.Dense(self.params["ff_dim"], activation="relu", name=f"block{i}_ff")(f)
            f = keras.layers.Dense(width, name=f"block{i}_ff_out")(f)
            h = keras.layers.Add(name=f"block{i}_residual_ff")([h, f])
        h = keras.layers.LayerNormalization(name="norm")(h)
        return MaskedPooling(self.params["pooling"], name="pool")(h, present)
