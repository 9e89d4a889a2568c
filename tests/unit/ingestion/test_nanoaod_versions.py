"""NanoAOD versions (v9, v12, v15) and RNTuple: branch maps, detection, the Run 3 recipes, every
real CMS test file through ingestion and features, RNTuple against its TTree twin, bad input."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import awkward as ak
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uproot

from thetaflow.analysis import load_analysis
from thetaflow.core.errors import ConfigError
from thetaflow.core.samples import PROCESS_TRUTH_COLUMNS
from thetaflow.features.compute import feature_table
from thetaflow.ingestion.checks import check
from thetaflow.ingestion.cutflow import Cutflow
from thetaflow.ingestion.ingest import (
    IngestError,
    ReadPlan,
    branch_names,
    branches_read,
    ingest_from_config,
    ingest_sample,
    needed_branches,
    open_tree,
)
from thetaflow.ingestion.nanoaod import (
    PILEUP_ID_NOT_APPLIED,
    branch_maps,
    known_versions,
    resolve_version,
    run3_jet_id,
)
from thetaflow.ingestion.selection import Selection
from thetaflow.ingestion.variations import variation_names, variations
from thetaflow.simulation.production import (
    write_nanoaod,
)

#: every real CMS test file: (format, version, is data)
REAL_FILES = {
    "nano_dy.root": ("TTree", "v9", False),
    "nano_dimuon.root": ("TTree", "v9", True),
    "nano_dy_rntuple.root": ("RNTuple", "v9", False),
    "nano_dimuon_rntuple.root": ("RNTuple", "v9", True),
    "nano_tt_v12.root": ("TTree", "v12", False),
    "nano_tt_v15.root": ("TTree", "v15", False),
}
TWINS = {"nano_dy_rntuple.root": "nano_dy.root", "nano_dimuon_rntuple.root": "nano_dimuon.root"}
#: a selection loose enough that the 40-event Run 2 files select events (twin comparison)
LOOSE = {
    "objects": {
        "muon": "pt > 5 and abs(eta) < 2.4",
        "electron": "pt > 5 and abs(eta) < 2.5",
        "jet": "pt > 15 and abs(eta) < 2.5 and jetId >= 2 and (puId >= 4 or pt > 50)",
        "jet_lepton_min_dr": 0.4,
    },
    "cuts": [
        {"name": "two_leptons", "expr": "n_leptons == 2"},
        {"name": "two_jets", "expr": "n_jets >= 2"},
    ],
}


def ingest(config, selection_cfg, files, out: Path, *, is_data=False, version="auto", sample="s"):
    """Ingest ``files`` as one sample into ``out``; the cutflow and the parquet per variation."""
    out.mkdir(parents=True, exist_ok=True)
    vs = variations(config, is_data)
    outputs = {v.name: str(out / f"{v.name}.parquet") for v in vs}
    cutflow = ingest_sample(
        sample=sample,
        files=[str(f) for f in files],
        tree="Events",
        is_data=is_data,
        xsec_pb=None if is_data else 100.0,
        lumi_fb=1.0,
        selection=Selection.from_config(selection_cfg),
        variation_list=vs,
        outputs=outputs,
        cutflow_path=str(out / "cutflow.json"),
        chunk_size=64,
        nanoaod_version=version,
    )
    return cutflow, outputs


def same(a: pa.Table, b: pa.Table) -> bool:
    """Tables equal in schema and values, NaN equal to NaN (jets without a GenJet)."""
    return a.schema.equals(b.schema) and ak.array_equal(
        ak.from_arrow(a), ak.from_arrow(b), equal_nan=True
    )


def features(config, cutflow: Cutflow, path: str, is_data: bool):
    return feature_table(
        ak.from_parquet(path),
        sample="s",
        kind="data" if is_data else "background",
        norm_factor=cutflow.norm_factor,
        feature_names=config["features"],
        weight_systematics=config["systematics"]["weight"],
    )


def test_branch_maps_name_met_tagger_and_ordered_working_points():
    maps = branch_maps()
    assert known_versions() == ["v9", "v12", "v15"]
    assert {v: (m.met, m.btag.tagger, m.btag.branch) for v, m in maps.items()} == {
        "v9": ("MET", "DeepJet", "btagDeepFlavB"),
        "v12": ("PuppiMET", "PNet", "btagPNetB"),
        "v15": ("PuppiMET", "UParT", "btagUParTAK4B"),
    }
    for m in maps.values():
        wp = m.btag.working_points
        assert 0 < wp["loose"] < wp["medium"] < wp["tight"] < 1
    # the default analysis's medium working point is the UL2018 DeepJet one
    assert maps["v9"].btag.working_points["medium"] == 0.2783


@pytest.mark.parametrize("name", list(REAL_FILES))
def test_version_detected_from_the_branches_of_every_real_file(real_nanoaod, name):
    kind, version, _ = REAL_FILES[name]
    events = open_tree(str(real_nanoaod / name), "Events", "s")
    assert ("RNTuple" in type(events).__name__) == (kind == "RNTuple")
    names = branch_names(events)
    assert resolve_version("auto", names).version == version
    assert resolve_version(version, names).version == version
    # the top-level names are every NanoAOD branch: the recursive listing of an RNTuple adds
    # only its collections' subfields (``_collectionN.Jet_pt``), a TTree's nothing
    assert {k.partition(".")[0] for k in set(events.keys()) - names} <= {
        f"_collection{i}" for i in range(100)
    }


def test_embedded_simulation_is_detected_as_v9(zh_file):
    assert resolve_version("auto", set(uproot.open(zh_file)["Events"].keys())).version == "v9"


@pytest.mark.parametrize("name", list(REAL_FILES))
def test_every_real_file_goes_through_ingestion_and_features(
    default_analysis, real_nanoaod, tmp_path, name
):
    """The default config and selection: typed (maybe empty) outputs, never a crash."""
    config, _ = default_analysis
    _, _, is_data = REAL_FILES[name]
    path = real_nanoaod / name
    cutflow, outputs = ingest(config, config["selection"], [path], tmp_path, is_data=is_data)
    assert cutflow.events_read == open_tree(str(path), "Events", "s").num_entries
    assert list(outputs) == (["nominal"] if is_data else ["nominal", "jes_up", "jes_down"])
    for path_out in outputs.values():
        table = features(config, cutflow, path_out, is_data)
        assert set(config["features"]) <= set(table.column_names)
        assert table.num_rows == cutflow.selected["nominal" if is_data else Path(path_out).stem]


@pytest.mark.parametrize(
    ("version", "name"), [("v12", "nano_tt_v12.root"), ("v15", "nano_tt_v15.root")]
)
def test_run3_jets_through_the_branch_map(
    default_analysis, real_nanoaod, tmp_path, caplog, version, name
):
    """Run 3: no pile-up ID (the requirement is not applied), v15's jet ID recomputed, the
    version's tagger as ``btag``; the differences logged once per sample."""
    config, _ = default_analysis
    selection = copy.deepcopy(LOOSE)
    selection["objects"]["jet"] = "jetId >= 2 and puId >= 4"
    # no lepton selected: no jet is removed by the ΔR cleaning
    selection["objects"]["muon"] = selection["objects"]["electron"] = "pt > 1e9"
    selection["cuts"] = [{"name": "any", "expr": "n_jets >= 0"}]
    path = real_nanoaod / name
    with caplog.at_level(logging.INFO, logger="thetaflow.ingestion.ingest"):
        cutflow, outputs = ingest(config, selection, [path, path], tmp_path)
    jets = ak.from_parquet(outputs["nominal"]).jets
    m = branch_maps()[version]
    raw = uproot.open(path)["Events"].arrays(
        [f"Jet_{f}" for f in ("pt", m.btag.branch, *m.jet_sources(["jetId"]))]
    )
    columns = {k.removeprefix("Jet_"): ak.flatten(raw[k]).to_numpy() for k in raw.fields}
    jet_id = run3_jet_id(columns) if version == "v15" else columns["jetId"]
    passed = ak.unflatten(jet_id >= 2, ak.num(raw["Jet_pt"]))
    assert cutflow.cutflow["nominal"][-1].events == 2 * len(raw)
    expected = ak.concatenate([ak.sum(passed, axis=1)] * 2)
    assert ak.all(ak.num(jets) == expected)
    tagger = raw[f"Jet_{m.btag.branch}"][passed]
    order = ak.argsort(raw["Jet_pt"][passed], ascending=False, stable=True)
    np.testing.assert_array_equal(
        ak.flatten(jets.btag).to_numpy(), ak.flatten(ak.concatenate([tagger[order]] * 2)).to_numpy()
    )
    log = caplog.text
    assert log.count("no Jet_puId (Run 3 PUPPI jets have no pile-up ID)") == 1
    assert log.count("MET read from PuppiMET_pt/PuppiMET_phi") == 1
    assert log.count("recomputed from the jet energy fractions") == (version == "v15")
    if version == "v15":  # most central jets of a tt̄ sample are tight
        assert 0.8 < float(np.mean(jet_id[np.abs(columns["eta"]) < 2.5] >= 2)) < 1.0


