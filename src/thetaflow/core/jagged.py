"""Jagged object collections as flat numpy columns plus per-event offsets.

Every field of a NanoAOD collection (``Jet_pt``, ``Jet_eta``...) shares one offsets array,
so a collection is held here as its flat columns and those offsets. Element-wise work (object
cuts, jet-energy-scale variations, ΔR cleaning) then runs on plain numpy buffers, and the
per-event structure (filtering, ordering within events, per-event sums) is index arithmetic
on the offsets.

Why not awkward's own jagged operations: each of them broadcasts the list structure, at a
fixed cost of about a millisecond per call, and ingestion needs a few hundred of them per
chunk (three jet variations); that overhead was more than half of ingestion's time in
``benchmarks/foundation_throughput.py``. Awkward is still what builds the lists that are
written (:meth:`Objects.to_awkward`) and what reads NanoEvents (:meth:`Objects.from_awkward`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

import awkward as ak
import numpy as np


@dataclass(frozen=True)
class Objects:
    """One collection: ``columns`` hold every object's values, ``offsets`` (int64, one more
    than the number of events) where each event's objects start and end."""

    offsets: np.ndarray
    columns: Mapping[str, np.ndarray]

    @classmethod
    def from_counts(cls, counts: np.ndarray, columns: Mapping[str, np.ndarray]) -> Objects:
        """A collection from objects per event and flat columns in event order."""
        offsets = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        return cls(offsets, dict(columns))

    @classmethod
    def from_awkward(cls, collection: ak.Array, fields: Iterable[str]) -> Objects:
        """The named fields of a jagged record array (a NanoEvents collection, say).

        The offsets and columns are taken off the array's layout (materialising virtual
        buffers) rather than by ``ak.num``/``ak.flatten`` of every field: through NanoEvents'
        behaviours those cost about half a millisecond per field, ten times the read of the
        buffers themselves.
        """
        lists = ak.to_layout(collection).to_ListOffsetArray64(start_at_zero=True)
        offsets = np.asarray(lists.offsets.data)
        records = lists.content[: int(offsets[-1])]
        return cls(offsets, {f: records[f].to_backend_array() for f in fields})

    def __getitem__(self, field: str) -> np.ndarray:
        return self.columns[field]

    @property
    def n_events(self) -> int:
        """Number of events (lists), empty ones included."""
        return len(self.offsets) - 1

    @cached_property
    def counts(self) -> np.ndarray:
        """Objects per event."""
        return np.diff(self.offsets)

    @cached_property
    def event_index(self) -> np.ndarray:
        """For every object, the index of its event."""
        return np.repeat(np.arange(self.n_events), self.counts)

    @cached_property
    def position(self) -> np.ndarray:
        """For every object, its position within its event (0 = first)."""
        return np.arange(len(self.event_index)) - self.offsets[:-1][self.event_index]

    def with_columns(self, columns: Mapping[str, np.ndarray]) -> Objects:
        """The same objects with ``columns`` added or replaced."""
        return Objects(self.offsets, {**self.columns, **columns})

    def filter(self, keep: np.ndarray) -> Objects:
        """The objects where the flat mask ``keep`` is true, in their order."""
        index = np.flatnonzero(keep)
        event_index = self.event_index[index]
        out = Objects.from_counts(
            np.bincount(event_index, minlength=self.n_events), self._take(index)
        )
        out.__dict__["event_index"] = event_index  # known already: seed the cached property
        return out

    def events(self, keep: np.ndarray, objects: np.ndarray | None = None) -> Objects:
        """The collection of the events where the per-event mask ``keep`` is true; with a
        flat mask ``objects``, only those of their objects."""
        if objects is None:
            if keep.all():
                return self
            index = np.flatnonzero(keep[self.event_index])
            return Objects.from_counts(self.counts[keep], self._take(index))
        index = np.flatnonzero(keep[self.event_index] & objects)
        counts = np.bincount(self.event_index[index], minlength=self.n_events)[keep]
        return Objects.from_counts(counts, self._take(index))

    def _take(self, index: np.ndarray) -> dict[str, np.ndarray]:
        """Every column at the flat ``index`` (integer indices: one pass per column)."""
        return {k: v.take(index) for k, v in self.columns.items()}

    def sorted_by(self, key: np.ndarray) -> Objects:
        """Objects reordered within each event by descending ``key`` (stable for ties).

        Collections that are already in order (NanoAOD stores objects p_T-ordered, and a
        jet-energy-scale factor keeps the order) are returned as they are, and otherwise
        only the events that are out of order are sorted (merged muons and electrons, say).
        """
        event = self.event_index
        inverted = (key[1:] > key[:-1]) & (event[1:] == event[:-1])
        if not inverted.any():
            return self
        unordered = np.zeros(self.n_events, bool)
        unordered[event[1:][inverted]] = True
        index = np.flatnonzero(unordered[event])  # sort the objects of those events only
        order = np.arange(len(key))
        order[index] = index[np.lexsort((-key[index], event[index]))]
        return Objects(self.offsets, self._take(order))

    def top_two(self, field: str, fill: float) -> tuple[np.ndarray, np.ndarray]:
        """Every event's largest and second-largest value of ``field`` as float64 (``fill``
        where it has fewer objects; a tie for the largest gives it twice)."""
        values = self.columns[field]
        if len(values) == 0:
            return np.full(self.n_events, fill), np.full(self.n_events, fill)
        first, second = self.top_two_index(values)
        return (
            np.where(first >= 0, values[first], fill).astype(np.float64),
            np.where(second >= 0, values[second], fill).astype(np.float64),
        )

    def top_two_index(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat indices of every event's largest and second-largest value (-1 where it has
        fewer objects), as a stable descending sort would order them (ties: first first)."""
        first = np.full(self.n_events, -1)
        second = np.full(self.n_events, -1)
        for events, objects in self._slots:  # objects in order: keep the top two so far
            value, leader, runner_up = values[objects], first[events], second[events]
            leads = (leader < 0) | (value > values[leader])
            beats_runner_up = (runner_up < 0) | (value > values[runner_up])
            second[events] = np.where(leads, leader, np.where(beats_runner_up, objects, runner_up))
            first[events] = np.where(leads, objects, leader)
        return first, second

    def nth(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(flat index of every event's ``i``-th object, whether it has one); the index of
        an event without one is 0 and must be masked."""
        has = self.counts > i
        return np.where(has, self.offsets[:-1] + i, 0), has

    def nth_values(self, field: str, i: int, fill: float) -> np.ndarray:
        """Every event's ``i``-th value of ``field`` (``fill`` where it has none)."""
        index, has = self.nth(i)
        values = self.columns[field]
        return np.where(has, values[index] if len(values) else fill, fill)

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Per-event sum of a flat column, in its dtype, added in object order as awkward's
        ``ak.sum`` does (so float32 sums agree with it bit for bit; numpy's reductions
        group the additions differently)."""
        out = np.zeros(self.n_events, values.dtype)
        for events, objects in self._slots:
            out[events] += values[objects]
        return out

    @cached_property
    def _slots(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """For k = 0, 1, ...: the events that have a k-th object and that object's flat index.
        Per-event reductions loop over these few slots (as many as the longest event has
        objects), each a vector operation over events, instead of sorting or segmenting."""
        slots = []
        for k in range(int(self.counts.max(initial=0))):
            events = np.flatnonzero(self.counts > k)
            slots.append((events, self.offsets[events] + k))
        return slots

    def unflatten(self, values: np.ndarray) -> ak.Array:
        """A flat column as an awkward list array with this collection's structure."""
        return ak.Array(
            ak.contents.ListOffsetArray(
                ak.index.Index64(self.offsets), ak.contents.NumpyArray(values)
            )
        )

    def to_awkward(self, columns: Mapping[str, np.ndarray]) -> ak.Array:
        """Flat ``columns`` (in this collection's order) as one list-of-records array."""
        record = ak.contents.RecordArray(
            [ak.contents.NumpyArray(np.ascontiguousarray(v)) for v in columns.values()],
            list(columns),
            length=int(self.offsets[-1]),
        )
        return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(self.offsets), record))


def concatenate(first: Objects, second: Objects) -> Objects:
    """Per event, the objects of ``first`` followed by those of ``second`` (same columns)."""
    out_offsets = Objects.from_counts(first.counts + second.counts, {}).offsets
    # destination of every object: its event's start, after the first collection's objects
    to_first = out_offsets[:-1][first.event_index] + first.position
    to_second = (
        out_offsets[:-1][second.event_index] + first.counts[second.event_index] + second.position
    )
    columns = {}
    for k in first.columns:
        column = np.empty(len(to_first) + len(to_second), np.result_type(first[k], second[k]))
        column[to_first], column[to_second] = first[k], second[k]
        columns[k] = column
    return Objects(out_offsets, columns)
