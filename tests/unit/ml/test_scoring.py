"""Training a fold, scoring out-of-fold and evaluating from the scores through the library,
and bad model and score files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from thetaflow.core.errors import CorruptResultError
from thetaflow.ml.evaluation import EvaluationError, evaluate_model
from thetaflow.ml.folds import assign_folds, event_ids, ids_checksum, validation_flags
from thetaflow.ml.metrics import ScoredSample, score_summary
from thetaflow.ml.record import TRAIN_SCORES, TRAINING_RECORD, TrainingRecord
from thetaflow.ml.scoring import (
    SCORING_TIMES,
    ScoringError,
    load_fold_classifier,
    load_fold_models,
    recorded_scoring_seconds,
    score_samples,
)
from thetaflow.ml.training import prepare_training_data, train_fold


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A logistic model trained on 2 folds of a toy signal/background table."""
    tmp = tmp_path_factory.mktemp("ml")
    rng = np.random.default_rng(0)
    files = {}
    for name, label, n in (("sig", 1, 600), ("bkg", 0, 1400)):
        frame = pd.DataFrame(
            {
                "run": np.ones(n, np.uint32),
                "luminosityBlock": np.ones(n, np.uint32),
                "event": np.arange(1, n + 1, dtype=np.uint64) + (0 if label else 10_000),
                "sample": name,
                "label": np.full(n, label, np.int8),
                "weight": np.full(n, 0.1),
                "x": rng.normal(1.5 * label, 1.0, n).astype(np.float32),
            }
        )
        files[name] = str(tmp / f"{name}.parquet")
        frame.to_parquet(files[name])
    config = {
        "features": ["x"],
        "ml": {
            "seed": 3,
            "folds": 2,
            "validation_fraction": 0.25,
            "negative_weights": "abs",
            "inputs": [],
            "max_train_events": 0,
            "models": {"lr": {"family": "logistic", "params": {}}},
        },
    }
    prepare_training_data(config, files, str(tmp / "training.parquet"), str(tmp / "folds.json"))
    dirs = []
    for k in range(2):
        dirs.append(str(tmp / f"fold{k}"))
        train_fold(config, "lr", k, str(tmp / "training.parquet"), dirs[-1])
    return config, files, dirs, tmp


def test_out_of_fold_scores_separate_the_classes(trained):
    config, files, dirs, tmp = trained
    outputs = {files[s]: str(tmp / f"scores_{s}.parquet") for s in files}
    score_samples(config, "lr", dirs, outputs)
    sig = pd.read_parquet(outputs[files["sig"]])
    bkg = pd.read_parquet(outputs[files["bkg"]])
    assert sig["score"].mean() > bkg["score"].mean() + 0.2
    assert set(sig["fold"]) == {0, 1}
    # each event is scored by the model of its own fold, and by no other: the fold is the
    # hash of its ids, the score is exactly that fold's model's prediction of its features
    models = [load_fold_classifier(config, "lr", dirs[k], k, 2) for k in range(2)]
    for name, path in files.items():
        features = pd.read_parquet(path)
        scores = pd.read_parquet(outputs[path])
        assert (scores["event"].to_numpy() == features["event"].to_numpy()).all()
        folds = assign_folds(*event_ids(features), config["ml"]["seed"], 2)
        assert (scores["fold"].to_numpy() == folds).all(), name
        X = features[["x"]].to_numpy(np.float32)
        for k in range(2):
            sel = folds == k
            assert sel.sum() > 100
            np.testing.assert_allclose(scores["score"][sel], models[k].predict(X[sel]), rtol=1e-6)
            # the two fold models differ, so a swap of the models would fail the line above
            assert np.abs(models[1 - k].predict(X[sel]) - scores["score"][sel]).max() > 1e-4
    # and the fold-k model never saw a fold-k event: its recorded training set is the other fold
    table = pd.read_parquet(tmp / "training.parquet")
    ids = event_ids(table)
    folds = assign_folds(*ids, config["ml"]["seed"], 2)
    valid = validation_flags(*ids, config["ml"]["seed"], config["ml"]["validation_fraction"])
    for k in range(2):
        record = TrainingRecord.read(dirs[k])
        assert record.train_ids == ids_checksum(table, (folds != k) & ~valid)


def test_missing_or_corrupt_model_is_named(trained, tmp_path):
    config, _, dirs, _ = trained
    with pytest.raises(
        ScoringError, match=r"model 'lr' fold 1: cannot read .*nowhere.*training.json"
    ):
        load_fold_models(config, "lr", [dirs[0], str(tmp_path / "nowhere")])
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / TRAINING_RECORD).write_text((Path(dirs[1]) / TRAINING_RECORD).read_text())
    (broken / "model.skops").write_bytes(b"not a model")
    with pytest.raises(CorruptResultError, match=r"broken/model.skops is corrupt or unreadable"):
        load_fold_models(config, "lr", [dirs[0], str(broken)])
    swapped = [dirs[1], dirs[0]]
    with pytest.raises(ScoringError, match=r"was trained for fold 1 of 2"):
        load_fold_models(config, "lr", swapped)
    record = json.loads((Path(dirs[0]) / TRAINING_RECORD).read_text())
    assert record["n_train"] > 0 and record["train_ids"].endswith(f"-{record['n_train']}")


