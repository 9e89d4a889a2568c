"""Workflow tests: dry runs of the whole DAG, lint, and a real toy run in a temp dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
pytestmark = pytest.mark.workflow


def snakemake(*args: str, cwd: Path = REPO, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(
        [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def job_stats(output: str) -> dict[str, int]:
    """The job counts of Snakemake's first "Job stats" table."""
    table = output.split("Job stats:", 1)[1].split("total", 1)[0]
    rows = (line.split() for line in table.splitlines())
    return {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[1].isdigit()}


def expected_jobs(config_files: list[Path]) -> dict[str, int]:
    """Jobs per rule that the analysis implies: chunks per sample, one ingest per sample, a
    feature table per sample and variation, a model per fold, a fit per discriminant."""
    from thetaflow.analysis import load_analysis
    from thetaflow.simulation.production import n_chunks, sample_chunks

    config, samples = load_analysis(config_files)
    per_chunk = config["simulation"]["events_per_chunk"]
    data = [s for s in samples.values() if s.kind == "data"]
    mc = [s for s in samples.values() if s.kind != "data"]
    generated = [s for s in samples.values() if "generate" in s.spec]
    variations = 1 + 2 * len(config["systematics"].get("shape", {}))
    folds = config["ml"]["folds"]
    discriminants = len(config["inference"]["discriminants"])
    closure = len(config["inference"]["closure"]["discriminants"])
    models = len(config["ml"]["models"])
    return {
        "simulate": sum(
            sample_chunks(s.spec["generate"], per_chunk)
            if s.is_pseudo_data
            else n_chunks(s.spec["generate"]["n_events"], per_chunk)
            for s in generated
        ),
        "ingest_data": len(data),
        "ingest_simulation": len(mc),
        "features": len(mc) * variations + len(data),
        "train": models * folds,
        "score": models,
        "evaluate": models,
        "train_autoencoder": folds,
        "optimiser_study": int("optimiser_study" in config["ml"]),
        **dict.fromkeys(
            ("histograms", "workspace", "fit", "limit", "ranking", "scan"), discriminants
        ),
        **dict.fromkeys(("asimov_closure", "toys", "injection"), closure),
        **dict.fromkeys(("cutflow_table", "control_plots", "summary", "provenance", "all"), 1),
    }


@pytest.mark.parametrize("configs", [[], ["ci.yaml"]])
def test_dry_run_of_full_dag(configs, tmp_path):
    """The dry run plans exactly the jobs the analysis implies, rule by rule."""
    args = [a for c in configs for a in ("--configfile", str(REPO / "config" / c))]
    result = snakemake("-n", "--cores", "2", "--directory", str(tmp_path), *args)
    assert result.returncode == 0, result.stderr[-3000:]
    stats = job_stats(result.stdout + result.stderr)
    expected = expected_jobs([REPO / "config" / c for c in ["config.yaml", *configs]])
    assert {rule: stats.get(rule, 0) for rule in expected} == expected
    assert expected["simulate"] > len(expected) // 10  # chunks of every generated sample
    total = (result.stdout + result.stderr).split("Job stats:", 1)[1].split("total", 1)[1]
    assert int(total.split()[0]) == sum(stats.values())


REGIONS_OVERLAY = """
regions:
  - name: sr
    kind: signal
    expr: "same_flavour and btag_second > btag_wp_medium and 90 < mbb_gev < 150"
  - {name: cr_top, kind: control, expr: "not same_flavour and btag_second > btag_wp_medium"}
  - {name: cr_zlf, kind: control, expr: "same_flavour and btag_max < btag_wp_medium"}
inference:
  regions:
    cr_top: {observable: m_bb}
    cr_zlf: {observable: count}
  parameters:
    mu: {processes: [zh], bounds: [-10.0, 10.0]}
    k_ttbar: {processes: [ttbar], bounds: [0.0, 5.0]}
"""


