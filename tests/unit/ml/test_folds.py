"""Folds never leak, weights are normalised, bad training inputs are named."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from thetaflow.ml.folds import (
    TrainingDataError,
    assign_folds,
    build_training_table,
    check_folds,
    fold_report,
    fold_sets,
    ids_checksum,
    read_fold_record,
    training_weights,
    validation_flags,
)


def toy_ids(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    run = np.ones(n, np.uint32)
    lumi = rng.integers(1, 50, n).astype(np.uint32)
    event = np.arange(1, n + 1, dtype=np.uint64)
    return run, lumi, event


def test_folds_are_stable_balanced_and_depend_on_the_seed():
    ids = toy_ids(50_000)
    folds = assign_folds(*ids, seed=7, k=5)
    assert np.array_equal(folds, assign_folds(*ids, seed=7, k=5))
    counts = np.bincount(folds, minlength=5)
    assert np.all(np.abs(counts - 10_000) < 5 * np.sqrt(10_000))  # multinomial spread
    assert not np.array_equal(folds, assign_folds(*ids, seed=8, k=5))
    # a fold depends on the event alone: shuffling the table does not move events
    order = np.random.default_rng(1).permutation(len(folds))
    shuffled = assign_folds(*(x[order] for x in ids), seed=7, k=5)
    assert np.array_equal(shuffled, folds[order])
    with pytest.raises(TrainingDataError, match="at least 2"):
        assign_folds(*ids, seed=7, k=1)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_no_event_is_scored_by_a_model_that_trained_or_validated_on_it(k):
    ids = toy_ids(20_000)
    folds = assign_folds(*ids, seed=3, k=k)
    is_valid = validation_flags(*ids, seed=3, fraction=0.2)
    sets = [fold_sets(folds, is_valid, m) for m in range(k)]
    # scoring uses the model of the event's own fold (thetaflow.ml.scoring.FoldModels.score)
    for m, s in enumerate(sets):
        scored_by_m = folds == m
        assert not np.any(scored_by_m & (s.train | s.valid))
        assert np.array_equal(scored_by_m, s.test)
        # train, validation and test partition the events
        assert np.all(s.train.astype(int) + s.valid + s.test == 1)
    # every event is scored exactly once, and trained on by k-1 models (even/odd: 1)
    trained_on = sum(s.train | s.valid for s in sets)
    assert np.all(trained_on == k - 1)


def test_validation_share():
    ids = toy_ids(40_000)
    share = validation_flags(*ids, seed=5, fraction=0.2).mean()
    assert abs(share - 0.2) < 5 * np.sqrt(0.2 * 0.8 / 40_000)


def test_training_weights_balance_classes_and_handle_negative_weights():
    weight = np.array([1.0, 2.0, -0.5, 0.1, 0.2, 0.3, 0.4])
    label = np.array([1, 1, 1, 0, 0, 0, 0])
    w = training_weights(weight, label, "abs")
    assert np.all(w >= 0)
    assert w[label == 1].sum() == pytest.approx(3.5) and w[label == 0].sum() == pytest.approx(3.5)
    assert w[2] / w[0] == pytest.approx(0.5)  # |w| kept
    z = training_weights(weight, label, "zero")
    assert z[2] == 0 and z[label == 1].sum() == pytest.approx(3.5)
    assert z[1] / z[0] == pytest.approx(2.0)
    with pytest.raises(TrainingDataError, match="negative_weights"):
        training_weights(weight, label, "keep")


def write_samples(tmp_path, n_sig=400, n_bkg=1600, nan_feature=False):
    rng = np.random.default_rng(0)
    files = {}
    for name, n, label, offset in (("sig", n_sig, 1, 0), ("bkg", n_bkg, 0, 10_000)):
        frame = pd.DataFrame(
            {
                "run": np.ones(n, np.uint32),
                "luminosityBlock": np.ones(n, np.uint32),
                "event": np.arange(offset + 1, offset + n + 1, dtype=np.uint64),
                "sample": name,
                "label": np.full(n, label, np.int8),
                "weight": rng.uniform(0.01, 0.02, n) * (1 if label else 30),
                "x": rng.normal(label, 1.0, n).astype(np.float32),
                "y": rng.normal(0, 1.0, n).astype(np.float32),
            }
        )
        if nan_feature and label == 0:
            frame.loc[:4, "y"] = np.nan
        files[name] = str(tmp_path / f"{name}.parquet")
        frame.to_parquet(files[name])
    return files


def test_training_table_has_folds_weights_and_report(tmp_path):
    files = write_samples(tmp_path)
    table = build_training_table(
        files, ["x", "y"], seed=1, folds=4, validation_fraction=0.25, negative_weights="abs"
    )
    assert len(table) == 2000 and set(table["fold"]) == {0, 1, 2, 3}
    assert table.loc[table.label == 1, "train_weight"].sum() == pytest.approx(1000)
    assert table.loc[table.label == 0, "train_weight"].sum() == pytest.approx(1000)
    report = fold_report(table)
    for entry in report.values():
        assert abs(entry["signal_fraction"] - 0.2) < 0.08  # stratified by construction
    mask = table["fold"].to_numpy() == 0
    assert ids_checksum(table, mask) == ids_checksum(
        table.iloc[::-1].reset_index(drop=True), mask[::-1]
    )


def test_missing_or_non_finite_feature_is_named(tmp_path):
    files = write_samples(tmp_path)
    with pytest.raises(TrainingDataError, match=r"feature\(s\) z named in ml.inputs"):
        build_training_table(
            files, ["x", "z"], seed=1, folds=4, validation_fraction=0.2, negative_weights="abs"
        )
    files = write_samples(tmp_path, nan_feature=True)
    with pytest.raises(
        TrainingDataError, match=r"sample 'bkg'.*NaN/inf in training features \{'y': 5\}"
    ):
        build_training_table(
            files, ["x", "y"], seed=1, folds=4, validation_fraction=0.2, negative_weights="abs"
        )


def test_fold_without_signal_is_rejected(tmp_path):
    files = write_samples(tmp_path, n_sig=2, n_bkg=500)
    with pytest.raises(
        TrainingDataError, match=r"fold \d+: the (test|training|validation) set has no signal"
    ):
        build_training_table(
            files, ["x", "y"], seed=1, folds=5, validation_fraction=0.2, negative_weights="abs"
        )
    table = pd.DataFrame({"fold": [0, 1], "is_validation": [False, False], "label": [1, 0]})
    with pytest.raises(TrainingDataError):
        check_folds(table, 2)


def test_fold_record_is_checked_against_its_fold_and_inputs(tmp_path):
    """A model directory handed to the wrong fold, or trained on other inputs, is refused by
    name."""
    record = {"fold": 1, "folds": 3, "inputs": ["m_bb", "pt_bb"], "seed": 7}
    (tmp_path / "record.json").write_text(json.dumps(record))
    args = ("record.json", "model 'bdt'", TrainingDataError)
    assert read_fold_record(tmp_path, 1, 3, ("m_bb", "pt_bb"), *args) == record
    with pytest.raises(
        TrainingDataError, match=r"model 'bdt': .* trained for fold 1 of 3 .*not fold 0 of 3"
    ):
        read_fold_record(tmp_path, 0, 3, ["m_bb", "pt_bb"], *args)
    with pytest.raises(TrainingDataError, match=r"not fold 1 of 5"):
        read_fold_record(tmp_path, 1, 5, ["m_bb", "pt_bb"], *args)
    with pytest.raises(
        TrainingDataError, match=r"with inputs \['m_bb', 'pt_bb'\], not fold 1 of 3 with \['m_bb'\]"
    ):
        read_fold_record(tmp_path, 1, 3, ["m_bb"], *args)
    with pytest.raises(
        TrainingDataError, match=r"model 'bdt' fold 2: cannot read .*missing.*record.json"
    ):
        read_fold_record(tmp_path / "missing", 2, 3, ["m_bb"], *args)
