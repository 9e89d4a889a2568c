"""The model of analysis regions, filled from feature tables and fitted for several θ.

Feature tables of a toy analysis are written to disk as the workflow writes them (ids,
weight, ``m_bb_gev``, the ingestion's ``region`` label and the LHE parton counts): ZH signal,
tt̄, and Z+jets split by truth into Z+hf (``lhe_nb`` > 0) and Z+lf. Three regions: a signal
region fitted in m_bb, a tt̄ control region fitted in m_bb, a Z+lf control region fitted as
one bin (``count``), plus a region no event falls in. The pseudo-data are drawn at
μ = 1.2, k_tt̄ = 1.10, k_Z+hf = 1.25, k_Z+lf = 0.90 while the templates stay nominal, so the
fit must measure every normalisation in the regions that constrain it.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from thetaflow.core.errors import ConfigError
from thetaflow.core.io import read_json
from thetaflow.core.samples import Sample
from thetaflow.inference.beyond import scans, significance_and_limit
from thetaflow.inference.checks import check
from thetaflow.inference.closure import toy_closure
from thetaflow.inference.discriminants import pair_name
from thetaflow.inference.fit import (
    checked_fit,
    control_region_gain,
    free_parameters,
    load_model,
    par_bounds,
)
from thetaflow.inference.histograms import template_inputs
from thetaflow.inference.model import build_model_templates, free_parameter_bounds
from thetaflow.inference.prior_model import mc_prior_workspace
from thetaflow.inference.workspace import build_model_workspace

TRUTH = {"zh": 1.2, "ttbar": 1.10, "zjets_hf": 1.25, "zjets_lf": 0.90}
WEIGHT = 0.05
SAMPLES = {
    "zh": Sample("zh", {"kind": "signal", "label": "ZH"}),
    "ttbar": Sample("ttbar", {"kind": "background", "label": "tt"}),
    "zjets": Sample(
        "zjets",
        {
            "kind": "background",
            "label": "Z+jets",
            "processes": {
                "zjets_hf": {"expr": "lhe_nb + lhe_nc > 0", "label": "Z+hf"},
                "zjets_lf": {"expr": "lhe_nb + lhe_nc == 0", "label": "Z+lf"},
            },
        },
    ),
    "data": Sample("data", {"kind": "data", "label": "data"}),
}
#: per process: MC events and (region -> (share, m_bb mean, m_bb width)); truth lhe_nb
PROCESSES = {
    "zh": (4000, {"sr": (1.0, 120.0, 12.0)}, 0),
    "ttbar": (20000, {"sr": (0.15, 150.0, 60.0), "cr_top": (0.85, 160.0, 60.0)}, 2),
    "zjets_hf": (20000, {"sr": (0.7, 80.0, 40.0), "cr_zlf": (0.3, 90.0, 40.0)}, 2),
    "zjets_lf": (40000, {"sr": (0.1, 70.0, 40.0), "cr_zlf": (0.9, 70.0, 40.0)}, 0),
}


def draw(rng: np.random.Generator, process: str, n: int) -> pd.DataFrame:
    """``n`` events of ``process``: their region by its shares, m_bb by the region's shape."""
    _, regions, lhe_nb = PROCESSES[process]
    names = list(regions)
    shares = np.array([regions[r][0] for r in names])
    region = rng.choice(len(names), size=n, p=shares)
    mean = np.array([regions[r][1] for r in names])[region]
    width = np.array([regions[r][2] for r in names])[region]
    return pd.DataFrame(
        {
            "m_bb_gev": np.clip(rng.normal(mean, width), 21.0, 299.0).astype(np.float32),
            "region": np.array(names)[region],
            "lhe_nb": np.full(n, lhe_nb, np.uint8),
            "lhe_nc": np.zeros(n, np.uint8),
        }
    )


def write_table(path, frame: pd.DataFrame, weight: float) -> None:
    n = len(frame)
    frame = frame.assign(
        run=np.ones(n, np.uint32),
        luminosityBlock=np.ones(n, np.uint32),
        event=np.arange(n, dtype=np.uint64),
        weight=np.full(n, weight),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)