def test_run3_jet_id_criteria_by_hand():
    def jet(eta, nhf=0.1, nemf=0.1, chf=0.5, cemf=0.1, muf=0.0, chm=5, nm=5):
        return {"eta": eta, "neHEF": nhf, "neEmEF": nemf, "chHEF": chf, "chEmEF": cemf,
                "muEF": muf, "chMultiplicity": chm, "neMultiplicity": nm}  # fmt: skip

    cases = [
        (jet(0.0), 6),  # tight and lepton veto
        (jet(0.0, muf=0.85), 2),  # tight, fails the lepton veto (MUF < 0.8)
        (jet(-1.0, cemf=0.85), 2),
        (jet(0.0, chm=0, nm=5), 0),  # |η| ≤ 2.6 needs a charged constituent
        (jet(0.0, chm=1, nm=0), 0),  # and more than one constituent
        (jet(2.6, chf=0.0), 0),  # CHF > 0.01 up to |η| = 2.6
        (jet(2.65, chf=0.0, chm=0, nemf=0.95), 6),  # 2.6-2.7: NHF < 0.9, NEMF < 0.99
        (jet(2.65, nhf=0.95), 0),
        (jet(2.8, nhf=0.98, nemf=0.999, muf=0.9), 6),  # 2.7-3.0: NHF < 0.99 only
        (jet(-2.9, nhf=0.995), 0),
        (jet(3.5, nemf=0.3, nm=2, chm=0), 6),  # forward: NEMF < 0.4, NM ≥ 2
        (jet(3.5, nemf=0.3, nm=1), 0),
        (jet(-4.0, nemf=0.5, nm=5), 0),
    ]
    columns = {k: np.array([c[k] for c, _ in cases]) for k in cases[0][0]}
    np.testing.assert_array_equal(run3_jet_id(columns), [e for _, e in cases])