def test_training_record_reads_back_to_the_same_file(trained):
    """The typed record renders exactly the training.json train_fold wrote (keys, floats)."""
    config, _, dirs, _ = trained
    for k, directory in enumerate(dirs):
        text = (Path(directory) / TRAINING_RECORD).read_text()
        record = TrainingRecord.from_json(text)
        assert record.to_json() == text and TrainingRecord.read(directory) == record
        assert record.fold == k and record.folds == 2 and record.inputs == ["x"]
        assert record.onnx_max_abs_difference is None  # logistic: no ONNX export
        assert "onnx_max_abs_difference" not in json.loads(text)
        # written through a temporary sibling directory that is gone afterwards
        assert not (Path(directory).parent / f".{Path(directory).name}.tmp").exists()
    with pytest.raises(ValueError, match="not a training.json training record"):
        TrainingRecord.from_json('{"seed": 1}')


def test_one_fold_classifier_is_checked_against_its_fold(trained):
    config, _, dirs, _ = trained
    clf = load_fold_classifier(config, "lr", dirs[1], 1, 2)
    assert clf.seed == TrainingRecord.read(dirs[1]).seed
    with pytest.raises(ScoringError, match=r"was trained for fold 1 of 2"):
        load_fold_classifier(config, "lr", dirs[1], 0, 2)


def scored_directory(trained, directory: Path) -> dict[str, str]:
    """The toy samples scored as the score rule does, into ``directory``; sample → score file."""
    config, files, dirs, _ = trained
    outputs = {s: str(directory / s / "nominal.parquet") for s in files}
    score_samples(config, "lr", dirs, {files[s]: outputs[s] for s in files}, str(directory))
    return outputs


def test_scoring_time_recorded_per_file(trained, tmp_path):
    outputs = scored_directory(trained, tmp_path)
    record = json.loads((tmp_path / SCORING_TIMES).read_text())
    assert set(record) == {"sig/nominal.parquet", "bkg/nominal.parquet"}
    assert record["sig/nominal.parquet"]["events"] == 600
    total = sum(entry["seconds"] for entry in record.values())
    assert recorded_scoring_seconds(str(tmp_path), outputs.values()) == pytest.approx(total)
    with pytest.raises(CorruptResultError, match=r"timing.json is corrupt.*KeyError"):
        recorded_scoring_seconds(str(tmp_path), [str(tmp_path / "other" / "nominal.parquet")])


def evaluation_outputs(directory: Path) -> dict[str, str]:
    return {
        "metrics": str(directory / "metrics.json"),
        **{k: str(directory / f"{k}.png") for k in ("roc", "overtraining", "importance")},
    }


def test_evaluation_reads_the_scoring_jobs_scores(trained, tmp_path):
    """The metrics from the score files equal those of the fold models scoring the training
    table directly (what the evaluation did before it read the scoring job's files)."""
    config, _, dirs, tmp = trained
    outputs = scored_directory(trained, tmp_path / "scores")
    table_path = str(tmp / "training.parquet")
    metrics = evaluate_model(
        config,
        "lr",
        dirs,
        table_path,
        str(tmp_path / "scores"),
        outputs,
        evaluation_outputs(tmp_path),
    )
    table = pd.read_parquet(table_path)
    folds, scores = load_fold_models(config, "lr", dirs).score(table)
    assert (folds == table["fold"].to_numpy()).all()
    test = ScoredSample(scores, table["label"].to_numpy(), table["weight"].to_numpy())
    train = pd.concat([pd.read_parquet(Path(d) / TRAIN_SCORES) for d in dirs])
    direct = score_summary(
        "lr",
        ScoredSample(*(train[c].to_numpy() for c in ("score", "label", "weight"))),
        test,
        train_seconds=metrics.train_seconds,
        inference_seconds=0.0,
    )
    assert replace(metrics, inference_seconds_per_event=0.0) == direct
    assert metrics.n_test == 2000 and metrics.inference_seconds_per_event > 0
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["auc"] == metrics.auc and set(written["permutation_importance"]) == {"x"}


def test_evaluation_refuses_scores_of_other_events(trained, tmp_path):
    config, _, dirs, tmp = trained
    outputs = scored_directory(trained, tmp_path / "scores")
    table_path = str(tmp / "training.parquet")
    scores_dir = str(tmp_path / "scores")
    swapped = {"sig": outputs["bkg"], "bkg": outputs["sig"]}
    with pytest.raises(EvaluationError, match=r"bkg/nominal.parquet: not the scores of the 600"):
        evaluate_model(
            config, "lr", dirs, table_path, scores_dir, swapped, evaluation_outputs(tmp_path)
        )
    with pytest.raises(EvaluationError, match=r"no score file for sample\(s\) bkg"):
        evaluate_model(
            config,
            "lr",
            dirs,
            table_path,
            scores_dir,
            {"sig": outputs["sig"]},
            evaluation_outputs(tmp_path),
        )
    # scores of another fold assignment (another seed): same events, other folds
    frame = pd.read_parquet(outputs["sig"])
    frame["fold"] = assign_folds(*event_ids(frame), 4, 2)
    frame.to_parquet(outputs["sig"])
    with pytest.raises(EvaluationError, match=r"sig/nominal.parquet: .* fold assignment"):
        evaluate_model(
            config, "lr", dirs, table_path, scores_dir, outputs, evaluation_outputs(tmp_path)
        )
