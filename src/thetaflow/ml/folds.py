"""Leakage-proof k-fold splitting, training weights and the training table.

Only the events of the signal regions are trained on (:mod:`thetaflow.core.regions`; the
control regions constrain backgrounds in the fit and are scored like every event). Every
event's fold is a stable hash of (run, luminosityBlock, event) and the seed, modulo k,
so the same event always lands in the same fold in every sample, variation and run, and the
model that scores it is always the one whose training *and* validation sets excluded it:

* fold ``k``'s model: test set = events with fold == k (never seen);
* validation set (early stopping, calibration) = a hash-selected fraction of the other folds;
* training set = the rest of the other folds.

Training weights start from the physics weights (xsec·lumi·genWeight/Σw); negative weights
are handled by an explicit, documented choice (``ml.negative_weights``), then each class is
scaled to the same total weight (equal to half the number of events, so weights average 1).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from thetaflow.core.errors import ThetaflowError
from thetaflow.core.io import read_json, read_table, reading_result
from thetaflow.features.labels import LABEL_BACKGROUND, LABEL_BSM, LABEL_SIGNAL
from thetaflow.ml.models.base import Dataset

log = logging.getLogger(__name__)

ID_COLUMNS = ("run", "luminosityBlock", "event")
FOLD_SALT = 0x5EED_F01D
VALIDATION_SALT = 0x7A11_DA7E
NEGATIVE_WEIGHT_POLICIES = ("abs", "zero")
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


class TrainingDataError(ThetaflowError, ValueError):
    """Unusable training inputs; the message names the sample, feature or fold."""


def ml_inputs(config: Mapping) -> list[str]:
    """Input features of the classifiers: ``ml.inputs`` or every configured feature."""
    # ml.inputs: [] (the schema default) means every feature, a default that depends on them
    return list(config["ml"]["inputs"] or config["features"])


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a fast, well-mixing, platform-independent 64-bit hash step."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def event_hash(
    run: np.ndarray, lumi: np.ndarray, event: np.ndarray, seed: int, salt: int
) -> np.ndarray:
    """Stable 64-bit hash of an event's ids, the seed and a salt (vectorised)."""
    h = _splitmix64(
        np.full(len(event), (seed * 0x100000001 + salt) & 0xFFFFFFFFFFFFFFFF, np.uint64)
    )
    for ids in (run, lumi, event):
        h = _splitmix64(h ^ np.asarray(ids).astype(np.uint64))
    return h


