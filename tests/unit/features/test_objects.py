"""Object lists of the particle-list classifiers: padding, masks, order, alignment with the
feature table, storage."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import awkward as ak
import numpy as np
import pyarrow.parquet as pq
import pytest

from thetaflow.core.config import validate
from thetaflow.core.errors import ConfigError
from thetaflow.core.jagged import Objects
from thetaflow.features.compute import feature_table
from thetaflow.features.objects import (
    ID_COLUMNS,
    JET_FIELDS,
    LEPTON_FIELDS,
    ObjectArrays,
    ObjectLayout,
    ObjectTableError,
    build_objects,
    join_objects,
    object_arrays,
    read_objects,
)
from thetaflow.ingestion.ingest import (
    JET_OUTPUT,
    LEPTON_OUTPUT,
    EventColumns,
    output_record,
    region_labels,
)


def lepton(pt, eta, phi, pdg):
    return {
        "pt": pt,
        "eta": eta,
        "phi": phi,
        "mass": 0.10566 if abs(pdg) == 13 else 0.000511,
        "charge": -int(np.sign(pdg)),
        "pdgId": pdg,
    }


def jet(pt, btag, eta=0.5, phi=1.0, mass=8.0):
    return {
        "pt": pt,
        "eta": eta,
        "phi": phi,
        "mass": mass,
        "btag": btag,
        "hadron_flavour": 5,
        "gen_pt": pt,
        "n_muons": 0,
        "n_electrons": 0,
    }


# Event 101: the minimum, two leptons and two jets (four empty jet slots).
# Event 102: three leptons (ingestion keeps the two leading ones) and eight jets (six kept).
# Event 103: e+ e-, three jets.
EVENTS = [
    {
        "leptons": [lepton(60.0, 0.1, 0.2, 13), lepton(40.0, -0.3, 2.0, -13)],
        "jets": [jet(80.0, 0.9), jet(50.0, 0.7, eta=-1.0, phi=-2.0, mass=6.0)],
        "met": (25.0, 1.0),
    },
    {
        "leptons": [
            lepton(90.0, 1.0, -1.0, 11),
            lepton(35.0, 0.0, 1.5, -11),
            lepton(12.0, 2.0, 0, 13),
        ],
        "jets": [jet(200.0 - 20.0 * i, 0.1 * i) for i in range(8)],
        "met": (5.0, -3.0),
    },
    {
        "leptons": [lepton(70.0, -2.0, 3.0, -11), lepton(30.0, 2.1, -3.0, 11)],
        "jets": [jet(120.0, 0.05), jet(70.0, 0.6), jet(45.0, 0.95)],
        "met": (40.0, -2.0),
    },
]


def _record(specs) -> ak.Array:
    """The per-event records exactly as ingestion writes them (its own output_record)."""
    n = len(specs)
    leptons = ak.Array([e["leptons"] for e in specs])
    jets = ak.Array([e["jets"] for e in specs])
    objects = SimpleNamespace(
        leptons=Objects.from_awkward(leptons, leptons.fields),
        jets=Objects.from_awkward(jets, jets.fields),
        met_pt=np.array([e["met"][0] for e in specs]),
        met_phi=np.array([e["met"][1] for e in specs]),
    )
    event = EventColumns(
        ids={
            "run": np.ones(n, np.uint32),
            "luminosityBlock": np.full(n, 3, np.uint32),
            "event": np.arange(101, 101 + n, dtype=np.uint64),
        },
        gen_weight=np.ones(n),
        met_pt=objects.met_pt,
        met_phi=objects.met_phi,
        truth={"lhe_nb": np.zeros(n, np.int8), "lhe_nc": np.zeros(n, np.int8)},
    )
    return output_record(
        event, objects, np.ones(n, bool), np.ones(n), region_labels(["sr"], np.zeros(n, int))
    )


@pytest.fixture(scope="module")
def events_path(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("objects") / "events.parquet"
    pq.write_table(ak.to_arrow_table(_record(EVENTS), extensionarray=False), path)
    return str(path)


def _layout_config(max_leptons=2, max_jets=6) -> dict:
    return {"particles": {"max_leptons": max_leptons, "max_jets": max_jets}}


def test_the_fields_read_are_those_ingestion_writes():
    assert set(LEPTON_FIELDS.values()) <= set(LEPTON_OUTPUT)
    assert set(JET_FIELDS.values()) <= set(JET_OUTPUT)
    assert "hadron_flavour" not in JET_FIELDS.values()  # truth is never an input


def test_object_table_pads_masks_and_keeps_the_leading_objects(tmp_path, events_path):
    out = tmp_path / "objects.parquet"
    layout = ObjectLayout(2, 6)
    assert build_objects(_layout_config(), "zh", events_path, str(out)) == 3
    table = read_objects(str(out), layout)
    assert list(table.columns) == [*ID_COLUMNS, *layout.columns]
    assert table["event"].tolist() == [101, 102, 103]
    assert all(table[c].dtype == np.float32 for c in layout.columns)
    # masks: 2 leptons everywhere (the third lepton of event 102 is gone); 2, 6 (of 8), 3 jets
    np.testing.assert_array_equal(
        table[[f"jet{i}_mask" for i in range(1, 7)]].sum(axis=1), [2, 6, 3]
    )
    np.testing.assert_array_equal(table[["lepton1_mask", "lepton2_mask"]].to_numpy(), 1)
    # padded slots hold zeros
    assert (table.loc[0, [c for c in layout.columns if c.startswith(("jet3", "jet6"))]] == 0).all()
    # order: the events table's (p_T-ordered) objects, the leading six jets of event 102
    np.testing.assert_allclose(
        table.loc[1, [f"jet{i}_pt_gev" for i in range(1, 7)]], [200, 180, 160, 140, 120, 100]
    )
    np.testing.assert_allclose(
        table.loc[1, [f"jet{i}_btag" for i in range(1, 7)]],
        np.float32([0, 0.1, 0.2, 0.3, 0.4, 0.5]),
    )
    row = table.loc[0]
    expected = {
        "lepton1_pt_gev": 60.0,
        "lepton1_pdg_id": 13,
        "lepton1_charge": -1,
        "lepton2_phi": 2.0,
        "lepton2_pdg_id": -13,
        "lepton2_mass_gev": 0.10566,
        "jet2_eta": -1.0,
        "jet2_phi": -2.0,
        "jet2_mass_gev": 6.0,
        "jet2_btag": 0.7,
        "met_pt_gev": 25.0,
        "met_phi": 1.0,
    }
    for column, value in expected.items():
        assert row[column] == pytest.approx(value, rel=1e-6), column
    assert table.loc[2, "lepton1_pdg_id"] == -11 and table.loc[2, "lepton1_charge"] == 1


def test_shorter_lists_keep_the_leading_objects(events_path):
    arrays = object_arrays(ak.from_parquet(events_path), ObjectLayout(1, 2))
    assert arrays.leptons.shape == (3, 1, len(LEPTON_FIELDS))
    assert arrays.jets.shape == (3, 2, len(JET_FIELDS))
    np.testing.assert_allclose(arrays.leptons[:, 0, 0], [60.0, 90.0, 70.0])
    np.testing.assert_allclose(arrays.jets[:, :, 0], [[80, 50], [200, 180], [120, 70]])
    assert arrays.jet_mask.all() and arrays.lepton_mask.all()


def test_object_rows_align_with_the_feature_table(tmp_path, events_path):
    events = ak.from_parquet(events_path)
    features = feature_table(
        events,
        sample="zh",
        kind="signal",
        norm_factor=1.0,
        feature_names=["m_bb_gev", "n_jets"],
        weight_systematics={},
    ).to_pandas()
    out = tmp_path / "objects.parquet"
    build_objects(_layout_config(), "zh", events_path, str(out))
    objects = read_objects(str(out), ObjectLayout(2, 6))
    joined = join_objects(features, objects, str(out))
    assert list(joined.columns) == [*features.columns, *ObjectLayout(2, 6).columns]
    # row by row the same event: its jet count from the features and from the masks
    mask_columns = [f"jet{i}_mask" for i in range(1, 7)]
    np.testing.assert_array_equal(np.minimum(joined["n_jets"], 6), joined[mask_columns].sum(axis=1))
    with pytest.raises(ObjectTableError, match=r"objects.parquet: row 0 holds event \(1, 3, 103\)"):
        join_objects(features, objects.iloc[::-1].reset_index(drop=True), str(out))
    with pytest.raises(ObjectTableError, match="2 rows, but its feature table has 3"):
        join_objects(features, objects.iloc[:2], str(out))


def test_no_events_give_an_empty_table(tmp_path, events_path):
    empty = tmp_path / "empty_events.parquet"
    pq.write_table(pq.read_table(events_path).slice(0, 0), empty)
    out = tmp_path / "objects.parquet"
    assert build_objects(_layout_config(), "zh", str(empty), str(out)) == 0
    table = read_objects(str(out), ObjectLayout(2, 6))
    assert len(table) == 0 and len(table.columns) == 3 + len(ObjectLayout(2, 6).columns)


def test_matrix_round_trip_and_layout_from_columns(events_path):
    layout = ObjectLayout(2, 3)
    arrays = object_arrays(ak.from_parquet(events_path), layout)
    X = arrays.to_matrix()
    assert X.shape == (3, len(layout.columns)) and X.dtype == np.float32
    back = ObjectArrays.from_matrix(X, layout)
    for field in ("leptons", "lepton_mask", "jets", "jet_mask", "met"):
        np.testing.assert_array_equal(getattr(back, field), getattr(arrays, field))
    assert back.layout == layout
    assert ObjectLayout.from_columns(layout.columns) == layout
    with pytest.raises(ValueError, match="not the columns of an object table"):
        ObjectLayout.from_columns(["m_bb_gev", "n_jets"])
    with pytest.raises(ValueError, match="not the columns of an object table"):
        ObjectLayout.from_columns(layout.columns[::-1])


@pytest.mark.parametrize("key", ["max_leptons", "max_jets"])
def test_zero_length_lists_are_refused_naming_the_key(key, default_config):
    config = _layout_config()
    config["particles"][key] = 0
    with pytest.raises(ConfigError, match=f"config key 'particles.{key}'"):
        ObjectLayout.from_config(config)
    bad = copy.deepcopy(default_config)
    bad["particles"][key] = 0
    with pytest.raises(ConfigError, match=f"particles.{key}"):
        validate(bad, "config.schema.yaml", "config.yaml")


def test_the_default_config_has_two_lepton_and_six_jet_slots(default_config):
    assert ObjectLayout.from_config(default_config) == ObjectLayout(2, 6)