def test_pileup_id_of_run3_is_not_applied():
    jets = branch_maps()["v12"]
    assert jets.jet_sources(["pt", "puId", "btag", "jetId"]) == ["pt", "btagPNetB", "jetId"]
    assert PILEUP_ID_NOT_APPLIED & 4 and PILEUP_ID_NOT_APPLIED >= 4  # passes puId >= 4 and bits


@pytest.mark.parametrize("rntuple", list(TWINS))
def test_rntuple_file_gives_the_feature_table_of_its_ttree_twin(
    default_analysis, real_nanoaod, tmp_path, rntuple
):
    config, _ = default_analysis
    ttree = TWINS[rntuple]
    is_data = REAL_FILES[ttree][2]
    runs: dict[str, tuple[Cutflow, dict]] = {}
    for name in (ttree, rntuple):
        runs[name] = ingest(config, LOOSE, [real_nanoaod / name], tmp_path / name, is_data=is_data)
    (tt_flow, tt_out), (rn_flow, rn_out) = runs[ttree], runs[rntuple]
    # the cutflow is exact: the same events and Σw at every cut, in every variation
    for v, rows in tt_flow.cutflow.items():
        assert [(r.cut, r.events, r.sumw) for r in rn_flow.cutflow[v]] == [
            (r.cut, r.events, r.sumw) for r in rows
        ]
    assert rn_flow.events_read == tt_flow.events_read and rn_flow.sumw_read == tt_flow.sumw_read
    assert rn_flow.selected == tt_flow.selected and tt_flow.selected["nominal"] > 0
    for variation, path in tt_out.items():
        assert same(pq.read_table(rn_out[variation]), pq.read_table(path))
        tt_table = features(config, tt_flow, path, is_data)
        rn_table = features(config, rn_flow, rn_out[variation], is_data)
        weights = [c for c in tt_table.column_names if c.startswith("weight")]
        assert same(rn_table.drop_columns(weights), tt_table.drop_columns(weights))
        # the weights differ only by the normalisation: the RNTuple copy has no Runs tree
        # (Σ genWeight of its events instead of the TTree's Runs.genEventSumw)
        for c in weights:
            np.testing.assert_allclose(
                rn_table[c].to_numpy() / rn_flow.norm_factor,
                tt_table[c].to_numpy() / tt_flow.norm_factor,
                rtol=1e-12,
            )
    if not is_data:
        assert (tt_flow.sumw_source, rn_flow.sumw_source) == (
            "Runs.genEventSumw",
            "Events.genWeight",
        )
        # with the same normalisation the feature tables are identical, weights included
        assert same(
            features(config, tt_flow, rn_out["nominal"], is_data),
            features(config, tt_flow, tt_out["nominal"], is_data),
        )


