"""Statistical inference: templates, binning, workspace, fits, closure and the bad inputs.

A small synthetic analysis (a signal peaking at high score over two falling backgrounds, a
shape and a weight systematic, MC statistical uncertainties) is built as a TemplateSet, so
every step from rebinning to toys runs in seconds without the workflow.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import pandas as pd
import pyhf
import pytest
from scipy import stats

from thetaflow.analysis import check_analysis
from thetaflow.core.errors import ConfigError
from thetaflow.core.io import read_json
from thetaflow.inference.batched_fits import BatchedLikelihood, fit_toys_batched, jax_backend
from thetaflow.inference.beyond import (
    ScanParameterError,
    check_scan_parameters,
    scans,
    significance_and_limit,
)
from thetaflow.inference.closure import (
    asimov_closure,
    fit_toys,
    pull_statistics,
    sample_toys,
    toy_closure,
)
from thetaflow.inference.discriminants import InferenceInputError, discriminant, read_values
from thetaflow.inference.fit import FitError, checked_fit, fit_data, load_model, par_bounds
from thetaflow.inference.histograms import (
    ProcessTemplates,
    TemplateSet,
    _fill,
    choose_bins,
    counts_histogram,
    fine_edges,
    histogram,
    rebinned,
    systematic_samples,
    template_inputs,
    variances,
)
from thetaflow.inference.model import ModelTemplates
from thetaflow.inference.workspace import ModelBuildError, build_workspace, usable_templates


@pytest.fixture(scope="module")
def analysis(default_analysis):
    return default_analysis


@pytest.fixture()
def config(analysis):
    return copy.deepcopy(analysis[0])


def synthetic_templates(mu_data: float = 1.0, seed: int = 7, n_fine: int = 60) -> TemplateSet:
    """Signal ~ Beta(6, 1.2) (high score), backgrounds ~ Beta(1, 3) and Beta(1.5, 2.5); weights
    0.05 per MC event; a +-4 % shift of the score (shape) and a +-5 % weight systematic."""
    rng = np.random.default_rng(seed)
    edges = np.linspace(0, 1, n_fine + 1)
    spec = {
        "zh": ("signal", (6, 1.2), 2000),
        "zjets": ("background", (1, 3), 40000),
        "ttbar": ("background", (1.5, 2.5), 20000),
    }
    processes = {}
    for name, (kind, (a, b), n) in spec.items():
        x = rng.beta(a, b, n)
        w = np.full(n, 0.05)
        templates = {"nominal": _fill(edges, x, w)}
        for d, f in (("up", 1.04), ("down", 0.96)):
            templates[f"jes_{d}"] = _fill(edges, np.clip(x * f, 0, 1), w)
            templates[f"btag_{d}"] = _fill(edges, x, w * (1.05 if d == "up" else 0.95))
        processes[name] = ProcessTemplates(kind, templates)
    expected = sum(
        (mu_data if p.kind == "signal" else 1.0) * p.nominal.values() for p in processes.values()
    )
    data = rng.poisson(expected).astype(float)
    return TemplateSet("nn", "nn score", "data", counts_histogram(edges, data), processes)


def synthetic_config(config: dict) -> dict:
    inf = config["inference"]
    inf["normalisation"] = {
        "lumi": {"uncertainty": 0.016},
        "xsec_ttbar": {"uncertainty": 0.06, "samples": ["ttbar"]},
    }
    inf["systematics"] = {
        "jes": {"type": "shape", "up": "jes_up", "down": "jes_down"},
        "btag": {"type": "weight", "up": "weight_btag_up", "down": "weight_btag_down"},
    }
    inf["binning"].update(n_bins=6, min_background=5.0, max_stat_uncertainty=0.2)
    inf["closure"].update(toys=30, toy_mu=[1.0])
    return config


def write_workspace(config: dict, tmp_path, templates: TemplateSet) -> dict[str, str]:
    fine = tmp_path / "histograms.json"
    ModelTemplates.single(templates).save(str(fine))
    outputs = {
        "workspace": str(tmp_path / "workspace.json"),
        "binning": str(tmp_path / "binning.json"),
        "cabinetry": str(tmp_path / "cabinetry.yaml"),
        "templates": str(tmp_path / "templates"),
    }
    build_workspace(config, str(fine), outputs, templates.discriminant)
    return outputs


@pytest.fixture()
def workspace(config, tmp_path):
    config = synthetic_config(config)
    return config, write_workspace(config, tmp_path, synthetic_templates())


# -- histograms and binning -------------------------------------------------------------------


def test_systematic_samples_default_to_all_processes_in_their_order():
    processes = ["zh", "zjets", "ttbar"]
    assert systematic_samples({}, processes) == processes
    assert systematic_samples({"samples": ["ttbar", "zh", "other"]}, processes) == ["zh", "ttbar"]
    assert systematic_samples({"samples": []}, processes) == []


def test_template_inputs_read_shape_variations_only_of_the_samples_they_act_on(config, analysis):
    config, samples = synthetic_config(config), analysis[1]
    config["inference"]["systematics"]["jes"]["samples"] = ["ttbar"]
    files = template_inputs(config, samples, "nn")
    assert "results/scores/nn/ttbar/jes_up.parquet" in files["ttbar"]
    assert "results/features/ttbar/jes_down.parquet" in files["ttbar"]
    assert all("jes" not in path for path in files["zh"])
    assert files["data"] == [
        "results/features/data/nominal.parquet",
        "results/scores/nn/data/nominal.parquet",
    ]


def test_fine_edges_join_uniform_grid_and_signal_quantiles():
    rng = np.random.default_rng(1)
    signal = rng.beta(20, 1, 5000)  # piles up near 1, like a classifier score
    edges = fine_edges(signal, np.ones_like(signal), (0.0, 1.0), 10)
    assert edges[0] == 0 and edges[-1] == 1 and np.all(np.diff(edges) > 0)
    assert set(np.round(np.linspace(0, 1, 11), 12)) <= set(np.round(edges, 12))
    # the signal quantiles resolve the peak: half the edges above the signal median
    assert np.sum(edges > np.median(signal)) >= 5


def test_fill_clips_out_of_range_values_into_the_edge_bins():
    t = _fill(
        np.array([0.0, 0.5, 1.0]),
        np.array([-3.0, 0.2, 0.7, 1.0, 7.0]),
        np.array([1.0, 2.0, 3.0, 4.0, 5.0]),
    )
    assert t.values().tolist() == [3.0, 12.0]
    assert variances(t).tolist() == [5.0, 50.0]


def test_rebinned_sums_values_and_variances_of_the_merged_bins():
    h = histogram([0.0, 0.1, 0.2, 0.5, 1.0], [1.0, 2.0, 3.0, 4.0], [0.5, 1.0, 1.5, 2.0])
    coarse = rebinned(h, [0, 3, 4])
    assert coarse.axes[0].edges.tolist() == [0.0, 0.5, 1.0]
    assert coarse.values().tolist() == [6.0, 4.0]
    assert variances(coarse).tolist() == [3.0, 2.0]


def test_equal_signal_bins_meet_the_background_constraints():
    fine = synthetic_templates()
    binning = {
        "strategy": "equal_signal",
        "n_bins": 8,
        "min_background": 20.0,
        "max_stat_uncertainty": 0.1,
    }
    boundaries = choose_bins(fine, binning)
    coarse = fine.rebinned(boundaries)
    bkg = coarse.total(coarse.background)
    assert np.all(bkg.values() >= 20.0)
    assert np.all(np.sqrt(variances(bkg)) / bkg.values() <= 0.1)
    # nothing lost in the rebinning
    for name, process in fine.processes.items():
        assert coarse.processes[name].nominal.values().sum() == pytest.approx(
            process.nominal.values().sum()
        )
    assert coarse.data.values().sum() == fine.data.values().sum()
    # without the constraints the bins hold equal signal
    loose = fine.rebinned(
        choose_bins(fine, {**binning, "min_background": 0.0, "max_stat_uncertainty": 10.0})
    )
    sig = loose.total(loose.signal).values()
    assert len(sig) == 8 and sig.std() / sig.mean() < 0.25


@pytest.mark.parametrize("strategy", ["equal_signal", "uniform"])
def test_binning_never_depends_on_the_data(config, tmp_path, strategy):
    """The model's bin edges come from the simulation only: other data (ten times as many
    events, or all in one bin) give identical edges and MC yields; only the data differ."""
    config = synthetic_config(config)
    config["inference"]["binning"]["strategy"] = strategy
    nominal = synthetic_templates()
    n = len(nominal.edges) - 1
    others = {
        "nominal": nominal.data.values(),
        "ten_times": 10.0 * nominal.data.values(),
        "one_bin": np.r_[np.zeros(n - 1), 5000.0],
    }
    binnings = {}
    for name, counts in others.items():
        templates = TemplateSet(
            nominal.discriminant,
            nominal.label,
            nominal.data_sample,
            counts_histogram(nominal.edges, counts),
            nominal.processes,
        )
        assert choose_bins(templates, config["inference"]["binning"]) == choose_bins(
            nominal, config["inference"]["binning"]
        )
        folder = tmp_path / name
        folder.mkdir()
        binnings[name] = read_json(write_workspace(config, folder, templates)["binning"])
    reference = binnings["nominal"]
    assert 2 < len(reference["edges"]) <= 7
    for name, binning in binnings.items():
        assert binning["edges"] == reference["edges"], name
        assert binning["yields"] == reference["yields"], name
    assert binnings["ten_times"]["data"] == pytest.approx(10 * np.array(reference["data"]))
    assert binnings["one_bin"]["data"][:-1] == [0.0] * (len(reference["edges"]) - 2)


def test_template_set_round_trips_through_json(tmp_path):
    fine = synthetic_templates()
    ModelTemplates.single(fine).save(str(tmp_path / "h.json"))
    (back,) = ModelTemplates.load(str(tmp_path / "h.json")).channels.values()
    assert np.array_equal(back.edges, fine.edges)
    assert np.array_equal(back.data.values(), fine.data.values())
    back_jes, fine_jes = (
        back.processes["zh"].templates["jes_up"],
        fine.processes["zh"].templates["jes_up"],
    )
    assert np.array_equal(back_jes.values(), fine_jes.values())
    assert np.array_equal(variances(back_jes), variances(fine_jes))


# -- workspace ----------------------------------------------------------------------------------


def test_workspace_validates_against_the_histfactory_schema(workspace):
    config, outputs = workspace
    spec = read_json(outputs["workspace"])
    pyhf.schema.validate(spec, "workspace.json")  # raises on an invalid workspace
    modifiers = {
        (m["name"], m["type"])
        for ch in spec["channels"]
        for s in ch["samples"]
        for m in s["modifiers"]
    }
    assert ("mu", "normfactor") in modifiers
    assert {
        ("lumi", "normsys"),
        ("xsec_ttbar", "normsys"),
        ("jes", "histosys"),
        ("btag", "normsys"),
    } <= modifiers
    assert any(t == "staterror" for _, t in modifiers)
    assert spec["measurements"][0]["config"]["parameters"][0]["bounds"] == [[-10.0, 10.0]]
    binning = read_json(outputs["binning"])
    assert 2 <= len(binning["edges"]) - 1 <= 6


def test_failed_build_keeps_the_previous_histogram_folder(workspace, tmp_path, monkeypatch):
    import cabinetry

    config, outputs = workspace
    before = sorted(p.name for p in (tmp_path / "templates").iterdir())

    def broken(_config):
        raise RuntimeError("build failed")

    monkeypatch.setattr(cabinetry.workspace, "build", broken)
    with pytest.raises(RuntimeError, match="build failed"):
        write_workspace(config, tmp_path, synthetic_templates(seed=8))
    assert sorted(p.name for p in (tmp_path / "templates").iterdir()) == before
    assert not (tmp_path / ".templates.tmp").exists()
    assert read_json(outputs["binning"])  # the outputs of the first build are untouched


def test_process_with_zero_yield_is_dropped_with_a_warning(config, tmp_path, caplog):
    templates = synthetic_templates()
    templates.processes["empty"] = ProcessTemplates(
        "background", {"nominal": histogram(templates.edges, np.zeros(60), np.zeros(60))}
    )
    with caplog.at_level(logging.WARNING):
        kept = usable_templates(templates)
    assert "empty" not in kept.processes
    assert "process 'empty' has zero expected yield" in caplog.text and "region 'nn'" in caplog.text


def test_all_zero_systematic_template_names_process_template_and_region():
    templates = synthetic_templates()
    templates.processes["ttbar"].templates["jes_up"] = histogram(
        templates.edges, np.zeros(60), np.zeros(60)
    )
    with pytest.raises(
        ModelBuildError, match=r"region 'nn': template 'jes_up' of process 'ttbar' is empty"
    ):
        usable_templates(templates)


def test_empty_data_histogram_is_an_error():
    templates = synthetic_templates()
    templates.data = counts_histogram(templates.edges, np.zeros(60))
    with pytest.raises(ModelBuildError, match=r"region 'nn': the data histogram \(data\) is empty"):
        usable_templates(templates)


# -- fits ---------------------------------------------------------------------------------------


def test_asimov_fits_recover_mu(workspace, tmp_path):
    config, outputs = workspace
    summary = asimov_closure(config, outputs["workspace"], str(tmp_path / "asimov.json"))
    assert [r.mu_injected for r in summary.fits] == [0.0, 1.0]
    for row in summary.fits:
        assert abs(row.difference) < 1e-3
    assert summary.all_close
    assert read_json(str(tmp_path / "asimov.json")) == summary.to_json()


def test_fit_recovers_a_known_injected_signal_strength(config, tmp_path):
    """Pseudo-data with μ = 2.5 (Poisson fluctuated): μ̂ within 2.5σ of 2.5 and far from 1."""
    config = synthetic_config(config)
    outputs = write_workspace(config, tmp_path, synthetic_templates(mu_data=2.5, seed=11))
    fit_outputs = {
        k: str(tmp_path / f"{k}.png") for k in ("prefit", "postfit", "pulls", "correlation")
    }
    fit_outputs |= {"yields": str(tmp_path / "yields.csv"), "results": str(tmp_path / "fit.json")}
    summary = fit_data(config, outputs["workspace"], outputs["cabinetry"], fit_outputs)
    mu = summary.mu
    assert abs(mu.value - 2.5) < 2.5 * mu.hesse
    assert mu.minos is not None and mu.minos[0] < 0 < mu.minos[1]
    assert (mu.down, mu.up) == mu.minos
    assert (mu.value - 1.0) / mu.hesse > 2
    assert 0 < summary.gof_p_value <= 1
    written = read_json(fit_outputs["results"])
    assert written == summary.to_json()
    assert written["mu"]["minos"] == {"down": mu.minos[0], "up": mu.minos[1]}
    names = {p["name"] for p in summary.parameters}
    assert {"mu", "lumi", "jes", "btag", "xsec_ttbar"} <= names
    yields = pd.read_csv(fit_outputs["yields"])
    assert set(yields["stage"]) == {"prefit", "postfit"} and "data" in set(yields["sample"])


def test_toys_give_unit_pulls_and_are_reproducible(workspace, tmp_path):
    config, outputs = workspace
    model, _ = load_model(outputs["workspace"])
    assert np.array_equal(sample_toys(model, 1.0, 5, 123), sample_toys(model, 1.0, 5, 123))
    assert not np.array_equal(sample_toys(model, 1.0, 5, 123), sample_toys(model, 1.0, 5, 124))
    summary = toy_closure(
        config,
        outputs["workspace"],
        {"results": str(tmp_path / "t.json"), "figure": str(tmp_path / "t.png")},
    )
    row = summary.toys[0]
    assert row.mu_injected == 1.0 and row.toys == 30 and row.convergence_rate >= 0.9
    # the summary is the statistics of its own pulls (width: sample standard deviation)
    pulls = np.array(row.pulls)
    assert len(pulls) == row.converged
    assert row.pull.mean == pytest.approx(pulls.mean())
    assert row.pull.width == pytest.approx(pulls.std(ddof=1))
    assert row.pull.mean_error == pytest.approx(pulls.std(ddof=1) / np.sqrt(len(pulls)))
    assert row.pull.width_error == pytest.approx(pulls.std(ddof=1) / np.sqrt(2 * (len(pulls) - 1)))
    # unbiased, unit-width pulls and an unbiased μ̂, each within 3 of its own standard errors
    # (30 toys: mean error ≈ 0.18, width error ≈ 0.13); a pull taken at another μ₀ or not
    # divided by σ̂ (here ≈ 0.36) fails
    assert abs(row.pull.mean) < 3 * row.pull.mean_error
    assert abs(row.pull.width - 1) < 3 * row.pull.width_error
    assert abs(row.hesse_pull.mean) < 3 * row.hesse_pull.mean_error
    assert abs(row.hesse_pull.width - 1) < 3 * row.hesse_pull.width_error
    assert abs(row.mu_hat_mean - 1.0) < 3 * row.mu_hat_mean_error
    # coverage of |pull| < 1: 68.3 % within 3 binomial standard errors
    assert abs(row.fraction_within_1sigma - 0.683) < 3 * np.sqrt(0.683 * 0.317 / len(pulls))
    written = read_json(str(tmp_path / "t.json"))
    assert written == summary.to_json()
    assert written["toys"][0]["pull_mean"] == row.pull.mean


def test_pull_statistics_of_a_standard_normal():
    rng = np.random.default_rng(3)
    mu_hat = 1.0 + 0.2 * rng.standard_normal(4000)
    fits = np.column_stack([mu_hat, np.full(4000, 0.2), (mu_hat - 1.0) / 0.2, np.ones(4000)])
    stats = pull_statistics(fits, 1.0)
    assert abs(stats.pull.mean) < 3 * stats.pull.mean_error
    assert abs(stats.pull.width - 1) < 3 * stats.pull.width_error
    assert stats.fraction_within_1sigma == pytest.approx(0.683, abs=0.03)
    assert stats.hesse_pull.mean == pytest.approx(stats.pull.mean)


def test_likelihood_pull_has_the_sign_of_the_deviation(workspace):
    """sign(μ̂ − μ₀)·√(−2 ln λ(μ₀)): same sign as μ̂ − μ₀; in this model's strongly asymmetric
    likelihood (a signal-rich bin with little background) it differs from (μ̂ − μ₀)/σ̂."""
    _, outputs = workspace
    fits = fit_toys(outputs["workspace"], (-10, 10), 1.0, 4, 5)
    assert fits[:, 3].all()
    assert np.array_equal(np.sign(fits[:, 2]), np.sign(fits[:, 0] - 1.0))


def test_significance_and_limit_are_consistent(workspace, tmp_path):
    config, outputs = workspace
    result = significance_and_limit(
        config,
        outputs["workspace"],
        {"results": str(tmp_path / "l.json"), "figure": str(tmp_path / "l.png")},
    )
    exp = result.limit.expected
    assert exp["-2sigma"] < exp["-1sigma"] < exp["median"] < exp["+1sigma"] < exp["+2sigma"]
    assert read_json(str(tmp_path / "l.json")) == result.to_json()
    # the observed limit is where pyhf's observed CLs crosses 0.05, the median expected limit
    # where its median expected CLs does
    model, data = load_model(outputs["workspace"])
    bounds = par_bounds(model, config["inference"]["poi_bounds"])
    bounds[model.config.poi_index] = (0.0, 50.0)

    def cls(mu: float) -> tuple[float, list[float]]:
        observed, expected = pyhf.infer.hypotest(
            mu, data, model, par_bounds=bounds, test_stat="qtilde", return_expected_set=True
        )
        return float(observed), [float(e) for e in expected]

    assert cls(result.limit.observed)[0] == pytest.approx(0.05, rel=0.02)
    assert cls(exp["median"])[1][2] == pytest.approx(0.05, rel=0.02)
    # the pseudo-data hold a μ = 1 signal: the observed limit lies above the best fit and
    # above the background-only expectation; both significances are evidence-level
    fit = checked_fit(model, data, "nn", par_bounds=par_bounds(model, (-10, 10)))
    mu_hat = float(fit.bestfit[model.config.poi_index])
    assert result.limit.observed > mu_hat > exp["median"]
    sig = result.significance
    assert sig.expected > 2 and sig.observed > 2 and abs(sig.observed - sig.expected) < 3
    assert sig.observed_p_value == pytest.approx(stats.norm.sf(sig.observed), rel=1e-6)
    assert sig.expected_p_value == pytest.approx(stats.norm.sf(sig.expected), rel=1e-6)


def test_shared_fits_calculator_equals_pyhf_hypotest(workspace):
    """Sharing the μ-independent fits across μ gives pyhf's observed and expected CLs."""
    import pyhf

    from thetaflow.inference.beyond import SharedFitsCalculator

    _, outputs = workspace
    model, data = load_model(outputs["workspace"])
    bounds = par_bounds(model, (0.0, 10.0))
    calculator = SharedFitsCalculator(data, model, bounds)
    for mu in (0.3, 1.0, 2.5):
        observed, expected = pyhf.infer.hypotest(
            mu, data, model, par_bounds=bounds, test_stat="qtilde", return_expected_set=True
        )
        np.testing.assert_allclose(
            calculator.cls(mu), [float(observed), *map(float, expected)], rtol=1e-6, atol=1e-9
        )


