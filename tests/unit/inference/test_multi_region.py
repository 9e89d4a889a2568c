"""A model of two regions and two free parameters, built and fitted through the workflow's path.

A signal region (an ``nn``-like score: ZH over Z+jets and tt̄) and a tt̄ control region (an
``m_bb``-like mass, no signal at all), with μ on the signal and a free normalisation factor
k_tt̄ on tt̄ in both regions. The pseudo-data are made at μ = 1.5 and k_tt̄ = 1.3 while the
templates stay nominal, so the fit must measure k_tt̄ in the control region and carry it into
the signal region to find μ.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from thetaflow.core.io import read_json
from thetaflow.inference.beyond import scans
from thetaflow.inference.closure import asimov_closure, fit_toys, sample_toys
from thetaflow.inference.fit import fit_data, free_parameters, load_model, model_name, par_bounds
from thetaflow.inference.histograms import ProcessTemplates, TemplateSet, _fill, counts_histogram
from thetaflow.inference.model import FreeParameter, ModelSpec, ModelTemplates
from thetaflow.inference.workspace import ModelBuildError, build_model_workspace, usable_model

MU, K_TTBAR = 1.5, 1.3
SPEC = ModelSpec(
    (
        FreeParameter("mu", ("zh",), (-10.0, 10.0)),
        FreeParameter("k_ttbar", ("ttbar",), (0.0, 5.0)),
    )
)


def region(name, label, lo, hi, n_fine, spec, seed):
    """Templates of one region: per process (kind, Beta(a, b) over [lo, hi], MC events),
    weights 0.05, a ±4 % shift (shape) and ±5 % weight systematic; Poisson data at μ, k_tt̄."""
    rng = np.random.default_rng(seed)
    edges = np.linspace(lo, hi, n_fine + 1)
    processes, expected = {}, np.zeros(n_fine)
    for process, (kind, (a, b), n) in spec.items():
        x = lo + (hi - lo) * rng.beta(a, b, n)
        w = np.full(n, 0.05)
        templates = {"nominal": _fill(edges, x, w)}
        for d, f in (("up", 1.04), ("down", 0.96)):
            templates[f"jes_{d}"] = _fill(edges, np.clip(x * f, lo, hi), w)
            templates[f"btag_{d}"] = _fill(edges, x, w * (1.05 if d == "up" else 0.95))
        processes[process] = ProcessTemplates(kind, templates)
        scale = {"zh": MU, "ttbar": K_TTBAR}.get(process, 1.0)
        expected += scale * templates["nominal"].values()
    data = counts_histogram(edges, rng.poisson(expected).astype(float))
    return TemplateSet(name, label, "data", data, processes)


def two_regions(seed: int = 3) -> ModelTemplates:
    signal_region = region(
        "nn",
        "nn score",
        0.0,
        1.0,
        60,
        {
            "zh": ("signal", (6, 1.2), 2000),
            "zjets": ("background", (1, 3), 40000),
            "ttbar": ("background", (1.5, 2.5), 20000),
        },
        seed,
    )
    control_region = region(
        "m_bb",
        "$m_{bb}$ [GeV]",
        20.0,
        300.0,
        56,
        {"zjets": ("background", (1.2, 3), 4000), "ttbar": ("background", (2.5, 2.5), 40000)},
        seed + 1,
    )
    return ModelTemplates({"SR": signal_region, "CR_tt": control_region})


@pytest.fixture(scope="module")
def config(default_analysis):
    config = copy.deepcopy(default_analysis[0])
    inf = config["inference"]
    # tt̄ is measured in its control region: no cross-section prior beside its free factor
    inf["normalisation"] = {"lumi": {"uncertainty": 0.016}}
    inf["systematics"] = {
        "jes": {"type": "shape", "up": "jes_up", "down": "jes_down"},
        "btag": {"type": "weight", "up": "weight_btag_up", "down": "weight_btag_down"},
    }
    inf["binning"].update(n_bins=6, min_background=5.0, max_stat_uncertainty=0.2)
    inf["closure"].update(asimov_mu=[0.0, 1.0])
    return config


@pytest.fixture(scope="module")
def built(config, tmp_path_factory):
    folder = tmp_path_factory.mktemp("two_regions")
    outputs = {
        "workspace": str(folder / "workspace.json"),
        "binning": str(folder / "binning.json"),
        "cabinetry": str(folder / "cabinetry.yaml"),
        "templates": str(folder / "templates"),
    }
    workspace = build_model_workspace(config, two_regions(), outputs, "sr_cr", SPEC)
    return folder, outputs, workspace


def test_control_region_without_signal_is_one_channel_of_the_workspace(built):
    _, outputs, workspace = built
    channels = {c["name"]: c for c in workspace["channels"]}
    assert set(channels) == {"SR", "CR_tt"}
    assert [s["name"] for s in channels["CR_tt"]["samples"]] == ["zjets", "ttbar"]
    assert [s["name"] for s in channels["SR"]["samples"]] == ["zh", "zjets", "ttbar"]

    def modifiers(channel, sample):
        samples = {s["name"]: s for s in channels[channel]["samples"]}
        return {(m["name"], m["type"]) for m in samples[sample]["modifiers"]}

    # k_tt̄ scales tt̄ in both regions (one parameter, correlated); μ only the signal
    assert ("k_ttbar", "normfactor") in modifiers("SR", "ttbar")
    assert ("k_ttbar", "normfactor") in modifiers("CR_tt", "ttbar")
    assert ("mu", "normfactor") in modifiers("SR", "zh")
    assert ("staterror_CR_tt", "staterror") in modifiers("CR_tt", "zjets")
    measurement = workspace["measurements"][0]["config"]
    assert measurement["poi"] == "mu"
    bounds = {p["name"]: p["bounds"] for p in measurement["parameters"]}
    assert bounds == {"mu": [[-10.0, 10.0]], "k_ttbar": [[0.0, 5.0]]}
    # each region binned by its own discriminant's settings (m_bb: 14 uniform bins at most)
    binning = read_json(outputs["binning"])["regions"]
    assert binning["SR"]["strategy"]["strategy"] == "equal_signal"
    assert binning["CR_tt"]["strategy"]["strategy"] == "uniform"
    assert 2 < len(binning["CR_tt"]["edges"]) <= 15


def test_model_reads_its_free_parameters_and_bounds_from_the_workspace(built):
    _, outputs, _ = built
    model, _ = load_model(outputs["workspace"])
    assert free_parameters(model) == ["mu", "k_ttbar"]
    assert model_name(model) == "CR_tt+SR"
    bounds = par_bounds(model, {"mu": (-5.0, 5.0), "k_ttbar": (0.5, 2.0), "k_other": (0, 1)})
    assert bounds[model.config.par_slice("mu").start] == (-5.0, 5.0)
    assert bounds[model.config.par_slice("k_ttbar").start] == (0.5, 2.0)
    # a plain pair bounds the POI alone, as before
    assert par_bounds(model, (-3.0, 3.0))[model.config.poi_index] == (-3.0, 3.0)


def test_fit_recovers_the_injected_normalisation_factor_and_signal_strength(config, built):
    """k̂_tt̄ within 3σ of 1.3 and more than 4σ from the simulation's 1; μ̂ within 3σ of 1.5."""
    folder, outputs, _ = built
    fit_outputs = {
        k: str(folder / f"{k}.png") for k in ("prefit", "postfit", "pulls", "correlation")
    }
    fit_outputs |= {"yields": str(folder / "yields.csv"), "results": str(folder / "fit.json")}
    summary = fit_data(
        config, outputs["workspace"], outputs["cabinetry"], fit_outputs, outputs["binning"]
    )
    k, mu = summary.estimates["k_ttbar"], summary.estimates["mu"]
    assert summary.poi == "mu" and summary.mu == mu
    assert abs(k.value - K_TTBAR) < 3 * k.hesse
    assert (k.value - 1.0) / k.hesse > 4
    # the control region's 2,000 tt̄ events measure it to 2 %; the ±5 % b-tag and 1.6 %
    # luminosity normalisations, degenerate with k_tt̄, make it 5-6 %
    assert k.hesse < 0.07
    assert abs(mu.value - MU) < 3 * mu.hesse
    for theta in (k, mu):  # MINOS for every free parameter
        assert theta.minos is not None and theta.minos[0] < 0 < theta.minos[1]
    written = read_json(fit_outputs["results"])
    assert written == summary.to_json()
    assert written["poi"] == "mu" and set(written["free_parameters"]) == {"mu", "k_ttbar"}
    assert written["mu"] == written["free_parameters"]["mu"]
    # free parameters have no prior: no pull is quoted for them
    rows = {p["name"]: p for p in written["parameters"]}
    assert "pull" not in rows["k_ttbar"] and "pull" in rows["lumi"]
    # one figure per fit stage, with a panel per region; yields per region
    for stage in ("prefit", "postfit"):
        assert Image.open(fit_outputs[stage]).size[0] > 1.5 * Image.open(fit_outputs[stage]).size[1]
    yields = pd.read_csv(fit_outputs["yields"])
    assert set(yields["region"]) == {"SR", "CR_tt"}
    post = yields[(yields["stage"] == "postfit") & (yields["region"] == "CR_tt")]
    data = float(post.loc[post["sample"] == "data", "yield"].iloc[0])
    total = float(post.loc[post["sample"] == "total", "yield"].iloc[0])
    assert total == pytest.approx(data, rel=0.03)  # the fitted tt̄ normalisation matches data


