"""Out-of-fold scoring: each event is scored by the model of its own fold.

Because an event's fold is a hash of its ids (:func:`thetaflow.ml.folds.assign_folds`), the
fold-``k`` model, trained and validated only on events of other folds, is the one that scores
every event with fold ``k`` — in the training samples, in every systematic variation (same
ids, same fold) and in the pseudo-data.

The scoring job also records how long each file took (:data:`SCORING_TIMES` in its output
directory): the evaluation reads the training samples' scores and their scoring time from this
job instead of scoring the training table a second time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from thetaflow.core.errors import CorruptResultError, ThetaflowError
from thetaflow.core.io import read_json, read_table, reading_result, write_json, write_table
from thetaflow.ml.folds import (
    ID_COLUMNS,
    assign_folds,
    check_inputs,
    event_ids,
    ml_inputs,
    read_fold_record,
)
from thetaflow.ml.models import load_classifier
from thetaflow.ml.models.base import Classifier
from thetaflow.ml.record import TRAINING_RECORD, TrainingRecord

log = logging.getLogger(__name__)

#: The scoring job's record in its output directory: events and wall time of each score file.
SCORING_TIMES = "timing.json"


class ScoringError(ThetaflowError, RuntimeError):
    """A model directory is missing or unreadable; the message names it."""


@dataclass(frozen=True)
class FoldModels:
    """The k trained models of one config entry, indexed by fold."""

    name: str
    models: tuple[Classifier, ...]
    inputs: tuple[str, ...]
    seed: int

    def score(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(fold, score) of every row of ``frame``, each from its own fold's model."""
        folds = assign_folds(*event_ids(frame), self.seed, len(self.models))
        X = frame[list(self.inputs)].to_numpy(dtype=np.float32)
        scores = np.full(len(frame), np.nan)
        for k, model in enumerate(self.models):
            sel = folds == k
            if sel.any():
                scores[sel] = model.predict(X[sel])
        return folds, scores


def load_fold_classifier(
    config: Mapping, model: str, directory: str | Path, fold: int, folds: int
) -> Classifier:
    """The model in one (model, fold) directory: its training record is checked to be that
    of fold ``fold`` of ``folds`` on this config's inputs (a model of another fold would
    score its own training events), then the classifier is read with the recorded seed.
    The one way the workflow loads a trained classifier; errors are ScoringError, or
    CorruptResultError for an unreadable model file."""
    spec = config["ml"]["models"][model]
    inputs = ml_inputs(config)
    checked = read_fold_record(
        directory, fold, folds, inputs, TRAINING_RECORD, f"model '{model}'", ScoringError
    )
    try:
        record = TrainingRecord.from_json(checked)
        return load_classifier(
            Path(directory), model, spec["family"], spec["params"], record.seed, inputs
        )
    except CorruptResultError:
        raise
    except Exception as err:
        raise ScoringError(
            f"model '{model}' fold {fold}: cannot load the model in {directory} "
            f"({type(err).__name__}: {err})"
        ) from err


def load_fold_models(config: Mapping, model: str, directories: Sequence[str]) -> FoldModels:
    """Load every fold's model, checking each was trained for this fold and these inputs."""
    models = tuple(
        load_fold_classifier(config, model, directory, k, len(directories))
        for k, directory in enumerate(directories)
    )
    return FoldModels(model, models, tuple(ml_inputs(config)), int(config["ml"]["seed"]))


class ScoringTime(NamedTuple):
    """Events of one feature table and the wall time of scoring them with the fold models."""

    events: int
    seconds: float


def _record_key(directory: str | Path, score_file: str | Path) -> str:
    """A score file's key in the :data:`SCORING_TIMES` record: its path inside ``directory``."""
    return Path(score_file).relative_to(directory).as_posix()


def score_samples(
    config: Mapping,
    model: str,
    model_dirs: Sequence[str],
    files: Mapping[str, str],
    record_dir: str | None = None,
) -> dict[str, ScoringTime]:
    """Workflow entry point: out-of-fold scores of feature tables (input → output path).

    The fold models are loaded once and reused for every sample and variation. With
    ``record_dir`` (the job's output directory, holding every output) the scoring time of
    each file is also written there, read back by :func:`recorded_scoring_seconds`.
    Returns the time of each feature table, keyed by its path.
    """
    fold_models = load_fold_models(config, model, model_dirs)
    timing = {}
    for features_path, output in files.items():
        frame = read_table(features_path)
        check_inputs(frame, fold_models.inputs, features_path)
        start = time.perf_counter()
        folds, scores = fold_models.score(frame)
        timing[features_path] = ScoringTime(len(frame), time.perf_counter() - start)
        out = frame[list(ID_COLUMNS)].copy()
        out["fold"] = folds
        out["score"] = scores
        write_table(output, out)
        log.info("%s: scored %d events in %.2f s", features_path, *timing[features_path])
    if record_dir is not None:
        write_json(
            Path(record_dir) / SCORING_TIMES,
            {
                _record_key(record_dir, output): timing[features_path]._asdict()
                for features_path, output in files.items()
            },
        )
    return timing


def recorded_scoring_seconds(record_dir: str, score_files: Iterable[str]) -> float:
    """The wall time the scoring job recorded for ``score_files`` (inside ``record_dir``)."""
    keys = [_record_key(record_dir, f) for f in score_files]
    path = Path(record_dir) / SCORING_TIMES
    record = read_json(path)
    with reading_result(path):
        return float(sum(ScoringTime(**record[key]).seconds for key in keys))
