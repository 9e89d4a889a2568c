"""Analysis regions at ingestion: labels, per-region cutflows, m_bb, config checks, LHE truth."""

from __future__ import annotations

import copy
import json

import awkward as ak
import numpy as np
import pyarrow.parquet as pq
import pytest
import uproot

from thetaflow.core.errors import ConfigError
from thetaflow.core.jagged import Objects
from thetaflow.core.regions import INCLUSIVE
from thetaflow.core.samples import PROCESS_TRUTH_COLUMNS
from thetaflow.features.compute import compute_features
from thetaflow.ingestion.checks import check
from thetaflow.ingestion.cutflow import OUTSIDE_REGIONS, CutRow, cutflow_frame
from thetaflow.ingestion.ingest import (
    EventColumns,
    IngestError,
    ingest_sample,
    output_record,
    region_labels,
)
from thetaflow.ingestion.selection import (
    RegionOverlapError,
    Regions,
    SelectedObjects,
    Selection,
    higgs_candidate_mass,
)
from thetaflow.ingestion.variations import variations

Z_WINDOW = "same_flavour and abs(mll_gev - 91.1876) < 15"
TWO_TAGS = "btag_second > btag_wp_medium"
#: the 2-lepton ZH regions of config/README.md
ZH_REGIONS = [
    {
        "name": "sr_ptv_75_150",
        "kind": "signal",
        "expr": f"{Z_WINDOW} and {TWO_TAGS} and ptll_gev < 150 and 90 < mbb_gev < 150",
    },
    {
        "name": "sr_ptv_150",
        "kind": "signal",
        "expr": f"{Z_WINDOW} and {TWO_TAGS} and ptll_gev >= 150 and 90 < mbb_gev < 150",
    },
    {"name": "cr_top_emu", "kind": "control", "expr": f"not same_flavour and {TWO_TAGS}"},
    {
        "name": "cr_z_hf",
        "kind": "control",
        "expr": f"{Z_WINDOW} and {TWO_TAGS} and (mbb_gev < 90 or mbb_gev > 150)",
    },
    {"name": "cr_z_lf", "kind": "control", "expr": f"{Z_WINDOW} and btag_max < btag_wp_medium"},
]
#: the common preselection of those regions
PRESELECTION = [
    {"name": "two_leptons", "expr": "n_leptons == 2"},
    {"name": "opposite_sign", "expr": "opposite_sign"},
    {"name": "boosted_z", "expr": "ptll_gev > 75"},
    {"name": "two_jets", "expr": "n_jets >= 2"},
]
#: the record ingestion wrote before regions (the feature tables read these and the new ones)
COLUMNS_BEFORE_REGIONS = [
    "run",
    "luminosityBlock",
    "event",
    "gen_weight",
    "extra_weight",
    "leptons",
    "jets",
    "met_pt",
    "met_phi",
]


def region_config(config: dict, regions: list[dict] | None = ZH_REGIONS) -> dict:
    """``config`` with the ZH preselection and ``regions`` (None: no ``regions:`` key)."""
    out = copy.deepcopy(config)
    out["selection"]["cuts"] = PRESELECTION
    if regions is None:
        out.pop("regions", None)
    else:
        out["regions"] = regions
    return out


def run(config, files, tmp_path, *, is_data=False, sample="zh"):
    """Ingest ``files`` with the selection and regions of ``config``."""
    vs = variations(config, is_data)
    outputs = {v.name: str(tmp_path / f"{v.name}.parquet") for v in vs}
    cutflow = ingest_sample(
        sample=sample,
        files=[str(f) for f in files],
        tree="Events",
        is_data=is_data,
        xsec_pb=None if is_data else 1.0,
        lumi_fb=config["analysis"]["lumi_fb"],
        selection=Selection.from_config(config["selection"]),
        variation_list=vs,
        outputs=outputs,
        cutflow_path=str(tmp_path / "cutflow.json"),
        chunk_size=1000,
        regions=Regions.from_config(config),
    )
    return cutflow, outputs


@pytest.fixture(scope="module")
def zh_regions(default_analysis, zh_file, tmp_path_factory):
    """The simulated ZH chunk ingested with the ZH regions."""
    config = region_config(default_analysis[0])
    return run(config, [zh_file], tmp_path_factory.mktemp("regions"))


# --- labelling --------------------------------------------------------------------------------


