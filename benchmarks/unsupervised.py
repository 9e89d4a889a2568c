"""Unsupervised stage on the default analysis: autoencoder training time, diagnostics time,
the anomaly score's AUC and the blind search's tail significances.

Reads the nominal feature tables of a default run (``--features``: one or more results
directories searched in order, so the blind search's ``bsm``/``data_bsm`` tables may come
from a separate run) and the supervised models of that run (``--models``), then runs the
library entry points the rules call, in a scratch directory:

* ``train_autoencoder_fold`` for every fold, two folds at a time in spawned processes
  with one thread each (as ``snakemake --cores 2`` runs the rule);
* ``score_autoencoder``, ``evaluate_autoencoder``, the supervised models' scores of the
  samples the run lacks, ``run_blind_search``;
* ``run_pca`` and ``run_clustering`` (the diagnostics).

Prints wall and CPU times and the physics figures and writes them as JSON; never asserts.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from _common import REPO_ROOT, environment, load_config, print_table, save_json, scratch_dir

from thetaflow.core import paths
from thetaflow.core.samples import load_samples


def _train_fold(config: dict, files: dict, fold: int, output: str) -> dict:
    """Train one fold in a worker process; its wall and CPU time and the training record."""
    # here, not at the top: the spawned workers re-import this module, and the import is not
    # part of the timed training
    from thetaflow.unsupervised.autoencoder import train_autoencoder_fold

    def cpu() -> float:  # this worker's CPU seconds (a worker may train several folds)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    cpu0, start = cpu(), time.perf_counter()
    record = train_autoencoder_fold(config, files, fold, output, threads=1)
    return {
        "fold": fold,
        "wall_s": time.perf_counter() - start,
        "cpu_s": cpu() - cpu0,
        "train_seconds": record["train_seconds"],
        "epochs": record["epochs_run"],
        "n_train": record["n_train"],
    }


def _timed(fn, *args):  # type: ignore[no-untyped-def]
    """``fn(*args)`` with its wall and CPU seconds."""

    def cpu() -> float:
        u = resource.getrusage(resource.RUSAGE_SELF)
        return u.ru_utime + u.ru_stime

    c0, t0 = cpu(), time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - t0, cpu() - c0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--features",
        type=Path,
        nargs="+",
        default=[Path(paths.RESULTS)],
        help="results directories holding features/{sample}/nominal.parquet, searched in order",
    )
    parser.add_argument(
        "--models", type=Path, default=Path(paths.MODELS_DIR), help="supervised models of the run"
    )
    parser.add_argument("--scratch", default=None, help="parent directory of the scratch directory")
    parser.add_argument("--keep", action="store_true", help="keep the scratch files")
    parser.add_argument("--json", type=Path, default=REPO_ROOT / paths.UNSUPERVISED_BENCHMARK)
    args = parser.parse_args(argv)
    config = load_config()
    samples = load_samples(config)

    def features(sample: str) -> str:
        for base in args.features:
            path = base / "features" / sample / "nominal.parquet"
            if path.exists():
                return str(path)
        raise SystemExit(
            f"no nominal feature table of sample '{sample}' under {[str(b) for b in args.features]}"
        )

    # here, not at the top: the spawned training workers re-import this module and need none
    # of these stages
    from thetaflow.ml.scoring import score_samples
    from thetaflow.unsupervised.autoencoder import score_autoencoder, training_samples
    from thetaflow.unsupervised.blind_search import blind_search_settings, run_blind_search
    from thetaflow.unsupervised.diagnostics import run_clustering, run_pca
    from thetaflow.unsupervised.evaluation import evaluate_autoencoder

    figures: dict = {"environment": environment()}
    with scratch_dir("unsupervised-", args.scratch, args.keep) as work:
        train_files = {s: features(s) for s in training_samples(config, samples)}
        folds = range(config["ml"]["folds"])
        dirs = [str(work / "models" / f"fold{k}") for k in folds]
        start = time.perf_counter()
        with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
            runs = list(
                pool.map(_train_fold, [config] * len(dirs), [train_files] * len(dirs), folds, dirs)
            )
        figures["autoencoder_training"] = {
            "wall_s_2_cores": time.perf_counter() - start,
            "folds": runs,
            "cpu_s_all_folds": sum(r["cpu_s"] for r in runs),
        }
        simulated = [s.name for s in samples.values() if not s.is_data]
        spec = blind_search_settings(config, samples)
        everything = list(dict.fromkeys(simulated + spec["data"]))
        feature_files = {s: features(s) for s in everything}
        scores = {s: str(work / "scores" / "autoencoder" / f"{s}.parquet") for s in everything}
        _, wall, cpu = _timed(
            score_autoencoder, config, dirs, {feature_files[s]: scores[s] for s in everything}
        )
        figures["autoencoder_scoring"] = {"wall_s": wall, "cpu_s": cpu}
        outputs = {
            k: str(work / "anomaly" / f"{k}.{'json' if k == 'metrics' else 'png'}")
            for k in ("metrics", "roc", "distributions", "feature_errors")
        }
        metrics, wall, cpu = _timed(
            evaluate_autoencoder,
            config,
            {s: scores[s] for s in simulated},
            {s: feature_files[s] for s in simulated},
            dirs,
            outputs,
        )
        figures["evaluation"] = {
            "wall_s": wall,
            "cpu_s": cpu,
            "known_signal": metrics.get("known_signal"),
            "bsm": metrics.get("bsm"),
        }
        # supervised scores of every sample (the run's models; samples it lacks are scored here)
        by_disc = {"autoencoder": scores}
        for model in config["ml"]["models"]:
            model_dirs = [str(args.models / model / f"fold{k}") for k in folds]
            out = {s: str(work / "scores" / model / f"{s}.parquet") for s in everything}
            score_samples(config, model, model_dirs, {feature_files[s]: out[s] for s in everything})
            by_disc[model] = out
        outputs = {
            "json": str(work / "blind_search.json"),
            "table": str(work / "blind_search.csv"),
            "significance": str(work / "blind_search.png"),
            "tails": str(work / "blind_search_tails.png"),
        }
        _, wall, cpu = _timed(run_blind_search, config, by_disc, feature_files, outputs)
        blind = json.loads(Path(outputs["json"]).read_text())
        figures["blind_search"] = {
            "wall_s": wall,
            "cpu_s": cpu,
            "results": blind["results"],
            "headline_tail_efficiency": blind["headline_tail_efficiency"],
        }
        diag_files = {s: feature_files[s] for s in simulated}
        pca_out = {
            k: str(work / "pca" / f"{k}.{'json' if k == 'summary' else 'png'}")
            for k in ("summary", "scree", "projections", "loadings")
        }
        pca, pca_wall, pca_cpu = _timed(run_pca, config, diag_files, pca_out)
        cl_out = {
            k: str(work / "clustering" / f"{k}.{'json' if k == 'summary' else 'png'}")
            for k in ("summary", "kmeans_selection", "kmeans_composition", "dbscan")
        }
        clusters, cl_wall, cl_cpu = _timed(run_clustering, config, diag_files, cl_out)
        figures["diagnostics"] = {
            "pca": {
                "wall_s": pca_wall,
                "cpu_s": pca_cpu,
                "components_for_90_percent": pca["components_for_90_percent"],
                "first_two": pca["explained_variance_ratio"][:2],
            },
            "clustering": {
                "wall_s": cl_wall,
                "cpu_s": cl_cpu,
                "k": clusters["kmeans"]["k"],
                "purity": clusters["kmeans"]["purity"],
                "dbscan_noise_fraction": clusters["dbscan"]["noise_fraction"],
            },
        }
    train = figures["autoencoder_training"]
    print_table(
        "Autoencoder training (default config, 2 folds at a time, 1 thread each)",
        ["fold", "events", "epochs", "fit s", "job wall s", "job cpu s"],
        [
            [r["fold"], r["n_train"], r["epochs"], r["train_seconds"], r["wall_s"], r["cpu_s"]]
            for r in train["folds"]
        ],
    )
    print(
        f"all folds: {train['wall_s_2_cores']:.1f} s wall on 2 cores, "
        f"{train['cpu_s_all_folds']:.1f} s CPU "
        "(goal <= 180 s wall; load average at start "
        f"{figures['environment']['load_average_1min_at_start']:.1f})"
    )
    diag = figures["diagnostics"]
    rows = [
        ["evaluate_autoencoder", figures["evaluation"]["wall_s"], figures["evaluation"]["cpu_s"]],
        ["blind_search", figures["blind_search"]["wall_s"], figures["blind_search"]["cpu_s"]],
        ["pca", diag["pca"]["wall_s"], diag["pca"]["cpu_s"]],
        ["clustering", diag["clustering"]["wall_s"], diag["clustering"]["cpu_s"]],
    ]
    print_table(
        "Evaluation and diagnostics (goal: PCA + clustering <= 120 s)",
        ["step", "wall s", "cpu s"],
        rows,
    )
    ks = figures["evaluation"]["known_signal"] or {}
    bsm = figures["evaluation"]["bsm"] or {}
    print_table(
        "Anomaly score (out-of-fold, physics weights)",
        ["vs backgrounds", "AUC", "eff@1e-2", "eff@1e-3"],
        [
            [
                name,
                m.get("auc"),
                m.get("signal_efficiency_at_0.01"),
                m.get("signal_efficiency_at_0.001"),
            ]
            for name, m in (("known signal", ks), ("BSM", bsm))
            if m
        ],
    )
    rows = []
    for data, by_model in figures["blind_search"]["results"].items():
        for disc, r in by_model.items():
            rows.append(
                [
                    data,
                    disc,
                    r["expected_sm"],
                    r["sm_uncertainty"],
                    r["expected_bsm"],
                    r["observed"],
                    r["observed_significance"],
                    r["expected_significance"],
                ]
            )
    print_table(
        f"Blind search, tail {figures['blind_search']['headline_tail_efficiency']:g} of the "
        "expected SM",
        ["data", "discriminant", "SM exp.", "± unc.", "BSM exp.", "observed", "Z obs", "Z exp"],
        rows,
    )
    save_json(args.json, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
