"""Where the CPU of one ``train`` job goes, per model family, on a default-sized training table.

Builds (once, in ``--workdir``) a synthetic training table of the default analysis' shape:
the 23 default features (float32), the default sample mix (signal, ZZ, Z+jets, tt̄) with
physics weights, ``--events`` rows (default 500,000: the ~60 MiB table of a default run),
written by the workflow's own :func:`thetaflow.ml.training.prepare_training_data` with the
default ``ml`` settings. Then, for each model of the default config, runs what rule
``train`` runs (:func:`thetaflow.ml.training.train_fold` on fold 0, one thread) in a fresh
interpreter with the workflow's pinned CPU environment, and splits that process's CPU time
(user + system, ``time.process_time``) into:

* ``startup``: interpreter start and ``import thetaflow.ml.training`` (what every job pays
  before its first line of work; the Snakemake ``script:`` preamble, which imports
  snakemake, comes on top and is measured once as ``snakemake_preamble``);
* ``read``: reading the table (and, in the new code, converting its inputs to float32 once);
  ``prepare``: fold masks, subsampling, the float32 datasets, the id fingerprints;
* ``fit``: the model's ``fit`` (imports it triggers are counted under ``lazy_imports``);
* ``predict``: the model's ``predict`` (training-sample scores, the ONNX check); ``write``: model,
  ONNX export and its ONNX Runtime check,
  ``train_scores.parquet`` and the record;
* ``lazy_imports``: modules first imported inside the job (xgboost, TensorFlow, skops, ...);
* ``other``: the rest (total − the above).

``--all-folds MODEL...`` also trains those models on every fold, once as one job per fold
(today's rule ``train``) and once as one job for all folds
(:func:`thetaflow.ml.training.train_folds`), and prints both. ``--cprofile N`` also prints
each job's N most expensive functions (own CPU). Prints a table and writes JSON; never
asserts. CPU times are robust to a loaded machine, wall times are not.

    .venv/bin/python benchmarks/training_profile.py [--events 500000] [--models bdt nn ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import (
    REPO_ROOT,
    add_json_argument,
    environment,
    load_config,
    print_table,
    save_json,
)

from thetaflow.core.determinism import pin_cpu_dispatch

#: (sample, label, share of the events, signal-likeness of its features)
SAMPLES = (
    ("zh", 1, 0.25, 1.0),
    ("zz", 0, 0.2, 0.5),
    ("zjets", 0, 0.35, 0.0),
    ("ttbar", 0, 0.2, -0.5),
)
PHASES = ("startup", "read", "prepare", "fit", "predict", "write", "lazy_imports", "other")

# The job itself, in a fresh interpreter: argv = model, fold, table, output dir, settings JSON,
# cProfile top N. Prints one JSON line of phase CPU seconds.
CHILD = r"""
import time
T0 = time.process_time()
import importlib._bootstrap as boot, json, sys
model, fold, table, out, settings, top = sys.argv[1:7]
from thetaflow.core.logs import job_log
import thetaflow.ml.training as training
T1 = time.process_time()
cpu = dict.fromkeys(("lazy_imports", "read", "prepare", "fit", "predict", "write"), 0.0)
stack = [["job", 0.0]]  # [phase, CPU of the phases nested in it]
def timed(phase, fn):
    def wrapper(*args, **kwargs):
        stack.append([phase, 0.0])
        start = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent = time.process_time() - start
            _, nested = stack.pop()
            cpu[phase] += spent - nested
            stack[-1][1] += spent
    return wrapper
boot._find_and_load = timed("lazy_imports", boot._find_and_load)
for name, phase in PATCHES:
    owner, _, attr = name.rpartition(".")
    target = getattr(training, owner, None) if owner else training
    if target is not None and hasattr(target, attr):
        setattr(target, attr, timed(phase, getattr(target, attr)))
from thetaflow.ml.models import FAMILIES
for cls in FAMILIES.values():
    cls.fit = timed("fit", cls.fit)
    cls.save = timed("write", cls.save)
    cls.predict = timed("predict", cls.predict)
import pandas as pd
pd.DataFrame.to_parquet = timed("write", pd.DataFrame.to_parquet)
profiler = None
if int(top):
    import cProfile
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
config = json.loads(settings)
with job_log(out + ".log"):
    if fold == "all":  # every fold in this one process
        folds = {k: f"{out}/fold{k}" for k in range(config["ml"]["folds"])}
        training.train_folds(config, model, table, folds, 1)
    else:
        training.train_fold(config, model, int(fold), table, out, 1)
if profiler is not None:
    profiler.disable()
