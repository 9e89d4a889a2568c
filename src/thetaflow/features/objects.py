"""Padded object lists of the selected events: the inputs of the particle-list classifiers.

The feature tables hold 23 hand-built features; the Deep Sets and transformer families
(:mod:`thetaflow.ml.models.deepsets`, :mod:`thetaflow.ml.models.transformer`) learn from the
objects themselves. For them the features stage writes a sibling *object table* per sample and
variation, built from the same selected-events parquet as the feature table and so row for
row in the same order (its ids are those of the feature table's rows; :func:`join_objects`
checks them).

Storage: one float32 column per object slot and field (``lepton1_pt_gev`` ...
``jet6_btag``), a ``*_mask`` column per slot (1 real object, 0 padding, whose fields are 0),
then the MET. Flat columns rather than parquet lists: the training and scoring code reads
tables into one float32 matrix per model (``frame[inputs].to_numpy()``), and slot columns
go through that unchanged, so the particle models take the same ``X`` as every family, with
:class:`ObjectLayout` naming its columns and :class:`ObjectArrays` giving it back its
(event, slot, field) shape.

Slots keep the order of the events table (ingestion's p_T order, leading first); an event
with more objects than slots keeps its leading ones (counted in the log).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import awkward as ak
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from thetaflow.core.errors import ConfigError, ThetaflowError
from thetaflow.core.io import atomic_path, read_table, reading_result

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: The event-id columns every object table starts with (those of the feature table).
ID_COLUMNS = ("run", "luminosityBlock", "event")
#: Object-table field name → field of the events table's ``leptons`` records.
LEPTON_FIELDS: Mapping[str, str] = {
    "pt_gev": "pt",
    "eta": "eta",
    "phi": "phi",
    "mass_gev": "mass",
    "charge": "charge",
    "pdg_id": "pdg_id",
}
#: Object-table field name → field of the events table's ``jets`` records. The b-tag score
#: is the jets' only identification input; hadron flavour and GenJet p_T are truth.
JET_FIELDS: Mapping[str, str] = {
    "pt_gev": "pt",
    "eta": "eta",
    "phi": "phi",
    "mass_gev": "mass",
    "btag": "btag",
}
#: The last field of every slot: 1 for a real object, 0 for padding.
MASK_FIELD = "mask"
#: Object-table column → events-table column of the global (per-event) vector.
MET_COLUMNS: Mapping[str, str] = {"met_pt_gev": "met_pt", "met_phi": "met_phi"}

_SLOT = re.compile(r"^(lepton|jet)(\d+)_")


class ObjectTableError(ThetaflowError, ValueError):
    """An object table that does not match its feature table or layout; names the file."""


@dataclass(frozen=True)
class ObjectLayout:
    """How many lepton and jet slots the object lists have, and the columns they make."""

    max_leptons: int
    max_jets: int

    def __post_init__(self) -> None:
        for key in ("max_leptons", "max_jets"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"config key 'particles.{key}': object lists need at least one slot, "
                    f"got {value!r}"
                )

    @classmethod
    def from_config(cls, config: Mapping) -> ObjectLayout:
        """The validated config's ``particles`` block; lengths below 1 raise ConfigError."""
        return cls(config["particles"]["max_leptons"], config["particles"]["max_jets"])

    @classmethod
    def from_columns(cls, columns: Sequence[str]) -> ObjectLayout:
        """The layout whose :attr:`columns` are exactly ``columns``.

        Raises:
            ValueError: ``columns`` are not an object table's columns in layout order.
        """
        slots: dict[str, int] = {"lepton": 0, "jet": 0}
        for name in columns:
            match = _SLOT.match(name)
            if match:
                slots[match[1]] = max(slots[match[1]], int(match[2]))
        if min(slots.values()) >= 1:
            layout = cls(slots["lepton"], slots["jet"])
            if tuple(columns) == layout.columns:
                return layout
        raise ValueError(
            "not the columns of an object table (lepton<i>_{"
            + ",".join((*LEPTON_FIELDS, MASK_FIELD))
            + "}, then jet<i>_{"
            + ",".join((*JET_FIELDS, MASK_FIELD))
            + "}, then "
            + ", ".join(MET_COLUMNS)
            + f"): {list(columns)}"
        )

    @property
    def lepton_columns(self) -> tuple[str, ...]:
        """Columns of the lepton slots, slot by slot, each slot's mask last."""
        return _slot_columns("lepton", self.max_leptons, LEPTON_FIELDS)

    @property
    def jet_columns(self) -> tuple[str, ...]:
        """Columns of the jet slots, slot by slot, each slot's mask last."""
        return _slot_columns("jet", self.max_jets, JET_FIELDS)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every object column in order: lepton slots, jet slots, MET (the model inputs)."""
        return (*self.lepton_columns, *self.jet_columns, *MET_COLUMNS)


def _slot_columns(prefix: str, slots: int, fields: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}_{f}" for i in range(1, slots + 1) for f in (*fields, MASK_FIELD))


@dataclass(frozen=True)
class ObjectArrays:
    """The object lists of n events as arrays (float32; masks bool).

    Attributes:
        leptons: (n, max_leptons, len(LEPTON_FIELDS)), fields in :data:`LEPTON_FIELDS` order.
        lepton_mask: (n, max_leptons), True where the slot holds a lepton.
        jets: (n, max_jets, len(JET_FIELDS)), fields in :data:`JET_FIELDS` order.
        jet_mask: (n, max_jets).
        met: (n, 2): MET p_T [GeV] and φ.
    """

    leptons: np.ndarray
    lepton_mask: np.ndarray
    jets: np.ndarray
    jet_mask: np.ndarray
    met: np.ndarray

    @property
    def layout(self) -> ObjectLayout:
        return ObjectLayout(self.leptons.shape[1], self.jets.shape[1])

    def __len__(self) -> int:
        return len(self.met)

    def to_matrix(self) -> np.ndarray:
        """One row per event in :attr:`ObjectLayout.columns` order (float32)."""
        n = len(self)
        blocks = [
            np.concatenate([values, mask[..., None]], axis=2).reshape(
                n, values.shape[1] * (values.shape[2] + 1)
            )
            for values, mask in ((self.leptons, self.lepton_mask), (self.jets, self.jet_mask))
        ]
        return np.concatenate([*blocks, self.met], axis=1).astype(np.float32)

    @classmethod
    def from_matrix(cls, X: np.ndarray, layout: ObjectLayout) -> ObjectArrays:
        """The inverse of :meth:`to_matrix`: rows of ``X`` in ``layout``'s columns."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != len(layout.columns):
            raise ValueError(
                f"object matrix of shape {X.shape}: expected (n, {len(layout.columns)}) "
                f"for {layout.max_leptons} lepton and {layout.max_jets} jet slots"
            )
        n_lep = layout.max_leptons * (len(LEPTON_FIELDS) + 1)
        n_jet = layout.max_jets * (len(JET_FIELDS) + 1)
        leptons = X[:, :n_lep].reshape(len(X), layout.max_leptons, -1)
        jets = X[:, n_lep : n_lep + n_jet].reshape(len(X), layout.max_jets, -1)
        return cls(
            leptons=leptons[..., :-1],
            lepton_mask=leptons[..., -1] > 0.5,
            jets=jets[..., :-1],
            jet_mask=jets[..., -1] > 0.5,
            met=X[:, n_lep + n_jet :],
        )


