"""Ingestion: embedded simulation and real CMS NanoAOD, cutflows, variations, bad input."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import awkward as ak
import numpy as np
import pyarrow.parquet as pq
import pytest
import uproot

from thetaflow.ingestion.cutflow import Cutflow, CutRow
from thetaflow.ingestion.ingest import (
    CutCounts,
    IngestError,
    ReadPlan,
    branches_read,
    ingest_sample,
    open_tree,
    variations,
)
from thetaflow.ingestion.selection import Selection


@pytest.fixture(scope="module")
def analysis(default_analysis) -> tuple[dict, dict]:
    return default_analysis


def run_ingest(
    config,
    files,
    tmp_path,
    *,
    is_data=False,
    sample="zh",
    xsec=0.0345,
    chunk_size=1000,
    weight=None,
):
    selection = Selection.from_config(config["selection"])
    vs = variations(config, is_data)
    outputs = {v.name: str(tmp_path / f"{sample}_{v.name}.parquet") for v in vs}
    cutflow = ingest_sample(
        sample=sample,
        files=files,
        tree="Events",
        is_data=is_data,
        xsec_pb=None if is_data else xsec,
        lumi_fb=config["analysis"]["lumi_fb"],
        selection=selection,
        variation_list=vs,
        outputs=outputs,
        cutflow_path=str(tmp_path / f"{sample}_cutflow.json"),
        chunk_size=chunk_size,
        weight_expr=weight,
    )
    return cutflow, outputs


def test_embedded_simulation_cutflow_and_normalisation(analysis, zh_file, tmp_path):
    config, _ = analysis
    cutflow, outputs = run_ingest(config, [zh_file], tmp_path, chunk_size=700)
    tree = uproot.open(zh_file)["Events"]
    gen_weight = tree["genWeight"].array(library="np")
    runs = uproot.open(zh_file)["Runs"].arrays(library="np")
    assert cutflow.events_read == tree.num_entries
    # Σw over all events read (not only selected); normalisation from the Runs tree
    assert cutflow.sumw_read == pytest.approx(gen_weight.sum())
    assert cutflow.sumw == pytest.approx(runs["genEventSumw"].sum())
    assert cutflow.sumw_source == "Runs.genEventSumw"
    lumi_pb = config["analysis"]["lumi_fb"] * 1000
    assert cutflow.norm_factor == pytest.approx(0.0345 * lumi_pb / runs["genEventSumw"].sum())
    nominal = cutflow.cutflow["nominal"]
    counts = [row.events for row in nominal]
    assert counts[0] == tree.num_entries
    assert all(a >= b for a, b in zip(counts, counts[1:], strict=False)), (
        "cutflow must be monotonic"
    )
    assert [row.cut for row in nominal] == ["all"] + [
        c["name"] for c in config["selection"]["cuts"]
    ]
    events = ak.from_parquet(outputs["nominal"])
    assert len(events) == counts[-1] > 0
    assert ak.all(ak.num(events.leptons) == 2) and ak.all(ak.num(events.jets) >= 2)
    mll = events.leptons[:, 0].pt > 0  # records are complete
    assert ak.all(mll)
    # ids are unique and come from the file
    ids = set(
        zip(
            events.run.tolist(),
            events.luminosityBlock.tolist(),
            events.event.tolist(),
            strict=True,
        )
    )
    assert len(ids) == len(events)
    # the file holds the returned cutflow, and reads back as it
    written = json.loads((tmp_path / "zh_cutflow.json").read_text())
    assert written == cutflow.to_json()
    assert Cutflow.read(tmp_path / "zh_cutflow.json") == cutflow


def test_cut_counts_of_cumulative_masks():
    masks = [np.array([True, True, False, True]), np.array([True, False, False, True])]
    counts = CutCounts.of(masks, np.array([0.5, 2.0, 4.0, 1.0]))
    np.testing.assert_array_equal(counts.events, [3, 2])
    np.testing.assert_array_equal(counts.sumw, [3.5, 1.5])


@pytest.mark.parametrize(
    ("weight", "same_in_every_variation"),
    [("1 + 0.01 * ptll_gev", True), ("1 + 0.1 * n_jets", False)],
)
def test_extra_weight_enters_every_cut(
    analysis, zh_file, tmp_path, weight, same_in_every_variation
):
    # a weight on lepton variables counts the cuts before the jet cuts once for every
    # variation; one on jet variables is evaluated per variation, from the first cut on
    config, _ = analysis
    plain, _ = run_ingest(config, [zh_file], tmp_path / "plain")
    weighted, _ = run_ingest(config, [zh_file], tmp_path / "weighted", weight=weight)
    first = {v: rows[0].sumw for v, rows in weighted.cutflow.items()}
    assert first["nominal"] > plain.cutflow["nominal"][0].sumw
    assert (first["jes_up"] == first["nominal"] == first["jes_down"]) is same_in_every_variation
    for v, rows in weighted.cutflow.items():
        assert [r.events for r in rows] == [r.events for r in plain.cutflow[v]]


def test_jes_variation_shifts_jets_and_selection(analysis, zh_file, tmp_path):
    config, _ = analysis
    _, outputs = run_ingest(config, [zh_file], tmp_path)
    nominal = ak.from_parquet(outputs["nominal"])
    up = ak.from_parquet(outputs["jes_up"])
    down = ak.from_parquet(outputs["jes_down"])
    shift = config["systematics"]["shape"]["jes"]["relative_shift"]
    # more jets pass the p_T threshold when scaled up
    assert len(up) >= len(nominal) >= len(down)
    key = lambda e: dict(zip(e.event.tolist(), e.jets.pt[:, 0].tolist(), strict=True))  # noqa: E731
    nom, upj = key(nominal), key(up)
    common = [k for k in nom if k in upj]
    ratios = np.array([upj[k] / nom[k] for k in common])
    assert np.median(ratios) == pytest.approx(1 + shift, rel=1e-4)
    # MET is recomputed from the varied jets
    met_nom = dict(zip(nominal.event.tolist(), nominal.met_pt.tolist(), strict=True))
    met_up = dict(zip(up.event.tolist(), up.met_pt.tolist(), strict=True))
    assert any(abs(met_nom[k] - met_up[k]) > 1e-3 for k in common)


def test_real_cms_nanoaod_mc_and_data(analysis, real_nanoaod, tmp_path):
    config, _ = analysis
    dy = str(real_nanoaod / "nano_dy.root")
    cutflow, outputs = run_ingest(config, [dy], tmp_path, sample="dy", xsec=6077.0)
    gen_weight = uproot.open(dy)["Events"]["genWeight"].array(library="np")
    assert cutflow.events_read == 40
    assert cutflow.sumw_read == pytest.approx(gen_weight.sum())
    # zero or few selected events: typed outputs in every variation, never a crash
    for path in outputs.values():
        table = pq.read_table(path)
        assert {"run", "event", "leptons", "jets", "met_pt", "gen_weight"} <= set(
            table.column_names
        )
    dimuon = str(real_nanoaod / "nano_dimuon.root")
    cutflow, outputs = run_ingest(config, [dimuon], tmp_path, sample="dimuon_data", is_data=True)
    assert cutflow.is_data and cutflow.norm_factor == 1.0
    assert list(outputs) == ["nominal"]
    assert cutflow.cutflow["nominal"][0].events == 40
    # real NanoAOD has a two-lepton step: the dimuon skim must have some OS pairs
    two_lep = next(r for r in cutflow.cutflow["nominal"] if r.cut == "two_leptons")
    assert two_lep.events > 0


@pytest.mark.parametrize("source", ["simulation", "cms_mc", "cms_data"])
def test_bulk_read_branches_are_exactly_those_ingestion_reads(analysis, zh_file, request, source):
    """The branches preloaded in bulk are what ingestion's columns read lazily (NanoEvents'
    access log): none missing (read again one by one), none read for nothing."""
    config, _ = analysis
    if source == "simulation":
        path, is_data = zh_file, False
    else:
        real = request.getfixturevalue("real_nanoaod")  # skipped where the files are absent
        path, is_data = {
            "cms_mc": (str(real / "nano_dy.root"), False),
            "cms_data": (str(real / "nano_dimuon.root"), True),
        }[source]
    selection = Selection.from_config(config["selection"])
    plan = ReadPlan.of(open_tree(path, "Events", source), selection, is_data)
    assert plan.branches == set(branches_read(path, "Events", selection, is_data))
    assert ("GenJet_nuPt" in plan.branches) == (source == "simulation")
    assert ("genWeight" in plan.branches) == (not is_data)


def test_zero_selected_events_gives_empty_outputs_and_warning(analysis, zh_file, tmp_path, caplog):
    config, _ = analysis
    impossible = dict(config)
    impossible["selection"] = {
        **config["selection"],
        "cuts": config["selection"]["cuts"] + [{"name": "never", "expr": "n_jets > 100"}],
    }
    with caplog.at_level(logging.WARNING):
        cutflow, outputs = run_ingest(impossible, [zh_file], tmp_path)
    assert cutflow.selected["nominal"] == 0
    assert cutflow.cutflow["nominal"][-1] == CutRow(cut="never", events=0, sumw=0.0, expected=0.0)
    assert pq.read_table(outputs["nominal"]).num_rows == 0
    assert "no event passes" in caplog.text


def test_no_variation_is_refused_naming_the_sample(analysis, zh_file, tmp_path):
    config, _ = analysis
    with pytest.raises(IngestError, match=r"sample 'zh': no variation to ingest"):
        ingest_sample(
            sample="zh",
            files=[zh_file],
            tree="Events",
            is_data=False,
            xsec_pb=0.0345,
            lumi_fb=config["analysis"]["lumi_fb"],
            selection=Selection.from_config(config["selection"]),
            variation_list=[],
            outputs={},
            cutflow_path=str(tmp_path / "zh_cutflow.json"),
            chunk_size=1000,
        )
    assert not (tmp_path / "zh_cutflow.json").exists()


def test_missing_file_names_sample_and_path(analysis, tmp_path):
    config, _ = analysis
    with pytest.raises(IngestError, match=r"sample 'zh'.*not found.*nope\.root"):
        run_ingest(config, [str(tmp_path / "nope.root")], tmp_path)


def test_not_a_root_file(analysis, tmp_path):
    config, _ = analysis
    bad = tmp_path / "text.root"
    bad.write_text("this is not ROOT\n" * 100)
    with pytest.raises(IngestError, match=r"text\.root is not a readable ROOT file"):
        run_ingest(config, [str(bad)], tmp_path)


def test_truncated_root_file(analysis, zh_file, tmp_path):
    config, _ = analysis
    data = Path(zh_file).read_bytes()
    cut = tmp_path / "truncated.root"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(IngestError, match=r"truncated\.root"):
        run_ingest(config, [str(cut)], tmp_path)
    # nothing that looks finished is left behind
    assert not (tmp_path / "zh_nominal.parquet").exists()
    assert not (tmp_path / "zh_cutflow.json").exists()


def test_missing_tree_and_branch(analysis, zh_file, tmp_path, rewrite):
    config, _ = analysis
    no_tree = tmp_path / "no_events_tree.root"
    with uproot.recreate(no_tree) as f:
        f["Other"] = {"x": np.arange(3)}
    with pytest.raises(IngestError, match=r"no_events_tree\.root has no tree 'Events'"):
        run_ingest(config, [str(no_tree)], tmp_path)
    stripped = rewrite(zh_file, tmp_path / "missing_branch.root", drop={"Muon_tightId"})
    with pytest.raises(IngestError, match=r"missing_branch\.root lacks branch\(es\) Muon_tightId"):
        run_ingest(config, [stripped], tmp_path)


def test_non_finite_inputs_are_counted_and_dropped(analysis, zh_file, tmp_path, caplog, rewrite):
    config, _ = analysis
    n_entries = uproot.open(zh_file)["Events"].num_entries
    met = uproot.open(zh_file)["Events"]["MET_pt"].array(library="np").copy()
    met[:5] = np.nan
    met[5] = np.inf
    bad = rewrite(zh_file, tmp_path / "nonfinite.root", met_pt=met)
    with caplog.at_level(logging.WARNING):
        cutflow, outputs = run_ingest(config, [bad], tmp_path)
    assert cutflow.non_finite_events == 6
    assert cutflow.cutflow["nominal"][0].events == n_entries - 6
    assert "NaN/inf" in caplog.text
    events = ak.from_parquet(outputs["nominal"])
    assert np.all(np.isfinite(ak.to_numpy(events.met_pt)))