@pytest.mark.parametrize("source", ["v12", "v15", "rntuple"])
def test_bulk_read_branches_of_run3_and_rntuple(default_analysis, real_nanoaod, source):
    config, _ = default_analysis
    path = str(
        real_nanoaod
        / {"v12": "nano_tt_v12.root", "v15": "nano_tt_v15.root", "rntuple": "nano_dy_rntuple.root"}[
            source
        ]
    )
    selection = Selection.from_config(config["selection"])
    plan = ReadPlan.of(open_tree(path, "Events", source), selection, False)
    assert plan.branches == set(branches_read(path, "Events", selection, False))
    assert plan.branches <= needed_branches(selection, plan.branch_map, False) | {
        "nJet", "Jet_genJetIdx", "Jet_hadronFlavour", "Jet_nMuons", "Jet_nElectrons", "GenJet_pt",
        "nGenJet", *PROCESS_TRUTH_COLUMNS.values(),
    }  # fmt: skip


def test_example_sample_list_of_real_nanoaod(repo_root, real_nanoaod, tmp_path):
    """resources/samples_real_nanoaod.yaml validates and its samples ingest through the
    workflow's entry point (one sample mixes v12 and v15 files)."""
    override = tmp_path / "real.yaml"
    override.write_text(
        f"samples: {repo_root / 'resources' / 'samples_real_nanoaod.yaml'}\n"
        "analysis: {lumi_fb: 1.0}\n"
    )
    config, samples = load_analysis([repo_root / "config" / "config.yaml", override])
    assert config["nanoaod"] == {"version": "auto"}
    read = {s.name: s.spec["files"] for s in samples.values() if "files" in s.spec}
    assert set(read) == {"dy", "ttbar", "data"}
    for sample, files in read.items():
        paths = [str(real_nanoaod / Path(f).name) for f in files]
        names = variation_names(config, samples[sample].is_data)
        outputs = {v: str(tmp_path / f"{sample}_{v}.parquet") for v in names}
        cutflow = ingest_from_config(
            config, sample, paths, outputs, str(tmp_path / f"{sample}.json")
        )
        assert cutflow.files == paths and cutflow.events_read == 40 * (sample != "ttbar") + 400 * (
            sample == "ttbar"
        )


# --- bad input: each names the sample and the file -------------------------------------------


def test_unknown_version_names_sample_and_file(default_analysis, real_nanoaod, tmp_path):
    config, _ = default_analysis
    with pytest.raises(
        IngestError,
        match=r"sample 's': .*nano_dy\.root: unknown NanoAOD version 'v13'.*v9, v12, v15",
    ):
        ingest(
            config, config["selection"], [real_nanoaod / "nano_dy.root"], tmp_path, version="v13"
        )
    assert not (tmp_path / "cutflow.json").exists()


