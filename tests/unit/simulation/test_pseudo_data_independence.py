"""Pseudo-data are statistically independent of the MC templates they are fitted with.

Pseudo-data chunks draw from their own random stream (their own seed and sample name), so
no pseudo-data event repeats an MC event: a fit of pseudo-data against MC made of the same
events would close trivially and hide a biased model.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
import uproot

from thetaflow.analysis import load_analysis
from thetaflow.core.samples import pseudo_data_processes
from thetaflow.simulation.production import (
    PseudoDataComponent,
    SimulationSettings,
    model_settings,
    n_chunks,
    sample_chunks,
    simulate_mc_chunk,
    simulate_pseudo_data_chunk,
)

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("configs", [["config.yaml"], ["config.yaml", "ci.yaml"]])
def test_pseudo_data_streams_are_not_mc_streams(configs):
    """Every (seed, sample, chunk) key of a pseudo-data chunk differs from every MC chunk's,
    and each pseudo-data set has a seed of its own."""
    config, samples = load_analysis([REPO / "config" / c for c in configs])
    sim_seed = config["seeds"]["simulation"]
    per_chunk = config["simulation"]["events_per_chunk"]
    mc_keys, data_keys, data_seeds = set(), set(), []
    for name, sample in samples.items():
        generate = sample.spec.get("generate")
        if generate is None:
            continue
        if sample.is_pseudo_data:
            seed = generate["pseudo_data"]["seed"]
            data_seeds.append(seed)
            data_keys |= {
                (seed, zlib.crc32(name.encode()), k) for k in range(sample_chunks(generate, 0))
            }
        else:
            chunks = n_chunks(generate["n_events"], per_chunk)
            mc_keys |= {(sim_seed, zlib.crc32(name.encode()), k) for k in range(chunks)}
    assert data_keys and mc_keys and not data_keys & mc_keys
    assert sim_seed not in data_seeds and len(set(data_seeds)) == len(data_seeds)


def event_keys(path: Path) -> set[tuple]:
    """A fingerprint per event: MET, the number of jets and the leading jet and muon p_T."""
    with uproot.open(path) as f:
        t = f["Events"].arrays(["MET_pt", "MET_phi", "Jet_pt", "Muon_pt"], library="np")
    return {
        (met, phi, len(jets), jets[0] if len(jets) else -1.0, mu[0] if len(mu) else -1.0)
        for met, phi, jets, mu in zip(
            t["MET_pt"], t["MET_phi"], t["Jet_pt"], t["Muon_pt"], strict=True
        )
    }


@pytest.mark.parametrize("same_seed", [False, True])
def test_pseudo_data_share_no_event_with_the_mc(default_analysis, tmp_path, same_seed):
    """The ZH MC chunk 0 and the ZH part of the pseudo-data, both simulated as the workflow
    does (config seeds), have no event in common; nor when the pseudo-data seed is set equal
    to the MC seed (the sample name keeps the streams apart)."""
    config, samples = default_analysis
    sim_seed = config["seeds"]["simulation"]
    settings = SimulationSettings.from_config({**config["simulation"], "seed": sim_seed})
    zh = samples["zh"]
    mc = tmp_path / "zh.root"
    simulate_mc_chunk(settings, model_settings(zh.spec["generate"]), "zh", 0, 1500, str(mc))
    data_spec = samples["data"]
    assert "zh" in pseudo_data_processes(data_spec, samples)
    seed = sim_seed if same_seed else data_spec.spec["generate"]["pseudo_data"]["seed"]
    component = PseudoDataComponent(zh, model_settings(zh.spec["generate"]), {"zh": 1.0})
    lumi_fb = 2000 / (zh.spec["xsec_pb"] * 1000.0)  # ~2000 produced ZH events
    data = tmp_path / "data.root"
    counts = simulate_pseudo_data_chunk(
        settings, [component], lumi_fb, seed, "data", 0, 1, str(data)
    )
    mc_events, data_events = event_keys(mc), event_keys(data)
    assert len(mc_events) > 1000 and len(data_events) == counts["zh"]["written"] > 1000
    assert not mc_events & data_events
    # a control: the same stream does reproduce its events exactly
    again = tmp_path / "again.root"
    simulate_pseudo_data_chunk(settings, [component], lumi_fb, seed, "data", 0, 1, str(again))
    assert event_keys(again) == data_events
    assert np.isfinite([k[0] for k in data_events]).all()