def test_a_fit_that_does_not_converge_names_its_parameters(workspace):
    _, outputs = workspace
    model, data = load_model(outputs["workspace"])
    with pytest.raises(FitError, match=r"region 'nn': the fit did not converge"):
        checked_fit(model, data, "nn", maxiter=3, par_bounds=par_bounds(model, (-10, 10)))


def test_unknown_scan_parameter_is_named(workspace, tmp_path):
    config, outputs = workspace
    model, _ = load_model(outputs["workspace"])
    with pytest.raises(ScanParameterError, match=r"unknown parameter 'jse'.*the model has: .*jes"):
        check_scan_parameters(model, ["mu", "jse"])
    config["inference"]["scan"].update(parameters=["mu", "jes"], n_steps=5)
    result = scans(
        config,
        outputs["workspace"],
        {
            "results": str(tmp_path / "s.json"),
            "mu": str(tmp_path / "mu.png"),
            "jes": str(tmp_path / "jes.png"),
        },
    )
    assert [r.parameter for r in result] == ["mu", "jes"]
    written = read_json(str(tmp_path / "s.json"))["scans"]
    assert written == [r.to_json() for r in result]
    # each scan is centred on the best fit of its parameter with its uncertainty ...
    model, data = load_model(outputs["workspace"])
    bounds = par_bounds(model, config["inference"]["poi_bounds"])
    fit = checked_fit(model, data, "nn", par_bounds=bounds)
    mu, jes = result
    for scan in result:
        i = model.config.par_names.index(scan.parameter)
        assert scan.bestfit == pytest.approx(fit.bestfit[i], abs=2e-3)
        assert scan.uncertainty == pytest.approx(fit.uncertainty[i], rel=0.02)
        assert len(scan.values) == 5 and np.allclose(np.diff(np.diff(scan.values)), 0)
        delta = np.array(scan.delta_twice_nll)
        assert delta.min() > -1e-6
        # ... its minimum at the grid point nearest the best fit
        assert np.argmin(delta) == np.argmin(np.abs(np.array(scan.values) - scan.bestfit))
        left, right = scan.interval_68
        assert left < scan.bestfit < right
    # μ over the configured range [-0.5, 2.5], cut where a bin's expectation turns negative
    assert mu.values[-1] == pytest.approx(2.5) and -0.5 < mu.values[0] < 0
    # a nuisance over ±3σ of its fit, where Δ(−2 ln L) is several units
    assert jes.values[0] == pytest.approx(jes.bestfit - 3 * jes.uncertainty, rel=1e-3)
    assert jes.values[-1] == pytest.approx(jes.bestfit + 3 * jes.uncertainty, rel=1e-3)
    assert min(jes.delta_twice_nll[0], jes.delta_twice_nll[-1]) > 4
    # Δ(−2 ln L) at a scan point is the profile likelihood ratio of two independent fits
    k = 3
    _, fixed = pyhf.infer.mle.fixed_poi_fit(
        mu.values[k], data, model, par_bounds=bounds, return_fitted_val=True
    )
    _, free = pyhf.infer.mle.fit(data, model, par_bounds=bounds, return_fitted_val=True)
    assert mu.delta_twice_nll[k] == pytest.approx(float(fixed - free), rel=1e-3, abs=1e-3)