def _padded(collection: ak.Array, fields: Mapping[str, str], slots: int) -> np.ndarray:
    """(n, slots, fields) float32: each event's first ``slots`` objects, zeros after them."""
    n = len(collection)
    if n == 0:
        return np.zeros((n, slots, len(fields)), np.float32)
    values = [
        ak.to_numpy(ak.fill_none(ak.pad_none(collection[f], slots, axis=1, clip=True), 0))
        for f in fields.values()
    ]
    return np.stack(values, axis=2).astype(np.float32)


def object_arrays(events: ak.Array, layout: ObjectLayout) -> ObjectArrays:
    """The padded object lists of the records ingestion writes (one row per event, in order)."""
    counts = {}
    masks = {}
    for name, slots in (("leptons", layout.max_leptons), ("jets", layout.max_jets)):
        counts[name] = ak.to_numpy(ak.num(events[name], axis=1))
        masks[name] = np.arange(slots)[None, :] < counts[name][:, None]
        dropped = int(np.count_nonzero(counts[name] > slots))
        if dropped:
            log.info(
                "%d of %d events have more than %d %s: the leading %d kept",
                dropped,
                len(events),
                slots,
                name,
                slots,
            )
    return ObjectArrays(
        leptons=_padded(events.leptons, LEPTON_FIELDS, layout.max_leptons),
        lepton_mask=masks["leptons"],
        jets=_padded(events.jets, JET_FIELDS, layout.max_jets),
        jet_mask=masks["jets"],
        met=np.stack([ak.to_numpy(events[c]) for c in MET_COLUMNS.values()], axis=1).astype(
            np.float32
        ),
    )


