"""The trained models a benchmark reads: one answer for the workflow's benchmark rules and for
``benchmarks/device_check.sh``, so that both benchmark the same fold of the same models."""

from __future__ import annotations

from collections.abc import Mapping

from thetaflow.core import paths


def benchmark_model_dir(config: Mapping, name: str) -> str | None:
    """The benchmarked fold's model directory of model ``name`` (a ``results/`` path), or None
    for an autoencoder that this configuration does not train (no ``anomaly`` section)."""
    if name == "autoencoder" and "anomaly" not in config:
        return None
    return paths.MODEL_DIR.format(model=name, fold=config["benchmarks"]["fold"])
