"""Control plots per analysis region and per fit process (a sample split by truth)."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from thetaflow.core.samples import Sample
from thetaflow.features.control_plots import control_plots, process_tables

SAMPLES = {
    "zh": {"kind": "signal", "label": "ZH", "color": "#d62728"},
    "zjets": {
        "kind": "background",
        "label": "Z+jets",
        "processes": {
            "zjets_hf": {"expr": "lhe_nb > 0", "label": "Z+hf", "color": "#1f77b4"},
            "zjets_lf": {"expr": "lhe_nb == 0", "label": "Z+lf", "color": "#aec7e8"},
        },
    },
    "data": {"kind": "data", "label": "Pseudo-data"},
}


def table(rng: np.random.Generator, n: int, weight: float, lhe_nb: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "m_bb_gev": rng.uniform(20, 300, n),
            "weight": np.full(n, weight),
            "region": rng.choice(["sr", "cr"], n),
            "lhe_nb": lhe_nb,
            "lhe_nc": np.zeros(n, np.uint8),
        }
    )


def test_split_sample_becomes_its_processes_in_each_region():
    rng = np.random.default_rng(1)
    samples = {name: Sample(name, spec) for name, spec in SAMPLES.items()}
    zjets = table(rng, 1000, 0.1, rng.choice(np.array([0, 2], np.uint8), 1000))
    tables = {"zjets": zjets, "data": table(rng, 50, 1.0, np.zeros(50, np.uint8))}
    sr = process_tables(tables, samples, "sr")
    assert set(sr) == {"zjets_hf", "zjets_lf", "data"}
    assert (sr["zjets_hf"]["lhe_nb"] > 0).all() and (sr["zjets_lf"]["lhe_nb"] == 0).all()
    assert len(sr["zjets_hf"]) + len(sr["zjets_lf"]) == (zjets["region"] == "sr").sum()
    assert set(sr["data"]["region"]) == {"sr"}
    assert sum(len(t) for t in process_tables(tables, samples, None).values()) == 1050


def test_control_plot_has_a_panel_per_region(default_analysis, tmp_path):
    rng = np.random.default_rng(2)
    files = {}
    for name, n, w in (("zh", 300, 0.01), ("zjets", 2000, 0.05), ("data", 100, 1.0)):
        frame = table(rng, n, w, rng.choice(np.array([0, 2], np.uint8), n))
        files[name] = str(tmp_path / f"{name}.parquet")
        frame.to_parquet(files[name])
    config = copy.deepcopy(default_analysis[0])
    config["samples"] = SAMPLES
    config["features"] = ["m_bb_gev"]
    one_region = str(tmp_path / "single" / "m_bb_gev.png")
    (tmp_path / "single").mkdir()
    control_plots(config, files, [one_region])
    config["regions"] = [
        {"name": "sr", "kind": "signal", "expr": "mbb_gev > 0"},
        {"name": "cr", "kind": "control", "expr": "mbb_gev < 0"},
    ]
    two_regions = str(tmp_path / "m_bb_gev.png")
    control_plots(config, files, [two_regions])
    width_one, height_one = Image.open(one_region).size
    width_two, height_two = Image.open(two_regions).size
    assert width_two > 1.7 * width_one and height_two == pytest.approx(height_one, rel=0.1)