def test_unknown_version_in_config_is_refused_before_any_job(default_analysis):
    config, samples = default_analysis
    bad = {**config, "nanoaod": {"version": "v13"}}
    with pytest.raises(ConfigError, match=r"'nanoaod.version': unknown NanoAOD version 'v13'"):
        check(bad, samples)


@pytest.mark.parametrize(
    ("forced", "name", "why"),
    [
        ("v9", "nano_tt_v12.root", r"lacks Jet_puId; its branches are those of v12"),
        ("v15", "nano_dy.root", r"lacks PFMET_pt.*has Jet_jetId, has MET_pt; .* those of v9"),
        ("v12", "nano_tt_v15.root", r"lacks Jet_jetId, lacks MET_pt; .* those of v15"),
    ],
)
def test_forced_version_the_file_contradicts(
    default_analysis, real_nanoaod, tmp_path, forced, name, why
):
    config, _ = default_analysis
    with pytest.raises(
        IngestError,
        match=rf"sample 's': .*{name.replace('.', '[.]')}: nanoaod.version is '{forced}' but the "
        rf"file contradicts it: .*{why}",
    ):
        ingest(config, config["selection"], [real_nanoaod / name], tmp_path, version=forced)


def _write_subset(src: Path, out: Path, branches: set[str]) -> str:
    """``src``'s Events with only ``branches`` (collections zipped again)."""
    arrays = uproot.open(src)["Events"].arrays(sorted(branches - {"nJet", "nMuon", "nElectron"}))
    flat, collections = {}, {}
    for name in arrays.fields:
        prefix, _, field = name.partition("_")
        if arrays[name].ndim > 1:
            collections.setdefault(prefix, {})[field] = arrays[name]
        else:
            flat[name] = arrays[name]
    events = {k: ak.to_numpy(v) for k, v in flat.items()}
    write_nanoaod(str(out), events | {k: ak.zip(v) for k, v in collections.items()}, None, 1)
    return str(out)


def test_missing_branch_no_recipe_replaces(default_analysis, real_nanoaod, tmp_path):
    """v15 without a multiplicity the jet-ID recipe needs: named, with the version."""
    config, _ = default_analysis
    selection = Selection.from_config(config["selection"])
    v15 = real_nanoaod / "nano_tt_v15.root"
    keep = needed_branches(selection, branch_maps()["v15"], False) | {
        "PFMET_pt", "Jet_btagUParTAK4B", "Jet_chMultiplicity",
    }  # fmt: skip
    stripped = _write_subset(v15, tmp_path / "v15_stripped.root", keep - {"Jet_neMultiplicity"})
    with pytest.raises(
        IngestError,
        match=r"sample 's': .*v15_stripped\.root lacks branch\(es\) Jet_neMultiplicity "
        r"\(NanoAOD v15: no recipe replaces them\)",
    ):
        ingest(config, config["selection"], [stripped], tmp_path / "out")
    # the same file with it goes through
    whole = _write_subset(v15, tmp_path / "v15_subset.root", keep)
    cutflow, _ = ingest(config, config["selection"], [whole], tmp_path / "ok")
    assert cutflow.events_read == 200


def test_file_of_no_known_version(default_analysis, zh_file, tmp_path):
    """A Run 2 file without Jet_puId is neither v9 nor Run 3: every version's reason is given."""
    config, _ = default_analysis
    selection = Selection.from_config(config["selection"])
    keep = needed_branches(selection, branch_maps()["v9"], False) - {"Jet_puId"}
    odd = _write_subset(Path(zh_file), tmp_path / "odd.root", keep)
    with pytest.raises(
        IngestError,
        match=r"sample 's': .*odd\.root: NanoAOD version not recognised: matches none .*"
        r"v9: lacks Jet_puId; v12: lacks Jet_btagPNetB; v15: ",
    ):
        ingest(config, config["selection"], [odd], tmp_path / "out")