@pytest.fixture(scope="module")
def toy_analysis(default_analysis, tmp_path_factory):
    """The config and the working directory holding the toy feature tables."""
    folder = tmp_path_factory.mktemp("regions")
    rng = np.random.default_rng(20261208)
    features = folder / "results" / "features"
    mc = {p: draw(rng, p, n) for p, (n, _, _) in PROCESSES.items()}
    write_table(features / "zh" / "nominal.parquet", mc["zh"], WEIGHT)
    write_table(features / "ttbar" / "nominal.parquet", mc["ttbar"], WEIGHT)
    write_table(
        features / "zjets" / "nominal.parquet",
        pd.concat([mc["zjets_hf"], mc["zjets_lf"]], ignore_index=True),
        WEIGHT,
    )
    data = [draw(rng, p, rng.poisson(k * PROCESSES[p][0] * WEIGHT)) for p, k in TRUTH.items()]
    write_table(features / "data" / "nominal.parquet", pd.concat(data, ignore_index=True), 1.0)

    config = copy.deepcopy(default_analysis[0])
    config["regions"] = [
        {"name": "sr", "kind": "signal", "expr": "mbb_gev > 0"},
        {"name": "cr_top", "kind": "control", "expr": "not same_flavour"},
        {"name": "cr_zlf", "kind": "control", "expr": "btag_max < btag_wp_medium"},
        {"name": "cr_empty", "kind": "control", "expr": "n_jets > 99"},
    ]
    inf = config["inference"]
    inf["discriminants"] = {
        "mbb": {"feature": "m_bb_gev", "range": [20.0, 300.0]},
    }
    inf["headline"] = inf["reference"] = "mbb"
    inf["closure"]["discriminants"] = ["mbb"]
    inf["regions"] = {"cr_zlf": {"observable": "count"}}
    inf["binning"].update(strategy="uniform", n_bins=10)
    inf["normalisation"] = {"lumi": {"uncertainty": 0.016}}
    inf["systematics"] = {}
    inf["scan"]["parameters"] = ["mu"]
    inf["parameters"] = {
        "mu": {"processes": ["zh"], "bounds": [-5.0, 10.0]},
        "k_ttbar": {"processes": ["ttbar"], "bounds": [0.0, 5.0]},
        "k_zhf": {"processes": ["zjets_hf"], "bounds": [0.0, 5.0]},
        "k_zlf": {"processes": ["zjets_lf"], "bounds": [0.0, 5.0]},
    }
    return config, folder


@pytest.fixture(scope="module")
def fitted(toy_analysis):
    config, folder = toy_analysis
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        fine = build_model_templates(config, SAMPLES, "mbb")
        outputs = {
            "workspace": str(folder / "workspace.json"),
            "binning": str(folder / "binning.json"),
            "cabinetry": str(folder / "cabinetry.yaml"),
            "templates": str(folder / "templates"),
        }
        workspace = build_model_workspace(config, fine, outputs, "mbb")
    model, data = load_model(outputs["workspace"])
    bounds = par_bounds(model, free_parameter_bounds(config["inference"]))
    result = checked_fit(model, data, "regions", par_bounds=bounds)
    return fine, workspace, model, result


def test_every_region_is_a_channel_with_its_own_observable_and_processes(fitted, caplog):
    fine, workspace, _, _ = fitted
    assert list(fine.channels) == ["sr", "cr_top", "cr_zlf"]  # cr_empty left out
    channels = {c["name"]: c for c in workspace["channels"]}
    assert set(channels) == {"sr", "cr_top", "cr_zlf"}
    # the truth split: Z+jets is two processes, each only where it has events
    assert [s["name"] for s in channels["sr"]["samples"]] == ["zh", "ttbar", "zjets_hf", "zjets_lf"]
    assert [s["name"] for s in channels["cr_top"]["samples"]] == ["ttbar"]
    assert [s["name"] for s in channels["cr_zlf"]["samples"]] == ["zjets_hf", "zjets_lf"]
    # the count observable is one bin holding the region's whole yield
    assert len(channels["cr_zlf"]["samples"][1]["data"]) == 1
    zlf_yield = channels["cr_zlf"]["samples"][1]["data"][0]
    assert zlf_yield == pytest.approx(0.9 * PROCESSES["zjets_lf"][0] * WEIGHT, rel=0.03)
    assert fine.channels["sr"].discriminant == "mbb"
    assert fine.channels["cr_zlf"].discriminant == "count"


