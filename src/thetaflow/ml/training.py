"""Training one model on one fold, and the workflow entry points around training data.

The model directory of (model, fold) holds the model in its family's native format (and,
for the BDT and NN, ``model.onnx`` checked against ONNX Runtime), a
``training.json`` record (family, parameters, inputs, fold, sizes, timing, fingerprints of
the training and validation event ids) and ``train_scores.parquet`` (the model's scores on
a sample of its own training events, for the overtraining test).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from thetaflow.core.io import atomic_directory, read_table, write_json, write_table
from thetaflow.features.compute import LABEL_SIGNAL
from thetaflow.ml.folds import (
    build_training_table,
    dataset,
    fold_report,
    fold_sets,
    ids_checksum,
    ml_inputs,
    subsample,
)
from thetaflow.ml.models import build_classifier
from thetaflow.ml.models.base import Classifier
from thetaflow.ml.models.onnx_export import export_onnx, has_onnx_export, onnx_scores
from thetaflow.ml.record import TRAIN_SCORES, TRAINING_RECORD, TrainingRecord

log = logging.getLogger(__name__)

TRAIN_SCORE_SAMPLE = 50_000
ONNX_FILE = "model.onnx"
ONNX_CHECK_EVENTS = 5_000
ONNX_TOLERANCE = 1e-4


def model_seed(config: Mapping, model: str, fold: int) -> int:
    """Seed of one (model, fold): the ml seed, the model's position and the fold."""
    names = sorted(config["ml"]["models"])
    return int(config["ml"]["seed"]) * 1000 + names.index(model) * 20 + fold


def prepare_training_data(
    config: Mapping, feature_files: Mapping[str, str], table_path: str, report_path: str
) -> None:
    """Workflow entry point: the training table (all nominal MC) and the fold report."""
    ml = config["ml"]
    table = build_training_table(
        feature_files,
        ml_inputs(config),
        seed=ml["seed"],
        folds=ml["folds"],
        validation_fraction=ml["validation_fraction"],
        negative_weights=ml["negative_weights"],
    )
    write_table(table_path, table)
    report = {
        "folds": fold_report(table),
        "negative_weight_events": int((table["weight"] < 0).sum()),
    }
    write_json(report_path, report)
    log.info("training table: %d events, fold report %s", len(table), report["folds"])


def keep_signal_subsample(
    mask: np.ndarray, is_signal: np.ndarray, limit: int, seed: int
) -> np.ndarray:
    """At most ``limit`` events of ``mask``: every signal event, background subsampled.

    Signal is the scarce class; thinning only the background keeps all its statistics
    (training weights are class-balanced anyway). ``limit`` 0 means no limit.
    """
    if limit <= 0 or mask.sum() <= limit:
        return mask
    signal = mask & is_signal
    return signal | subsample(mask & ~is_signal, max(limit - int(signal.sum()), 1), seed)


def _export_checked_onnx(clf: Classifier, path: Path, sample: pd.DataFrame) -> float:
    """Export ``clf`` to ONNX for deployment; fail if ONNX Runtime disagrees with it."""
    export_onnx(clf, path)
    X = sample.to_numpy(dtype=np.float32)[:ONNX_CHECK_EVENTS]
    difference = float(np.max(np.abs(onnx_scores(path, X) - clf.predict(X)), initial=0.0))
    if difference > ONNX_TOLERANCE:
        raise RuntimeError(
            f"model '{clf.name}': ONNX Runtime scores differ by {difference:.2e} from the model's"
        )
    return difference


def train_fold(
    config: Mapping, model: str, fold: int, table_path: str, output_dir: str, threads: int = 1
) -> TrainingRecord:
    """Workflow entry point: train ``model`` on fold ``fold``'s training set; save it (model,
    ONNX export where the family has one, training-sample scores, record) atomically."""
    ml = config["ml"]
    spec = ml["models"][model]
    inputs = ml_inputs(config)
    table = read_table(table_path)
    sets = fold_sets(table["fold"].to_numpy(), table["is_validation"].to_numpy(), fold)
    seed = model_seed(config, model, fold)
    is_signal = table["label"].to_numpy() == LABEL_SIGNAL
    train_mask = keep_signal_subsample(sets.train, is_signal, ml["max_train_events"], seed)
    valid_mask = keep_signal_subsample(sets.valid, is_signal, ml["max_train_events"] // 4, seed + 1)
    clf = build_classifier(model, spec["family"], spec["params"], seed, inputs)
    clf.threads = threads
    train, valid = dataset(table, train_mask, inputs), dataset(table, valid_mask, inputs)
    start = time.perf_counter()
    report = clf.fit(train, valid)
    seconds = time.perf_counter() - start
    record = TrainingRecord(
        model=model,
        family=spec["family"],
        params=clf.params,
        inputs=inputs,
        fold=fold,
        folds=ml["folds"],
        seed=seed,
        n_train=int(train_mask.sum()),
        n_valid=int(valid_mask.sum()),
        train_ids=ids_checksum(table, train_mask),
        valid_ids=ids_checksum(table, valid_mask),
        train_seconds=seconds,
        iterations=report.iterations,
        extra=report.extra,
    )
    shown = subsample(train_mask, TRAIN_SCORE_SAMPLE, seed + 2)
    train_scores = pd.DataFrame(
        {
            "label": table["label"].to_numpy()[shown],
            "weight": table["weight"].to_numpy()[shown],
            "score": clf.predict(table.loc[shown, inputs].to_numpy(dtype=np.float32)),
        }
    )
    with atomic_directory(output_dir) as tmp:
        clf.save(tmp)
        if has_onnx_export(spec["family"]):
            difference = _export_checked_onnx(clf, tmp / ONNX_FILE, table.loc[shown, inputs])
            record = replace(record, onnx_max_abs_difference=difference)
        train_scores.to_parquet(tmp / TRAIN_SCORES, index=False)
        (tmp / TRAINING_RECORD).write_text(record.to_json())
    log.info(
        "%s fold %d: %d train / %d valid events, %.1f s",
        model,
        fold,
        record.n_train,
        record.n_valid,
        seconds,
    )
    return record
