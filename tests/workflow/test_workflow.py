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


@pytest.mark.parametrize("configs", [[], ["--configfile", str(REPO / "config" / "ci.yaml")]])
def test_dry_run_of_full_dag(configs, tmp_path):
    result = snakemake("-n", "--cores", "2", "--directory", str(tmp_path), *configs)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    for rule in (
        "simulate",
        "ingest_simulation",
        "ingest_data",
        "features",
        "control_plots",
        "cutflow_table",
    ):
        assert rule in out


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
        "weight_btag_up",
        "weight_lep_down",
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


def test_real_nanoaod_samples_run_through_the_same_chain(tmp_path):
    """A user's sample list pointing at real CMS NanoAOD runs the same rules (no simulate
    jobs for them); samples with no selected event give empty tables, not a crash."""
    shared = REPO.parent / "shared" / "data" / "nanoaod"
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
    assert dy["events_read"] == 40 and dy["sumw_source"] in (
        "Runs.genEventSumw",
        "Events.genWeight",
    )
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
    # neutrinos and out-of-cone losses pull the reconstructed peak low; the correction raises it
    assert peak["after"] > peak["before"]
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
    assert (
        0 <= metrics["known_signal"]["auc"] <= 1
        and "signal_efficiency_at_0.001" in metrics["known_signal"]
    )
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
        assert {"lumi", "jes", "btag", "lepton_eff"} <= {p["name"] for p in result["parameters"]}
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
        assert (fit / name / "closure" / "toys.png").stat().st_size > 10_000