def test_fit_recovers_every_injected_normalisation(fitted):
    _, _, model, result = fitted
    assert free_parameters(model) == ["mu", "k_ttbar", "k_zhf", "k_zlf"]
    labels = list(result.labels)
    for name, process in (
        ("mu", "zh"),
        ("k_ttbar", "ttbar"),
        ("k_zhf", "zjets_hf"),
        ("k_zlf", "zjets_lf"),
    ):
        i = labels.index(name)
        pull = (result.bestfit[i] - TRUTH[process]) / result.uncertainty[i]
        assert abs(pull) < 2.5, (name, result.bestfit[i], result.uncertainty[i])
    # each control region measures its background to its own statistical precision (1/√N
    # of ~1,600 Z+lf and ~900 tt̄ events) with the 1.6 % luminosity in quadrature
    assert result.uncertainty[labels.index("k_zlf")] < 0.04
    assert result.uncertainty[labels.index("k_ttbar")] < 0.05


def test_template_inputs_read_each_sample_once(toy_analysis):
    config, _ = toy_analysis
    files = template_inputs(config, SAMPLES, "mbb")
    assert files == {
        "zh": ["results/features/zh/nominal.parquet"],
        "ttbar": ["results/features/ttbar/nominal.parquet"],
        "zjets": ["results/features/zjets/nominal.parquet"],
        "data": ["results/features/data/nominal.parquet"],
    }


def test_empty_region_is_warned_and_left_out(toy_analysis, caplog):
    config, folder = toy_analysis
    with pytest.MonkeyPatch.context() as patch, caplog.at_level(logging.WARNING):
        patch.chdir(folder)
        build_model_templates(config, SAMPLES, "mbb")
    assert "region 'cr_empty' selects no event" in caplog.text


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda inf: inf["parameters"]["k_zhf"].update(processes=["zjets"]),
            "inference.parameters.k_zhf.processes': 'zjets' is not a fit process",
        ),
        (
            lambda inf: inf["parameters"]["k_ttbar"].update(bounds=[2.0, 5.0]),
            "inference.parameters.k_ttbar': bounds [2.0, 5.0] must be increasing and hold",
        ),
        (
            lambda inf: inf["regions"].update(cr_typo={}),
            "inference.regions.cr_typo': 'cr_typo' is not an analysis region",
        ),
        (
            lambda inf: inf["regions"]["cr_zlf"].update(observable="ptll"),
            "inference.regions.cr_zlf.observable': 'ptll' is neither",
        ),
    ],
)
def test_bad_model_config_names_the_key(toy_analysis, edit, message):
    config = copy.deepcopy(toy_analysis[0])
    edit(config["inference"])
    with pytest.raises(ConfigError) as err:
        check(config, SAMPLES)
    assert message in str(err.value)


def test_toys_close_for_every_free_parameter(toy_analysis, fitted, tmp_path):
    """300 toys at the injected θ: the pulls of μ and of every k have mean 0 and width 1
    (statistical errors 0.06 and 0.04: the bounds are about 2.5σ of them)."""
    config = copy.deepcopy(toy_analysis[0])
    config["inference"]["closure"].update(toys=300, toy_mu=[TRUTH["zh"]])
    injected = {"k_ttbar": TRUTH["ttbar"], "k_zhf": TRUTH["zjets_hf"], "k_zlf": TRUTH["zjets_lf"]}
    outputs = {"results": str(tmp_path / "toys.json"), "figure": str(tmp_path / "toys.png")}
    (row,) = toy_closure(config, str(toy_analysis[1] / "workspace.json"), outputs, injected).toys
    assert row.converged >= 0.99 * row.toys
    assert abs(row.pull.mean) < 0.15 and abs(row.pull.width - 1) < 0.1
    assert set(row.free_parameters or {}) == set(injected)
    for name, theta in (row.free_parameters or {}).items():
        assert theta.injected == injected[name]
        assert abs(theta.pull.mean) < 0.15, (name, theta.pull)
        assert abs(theta.pull.width - 1) < 0.1, (name, theta.pull)
    written = read_json(outputs["results"])["toys"][0]["free_parameters"]
    assert written["k_zlf"]["pull"]["width"] == pytest.approx(
        row.free_parameters["k_zlf"].pull.width
    )