def test_dry_run_of_a_multi_region_model(tmp_path):
    """Regions with their own observables (a feature, one bin) and free normalisation factors
    plan the same jobs as the one-region model: every rule's inputs and settings resolve."""
    overlay = tmp_path / "regions.yaml"
    overlay.write_text(REGIONS_OVERLAY)
    configs = [REPO / "config" / "ci.yaml", overlay]
    args = ["--configfile", *map(str, configs)]  # one flag: a second would replace the first
    result = snakemake("-n", "--cores", "2", "--directory", str(tmp_path), *args)
    assert result.returncode == 0, result.stderr[-3000:]
    stats = job_stats(result.stdout + result.stderr)
    expected = expected_jobs([REPO / "config" / "config.yaml", *configs])
    assert {rule: stats.get(rule, 0) for rule in expected} == expected


def test_lint_is_clean():
    result = snakemake("--lint", cwd=REPO, timeout=120)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]


def test_bad_config_stops_before_any_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("analysis:\n  lumi_fbb: 1.0\n")
    result = snakemake("-n", "--cores", "1", "--directory", str(tmp_path), "--configfile", str(bad))
    assert result.returncode != 0
    assert "lumi_fbb" in result.stderr + result.stdout


# toy_run: the whole toy analysis run once per session (tests/workflow/conftest.py)


def test_toy_run_features_per_sample_and_variation(toy_run):
    expected = {"zh": 3, "zz": 3, "zjets": 3, "ttbar": 3, "data": 1}
    for sample, n_variations in expected.items():
        files = sorted((toy_run / "results" / "features" / sample).glob("*.parquet"))
        assert len(files) == n_variations, files
    zh = pd.read_parquet(toy_run / "results/features/zh/nominal.parquet")
    data = pd.read_parquet(toy_run / "results/features/data/nominal.parquet")
    for column in (
        "run",
        "luminosityBlock",
        "event",
        "sample",
        "label",
        "weight",
        "m_bb_gev",
        "weight_btag_hf_up",
        "weight_btag_light_down",
        "weight_lepton_eff_muon_up",
        "weight_lepton_eff_electron_down",
        "b1_gen_pt_gev",
    ):
        assert column in zh.columns
    assert (zh["label"] == 1).all() and (data["label"] == -1).all()
    assert (data["weight"] == 1).all() and len(data) > 0
    # the signal peaks near the Higgs mass
    assert 100 < zh["m_bb_gev"].median() < 135
    up = pd.read_parquet(toy_run / "results/features/zh/jes_up.parquet")
    assert up["m_bb_gev"].median() > zh["m_bb_gev"].median()


def test_toy_run_cutflows_plots_and_logs(toy_run):
    for sample in ("zh", "zz", "zjets", "ttbar", "data"):
        cutflow = json.loads((toy_run / f"results/cutflow/{sample}.json").read_text())
        counts = [row["events"] for row in cutflow["cutflow"]["nominal"]]
        assert counts == sorted(counts, reverse=True)
        assert (toy_run / f"results/logs/ingest/{sample}.log").stat().st_size > 0
    table = pd.read_csv(toy_run / "results/cutflow/cutflow.csv")
    assert set(table["sample"]) == {"zh", "zz", "zjets", "ttbar", "data", "bsm", "data_bsm"}
    plots = list((toy_run / "results/plots/control").glob("*.png"))
    assert len(plots) == 23 and all(p.stat().st_size > 10_000 for p in plots)
    # simulation files are temporary: removed once ingested
    assert not list((toy_run / "results").glob("simulation/*/*.root"))


