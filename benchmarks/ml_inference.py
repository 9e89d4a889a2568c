"""Training time per model and CPU inference throughput at batch 1 and 16k events.

Reads the models of a finished default run (``results/models/{model}/fold0``) and the
training table, then times ``predict`` per model on one core: batch 1 (latency-bound, median
of many calls after a warm-up) and batch 16,384 (throughput). Training times come from the
models' ``training.json``. Prints a table and writes JSON; never asserts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import add_json_argument, load_config, print_table, save_json

from thetaflow.core import paths
from thetaflow.ml.folds import ml_inputs
from thetaflow.ml.models import load_classifier
from thetaflow.ml.record import TRAINING_RECORD

BATCHES = (1, 16_384)


def time_predict(predict, X: np.ndarray, batch: int, min_seconds: float, min_calls: int) -> dict:  # type: ignore[no-untyped-def]
    """Median seconds per call and events/s for one batch size (after two warm-up calls)."""
    rows = X[:batch]
    for _ in range(2):
        predict(rows)
    times = []
    start = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter_ns()
        predict(rows)
        times.append((time.perf_counter_ns() - t0) / 1e9)
    median = float(np.median(times))
    return {"batch": batch, "calls": len(times), "median_s": median, "events_per_s": batch / median}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark over every configured model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--results",
        type=Path,
        default=Path(paths.RESULTS),
        help="results directory of a default run",
    )
    parser.add_argument("--min-seconds", type=float, default=1.0, help="minimum timing per point")
    parser.add_argument("--min-calls", type=int, default=20, help="minimum calls per point")
    add_json_argument(parser, "ml_inference")
    args = parser.parse_args(argv)
    config = load_config()
    inputs = ml_inputs(config)
    table_path = args.results / "ml" / "training.parquet"
    if not table_path.exists():
        print(f"{table_path} missing: run `bash workflow/bootstrap.sh analysis` first")
        return 1
    X = pd.read_parquet(table_path, columns=inputs).to_numpy(dtype=np.float32)[: max(BATCHES)]
    figures = []
    for name, spec in config["ml"]["models"].items():
        directory = args.results / "models" / name / "fold0"
        if not directory.exists():
            print(f"{directory} missing: skipped")
            continue
        record = json.loads((directory / TRAINING_RECORD).read_text())
        model = load_classifier(
            directory, name, spec["family"], spec.get("params", {}), record["seed"], inputs
        )
        points = [
            time_predict(model.predict, X, b, args.min_seconds, args.min_calls) for b in BATCHES
        ]
        train_s = [
            json.loads((args.results / "models" / name / f"fold{k}" / TRAINING_RECORD).read_text())[
                "train_seconds"
            ]
            for k in range(config["ml"]["folds"])
        ]
        figures.append(
            {
                "model": name,
                "family": spec["family"],
                "train_seconds_per_fold": train_s,
                "n_train": record["n_train"],
                "inference": points,
            }
        )
    print_table(
        "Training time and CPU inference (one core)",
        [
            "model",
            "train s / fold",
            "n_train",
            "batch 1 latency ms",
            "batch 1 events/s",
            "batch 16k events/s",
        ],
        [
            [
                f["model"],
                f"{np.mean(f['train_seconds_per_fold']):.1f}",
                f"{f['n_train']:,}",
                f"{1e3 * f['inference'][0]['median_s']:.3f}",
                f"{f['inference'][0]['events_per_s']:,.0f}",
                f"{f['inference'][1]['events_per_s']:,.0f}",
            ]
            for f in figures
        ],
    )
    save_json(args.json, {"models": figures})
    return 0


if __name__ == "__main__":
    sys.exit(main())