# -- configuration and inputs --------------------------------------------------------------------


def test_discriminant_without_scores_is_a_config_error(config, analysis):
    config["inference"]["discriminants"]["mystery"] = {}
    with pytest.raises(
        ConfigError, match=r"inference.discriminants.mystery': no scores exist for 'mystery'"
    ):
        check_analysis(config, analysis[1])


def test_systematic_naming_a_missing_variation_is_a_config_error(config, analysis):
    config["inference"]["systematics"]["jes"]["up"] = "jes_upp"
    with pytest.raises(
        ConfigError, match=r"inference.systematics.jes.up': no sample has the variation 'jes_upp'"
    ):
        check_analysis(config, analysis[1])
    config["inference"]["systematics"]["jes"]["up"] = "jes_up"
    config["inference"]["systematics"]["btag_hf"]["down"] = "weight_btagg_down"
    with pytest.raises(ConfigError, match=r"no sample has the weight column 'weight_btagg_down'"):
        check_analysis(config, analysis[1])


def test_unknown_scan_parameter_in_config_is_a_config_error(config, analysis):
    config["inference"]["scan"]["parameters"] = ["mu", "lumii"]
    with pytest.raises(ConfigError, match=r"inference.scan.parameters': unknown parameter 'lumii'"):
        check_analysis(config, analysis[1])