def event_ids(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(run, luminosityBlock, event) columns of ``frame``: the arguments of the id hashes."""
    run, lumi, event = (frame[c].to_numpy() for c in ID_COLUMNS)
    return run, lumi, event


def assign_folds(
    run: np.ndarray, lumi: np.ndarray, event: np.ndarray, seed: int, k: int
) -> np.ndarray:
    """Fold number (0..k-1) of each event."""
    if k < 2:
        raise TrainingDataError(f"ml.folds must be at least 2, got {k}")
    return (event_hash(run, lumi, event, seed, FOLD_SALT) % np.uint64(k)).astype(np.int16)


def read_fold_record(
    directory: str | Path,
    fold: int,
    folds: int,
    inputs: Sequence[str],
    record_file: str,
    what: str,
    error: type[Exception],
) -> dict:
    """The training record in ``directory``, checked to be that of fold ``fold`` of ``folds``
    trained on ``inputs``: a model of another fold or split would score its own training
    events. Raises ``error`` naming ``what`` (the model) and the file, CorruptResultError for
    an unreadable record."""
    path = Path(directory) / record_file
    try:
        record = read_json(path)
    except FileNotFoundError as err:
        raise error(f"{what} fold {fold}: cannot read {path} ({err})") from err
    with reading_result(path):
        trained = (record["fold"], record["folds"], record["inputs"])
    if trained != (fold, folds, list(inputs)):
        raise error(
            f"{what}: {directory} was trained for fold {record['fold']} of {record['folds']} "
            f"with inputs {record['inputs']}, not fold {fold} of {folds} with {list(inputs)}"
        )
    return record


def validation_flags(
    run: np.ndarray, lumi: np.ndarray, event: np.ndarray, seed: int, fraction: float
) -> np.ndarray:
    """Whether an event belongs to the validation share of whichever folds train on it."""
    u = (event_hash(run, lumi, event, seed, VALIDATION_SALT) >> np.uint64(11)).astype(
        np.float64
    ) / 2.0**53
    return u < fraction


@dataclass(frozen=True)
class FoldSets:
    """Boolean masks over the training table for one fold's model."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray


def fold_sets(folds: np.ndarray, is_validation: np.ndarray, k: int) -> FoldSets:
    """Train/validation/test masks of fold ``k``'s model: the test fold is in neither."""
    test = folds == k
    return FoldSets(train=~test & ~is_validation, valid=~test & is_validation, test=test)


def training_weights(weight: np.ndarray, label: np.ndarray, negative: str) -> np.ndarray:
    """Physics weights made usable for training, classes balanced to equal total weight.

    ``negative="abs"`` keeps negative-weight events with |w| (their kinematics are as
    physical as the others'; this biases the learned density slightly but keeps statistics);
    ``"zero"`` drops them from the fit. Either way the returned weights are ≥ 0, and each
    class sums to half the number of events.
    """
    if negative not in NEGATIVE_WEIGHT_POLICIES:
        raise TrainingDataError(
            f"ml.negative_weights must be one of {NEGATIVE_WEIGHT_POLICIES}, got {negative!r}"
        )
    w = np.abs(weight) if negative == "abs" else np.where(weight > 0, weight, 0.0)
    out = np.zeros_like(w, dtype=np.float64)
    half = 0.5 * len(w)
    for cls in (LABEL_SIGNAL, LABEL_BACKGROUND):
        sel = label == cls
        total = w[sel].sum()
        if sel.any() and total > 0:
            out[sel] = w[sel] * (half / total)
    return out


def check_inputs(frame: pd.DataFrame, inputs: Sequence[str], source: str) -> None:
    """Every input feature present and finite; errors name the feature and count."""
    missing = [f for f in inputs if f not in frame.columns]
    if missing:
        raise TrainingDataError(
            f"{source}: feature(s) {', '.join(missing)} named in ml.inputs are not in the feature "
            f"table (it has: {', '.join(c for c in frame.columns)})"
        )
    values = frame[list(inputs)].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        counts = {f: int(n) for f, n in zip(inputs, bad.sum(axis=0), strict=True) if n}
        raise TrainingDataError(
            f"{source}: NaN/inf in training features {counts} ({int(bad.any(axis=1).sum())} events)"
        )


def _in_regions(frame: pd.DataFrame, regions: Collection[str], source: str) -> pd.DataFrame:
    """The rows of a feature table whose ``region`` is one of ``regions``."""
    if "region" not in frame.columns:
        raise TrainingDataError(
            f"{source}: the feature table has no 'region' column (written before the analysis "
            "had regions: rebuild the events and feature tables)"
        )
    return frame.loc[frame["region"].isin(list(regions))]


def build_training_table(
    feature_files: Mapping[str, str],
    inputs: Sequence[str],
    *,
    seed: int,
    folds: int,
    validation_fraction: float,
    negative_weights: str,
    signal_regions: Collection[str] | None = None,
) -> pd.DataFrame:
    """The nominal MC events of the ``signal_regions`` (``None``: every event) with ids,
    inputs, label, physics and training weight, fold.

    The fold and validation flag of an event are those of its ids alone, so restricting the
    table to some regions moves no event between folds."""
    frames = []
    for sample, path in feature_files.items():
        frame = read_table(path)
        source = f"sample '{sample}' ({path})"
        if signal_regions is not None:
            frame = _in_regions(frame, signal_regions, source)
        check_inputs(frame, inputs, source)
        frames.append(frame[[*ID_COLUMNS, "sample", "label", "weight", *inputs]])
    table = pd.concat(frames, ignore_index=True)
    if (table["label"] < 0).any():
        raise TrainingDataError("data samples cannot be used for training (label -1)")
    bsm = sorted(set(table.loc[table["label"] == LABEL_BSM, "sample"]))
    if bsm:
        raise TrainingDataError(
            f"sample(s) {', '.join(bsm)} of kind 'bsm' cannot be used for training: the blind "
            "search's unknown process must stay unseen by every supervised model"
        )
    ids = event_ids(table)
    table["fold"] = assign_folds(*ids, seed, folds)
    table["is_validation"] = validation_flags(*ids, seed, validation_fraction)
    table["train_weight"] = training_weights(
        table["weight"].to_numpy(), table["label"].to_numpy(), negative_weights
    )
    check_folds(table, folds)
    return table


def check_folds(table: pd.DataFrame, folds: int) -> None:
    """Every fold's test, training and validation sets hold both classes."""
    for k in range(folds):
        sets = fold_sets(table["fold"].to_numpy(), table["is_validation"].to_numpy(), k)
        for name, mask in (
            ("test", sets.test),
            ("training", sets.train),
            ("validation", sets.valid),
        ):
            labels = set(np.unique(table["label"].to_numpy()[mask]))
            for cls, what in ((LABEL_SIGNAL, "signal"), (LABEL_BACKGROUND, "background")):
                if cls not in labels:
                    raise TrainingDataError(f"fold {k}: the {name} set has no {what} event")


def fold_report(table: pd.DataFrame) -> dict:
    """Stratification check: events, weighted signal fraction and raw signal share per fold."""
    report = {}
    for k, group in table.groupby("fold"):
        sig = group["label"] == LABEL_SIGNAL
        report[int(k)] = {
            "events": int(len(group)),
            "signal_events": int(sig.sum()),
            "signal_fraction": float(sig.mean()),
            "signal_weight_fraction": float(group.loc[sig, "weight"].sum() / group["weight"].sum()),
        }
    return report


def dataset(table: pd.DataFrame, mask: np.ndarray, inputs: Sequence[str]) -> Dataset:
    """The rows of ``table`` selected by ``mask`` as a model Dataset."""
    part = table.loc[mask]
    return Dataset(
        X=part[list(inputs)].to_numpy(dtype=np.float32),
        y=(part["label"].to_numpy() == LABEL_SIGNAL).astype(np.int8),
        w=part["train_weight"].to_numpy(dtype=np.float64),
        feature_names=tuple(inputs),
    )


def subsample(mask: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """At most ``limit`` of the events in ``mask`` (seeded, uniform); 0 means no limit."""
    if limit <= 0 or mask.sum() <= limit:
        return mask
    chosen = np.random.default_rng(seed).choice(np.flatnonzero(mask), size=limit, replace=False)
    out = np.zeros_like(mask)
    out[chosen] = True
    return out


def ids_checksum(table: pd.DataFrame, mask: np.ndarray) -> str:
    """Order-independent fingerprint of the events (sample and ids) in ``mask``.

    Recorded with each trained model, so tests and audits can prove which events it saw.
    """
    part = table.loc[mask]
    codes = {name: zlib.crc32(str(name).encode()) for name in part["sample"].unique()}
    salt = part["sample"].map(codes).to_numpy(dtype=np.uint64)
    h = event_hash(*event_ids(part), 0, 0) ^ _splitmix64(salt)
    return (
        f"{int(np.bitwise_xor.reduce(_splitmix64(h), initial=np.uint64(0))):016x}-{int(mask.sum())}"
    )
