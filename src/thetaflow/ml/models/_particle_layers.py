"""Keras layers of the particle-list families, registered for safe ``.keras`` loading.

Imported only where a particle model is built or loaded (it imports Keras, hence
TensorFlow, which must be configured first: :func:`thetaflow.ml.models.nn.configure_tensorflow`).

:class:`ParticleInputs` turns the flat row of an object table
(:class:`thetaflow.features.objects.ObjectLayout`) into one set of objects, leptons and jets
together, each described by the same :data:`ENCODED` features, plus a presence mask and the
MET vector. Padded slots leave it as exact zeros, whatever they held, so that no later layer
can see their values; :class:`MaskedPooling` then sums or averages over the real objects only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from thetaflow.features.objects import JET_FIELDS, LEPTON_FIELDS

#: Per-object features the networks see: log p_T, η, cos φ, sin φ, log(1 + m), b-tag score
#: (0 for leptons), charge (0 for jets) and the object type (electron, muon, jet).
ENCODED = (
    "log_pt",
    "eta",
    "cos_phi",
    "sin_phi",
    "log1p_mass",
    "btag",
    "charge",
    "is_electron",
    "is_muon",
    "is_jet",
)
#: Global features: log MET, cos φ, sin φ of the MET.
ENCODED_MET = ("log_met", "cos_met_phi", "sin_met_phi")
_PT_FLOOR_GEV = 1.0e-3  # keeps log p_T finite in padded slots before they are zeroed
_LEP = {f: i for i, f in enumerate(LEPTON_FIELDS)}
_JET = {f: i for i, f in enumerate(JET_FIELDS)}


def _kinematics(objects: Any, index: dict[str, int]) -> list[Any]:
    pt, eta, phi, mass = (objects[..., index[f]] for f in ("pt_gev", "eta", "phi", "mass_gev"))
    return [
        ops.log(ops.maximum(pt, _PT_FLOOR_GEV)),
        eta,
        ops.cos(phi),
        ops.sin(phi),
        ops.log1p(ops.maximum(mass, 0.0)),
    ]


@keras.saving.register_keras_serializable(package="thetaflow")
class ParticleInputs(keras.layers.Layer):
    """Flat object row → (objects (n, slots, len(ENCODED)), present (n, slots), met (n, 3)).

    Objects and MET are standardised with the given means and standard deviations (of the
    training set's real objects); padded slots are set to 0 after it.
    """

    def __init__(
        self,
        max_leptons: int,
        max_jets: int,
        object_mean: Sequence[float] = (0.0,) * len(ENCODED),
        object_std: Sequence[float] = (1.0,) * len(ENCODED),
        met_mean: Sequence[float] = (0.0,) * len(ENCODED_MET),
        met_std: Sequence[float] = (1.0,) * len(ENCODED_MET),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_leptons = int(max_leptons)
        self.max_jets = int(max_jets)
        self.object_mean = [float(v) for v in object_mean]
        self.object_std = [float(v) for v in object_std]
        self.met_mean = [float(v) for v in met_mean]
        self.met_std = [float(v) for v in met_std]

    def call(self, x: Any) -> tuple[Any, Any, Any]:
        n_lep = self.max_leptons * (len(LEPTON_FIELDS) + 1)
        n_jet = self.max_jets * (len(JET_FIELDS) + 1)
        leptons = ops.reshape(x[:, :n_lep], (-1, self.max_leptons, len(LEPTON_FIELDS) + 1))
        jets = ops.reshape(x[:, n_lep : n_lep + n_jet], (-1, self.max_jets, len(JET_FIELDS) + 1))
        met = x[:, n_lep + n_jet :]
        lep_zero = ops.zeros_like(leptons[..., 0])
        jet_zero = ops.zeros_like(jets[..., 0])
        flavour = ops.abs(leptons[..., _LEP["pdg_id"]])
        lep_encoded = ops.stack(
            [
                *_kinematics(leptons, _LEP),
                lep_zero,
                leptons[..., _LEP["charge"]],
                ops.cast(ops.equal(flavour, 11.0), x.dtype),
                ops.cast(ops.equal(flavour, 13.0), x.dtype),
                lep_zero,
            ],
            axis=-1,
        )
        jet_encoded = ops.stack(
            [
                *_kinematics(jets, _JET),
                jets[..., _JET["btag"]],
                jet_zero,
                jet_zero,
                jet_zero,
                ops.ones_like(jet_zero),
            ],
            axis=-1,
        )
        objects = ops.concatenate([lep_encoded, jet_encoded], axis=1)
        present = ops.concatenate([leptons[..., -1], jets[..., -1]], axis=1) > 0.5
        objects = (objects - ops.convert_to_tensor(self.object_mean, x.dtype)) / (
            ops.convert_to_tensor(self.object_std, x.dtype)
        )
        objects = ops.where(present[..., None], objects, 0.0)
        met_pt, met_phi = met[:, 0], met[:, 1]
        met_encoded = ops.stack(
            [ops.log(ops.maximum(met_pt, _PT_FLOOR_GEV)), ops.cos(met_phi), ops.sin(met_phi)],
            axis=-1,
        )
        met_encoded = (met_encoded - ops.convert_to_tensor(self.met_mean, x.dtype)) / (
            ops.convert_to_tensor(self.met_std, x.dtype)
        )
        return objects, present, met_encoded

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "max_leptons": self.max_leptons,
            "max_jets": self.max_jets,
            "object_mean": self.object_mean,
            "object_std": self.object_std,
            "met_mean": self.met_mean,
            "met_std": self.met_std,
        }


@keras.saving.register_keras_serializable(package="thetaflow")
class MaskedPooling(keras.layers.Layer):
    """(objects (n, slots, d), present (n, slots)) → (n, d): the sum (``"sum"``) or mean
    (``"mean"``) over the present objects; padded slots contribute exact zeros."""

    def __init__(self, mode: str = "sum", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in ("sum", "mean"):
            raise ValueError(f"pooling must be 'sum' or 'mean', got {mode!r}")
        self.mode = mode

    def call(self, objects: Any, present: Any) -> Any:
        total = ops.sum(ops.where(present[..., None], objects, 0.0), axis=1)
        if self.mode == "sum":
            return total
        count = ops.sum(ops.cast(present, objects.dtype), axis=1, keepdims=True)
        return total / ops.maximum(count, 1.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="thetaflow")
class PairMask(keras.layers.Layer):
    """present (n, slots) → (n, slots, slots): attention allowed between present objects."""

    def call(self, present: Any) -> Any:
        return ops.logical_and(present[:, :, None], present[:, None, :])