def test_missing_and_stale_score_files_are_named(config, tmp_path):
    disc = discriminant(config, "nn")
    ids = {
        "run": np.ones(3, np.uint32),
        "luminosityBlock": np.ones(3, np.uint32),
        "event": np.arange(3, dtype=np.uint64),
    }
    features = tmp_path / "features.parquet"
    pd.DataFrame({**ids, "weight": [1.0, 2.0, 3.0]}).to_parquet(features)
    with pytest.raises(InferenceInputError, match="no values: .*scores.parquet not found"):
        read_values(disc, str(tmp_path / "scores.parquet"), str(features), ["weight"])
    stale = {**ids, "event": np.array([0, 1, 5], np.uint64)}
    pd.DataFrame({**stale, "fold": 0, "score": [0.1, 0.2, 0.3]}).to_parquet(
        tmp_path / "scores.parquet"
    )
    with pytest.raises(InferenceInputError, match="its events do not match"):
        read_values(disc, str(tmp_path / "scores.parquet"), str(features), ["weight"])
    pd.DataFrame({**ids, "fold": 0, "score": [0.1, 0.2, 0.3]}).to_parquet(
        tmp_path / "scores.parquet"
    )
    values = read_values(disc, str(tmp_path / "scores.parquet"), str(features), ["weight"])
    assert values["value"].tolist() == [0.1, 0.2, 0.3] and values["weight"].tolist() == [
        1.0,
        2.0,
        3.0,
    ]