T2 = time.process_time()
print("PHASES " + json.dumps({"startup": T1, "total": T2, **cpu}))
if profiler is not None:
    import pstats
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(int(top))
"""
#: names in thetaflow.ml.training timed as a phase (those that exist there)
PATCHES = (
    ("read_table", "read"),
    ("TrainingArrays.read", "read"),
    ("TrainingArrays.dataset", "prepare"),
    ("fold_sets", "prepare"),
    ("keep_signal_subsample", "prepare"),
    ("dataset", "prepare"),
    ("ids_checksum", "prepare"),
    ("_export_checked_onnx", "write"),
)


def synthetic_features(n: int, seed: int, features: list[str]) -> dict[str, Path]:
    """Feature tables of the default samples: correlated Gaussians shifted by signal-likeness."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    d = len(features)
    mixing = rng.normal(0, 0.3, (d, d)) + np.eye(d)
    direction = rng.normal(0, 0.4, d)
    first_event = 1
    frames = {}
    for sample, label, share, likeness in SAMPLES:
        m = int(n * share)
        x = (rng.normal(0, 1, (m, d)) + likeness * direction) @ mixing
        frame = pd.DataFrame(
            {
                "run": np.ones(m, np.uint32),
                "luminosityBlock": (np.arange(m) // 1000 + 1).astype(np.uint32),
                "event": np.arange(first_event, first_event + m, dtype=np.uint64),
                "sample": sample,
                "label": np.full(m, label, np.int8),
                "weight": rng.exponential(0.1 if label else 1.0, m)
                * np.where(rng.random(m) < 0.02, -1, 1),
            }
        )
        first_event += m
        for j, name in enumerate(features):
            column = x[:, j].astype(np.float32)
            if name == "n_jets":
                column = np.clip(np.round(column + 3), 2, 8).astype(np.float32)
            frame[name] = column
        frames[sample] = frame
    return frames


def build_table(workdir: Path, events: int, config: dict) -> Path:
    """The training table (and fold report) in ``workdir``, built once per event count."""
    from thetaflow.ml.training import prepare_training_data

    table = workdir / f"training_{events}.parquet"
    if table.exists():
        return table
    workdir.mkdir(parents=True, exist_ok=True)
    files = {}
    for sample, frame in synthetic_features(events, 2718, list(config["features"])).items():
        files[sample] = str(workdir / f"{sample}.parquet")
        frame.to_parquet(files[sample], index=False)
    prepare_training_data(config, files, str(table), str(workdir / "folds.json"))
    return table


def settings_of(config: dict) -> dict:
    """What rule ``train`` passes: features and the ml keys its jobs read."""
    return {"features": config["features"], "ml": config["ml"]}


def run_job(
    model: str, table: Path, out: Path, settings: dict, top: int, src: Path, fold: str = "0"
) -> dict:
    """Train ``model`` on ``fold`` ("all": every fold, with ``train_folds``) in a fresh pinned
    interpreter (the library in ``src``); its phases and wall time."""
    env = dict(os.environ)
    pin_cpu_dispatch(env)
    env["PYTHONPATH"] = str(src)
    code = f"PATCHES = {PATCHES!r}\n" + CHILD
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            model,
            fold,
            str(table),
            str(out),
            json.dumps(settings),
            str(top),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{model}: training job failed ({proc.returncode})")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("PHASES "))
    phases = json.loads(line.removeprefix("PHASES "))
    if top:
        print(f"--- {model}: top {top} functions by own CPU")
        print(proc.stdout.split(line, 1)[1])
    total = phases.pop("total")
    phases["other"] = total - sum(phases.values())
    return {"model": model, "cpu_s": total, "wall_s": wall, **phases}


def snakemake_preamble() -> float:
    """CPU of an interpreter importing what a Snakemake ``script:`` preamble imports."""
    start = os.times()
    subprocess.run([sys.executable, "-c", "import snakemake.script"], check=True)
    end = os.times()
    return (end.children_user - start.children_user) + (end.children_system - start.children_system)


def main(argv: list[str] | None = None) -> int:
    """Build the table, profile each model's training job, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000, help="rows of the table")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/thetaflow_training_profile"))
    parser.add_argument("--models", nargs="*", help="models of the default config (default all)")
    parser.add_argument("--repeat", type=int, default=1, help="jobs per model (min CPU kept)")
    parser.add_argument(
        "--src",
        type=Path,
        default=REPO_ROOT / "src",
        help="the library to profile (e.g. another commit's src/, for a side-by-side run)",
    )
    parser.add_argument(
        "--all-folds",
        nargs="*",
        default=[],
        metavar="MODEL",
        help="also train these models on every fold: one job per fold, then one job for all",
    )
    parser.add_argument("--tag", default="", help="suffix of the model directories written")
    parser.add_argument("--cprofile", type=int, default=0, metavar="N", help="top N functions")
    add_json_argument(parser, "training_profile")
    args = parser.parse_args(argv)

    config = load_config()
    table = build_table(args.workdir, args.events, config)
    settings = settings_of(config)
    rows = []
    for model in args.models or list(config["ml"]["models"]):
        runs = [
            run_job(
                model,
                table,
                args.workdir / f"{model}_fold0{args.tag}_{i}",
                settings,
                args.cprofile,
                args.src,
            )
            for i in range(args.repeat)
        ]
        rows.append(min(runs, key=lambda r: r["cpu_s"]))
        print(json.dumps(rows[-1]), flush=True)
    total = {k: sum(r[k] for r in rows) for k in ("cpu_s", "wall_s", *PHASES)}
    rows.append({"model": "all (fold 0)", **total})
    folds = int(config["ml"]["folds"])
    for model in args.all_folds:
        each_dir = args.workdir / f"{model}_each{args.tag}"
        each_dir.mkdir(parents=True, exist_ok=True)
        jobs = [
            run_job(model, table, each_dir / f"fold{f}", settings, 0, args.src, str(f))
            for f in range(folds)
        ]
        each = {k: sum(r[k] for r in jobs) for k in ("cpu_s", "wall_s", *PHASES)}
        rows.append({"model": f"{model}: {folds} jobs of one fold", **each})
        together = run_job(
            model, table, args.workdir / f"{model}_all{args.tag}", settings, 0, args.src, "all"
        )
        rows.append({**together, "model": f"{model}: one job of {folds} folds"})
    print_table(
        f"CPU seconds of one train job (fold 0), {args.events:,}-event table",
        ["model", "cpu s", "wall s", *PHASES],
        [[r["model"], *(round(r[k], 2) for k in ("cpu_s", "wall_s", *PHASES))] for r in rows],
    )
    preamble = snakemake_preamble()
    print(f"snakemake script preamble (import snakemake.script): {preamble:.2f} s CPU per job")
    save_json(
        args.json,
        {
            "environment": environment(),
            "events": args.events,
            "src": str(args.src),
            "rows": rows,
            "snakemake_preamble_cpu_s": preamble,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
