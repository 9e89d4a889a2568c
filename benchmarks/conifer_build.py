"""The conifer C++ emulation step of the BDT's FPGA benchmark: one build for every precision
against conifer's build per precision, side by side in one run.

Trains a BDT of the default config's size (``ml.models`` bdt defaults: 400 trees of depth 4,
on toy inputs with as many features as the default analysis) and emulates it on
``benchmarks.fpga.events`` events at ``double`` and every precision of the default scan, twice:
conifer's own C++ backend compiled once per precision (the code before
:mod:`thetaflow.benchmarking.fpga.conifer_cpp`), then that module's single build. Prints wall
time, this process's CPU and g++'s CPU (children) of each, and whether every logit agrees bit
for bit. Never asserts.
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import add_json_argument, environment, load_config, print_table, save_json

from thetaflow.benchmarking.fpga import FPGASettings, build_emulation, save_ensemble
from thetaflow.benchmarking.fpga.models import load_bdt_ensemble
from thetaflow.benchmarking.fpga.scan import scan_types
from thetaflow.benchmarking.tools import emulation_environment
from thetaflow.ml.folds import ml_inputs
from thetaflow.ml.models.bdt import BDT


def _costs(fn: Callable[[], dict[str, np.ndarray]]) -> tuple[dict[str, np.ndarray], list[float]]:
    """fn's result and [wall, own CPU, children's CPU] seconds."""
    own0, kids0 = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    start = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - start
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return out, [
        wall,
        own.ru_utime + own.ru_stime - own0.ru_utime - own0.ru_stime,
        kids.ru_utime + kids.ru_stime - kids0.ru_utime - kids0.ru_stime,
    ]


def main(argv: list[str] | None = None) -> int:
    """Train the BDT, time both ways of emulating it and print the table."""
    import conifer
    import xgboost as xgb

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_json_argument(parser, "conifer_build")
    args = parser.parse_args(argv)
    config = load_config()
    settings = FPGASettings.from_config(config)
    n_features = len(ml_inputs(config))
    rng = np.random.default_rng(settings.seed)
    n_train = 40_000
    X = rng.normal(size=(n_train + settings.events, n_features))
    y = (X[:, 0] + 0.7 * X[:, 1] - 0.4 * X[:, 2] + 0.5 * rng.normal(size=len(X)) > 0).astype(int)
    params = {k: v for k, v in BDT.defaults.items() if k != "early_stopping_rounds"}
    precisions = ["double", *(ftype.hls() for ftype in scan_types(settings))]
    with tempfile.TemporaryDirectory(prefix="thetaflow-conifer-build-") as tmp:
        work = Path(tmp)
        xgb.XGBClassifier(**params, tree_method="hist", random_state=settings.seed, n_jobs=1).fit(
            X[:n_train], y[:n_train]
        ).get_booster().save_model(work / "model.ubj")
        _, ensemble = load_bdt_ensemble(work, np.zeros(n_features), np.ones(n_features))
        Z = np.ascontiguousarray(X[n_train:])

        def per_precision() -> dict[str, np.ndarray]:
            out = {}
            for k, precision in enumerate(precisions):
                cfg = {
                    **conifer.backends.cpp.auto_config(),
                    "OutputDir": str(work / f"conifer_{k}"),
                    "Precision": precision,
                }
                with emulation_environment(work / f"conifer_{k}"):
                    model = conifer.model.make_model(copy.deepcopy(ensemble), cfg)
                    model.compile()
                    out[precision] = np.asarray(model.decision_function(Z))[:, 0]
            return out

        def shared() -> dict[str, np.ndarray]:
            emulation = build_emulation(precisions, work / "shared", settings.tool_timeout_s)
            model_json = save_ensemble(ensemble, work / "shared" / "model.json")
            return {p: emulation.predict(model_json, p, Z) for p in precisions}

        before, before_s = _costs(per_precision)
        after, after_s = _costs(shared)
    identical = all(np.array_equal(before[p], after[p]) for p in precisions)
    rows = [["one build per precision (conifer)", *before_s], ["one build (conifer_cpp)", *after_s]]
    print_table(
        f"conifer C++ emulation: {int(ensemble['n_trees'])} trees, depth "
        f"{int(ensemble['max_depth'])}, {n_features} features, {settings.events} events, "
        f"{len(precisions)} precisions ({os.cpu_count()} logical cores)",
        ["", "wall s", "own CPU s", "g++ CPU s"],
        rows,
    )
    print(f"every logit identical at every precision: {identical}")
    save_json(
        args.json,
        {
            "environment": environment(),
            "precisions": precisions,
            "per_precision_s": dict(zip(["wall", "cpu_own", "cpu_gxx"], before_s, strict=True)),
            "one_build_s": dict(zip(["wall", "cpu_own", "cpu_gxx"], after_s, strict=True)),
            "identical": identical,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
