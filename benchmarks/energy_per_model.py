"""Energy per model: joules per training (fold 0) and per million inferences, on a toy table.

Builds a synthetic training table of the default analysis' shape (the default features and
sample mix of ``benchmarks/training_profile.py``, ``--events`` rows, default 20,000: toy size)
with the workflow's own :func:`thetaflow.ml.training.prepare_training_data`, then for each
model of the default config (``--models``):

* trains it on fold 0 with the training job's code (:func:`thetaflow.ml.training.train_fold`,
  one thread like rule ``train``) and reads the fit's energy from its ``training.json``;
* scores batches of ``--batches`` test-fold events with the loaded model's ``predict`` (what
  the scoring jobs call) on the CPU, timed and metered as the GPU benchmark's points
  (:func:`thetaflow.benchmarking.energy.timed_with_energy`: warm-up excluded, at least
  ``--min-seconds`` and 5 calls per point).

Energy comes from :mod:`thetaflow.core.energy`: RAPL package counters and NVML where readable,
else the CPU time × ``benchmarks.energy.cpu_watts_per_core`` of the default config, labelled
``estimate`` (the method column says which). Prints a table and writes JSON; never asserts.

    .venv/bin/python benchmarks/energy_per_model.py [--events 20000] [--models bdt nn ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from _common import add_json_argument, environment, load_config, print_table, save_json
from training_profile import synthetic_features

from thetaflow.benchmarking.energy import MILLION, joules_per_million, timed_with_energy
from thetaflow.benchmarking.timing import TimingSettings
from thetaflow.core.energy import EnergySettings
from thetaflow.core.regions import REGION_COLUMN, signal_region_names
from thetaflow.ml.folds import ml_inputs
from thetaflow.ml.scoring import load_fold_classifier
from thetaflow.ml.training import prepare_training_data, train_fold

FOLD = 0


def build_table(workdir: Path, events: int, config: dict) -> Path:
    """The toy training table in ``workdir``: every event in the config's first signal region."""
    workdir.mkdir(parents=True, exist_ok=True)
    region = signal_region_names(config)[0]
    files = {}
    for sample, frame in synthetic_features(events, 2718, list(config["features"])).items():
        frame[REGION_COLUMN] = region
        files[sample] = str(workdir / f"{sample}.parquet")
        frame.to_parquet(files[sample], index=False)
    table = workdir / "training.parquet"
    prepare_training_data(config, files, str(table), str(workdir / "folds.json"))
    return table


def inference_energy(
    config: dict,
    model: str,
    directory: Path,
    X: np.ndarray,
    batches: list[int],
    timing: TimingSettings,
    energy: EnergySettings,
) -> list[dict]:
    """Joules and seconds per million CPU inferences of one trained model, per batch size."""
    clf = load_fold_classifier(config, model, directory, FOLD, int(config["ml"]["folds"]))
    rows = []
    for batch in batches:
        rows_in = np.asfortranarray(X[np.arange(batch) % len(X)])

        def predict(rows_in: np.ndarray = rows_in) -> None:
            clf.predict(rows_in)

        result, measured = timed_with_energy(
            predict, batch, timing, f"{model} at batch {batch}", energy
        )
        events = result.calls * batch
        rows.append(
            {
                "batch": batch,
                "calls": result.calls,
                "joules_per_million": joules_per_million(measured, events),
                "seconds_per_million": result.total_s * MILLION / events,
                "method": measured.method,
                "source": measured.source,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Train and score every model, print joules per training and per million inferences."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="rows of the toy table")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/thetaflow_energy_per_model"))
    parser.add_argument("--models", nargs="*", help="models of the default config (default all)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 1024])
    parser.add_argument("--min-seconds", type=float, default=1.0, help="per inference point")
    add_json_argument(parser, "energy_per_model")
    args = parser.parse_args(argv)

    config = load_config()
    energy = EnergySettings.from_config(config)
    table = build_table(args.workdir, args.events, config)
    test = pd.read_parquet(table)
    X = test.loc[test["fold"] == FOLD, ml_inputs(config)].to_numpy(np.float32)
    timing = TimingSettings(warmup=2, min_calls=5, min_seconds=args.min_seconds, max_seconds=600)
    rows = []
    for model in args.models or list(config["ml"]["models"]):
        directory = args.workdir / model / f"fold{FOLD}"
        record = train_fold(config, model, FOLD, str(table), str(directory))
        if record.energy is None:
            raise SystemExit(f"{model}: training.json has no energy (an older library?)")
        rows.append(
            {
                "model": model,
                "family": record.family,
                "n_train": record.n_train,
                "train_seconds": record.energy.seconds,
                "train_cpu_seconds": record.energy.cpu_seconds,
                "train_joules": record.energy.joules,
                "train_method": record.energy.method,
                "train_source": record.energy.source,
                "inference": inference_energy(
                    config, model, directory, X, args.batches, timing, energy
                ),
            }
        )
        print(f"{model}: {record.energy.joules:.3g} J per training ({record.energy.method})")
    headers = ["model", "n_train", "train s", "train CPU s", "train J"]
    headers += [f"J/M inf. b={b}" for b in args.batches] + ["method"]
    methods = {r["train_method"] for r in rows} | {
        p["method"] for r in rows for p in r["inference"]
    }
    print_table(
        f"Energy per model ({args.events:,} toy events; method: {', '.join(sorted(methods))})",
        headers,
        [
            [
                r["model"],
                r["n_train"],
                r["train_seconds"],
                r["train_cpu_seconds"],
                r["train_joules"],
                *(p["joules_per_million"] for p in r["inference"]),
                r["train_method"],
            ]
            for r in rows
        ],
    )
    if "estimate" in methods:
        print(
            f"\nestimate: no energy counter readable here; CPU time × "
            f"{energy.cpu_watts_per_core:g} W per core (benchmarks.energy.cpu_watts_per_core)"
        )
    save_json(
        args.json,
        {
            "environment": environment(),
            "events": args.events,
            "cpu_watts_per_core": energy.cpu_watts_per_core,
            "models": rows,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