def object_table(events: ak.Array, layout: ObjectLayout) -> pa.Table:
    """The object table of these events: ids, then :attr:`ObjectLayout.columns`."""
    matrix = np.asfortranarray(object_arrays(events, layout).to_matrix())  # contiguous columns
    columns: dict[str, np.ndarray] = {
        "run": ak.to_numpy(events.run).astype(np.uint32),
        "luminosityBlock": ak.to_numpy(events.luminosityBlock).astype(np.uint32),
        "event": ak.to_numpy(events.event).astype(np.uint64),
    }
    columns.update({name: matrix[:, i] for i, name in enumerate(layout.columns)})
    # awkward wraps the numpy buffers; pa.array would import pandas, as in compute.py
    return pa.table({k: ak.to_arrow(v, extensionarray=False) for k, v in columns.items()})


#: The events-table columns an object table reads.
EVENT_COLUMNS = (*ID_COLUMNS, "leptons", "jets", *MET_COLUMNS.values())


def build_objects(config: Mapping, sample: str, events_path: str, output: str) -> int:
    """Workflow entry point: the object table of one sample and variation; returns rows."""
    layout = ObjectLayout.from_config(config)
    with reading_result(events_path):
        events = ak.from_parquet(events_path, columns=list(EVENT_COLUMNS))
    table = object_table(events, layout)
    with atomic_path(output) as tmp:
        pq.write_table(table, tmp, compression="lz4", use_dictionary=False)
    log.info("sample '%s': %d events, object lists -> %s", sample, table.num_rows, output)
    return table.num_rows


def read_objects(path: str, layout: ObjectLayout) -> pd.DataFrame:
    """The ids and object columns of an object table (a CorruptResultError if it lacks one)."""
    return read_table(path, columns=[*ID_COLUMNS, *layout.columns])


def join_objects(frame: pd.DataFrame, objects: pd.DataFrame, source: str) -> pd.DataFrame:
    """``frame`` (a feature table's rows, in its order) with the object columns of
    ``objects`` (the sibling object table, read whole) appended.

    Raises:
        ObjectTableError: the tables differ in length or in the ids of a row (naming
            ``source``, the object table, and the first differing row).
    """
    import pandas as pd

    if len(frame) != len(objects):
        raise ObjectTableError(
            f"{source}: {len(objects)} rows, but its feature table has {len(frame)}; "
            "rebuild both from the same events table"
        )
    same = np.ones(len(frame), bool)
    for column in ID_COLUMNS:
        same &= frame[column].to_numpy() == objects[column].to_numpy()
    if not same.all():
        row = int(np.flatnonzero(~same)[0])
        raise ObjectTableError(
            f"{source}: row {row} holds event "
            f"{tuple(int(objects[c].iloc[row]) for c in ID_COLUMNS)}, its feature table "
            f"{tuple(int(frame[c].iloc[row]) for c in ID_COLUMNS)}; rebuild both from the "
            "same events table"
        )
    extra = objects.drop(columns=list(ID_COLUMNS)).set_axis(frame.index)
    return pd.concat([frame, extra], axis=1)