def test_two_parameter_scan_profiles_to_the_one_parameter_interval(toy_analysis, fitted, tmp_path):
    """The 2D scan of (μ, k_tt̄) over ±4σ: zero at the best fit, and its minimum over k_tt̄ at
    μ̂ ± σ̂ (a grid point: 17 steps over ±4σ) is the 1D profile's Δ(−2 ln L) = 1."""
    config = copy.deepcopy(toy_analysis[0])
    config["inference"]["scan"].update(parameters=[], pairs=[["mu", "k_ttbar"]], n_steps_2d=17)
    figure = str(tmp_path / "scan_2d.png")
    scans(
        config,
        str(toy_analysis[1] / "workspace.json"),
        {"results": str(tmp_path / "scan.json"), pair_name("mu", "k_ttbar"): figure},
    )
    (scan,) = read_json(str(tmp_path / "scan.json"))["scans_2d"]
    _, _, _, result = fitted
    labels = list(result.labels)
    mu_hat, k_hat = (result.bestfit[labels.index(p)] for p in ("mu", "k_ttbar"))
    assert scan["bestfit"] == pytest.approx([mu_hat, k_hat], abs=2e-3)
    delta = np.array(scan["delta"])
    assert np.isfinite(delta).all() and delta.min() >= 0
    assert delta[8, 8] < 0.05  # the grid's centre is the best fit
    for row in (6, 10):  # μ̂ − σ̂ and μ̂ + σ̂ (steps of σ̂/2 from index 0 at −4σ̂)
        assert 0.8 < delta[row].min() < 1.25, delta[row].min()
    assert scan["levels"] == pytest.approx({"0.68": 2.2788, "0.95": 5.9915}, abs=1e-3)
    assert Path(figure).stat().st_size > 0


def test_significance_of_another_free_parameter_profiles_the_poi(toy_analysis, fitted, tmp_path):
    """k_Z+hf as a second "signal strength": its discovery significance (k = 0 rejected), from
    the same model with μ profiled, is of the order of k̂/σ̂ (Wald), and above it: 18σ from
    the minimum the Poisson likelihood falls faster than its Gaussian approximation."""
    config = copy.deepcopy(toy_analysis[0])
    config["inference"]["limit"]["significance_of"] = ["mu", "k_zhf"]
    outputs = {"results": str(tmp_path / "limit.json"), "figure": str(tmp_path / "limit.png")}
    result = significance_and_limit(config, str(toy_analysis[1] / "workspace.json"), outputs)
    _, _, _, fit = fitted
    labels = list(fit.labels)
    i = labels.index("k_zhf")
    assert set(result.others or {}) == {"k_zhf"}
    wald = fit.bestfit[i] / fit.uncertainty[i]
    assert wald < result.others["k_zhf"].observed < 2 * wald
    written = read_json(outputs["results"])
    assert written["other_significances"]["k_zhf"]["observed"] == result.others["k_zhf"].observed
    bad = copy.deepcopy(toy_analysis[0])
    bad["inference"]["limit"]["significance_of"] = ["mu_zz"]
    with pytest.raises(ConfigError, match="'mu_zz' is not a free parameter"):
        check(bad, SAMPLES)


def test_control_regions_are_compared_with_mc_priors(toy_analysis, fitted):
    """The MC-prior model keeps the signal region only, with the k's as log-normal priors.
    Known to 0.1 %, the backgrounds give a better σ(μ) than the control regions' few per cent;
    known to 90 % (next to free), a worse one: the control-region model lies between."""
    priors = {"k_ttbar": 0.10, "k_zhf": 0.15, "k_zlf": 0.15}
    workspace = read_json(str(toy_analysis[1] / "workspace.json"))
    reduced = mc_prior_workspace(workspace, ["sr"], priors)
    assert [c["name"] for c in reduced["channels"]] == ["sr"]
    sr = {s["name"]: s for s in reduced["channels"][0]["samples"]}
    assert {"name": "prior_k_zhf", "type": "normsys", "data": {"hi": 1.15, "lo": 0.85}} in sr[
        "zjets_hf"
    ]["modifiers"]
    assert [p["name"] for p in reduced["measurements"][0]["config"]["parameters"]] == ["mu"]
    bounds = free_parameter_bounds(toy_analysis[0]["inference"])
    sigma = {}
    for size in (0.001, 0.9):
        gain = control_region_gain(workspace, ["sr"], dict.fromkeys(priors, size), bounds)
        assert gain is not None and gain.poi == "mu" and gain.signal_regions == ["sr"]
        sigma[size] = gain.mc_priors.expected_uncertainty
        with_crs = gain.free_normalisations.expected_uncertainty
    assert sigma[0.001] < with_crs < sigma[0.9]
    assert gain.to_json()["expected_uncertainty_ratio"] == with_crs / sigma[0.9]
    assert control_region_gain(workspace, ["sr", "cr_top", "cr_zlf"], priors, bounds) is None
    assert control_region_gain(workspace, ["sr"], {}, bounds) is None