def test_real_nanoaod_samples_run_through_the_same_chain(real_nanoaod, tmp_path):
    """A user's sample list pointing at real CMS NanoAOD runs the same rules (no simulate
    jobs for them); samples with no selected event give empty tables, not a crash."""
    shared = real_nanoaod
    samples = {
        "zh": {
            "kind": "signal",
            "xsec_pb": 0.0345,
            "generate": {"model": "zh", "n_events": 2000, "angular_a": -1.0},
        },
        "dy": {"kind": "background", "xsec_pb": 6077.2, "files": [str(shared / "nano_dy.root")]},
        "dimuon": {"kind": "data", "files": [str(shared / "nano_dimuon.root")]},
    }
    sample_list = tmp_path / "samples.yaml"
    sample_list.write_text(json.dumps(samples))
    config = tmp_path / "real.yaml"
    config.write_text(json.dumps({"samples": str(sample_list), "analysis": {"lumi_fb": 1.0}}))
    # the foundation targets: with no selected background the ML stage must (and does) refuse
    targets = [
        "results/cutflow/cutflow.csv",
        "results/plots/control/m_bb_gev.png",
        "results/features/dy/jes_up.parquet",
        "results/features/dimuon/nominal.parquet",
    ]
    result = snakemake(
        *targets, "--cores", "2", "--directory", str(tmp_path), "--configfile", str(config)
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    dy = json.loads((tmp_path / "results/cutflow/dy.json").read_text())
    # the file has a Runs tree (NanoAOD's genEventSumw_ spelling): the normalisation uses the
    # Σw of every generated event, not the Σ genWeight of the 40 events in the file
    import uproot

    with uproot.open(shared / "nano_dy.root") as f:
        runs_sumw = float(f["Runs"]["genEventSumw_"].array(library="np").sum())
        file_sumw = float(f["Events"]["genWeight"].array(library="np").sum())
    assert dy["events_read"] == 40 and dy["sumw_source"] == "Runs.genEventSumw"
    assert dy["sumw"] == pytest.approx(runs_sumw) and dy["sumw_read"] == pytest.approx(file_sumw)
    assert dy["norm_factor"] == pytest.approx(6077.2 * 1.0 * 1000.0 / runs_sumw)
    assert (
        pd.read_parquet(tmp_path / "results/features/dy/nominal.parquet").shape[0]
        == dy["selected"]["nominal"]
    )
    assert (tmp_path / "results/features/dimuon/nominal.parquet").exists()
    assert not (tmp_path / "results/features/dimuon/jes_up.parquet").exists()
    assert (tmp_path / "results/plots/control/m_bb_gev.png").stat().st_size > 10_000


def test_toy_run_trains_scores_and_evaluates_every_model(toy_run):
    import yaml

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    models = set(config["ml"]["models"])
    comparison = pd.read_csv(toy_run / "results/evaluation/comparison.csv")
    assert set(comparison["model"]) == models
    for row in comparison.itertuples():
        # every learner beats random on the toy by a clear margin
        assert row.auc > (0.6 if row.model == "cuts" else 0.75), (row.model, row.auc)
    for model in ("bdt", "nn"):  # deployable copies, checked against ONNX Runtime when written
        for fold_dir in (toy_run / "results/models" / model).iterdir():
            record = json.loads((fold_dir / "training.json").read_text())
            assert (fold_dir / "model.onnx").stat().st_size > 0 and record[
                "onnx_max_abs_difference"
            ] < 1e-4
    for model in models:
        for sample, variations in {"zh": 3, "zz": 3, "zjets": 3, "ttbar": 3, "data": 1}.items():
            files = sorted((toy_run / "results" / "scores" / model / sample).glob("*.parquet"))
            assert len(files) == variations
            scores = pd.read_parquet(files[0])
            features = pd.read_parquet(toy_run / "results/features" / sample / files[0].name)
            assert len(scores) == len(features) and scores["score"].between(0, 1).all()


def test_toy_run_never_scores_an_event_with_a_model_that_saw_it(toy_run):
    """The recorded training/validation ids of each fold's model (fingerprints written at
    training time) are exactly the training-table events *not* scored by that model, as read
    back from the score files: no event is scored by a model that trained or validated on it."""
    from thetaflow.ml.folds import ids_checksum

    table = pd.read_parquet(toy_run / "results/ml/training.parquet")
    key = ["run", "luminosityBlock", "event", "sample"]
    for model_dir in sorted((toy_run / "results/models").iterdir()):
        if (
            model_dir.name == "autoencoder"
        ):  # trained on backgrounds only: tests/unit/test_anomaly.py
            continue
        scored = pd.concat(
            pd.read_parquet(
                toy_run / "results/scores" / model_dir.name / s / "nominal.parquet"
            ).assign(sample=s)
            for s in ("zh", "zz", "zjets", "ttbar")
        )
        merged = table.merge(
            scored[key + ["fold"]], on=key, suffixes=("", "_scored"), validate="one_to_one"
        )
        assert len(merged) == len(table)
        for fold_dir in sorted(model_dir.iterdir()):
            record = json.loads((fold_dir / "training.json").read_text())
            k = record["fold"]
            not_scored_by_k = merged["fold_scored"].to_numpy() != k
            is_valid = merged["is_validation"].to_numpy()
            assert record["train_ids"] == ids_checksum(merged, not_scored_by_k & ~is_valid), (
                model_dir.name,
                k,
            )
            assert record["valid_ids"] == ids_checksum(merged, not_scored_by_k & is_valid), (
                model_dir.name,
                k,
            )


def test_toy_run_bjet_regression_moves_the_peak_up(toy_run):
    summary = json.loads((toy_run / "results/regression/summary.json").read_text())
    peak = summary["signal_peak_gev"]
    # neutrinos and out-of-cone losses pull the reconstructed peak low; the correction raises
    # it to within 5 % of the generated Higgs mass, nearer than before, and narrows it
    mass = summary["higgs_mass_gev"]
    assert mass == 125.0 and peak["before"] < mass
    assert abs(peak["after"] - mass) < abs(peak["before"] - mass)
    assert abs(peak["after"] / mass - 1) < 0.05
    resolution = summary["signal_resolution"]
    assert 0 < resolution["after"] < resolution["before"]
    assert (toy_run / "results/regression/mbb_regression.png").stat().st_size > 10_000
    for sample in ("zh", "zz", "zjets", "ttbar", "data"):
        for path in (toy_run / "results/features" / sample).glob("*.parquet"):
            regressed = pd.read_parquet(toy_run / "results/regression/m_bb" / sample / path.name)
            assert len(regressed) == len(pd.read_parquet(path, columns=["event"]))


def test_toy_run_autoencoder_scores_evaluation_and_blind_search(toy_run):
    """Unsupervised stage: out-of-fold anomaly scores in the classifiers' format for every
    sample and variation, the evaluation, the blind search and the diagnostics."""
    results = toy_run / "results"
    for sample, n_variations in {
        "zh": 3,
        "zz": 3,
        "zjets": 3,
        "ttbar": 3,
        "bsm": 3,
        "data": 1,
        "data_bsm": 1,
    }.items():
        files = sorted((results / "scores/autoencoder" / sample).glob("*.parquet"))
        assert len(files) == n_variations, (sample, files)
        for path in files:
            scores = pd.read_parquet(path)
            features = pd.read_parquet(results / "features" / sample / path.name, columns=["event"])
            assert list(scores.columns) == ["run", "luminosityBlock", "event", "fold", "score"]
            assert (
                len(scores) == len(features)
                and (scores["event"].to_numpy() == features["event"].to_numpy()).all()
            )
            assert scores["score"].between(0, 1).all()
    for fold in range(3):
        record = json.loads(
            (results / f"models/autoencoder/fold{fold}/autoencoder.json").read_text()
        )
        assert (
            record["fold"] == fold
            and record["source"] == "backgrounds"
            and record["signal_fraction"] == 0
        )
        assert (results / f"models/autoencoder/fold{fold}/model.keras").stat().st_size > 0
    metrics = json.loads((results / "anomaly/metrics.json").read_text())
    # trained on backgrounds only: the far-off BSM resonance is clearly anomalous, the ZH
    # signal (close to the backgrounds) less so but better than random; the efficiencies at
    # background efficiency ε exceed ε, and the quoted improvement is ε_S/√ε
    known, bsm = metrics["known_signal"], metrics["bsm"]
    assert known["auc"] > 0.52 and bsm["auc"] > 0.8 and bsm["auc"] > known["auc"]
    for eff in ("0.01", "0.001"):
        assert known[f"signal_efficiency_at_{eff}"] > float(eff)
        assert known[f"significance_improvement_at_{eff}"] == pytest.approx(
            known[f"signal_efficiency_at_{eff}"] / float(eff) ** 0.5
        )
    assert known["signal_efficiency_at_0.01"] >= known["signal_efficiency_at_0.001"]
    assert "bsm" in metrics and set(metrics["feature_errors"]) >= {
        "backgrounds",
        "known signal",
        "BSM",
    }
    blind = json.loads((results / "anomaly/blind_search.json").read_text())
    assert set(blind["results"]) == {"data", "data_bsm"}
    assert set(blind["results"]["data_bsm"]) == {
        "autoencoder",
        "bdt",
        "nn",
        "svm",
        "logistic",
        "knn",
        "random_forest",
        "naive_bayes",
        "cuts",
    }
    row = blind["results"]["data"]["autoencoder"]
    assert 0 < row["achieved_efficiency"] <= 0.01 and row["expected_sm"] > 0
    assert row["sm_uncertainty"] >= row["sm_mc_stat"] > 0
    figures = [
        "anomaly/roc.png",
        "anomaly/score_distributions.png",
        "anomaly/feature_errors.png",
        "anomaly/blind_search.png",
        "anomaly/blind_search_tails.png",
        "diagnostics/pca/scree.png",
        "diagnostics/pca/components.png",
        "diagnostics/pca/loadings.png",
        "diagnostics/clustering/kmeans_selection.png",
        "diagnostics/clustering/kmeans_composition.png",
        "diagnostics/clustering/dbscan.png",
    ]
    assert all((results / f).stat().st_size > 10_000 for f in figures)
    pca = json.loads((results / "diagnostics/pca/summary.json").read_text())
    assert abs(sum(pca["explained_variance_ratio"]) - 1) < 1e-9 and pca["fold"] == 0
    clustering = json.loads((results / "diagnostics/clustering/summary.json").read_text())
    assert (
        clustering["subsample"]["events"] == 800
        and 0 <= clustering["dbscan"]["noise_fraction"] <= 1
    )


def test_toy_run_keeps_the_bsm_process_out_of_training(toy_run):
    """The bsm sample is never a training event of the classifiers (it is scored, though)."""
    table = pd.read_parquet(toy_run / "results/ml/training.parquet", columns=["sample"])
    assert set(table["sample"]) == {"zh", "zz", "zjets", "ttbar"}
    assert (toy_run / "results/scores/nn/bsm/nominal.parquet").exists()


def pseudo_data_spec(sample: str = "data") -> dict:
    """The pseudo_data block of a pseudo-data sample of the toy run's sample list."""
    import yaml

    samples = yaml.safe_load((REPO / "config" / "samples_ci.yaml").read_text())
    return samples[sample]["generate"]["pseudo_data"]


def test_toy_run_mc_prediction_closes_on_the_pseudo_data_expectation(toy_run):
    """Full-chain normalisation closure. The pseudo-data are a Poisson draw of every process
    at σ·L (signal × μ_injected): for each process that expectation equals the MC's
    normalisation factor × its generated Σw (same σ, L and units on both paths); after
    filter, skim and selection the feature tables' Σ weights equal the cutflow's expected
    yields, and the pseudo-data count agrees with Σ μ·Σw of the MC within its Poisson and MC
    statistical uncertainty."""
    import ast

    from thetaflow.analysis import load_analysis
    from thetaflow.core.samples import pseudo_data_processes

    _, samples = load_analysis([REPO / "config" / "config.yaml", REPO / "config" / "ci.yaml"])
    mu_injected = pseudo_data_spec()["mu_injected"]
    log = (toy_run / "results/logs/simulate/data/0.log").read_text()
    line = [row for row in log.splitlines() if "pseudo-data events; per process" in row][-1]
    drawn = ast.literal_eval(line.split("per process ", 1)[1])
    processes = pseudo_data_processes(samples["data"], samples)
    assert sorted(drawn) == sorted(processes) == ["ttbar", "zh", "zjets", "zz"]
    prediction = mc_variance = 0.0
    for process in processes:
        scale = mu_injected if samples[process].kind == "signal" else 1.0
        cutflow = json.loads((toy_run / f"results/cutflow/{process}.json").read_text())
        assert cutflow["sumw_source"] == "Runs.genEventSumw"
        mc_total = cutflow["norm_factor"] * cutflow["sumw"]
        assert mc_total == pytest.approx(cutflow["xsec_pb"] * cutflow["lumi_fb"] * 1000.0)
        assert drawn[process]["expected"] == pytest.approx(scale * mc_total, rel=1e-9), process
        weights = pd.read_parquet(
            toy_run / f"results/features/{process}/nominal.parquet", columns=["weight"]
        )["weight"]
        final = cutflow["cutflow"]["nominal"][-1]
        assert len(weights) == final["events"] == cutflow["selected"]["nominal"]
        assert weights.sum() == pytest.approx(final["expected"], rel=1e-6), process
        prediction += scale * weights.sum()
        mc_variance += scale**2 * (weights**2).sum()
    observed = len(
        pd.read_parquet(toy_run / "results/features/data/nominal.parquet", columns=["weight"])
    )
    assert (
        observed
        == json.loads((toy_run / "results/cutflow/data.json").read_text())["selected"]["nominal"]
    )
    assert abs(observed - prediction) < 3 * (prediction + mc_variance) ** 0.5, (
        observed,
        prediction,
    )


def test_toy_run_fits_every_discriminant_and_closes(toy_run):
    """Inference stage: for every discriminant a valid HistFactory workspace, the fit of the
    pseudo-data with MINOS errors, ranking, scan and limits; closure checks for the closure
    discriminants; the comparison table and the headline numbers."""
    import pyhf
    import yaml

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["inference"]
    fit = toy_run / "results" / "fit"
    for name in config["discriminants"]:
        pyhf.schema.validate(
            json.loads((fit / name / "workspace.json").read_text()), "workspace.json"
        )
        result = json.loads((fit / name / "fit.json").read_text())
        mu = result["mu"]
        assert mu["minos"]["down"] < 0 < mu["minos"]["up"] and mu["hesse"] > 0
        # the pseudo-data hold the injected signal strength: μ̂ agrees with it within 3σ
        assert abs(mu["value"] - pseudo_data_spec()["mu_injected"]) < 3 * mu["hesse"], (name, mu)
        assert {
            "lumi",
            "jes",
            "btag_hf",
            "btag_light",
            "lepton_eff_muon",
            "lepton_eff_electron",
        } <= {p["name"] for p in result["parameters"]}
        limit = json.loads((fit / name / "limit.json").read_text())["limit"]
        assert (
            0
            < limit["expected"]["-1sigma"]
            < limit["expected"]["median"]
            < limit["expected"]["+1sigma"]
        )
        ranking = json.loads((fit / name / "ranking.json").read_text())["ranking"]
        assert "mu" not in {r["parameter"] for r in ranking} and len(ranking) >= 7
        scan = json.loads((fit / name / "scan.json").read_text())["scans"][0]
        # the grid point nearest the minimum is within a fraction of a step of it
        assert scan["parameter"] == "mu" and min(scan["delta_twice_nll"]) < 0.1
        for figure in ("prefit", "postfit", "pulls", "correlation", "ranking", "limit", "scan_mu"):
            assert (fit / name / f"{figure}.png").stat().st_size > 10_000, (name, figure)
    comparison = pd.read_csv(fit / "comparison.csv")
    assert set(comparison["discriminant"]) == set(config["discriminants"])
    assert comparison.loc[comparison["is_reference"], "discriminant"].tolist() == [
        config["reference"]
    ]
    summary = json.loads((toy_run / "results" / "summary.json").read_text())
    assert summary["headline"]["discriminant"] == config["headline"]
    for name, closure in summary["closure"].items():
        assert all(abs(a["mu_fitted"] - a["mu_injected"]) < 1e-3 for a in closure["asimov"]), name
        for toys in closure["toys"]:
            assert toys["convergence_rate"] >= 0.9, (name, toys)
            # unbiased unit-width pulls and unbiased μ̂, within 3 of their standard errors
            assert abs(toys["pull_mean"]) < 3 * toys["pull_mean_error"], (name, toys)
            assert abs(toys["pull_width"] - 1) < 3 * toys["pull_width_error"], (name, toys)
            assert abs(toys["mu_hat_mean"] - toys["mu_injected"]) < 3 * toys["mu_hat_mean_error"], (
                name,
                toys,
            )
        assert (fit / name / "closure" / "toys.png").stat().st_size > 10_000
