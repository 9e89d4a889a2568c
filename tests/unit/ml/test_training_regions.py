"""Training uses the signal regions only; folds stay those of the event ids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from thetaflow.core.io import read_table
from thetaflow.ml.folds import TrainingDataError, assign_folds, build_training_table, event_ids
from thetaflow.ml.training import prepare_training_data

REGIONS = [
    {"name": "sr_low", "kind": "signal", "expr": "ptll_gev < 150"},
    {"name": "sr_high", "kind": "signal", "expr": "ptll_gev >= 150"},
    {"name": "cr_top", "kind": "control", "expr": "not same_flavour"},
]


def write_tables(tmp_path) -> dict[str, str]:
    """Feature tables of a signal and a background sample, their events spread over the
    regions (and the inclusive label of an analysis without regions, which training of an
    analysis with regions must not take either)."""
    rng = np.random.default_rng(4)
    files = {}
    for name, n, label, offset in (("sig", 600, 1, 0), ("bkg", 1800, 0, 10_000)):
        frame = pd.DataFrame(
            {
                "run": np.ones(n, np.uint32),
                "luminosityBlock": np.ones(n, np.uint32),
                "event": np.arange(offset + 1, offset + n + 1, dtype=np.uint64),
                "sample": name,
                "label": np.full(n, label, np.int8),
                "region": rng.choice(["sr_low", "sr_high", "cr_top", "inclusive"], n),
                "weight": rng.uniform(0.5, 1.5, n),
                "x": rng.normal(label, 1.0, n).astype(np.float32),
            }
        )
        files[name] = str(tmp_path / f"{name}.parquet")
        frame.to_parquet(files[name])
    return files


def ml_config(regions: list[dict] | None) -> dict:
    config = {
        "features": ["x"],
        "ml": {
            "inputs": [],
            "seed": 5,
            "folds": 3,
            "validation_fraction": 0.2,
            "negative_weights": "abs",
        },
    }
    if regions is not None:
        config["regions"] = regions
    return config


def test_training_table_holds_the_signal_regions_only(tmp_path):
    files = write_tables(tmp_path)
    table_path, report = str(tmp_path / "table.parquet"), str(tmp_path / "folds.json")
    prepare_training_data(ml_config(REGIONS), files, table_path, report)
    table = read_table(table_path)
    features = pd.concat([read_table(p) for p in files.values()], ignore_index=True)
    in_signal = features[features["region"].isin(["sr_low", "sr_high"])]
    # exactly the signal-region events, control-region events never trained or validated on
    assert len(table) == len(in_signal) < len(features)
    assert set(zip(table["sample"], table["event"], strict=True)) == set(
        zip(in_signal["sample"], in_signal["event"], strict=True)
    )
    # an event keeps the fold of its ids: the one that scores it (every event is scored)
    np.testing.assert_array_equal(table["fold"], assign_folds(*event_ids(table), seed=5, k=3))
    # the classes are balanced over the training events alone
    for label in (0, 1):
        assert table.loc[table["label"] == label, "train_weight"].sum() == pytest.approx(
            len(table) / 2
        )


def test_without_regions_every_event_is_trained_on(tmp_path):
    files = write_tables(tmp_path)
    for path in files.values():  # an analysis without regions: one inclusive region
        read_table(path).assign(region="inclusive").to_parquet(path)
    table_path, report = str(tmp_path / "table.parquet"), str(tmp_path / "folds.json")
    prepare_training_data(ml_config(None), files, table_path, report)
    assert len(read_table(table_path)) == 2400


def test_feature_table_without_regions_is_named(tmp_path):
    files = write_tables(tmp_path)
    read_table(files["bkg"]).drop(columns="region").to_parquet(files["bkg"])
    with pytest.raises(TrainingDataError, match=r"sample 'bkg' .*bkg\.parquet.*no 'region' column"):
        build_training_table(
            files,
            ["x"],
            seed=1,
            folds=3,
            validation_fraction=0.2,
            negative_weights="abs",
            signal_regions=("sr_low",),
        )