def test_every_event_gets_exactly_the_region_its_expression_selects():
    regions = Regions.from_config(
        {
            "regions": [
                {"name": "low", "kind": "signal", "expr": "mbb_gev < 100"},
                {"name": "high", "kind": "control", "expr": "mbb_gev >= 120"},
            ]
        }
    )
    variables = {"mbb_gev": np.array([50.0, 100.0, 110.0, 130.0, 99.0])}
    preselected = np.array([True, True, True, True, False])
    codes = regions.label(variables, preselected)
    # 110 lies in the gap between the regions, the last event is not preselected
    np.testing.assert_array_equal(codes, [0, -1, -1, 1, -1])
    assert regions.names == ("low", "high")
    inclusive = Regions.from_config({})
    assert inclusive.names == (INCLUSIVE,)
    np.testing.assert_array_equal(inclusive.label(variables, preselected), [0, 0, 0, 0, -1])


def test_overlapping_regions_are_an_error_naming_both():
    regions = Regions.from_config(
        {
            "regions": [
                {"name": "wide", "kind": "signal", "expr": "mbb_gev > 50"},
                {"name": "narrow", "kind": "control", "expr": "mbb_gev > 120"},
            ]
        }
    )
    variables = {"mbb_gev": np.array([60.0, 130.0, 140.0])}
    with pytest.raises(RegionOverlapError, match="2 event.*region 'wide' and region 'narrow'"):
        regions.label(variables, np.ones(3, bool))


def test_overlapping_regions_stop_ingestion_naming_sample_and_file(
    default_analysis, zh_file, tmp_path
):
    overlapping = [
        {"name": "sr", "kind": "signal", "expr": "mbb_gev > 0"},
        {"name": "cr_z_lf", "kind": "control", "expr": "btag_max < btag_wp_medium"},
    ]
    config = region_config(default_analysis[0], overlapping)
    with pytest.raises(
        IngestError, match=r"sample 'zh', file .*zh\.root.*'sr' and region 'cr_z_lf'"
    ):
        run(config, [zh_file], tmp_path)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_region_labels_and_per_region_cutflow(zh_regions):
    cutflow, outputs = zh_regions
    names = [r["name"] for r in ZH_REGIONS]
    for variation, path in outputs.items():
        rows = cutflow.regions[variation]
        assert [r.cut for r in rows] == [*names, OUTSIDE_REGIONS]
        # the regions and the events outside them split the last preselection row exactly
        last = cutflow.cutflow[variation][-1]
        assert sum(r.events for r in rows) == last.events
        assert sum(r.sumw for r in rows) == pytest.approx(last.sumw, rel=1e-12)
        assert sum(r.expected for r in rows) == pytest.approx(last.expected, rel=1e-12)
        # the events written are those in a region, each labelled with it
        events = ak.from_parquet(path)
        labels = events.region.to_list()
        assert len(labels) == cutflow.selected[variation] == last.events - rows[-1].events
        assert {name: labels.count(name) for name in names} == {
            r.cut: r.events for r in cutflow.region_rows(variation)
        }
        for row in cutflow.region_rows(variation):
            inside = np.asarray(labels) == row.cut
            assert ak.sum(events.gen_weight[inside]) == pytest.approx(row.sumw, rel=1e-9, abs=1e-9)
    nominal = {r.cut: r.events for r in cutflow.regions["nominal"]}
    # ZH → ℓℓbb̄: mostly in the signal regions; its events in no region (one b-tag) are counted
    assert nominal["sr_ptv_75_150"] > 0 and nominal["sr_ptv_150"] > 0
    assert nominal["sr_ptv_75_150"] + nominal["sr_ptv_150"] > nominal["cr_z_hf"] > 0
    assert nominal[OUTSIDE_REGIONS] > 0
    assert nominal["cr_top_emu"] == 0  # Z → ee/μμ only


def test_region_cuts_on_mbb_agree_with_the_feature(zh_regions):
    """The region expressions' ``mbb_gev`` is the feature ``m_bb_gev``: every event lies on
    its region's side of the m_bb window edges, to the last bit."""
    _, outputs = zh_regions
    for path in outputs.values():
        events = ak.from_parquet(path)
        mbb = compute_features(events, ["m_bb_gev"])["m_bb_gev"]
        region = np.asarray(events.region.to_list())
        window = (mbb > 90) & (mbb < 150)
        assert np.all(window[np.char.startswith(region, "sr_")])
        assert not np.any(window[region == "cr_z_hf"])