def test_a_toy_fit_does_not_depend_on_the_batch_it_is_fitted_in(workspace):
    """The closure fits all toys of a job in padded batches: a toy's fit must be the same
    whatever the other toys, the batch size and the padding, and a rerun gives the same rows."""
    _, outputs = workspace
    path = outputs["workspace"]
    model = load_model(path)[0]
    toys = np.concatenate([sample_toys(model, 1.0, 6, 99), sample_toys(model, 1.0, 64, 7)])
    alone = fit_toys(path, (-10, 10), 1.0, 6, 99)  # the closure's path: a batch of 64
    assert alone[:, 3].all()
    assert np.array_equal(fit_toys(path, (-10, 10), 1.0, 6, 99), alone)
    with jax_backend():
        model = load_model(path)[0]
        fitter = BatchedLikelihood(model, par_bounds(model, (-10, 10)))
        together = fit_toys_batched(fitter, toys, 1.0).rows()[:6]  # a batch of 128
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-8)


def test_scan_interval_handles_minima_at_the_scan_edges():
    from thetaflow.inference.beyond import _interval

    x = np.linspace(0, 4, 9)
    assert _interval(x, (x - 2) ** 2, 1.0) == [1.0, 3.0]
    assert _interval(x, (x - 4) ** 2, 1.0) == [3.0, None]  # minimum at the upper edge
    assert _interval(x, x**2, 1.0) == [None, 1.0]
    assert _interval(x, (x - 6) ** 2, 1.0) == [None, None]  # minimum outside the range


