"""The record a fold's training writes beside its model (``training.json``), read by attribute.

Kept apart from :mod:`thetaflow.ml.training` so that the readers of a trained model (scoring,
evaluation, the benchmarks) do not import the training code and its ONNX converters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thetaflow.core.energy import EnergyMeasurement
from thetaflow.core.io import read_json, reading_result

TRAINING_RECORD = "training.json"
TRAIN_SCORES = "train_scores.parquet"


@dataclass(frozen=True)
class TrainingRecord:
    """The ``training.json`` of one (model, fold) directory, read by attribute.

    Written by :func:`train_fold`, read back by scoring, evaluation and the benchmarks; the
    file keeps its keys and rendering (indent 2, sorted keys, ``default=float`` for NumPy
    scalars), and ``onnx_max_abs_difference`` is present only for families exported to ONNX.
    ``energy`` is the fit's energy (the block ``train_seconds`` times), absent from records
    written before it was measured.
    """

    model: str
    family: str
    params: dict[str, Any]
    inputs: list[str]
    fold: int
    folds: int
    seed: int
    n_train: int
    n_valid: int
    train_ids: str
    valid_ids: str
    train_seconds: float
    iterations: int | None
    extra: dict[str, Any]
    onnx_max_abs_difference: float | None = None
    energy: EnergyMeasurement | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON object written: every field, the ONNX check only when there is one."""
        out = {
            "model": self.model,
            "family": self.family,
            "params": self.params,
            "inputs": self.inputs,
            "fold": self.fold,
            "folds": self.folds,
            "seed": self.seed,
            "n_train": self.n_train,
            "n_valid": self.n_valid,
            "train_ids": self.train_ids,
            "valid_ids": self.valid_ids,
            "train_seconds": self.train_seconds,
            "iterations": self.iterations,
            "extra": self.extra,
        }
        if self.onnx_max_abs_difference is not None:
            out["onnx_max_abs_difference"] = self.onnx_max_abs_difference
        if self.energy is not None:
            out["energy"] = self.energy.as_dict()
        return out

    def to_json(self) -> str:
        """The text of ``training.json``."""
        return json.dumps(self.as_dict(), indent=2, sort_keys=True, default=float) + "\n"

    @classmethod
    def from_json(cls, data: str | Mapping[str, Any]) -> TrainingRecord:
        """From the text of ``training.json`` or its decoded object (unknown keys refused)."""
        record = dict(json.loads(data) if isinstance(data, str) else data)
        try:
            if isinstance(record.get("energy"), Mapping):
                record["energy"] = EnergyMeasurement.from_dict(record["energy"])
            return cls(**record)
        except TypeError as err:
            raise ValueError(f"not a {TRAINING_RECORD} training record ({err})") from err

    @classmethod
    def read(cls, directory: str | Path) -> TrainingRecord:
        """The record in a model directory (unchecked: see :func:`read_fold_record`)."""
        path = Path(directory) / TRAINING_RECORD
        data = read_json(path)
        with reading_result(path):
            return cls.from_json(data)
