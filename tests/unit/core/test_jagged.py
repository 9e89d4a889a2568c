"""Flat-column collections against awkward's own jagged operations on random events."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from thetaflow.core.jagged import Objects, concatenate


@pytest.fixture(scope="module")
def lists() -> ak.Array:
    """Random jagged records (0-7 objects per event, some empty), float32 like NanoAOD,
    with repeated b-tag values so that ties occur."""
    rng = np.random.default_rng(7)
    counts = rng.integers(0, 8, 3000)
    n = int(counts.sum())
    return ak.unflatten(
        ak.zip(
            {
                "pt": (rng.exponential(40.0, n) + 20.0).astype(np.float32),
                "btag": rng.choice(np.float32([0.1, 0.5, 0.9, 0.95]), n),
                "eta": rng.normal(0.0, 1.5, n).astype(np.float32),
            }
        ),
        counts,
    )


@pytest.fixture(scope="module")
def objects(lists) -> Objects:
    return Objects.from_awkward(lists, lists.fields)


def as_lists(objects: Objects, field: str) -> list:
    return ak.to_list(objects.unflatten(objects[field]))


def test_structure_round_trip(lists, objects):
    assert objects.n_events == len(lists)
    np.testing.assert_array_equal(objects.counts, ak.num(lists))
    assert ak.to_list(objects.to_awkward(objects.columns)) == ak.to_list(lists)
    assert ak.to_list(objects.unflatten(objects.position)) == ak.to_list(ak.local_index(lists))


def test_from_awkward_of_sliced_and_masked_lists(lists):
    # offsets that do not start at zero (a slice) and a ListArray (events picked by a mask)
    picked = np.arange(len(lists)) % 2 == 1
    for part in (lists[100:200], lists[picked]):
        objects = Objects.from_awkward(part, ["pt", "eta"])
        assert objects.offsets.dtype == np.int64 and objects.offsets[0] == 0
        assert as_lists(objects, "pt") == ak.to_list(part.pt)
        assert as_lists(objects, "eta") == ak.to_list(part.eta)


def test_filter_and_events_match_awkward(lists, objects):
    keep = objects["pt"] > 50
    assert as_lists(objects.filter(keep), "pt") == ak.to_list(lists.pt[lists.pt > 50])
    events = np.arange(len(lists)) % 3 == 0
    assert as_lists(objects.events(events), "eta") == ak.to_list(lists.eta[events])
    assert objects.events(np.ones(len(lists), bool)) is objects
    leading = objects.events(events, objects.position < 2)
    assert as_lists(leading, "pt") == ak.to_list(lists.pt[events][:, :2])


def test_sorted_by_is_a_stable_descending_sort_within_events(lists, objects):
    by_btag = objects.sorted_by(objects["btag"])
    order = ak.argsort(lists.btag, axis=1, ascending=False, stable=True)
    assert as_lists(by_btag, "btag") == ak.to_list(lists.btag[order])
    assert as_lists(by_btag, "pt") == ak.to_list(lists.pt[order])  # ties keep the input order
    by_pt = objects.sorted_by(objects["pt"])
    assert by_pt.sorted_by(by_pt["pt"]) is by_pt  # already ordered: no sort


def test_top_two_match_a_full_sort(lists, objects):
    top = ak.pad_none(ak.sort(lists.btag, axis=1, ascending=False), 2, axis=1)
    first, second = objects.top_two("btag", -1.0)
    np.testing.assert_array_equal(first, ak.to_numpy(ak.fill_none(top[:, 0], -1.0)))
    np.testing.assert_array_equal(second, ak.to_numpy(ak.fill_none(top[:, 1], -1.0)))
    i, j = objects.top_two_index(objects["btag"])
    order = ak.pad_none(ak.argsort(lists.btag, axis=1, ascending=False, stable=True), 2, axis=1)
    start = objects.offsets[:-1]
    np.testing.assert_array_equal(
        np.where(i >= 0, i - start, -1), ak.to_numpy(ak.fill_none(order[:, 0], -1))
    )
    np.testing.assert_array_equal(
        np.where(j >= 0, j - start, -1), ak.to_numpy(ak.fill_none(order[:, 1], -1))
    )


def test_sum_is_bit_identical_to_ak_sum(lists, objects):
    got = objects.sum(objects["pt"])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, ak.to_numpy(ak.sum(lists.pt, axis=1)))


def test_concatenate_matches_ak_concatenate(lists, objects):
    other = objects.filter(objects["eta"] > 0)
    joined = concatenate(objects, other)
    assert as_lists(joined, "eta") == ak.to_list(
        ak.concatenate([lists.eta, lists.eta[lists.eta > 0]], axis=1)
    )


def test_empty_collection():
    empty = Objects.from_counts(np.zeros(4, np.int64), {"pt": np.zeros(0, np.float32)})
    np.testing.assert_array_equal(empty.sum(empty["pt"]), np.zeros(4, np.float32))
    first, second = empty.top_two("pt", -1.0)
    assert (first == -1).all() and (second == -1).all()
    assert empty.sorted_by(empty["pt"]) is empty