def test_injection_scan_recovers_the_injected_signal_strengths(workspace, tmp_path):
    from thetaflow.inference.closure import injection_scan

    config, outputs = workspace
    config["inference"]["closure"].update(injection_mu=[0.0, 2.0], injection_toys=8)
    result = injection_scan(
        config,
        outputs["workspace"],
        {"results": str(tmp_path / "i.json"), "figure": str(tmp_path / "i.png")},
    )
    assert [p.mu_injected for p in result.points] == [0.0, 2.0]
    assert all(p.converged == 8 for p in result.points)
    # each mean μ̂ is the injected μ within 3 of its standard errors (σ(μ̂)/√8)
    low, high = result.points
    for point in result.points:
        assert point.mu_hat_mean_error == pytest.approx(point.mu_hat_std / np.sqrt(8))
        assert abs(point.mu_hat_mean - point.mu_injected) < 3 * point.mu_hat_mean_error
    # two points: the weighted line passes through both; slope 1 and offset 0 within 3σ
    assert result.slope == pytest.approx((high.mu_hat_mean - low.mu_hat_mean) / 2.0)
    assert result.offset == pytest.approx(low.mu_hat_mean)
    slope_error = np.hypot(low.mu_hat_mean_error, high.mu_hat_mean_error) / 2.0
    assert abs(result.slope - 1.0) < 3 * slope_error
    assert abs(result.offset) < 3 * low.mu_hat_mean_error
    assert read_json(str(tmp_path / "i.json")) == result.to_json()


def test_normalisation_samples_from_another_sample_list_are_skipped_but_typos_stop(
    config, analysis, caplog
):
    config["inference"]["normalisation"]["xsec_other"] = {"uncertainty": 0.1, "samples": ["wjets"]}
    with caplog.at_level(logging.WARNING):
        check_analysis(config, analysis[1])
    assert "inference.normalisation.xsec_other.samples': none of ['wjets']" in caplog.text
    config["inference"]["normalisation"]["xsec_zz"]["samples"] = ["zz", "zzz"]
    with pytest.raises(
        ConfigError,
        match=r"xsec_zz.samples': 'zzz' is not a fit process of a signal or background sample",
    ):
        check_analysis(config, analysis[1])