def test_asimov_returns_every_injected_free_parameter(config, built, tmp_path):
    _, outputs, _ = built
    summary = asimov_closure(
        config, outputs["workspace"], str(tmp_path / "asimov.json"), {"k_ttbar": K_TTBAR}
    )
    assert summary.all_close
    for row in summary.fits:
        assert abs(row.difference) < 1e-3
        k = row.free_parameters["k_ttbar"]
        assert k["injected"] == K_TTBAR and abs(k["fitted"] - K_TTBAR) < 1e-3
    assert read_json(str(tmp_path / "asimov.json"))["fits"][0]["free_parameters"]["k_ttbar"]


def test_toys_are_made_at_every_injected_free_parameter(config, built):
    _, outputs, _ = built
    model, _ = load_model(outputs["workspace"])
    nominal = sample_toys(model, 1.0, 400, 5)
    scaled = sample_toys(model, 1.0, 400, 5, {"k_ttbar": K_TTBAR})
    # the control region's expectation: nearly all tt̄, so its toys grow by about k_tt̄
    n_main = model.config.nmaindata
    ratio = scaled[:, :n_main].sum() / nominal[:, :n_main].sum()
    assert 1.1 < ratio < K_TTBAR
    with pytest.raises(ValueError, match="no free parameter k_zz to inject"):
        sample_toys(model, 1.0, 1, 5, {"k_zz": 1.0})
    fits = fit_toys(outputs["workspace"], SPEC.bounds, MU, 8, 11, injected={"k_ttbar": K_TTBAR})
    assert fits[:, 3].all()
    # μ̂ of the 8 toys scatters around the injected μ (σ(μ̂) ≈ 0.3 each)
    assert abs(fits[:, 0].mean() - MU) < 3 * fits[:, 1].mean() / np.sqrt(8)


