"""The generator filter and the reco-level skim are looser than the analysis selection.

Unfiltered, unskimmed events of each process are reconstructed and written as NanoAOD, then
ingested with the analysis selection of ``config/config.yaml``: every event the selection
keeps passes the generator filter (on its truth) and the skim (on its reco objects), so
filter and skim lose no selected event and the Runs-tree normalisation stays exact.
"""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from thetaflow.ingestion.ingest import ingest_sample
from thetaflow.ingestion.selection import Selection
from thetaflow.ingestion.variations import variations
from thetaflow.simulation.detector import reconstruct
from thetaflow.simulation.generator import generate
from thetaflow.simulation.production import (
    SimulationSettings,
    _event_arrays,
    model_settings,
    write_nanoaod,
)

N_EVENTS = {"zh": 12_000, "ttbar": 20_000, "zjets": 20_000}


@pytest.mark.parametrize("process", sorted(N_EVENTS))
def test_filter_and_skim_never_remove_a_selected_event(default_analysis, tmp_path, process):
    config, samples = default_analysis
    settings = SimulationSettings.from_config({**config["simulation"], "seed": 11})
    rng = np.random.default_rng(11)
    truth = generate(rng, model_settings(samples[process].spec["generate"]), N_EVENTS[process])
    reco = reconstruct(rng, truth, settings.detector)
    n = len(truth)
    passes_filter = settings.filter.passes(truth)
    passes_skim = settings.skim.passes(reco)
    # every event written, neither filtered nor skimmed
    events = _event_arrays(reco, np.ones(n, bool), is_data=False)
    events["run"] = np.ones(n, np.uint32)
    events["luminosityBlock"] = np.ones(n, np.uint32)
    events["event"] = np.arange(1, n + 1, dtype=np.uint64)
    events["genWeight"] = truth.gen_weight.astype(np.float32)
    path = tmp_path / f"{process}.root"
    write_nanoaod(str(path), events, None, 1)
    output = tmp_path / "nominal.parquet"
    ingest_sample(
        sample=process,
        files=[str(path)],
        tree="Events",
        is_data=False,
        xsec_pb=samples[process].spec["xsec_pb"],
        lumi_fb=config["analysis"]["lumi_fb"],
        selection=Selection.from_config(config["selection"]),
        variation_list=[v for v in variations(config, False) if v.name == "nominal"],
        outputs={"nominal": str(output)},
        cutflow_path=str(tmp_path / "cutflow.json"),
        chunk_size=50_000,
    )
    selected = ak.to_numpy(ak.from_parquet(output, columns=["event"])["event"]).astype(int) - 1
    # the test is not empty: events are selected, and filter and skim each remove events
    assert len(selected) > 20
    assert not passes_filter.all() and not passes_skim.all()
    failed_filter = selected[~passes_filter[selected]]
    failed_skim = selected[~passes_skim[selected]]
    assert len(failed_filter) == 0, f"selected events failing the generator filter: {failed_filter}"
    assert len(failed_skim) == 0, f"selected events failing the skim: {failed_skim}"
