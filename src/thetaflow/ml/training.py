"""Training one model on one fold, and the workflow entry points around training data.

The model directory of (model, fold) holds the model in its family's native format (and,
for the BDT and NN, ``model.onnx`` checked against ONNX Runtime), a
``training.json`` record (family, parameters, inputs, fold, sizes, timing, the fit's energy
from :mod:`thetaflow.core.energy`, fingerprints of the training and validation event ids)
and ``train_scores.parquet`` (the model's scores on a sample of its own training events, for
the overtraining test).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from thetaflow.core.energy import EnergyMeter, EnergySettings
from thetaflow.core.io import atomic_directory, read_table, write_json, write_table
from thetaflow.core.regions import signal_region_names
from thetaflow.features.labels import LABEL_SIGNAL
from thetaflow.ml.folds import (
    ID_COLUMNS,
    build_training_table,
    fold_report,
    fold_sets,
    ids_checksum,
    ml_inputs,
    subsample,
)
from thetaflow.ml.models import build_classifier
from thetaflow.ml.models.base import Classifier, Dataset
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
    """Workflow entry point: the training table (the nominal MC of the signal regions) and
    the fold report."""
    ml = config["ml"]
    table = build_training_table(
        feature_files,
        ml_inputs(config),
        seed=ml["seed"],
        folds=ml["folds"],
        validation_fraction=ml["validation_fraction"],
        negative_weights=ml["negative_weights"],
        # optional key; without it every event is in the one (signal) region: no filter
        signal_regions=signal_region_names(config) if config.get("regions") else None,
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


@dataclass(frozen=True)
class TrainingArrays:
    """The training table as a training job uses it, converted once per job.

    Attributes:
        X: the input features of every event, float32, columns in ``inputs`` order,
            column-major (as pandas converts the table).
        is_signal: whether each event is signal.
        label, weight, train_weight, fold, is_validation: the table's columns.
        ids: the event ids and the sample name (the columns of :func:`ids_checksum`).
        inputs: the feature names of ``X``'s columns.
    """

    X: np.ndarray
    is_signal: np.ndarray
    label: np.ndarray
    weight: np.ndarray
    train_weight: np.ndarray
    fold: np.ndarray
    is_validation: np.ndarray
    ids: pd.DataFrame
    inputs: tuple[str, ...]

    @classmethod
    def read(cls, table_path: str, inputs: Sequence[str]) -> TrainingArrays:
        """Read the training table at ``table_path`` (rule training_data's output)."""
        table = read_table(table_path)
        label = table["label"].to_numpy()
        return cls(
            X=table[list(inputs)].to_numpy(dtype=np.float32),
            is_signal=label == LABEL_SIGNAL,
            label=label,
            weight=table["weight"].to_numpy(),
            train_weight=table["train_weight"].to_numpy(dtype=np.float64),
            fold=table["fold"].to_numpy(),
            is_validation=table["is_validation"].to_numpy(),
            ids=table[[*ID_COLUMNS, "sample"]],
            inputs=tuple(inputs),
        )

    def rows(self, mask: np.ndarray) -> np.ndarray:
        """The input features of the events of ``mask``, column-major like ``X``.

        Column-major, as pandas gives a frame's rows: the families' reductions over an
        event's features (naive Bayes' sums, the NN's input statistics, BLAS products) then
        round as they did on the frame, and the trained models stay bit for bit the same.
        """
        return np.asfortranarray(self.X[mask])

    def dataset(self, mask: np.ndarray) -> Dataset:
        """The events of ``mask`` as a model Dataset (what :func:`dataset` gives on the table)."""
        return Dataset(
            X=self.rows(mask),
            y=self.is_signal[mask].astype(np.int8),
            w=self.train_weight[mask],
            feature_names=self.inputs,
        )


def _export_checked_onnx(clf: Classifier, path: Path, X: np.ndarray) -> float:
    """Export ``clf`` to ONNX for deployment; fail if ONNX Runtime disagrees with it on the
    first ``ONNX_CHECK_EVENTS`` rows of ``X``."""
    export_onnx(clf, path)
    X = X[:ONNX_CHECK_EVENTS]
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
    data = TrainingArrays.read(table_path, ml_inputs(config))
    return _train(config, model, fold, data, output_dir, threads)


def train_folds(
    config: Mapping,
    model: str,
    table_path: str,
    output_dirs: Mapping[int, str],
    threads: int = 1,
) -> list[TrainingRecord]:
    """Workflow entry point: :func:`train_fold` for each fold → directory of ``output_dirs``,
    in one process: the interpreter, the family's imports and the table are paid for once.
    Each fold's model, scores and record are those :func:`train_fold` writes (each fit seeds
    itself, so training a fold after another in the same process changes nothing)."""
    data = TrainingArrays.read(table_path, ml_inputs(config))
    return [
        _train(config, model, fold, data, output_dir, threads)
        for fold, output_dir in sorted(output_dirs.items())
    ]


def _train(
    config: Mapping, model: str, fold: int, data: TrainingArrays, output_dir: str, threads: int
) -> TrainingRecord:
    """Train ``model`` on fold ``fold`` of ``data`` and write its directory."""
    ml = config["ml"]
    spec = ml["models"][model]
    sets = fold_sets(data.fold, data.is_validation, fold)
    seed = model_seed(config, model, fold)
    train_mask = keep_signal_subsample(sets.train, data.is_signal, ml["max_train_events"], seed)
    valid_mask = keep_signal_subsample(
        sets.valid, data.is_signal, ml["max_train_events"] // 4, seed + 1
    )
    clf = build_classifier(model, spec["family"], spec["params"], seed, data.inputs)
    clf.threads = threads
    train, valid = data.dataset(train_mask), data.dataset(valid_mask)
    start = time.perf_counter()
    with EnergyMeter(EnergySettings.from_config(config), gpus=True) as meter:
        report = clf.fit(train, valid)
    seconds = time.perf_counter() - start
    record = TrainingRecord(
        model=model,
        family=spec["family"],
        params=clf.params,
        inputs=list(data.inputs),
        fold=fold,
        folds=ml["folds"],
        seed=seed,
        n_train=int(train_mask.sum()),
        n_valid=int(valid_mask.sum()),
        train_ids=ids_checksum(data.ids, train_mask),
        valid_ids=ids_checksum(data.ids, valid_mask),
        train_seconds=seconds,
        iterations=report.iterations,
        extra=report.extra,
        energy=meter.result,
    )
    shown = subsample(train_mask, TRAIN_SCORE_SAMPLE, seed + 2)
    shown_X = data.rows(shown)
    train_scores = pd.DataFrame(
        {
            "label": data.label[shown],
            "weight": data.weight[shown],
            "score": clf.predict(shown_X),
        }
    )
    with atomic_directory(output_dir) as tmp:
        clf.save(tmp)
        if has_onnx_export(spec["family"]):
            difference = _export_checked_onnx(clf, tmp / ONNX_FILE, shown_X)
            record = replace(record, onnx_max_abs_difference=difference)
        train_scores.to_parquet(tmp / TRAIN_SCORES, index=False)
        (tmp / TRAINING_RECORD).write_text(record.to_json())
    log.info(
        "%s fold %d: %d train / %d valid events, %.1f s, %.3g J (%s: %s)",
        model,
        fold,
        record.n_train,
        record.n_valid,
        seconds,
        meter.result.joules,
        meter.result.method,
        meter.result.source,
    )
    return record