def test_a_free_parameter_without_any_process_is_named(config):
    model = two_regions()
    spec = ModelSpec((SPEC.poi, FreeParameter("k_zz", ("zz",), (0.0, 5.0))))
    with pytest.raises(
        ModelBuildError, match=r"free parameter 'k_zz': none of its processes \(zz\)"
    ):
        usable_model(model, spec)
    # the control region has no signal: fine, as long as μ acts somewhere
    usable_model(model, SPEC)
    del model.channels["SR"]
    with pytest.raises(ModelBuildError, match=r"free parameter 'mu'.* in region 'CR_tt'"):
        usable_model(model, SPEC)


def test_scan_of_a_free_normalisation_factor_brackets_the_injected_value(config, built, tmp_path):
    _, outputs, _ = built
    config = copy.deepcopy(config)
    config["inference"]["scan"].update(parameters=["k_ttbar"], n_steps=9)
    (scan,) = scans(
        config,
        outputs["workspace"],
        {"results": str(tmp_path / "s.json"), "k_ttbar": str(tmp_path / "k.png")},
    )
    left, right = scan.interval_68
    assert left < K_TTBAR < right and left > 1.0  # 1.3 inside the 68 % interval, 1.0 outside
    assert read_json(str(tmp_path / "s.json"))["discriminant"] == "CR_tt+SR"