def test_jet_energy_scale_moves_events_between_regions(zh_regions):
    """Regions are labelled per variation, as the selection: a jet-energy-scale shift moves
    events across the m_bb window edges."""
    _, outputs = zh_regions

    def labels(path):
        events = ak.from_parquet(path)
        return dict(zip(events.event.to_list(), events.region.to_list(), strict=True))

    nominal, up = labels(outputs["nominal"]), labels(outputs["jes_up"])
    common = nominal.keys() & up.keys()
    moved = [e for e in common if nominal[e] != up[e]]
    assert 0 < len(moved) < 0.2 * len(common)
    assert {(nominal[e], up[e]) for e in moved} <= {
        ("sr_ptv_75_150", "cr_z_hf"),
        ("cr_z_hf", "sr_ptv_75_150"),
        ("sr_ptv_150", "cr_z_hf"),
        ("cr_z_hf", "sr_ptv_150"),
    }


def test_without_regions_the_outputs_are_those_of_the_preselection(
    default_analysis, zh_file, tmp_path
):
    """No ``regions:``: one inclusive region holding every preselected event, so the events,
    the cutflow rows and the merged cutflow table are what they were; the records gain the
    region and process-truth columns."""
    config = default_analysis[0]
    assert "regions" not in config
    cutflow, outputs = run(config, [zh_file], tmp_path)
    assert [r.cut for r in cutflow.cutflow["nominal"]] == [
        "all",
        *(c["name"] for c in config["selection"]["cuts"]),
    ]
    for variation, path in outputs.items():
        last = cutflow.cutflow[variation][-1]
        assert cutflow.regions[variation] == [
            CutRow(INCLUSIVE, last.events, last.sumw, last.expected),
            CutRow(OUTSIDE_REGIONS, 0, 0.0, 0.0),
        ]
        table = pq.read_table(path)
        assert table.num_rows == last.events == cutflow.selected[variation] > 0
        assert table.column_names == [
            *COLUMNS_BEFORE_REGIONS[:3],
            "region",
            "lhe_nb",
            "lhe_nc",
            *COLUMNS_BEFORE_REGIONS[3:],
        ]
        assert set(table["region"].to_pylist()) == {INCLUSIVE}
    frame = cutflow_frame([str(tmp_path / "cutflow.json")])
    assert list(frame["cut"]) == [
        "generated",
        "read",
        *(c["name"] for c in config["selection"]["cuts"]),
    ]


def test_regions_add_their_rows_to_the_cutflow_table(zh_regions, tmp_path):
    cutflow, _ = zh_regions
    path = tmp_path / "cutflow.json"
    path.write_text(json.dumps(cutflow.to_json()))
    frame = cutflow_frame([str(path)])
    assert list(frame["cut"])[-len(ZH_REGIONS) - 1 :] == [
        *(f"region {r['name']}" for r in ZH_REGIONS),
        OUTSIDE_REGIONS,
    ]


# --- m_bb of the Higgs candidate -------------------------------------------------------------


def test_mbb_is_the_mass_of_the_features_b1_b2_pair(tmp_path):
    """Random jets with tied b-tag scores: the event variable and the feature pick the same
    pair (the two highest scores, ties to the harder jet) and give the same mass."""
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 6, 400)
    n = int(counts.sum())
    pt = np.sort(rng.uniform(20, 200, n)).astype(np.float32)[::-1]
    jets = Objects.from_counts(
        counts,
        {
            "pt": pt,
            "eta": rng.uniform(-2.5, 2.5, n).astype(np.float32),
            "phi": rng.uniform(-np.pi, np.pi, n).astype(np.float32),
            "mass": rng.uniform(0, 20, n).astype(np.float32),
            # three score values: many ties, the rule for them matters
            "btag": rng.choice(np.array([0.1, 0.5, 0.9], np.float32), n),
        },
    )
    jets = jets.sorted_by(jets["pt"])
    mbb = higgs_candidate_mass(jets)
    assert np.all(mbb[counts < 2] == 0) and np.all(mbb[counts >= 2] > 0)
    # the features of the same jets written as ingestion writes them
    keep = counts >= 2
    m = int(keep.sum())
    two_leptons = Objects.from_counts(
        np.full(m, 2),
        {
            "pt": np.full(2 * m, 50.0, np.float32),
            "eta": np.zeros(2 * m, np.float32),
            "phi": np.tile(np.array([0.0, 3.0], np.float32), m),
            "mass": np.zeros(2 * m, np.float32),
            "charge": np.tile(np.array([1, -1], np.int32), m),
            "pdgId": np.tile(np.array([-13, 13], np.int32), m),
        },
    )
    selected = jets.events(keep)
    zeros = np.zeros(len(selected["pt"]), np.int32)
    selected = selected.with_columns(
        {
            "hadron_flavour": zeros,
            "gen_pt": selected["pt"],
            "n_muons": zeros,
            "n_electrons": zeros,
        }
    )
    objects = SelectedObjects(two_leptons, selected, np.zeros(m), np.zeros(m), {})
    event = EventColumns(
        ids={
            "run": np.ones(m, np.uint32),
            "luminosityBlock": np.ones(m, np.uint32),
            "event": np.arange(m, dtype=np.uint64),
        },
        gen_weight=np.ones(m),
        met_pt=np.zeros(m),
        met_phi=np.zeros(m),
        truth={"lhe_nb": np.zeros(m, np.int8), "lhe_nc": np.zeros(m, np.int8)},
    )
    record = output_record(
        event, objects, np.ones(m, bool), np.ones(m), region_labels([INCLUSIVE], np.zeros(m))
    )
    path = tmp_path / "events.parquet"
    pq.write_table(ak.to_arrow_table(record, extensionarray=False), path)
    feature = compute_features(ak.from_parquet(path), ["m_bb_gev"])["m_bb_gev"]
    np.testing.assert_array_equal(feature, mbb[keep].astype(np.float32))


# --- config checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("regions", "message"),
    [
        (
            [ZH_REGIONS[0], {"name": "cr", "kind": "control", "expr": "m_bb > 150"}],
            r"'regions\[1\]\.expr' \(region 'cr'\): unknown name 'm_bb'.* in 'm_bb > 150'",
        ),
        (
            [ZH_REGIONS[0], {**ZH_REGIONS[3], "name": "sr_ptv_75_150"}],
            r"'regions': region name\(s\) sr_ptv_75_150 defined more than once",
        ),
        (
            ZH_REGIONS[2:],
            r"'regions': no region of kind 'signal' \(all of cr_top_emu, cr_z_hf, cr_z_lf",
        ),
        (
            [ZH_REGIONS[0], {**ZH_REGIONS[3], "name": OUTSIDE_REGIONS}],
            r"'regions\[1\]\.name': 'outside_regions' is reserved",
        ),
    ],
)
def test_bad_regions_are_named_before_any_job(default_analysis, regions, message):
    config, samples = default_analysis
    check(region_config(config), samples)  # the ZH regions pass
    with pytest.raises(ConfigError, match=message):
        check(region_config(config, regions), samples)


# --- process truth ----------------------------------------------------------------------------


def test_lhe_parton_counts_are_carried_for_simulation_only(
    default_analysis, real_nanoaod, zh_file, rewrite, tmp_path
):
    """LHE_Nb and LHE_Nc of a real tt̄ NanoAOD file become lhe_nb and lhe_nc (int8); data and
    simulation without them give 0."""
    config = copy.deepcopy(default_analysis[0])
    config["selection"]["objects"]["muon"] = config["selection"]["objects"]["electron"] = "pt > 1e9"
    config["selection"]["cuts"] = [{"name": "any", "expr": "n_jets >= 0"}]
    path = real_nanoaod / "nano_tt_v12.root"
    raw = uproot.open(path)["Events"].arrays(["event", "LHE_Nb", "LHE_Nc"], library="np")
    _, outputs = run(config, [path], tmp_path / "mc", sample="tt")
    events = pq.read_table(outputs["nominal"])
    np.testing.assert_array_equal(events["event"].to_numpy(), raw["event"])
    np.testing.assert_array_equal(events["lhe_nb"].to_numpy(), raw["LHE_Nb"])
    np.testing.assert_array_equal(events["lhe_nc"].to_numpy(), raw["LHE_Nc"])
    assert set(raw["LHE_Nb"]) >= {2, 3}  # tt̄ + a b parton sometimes
    _, outputs = run(config, [path], tmp_path / "data", is_data=True, sample="tt")
    assert not pq.read_table(outputs["nominal"])["lhe_nb"].to_numpy().any()
    without = rewrite(zh_file, tmp_path / "no_lhe.root", drop=set(PROCESS_TRUTH_COLUMNS.values()))
    _, outputs = run(config, [without], tmp_path / "no_lhe")
    events = pq.read_table(outputs["nominal"])
    assert events.num_rows > 0
    for column in PROCESS_TRUTH_COLUMNS:
        assert events[column].type == "int8" and not events[column].to_numpy().any()
