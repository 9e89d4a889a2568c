"""Where the workflow's products live: the one place ``results/...`` paths are spelled.

Rules (through ``workflow/rules/common.smk``: ``from thetaflow.core import paths``), the
library and the benchmark scripts name files by these constants instead of spelling the
paths. A template keeps Snakemake's ``{wildcard}`` names: a rule uses it as it is, code fills
it with ``TEMPLATE.format(...)`` or Snakemake's ``expand``. Paths are relative to the working
directory of the run. :func:`producer` maps a path back to the rule that writes it. Imports only
the standard library: the workflow imports this module at parse time.
"""

from __future__ import annotations

import os
import re
from pathlib import PurePath
from typing import NamedTuple

#: The directory of every product of a run.
RESULTS = "results"

# ---------------------------------------------------------------- simulation, ingestion

#: One simulated NanoAOD-like chunk (temporary: ingestion reads it).
SIMULATED_CHUNK = "results/simulation/{sample}/{chunk}.root"
#: Selected events of one sample and (shape) variation.
EVENTS = "results/events/{sample}/{variation}.parquet"
#: The cutflow of one sample, and the table of every sample's.
CUTFLOW = "results/cutflow/{sample}.json"
CUTFLOW_TABLE = "results/cutflow/cutflow.csv"

# ---------------------------------------------------------------- features, control plots

#: The feature tables (cabinetry's documented InputPath is this directory).
FEATURES_DIR = "results/features"
FEATURE_TABLE = FEATURES_DIR + "/{sample}/{variation}.parquet"
CONTROL_PLOT = "results/plots/control/{feature}.png"

# ---------------------------------------------------------------- supervised learning

#: The training table of the simulated known physics and its fold assignment.
TRAINING_TABLE = "results/ml/training.parquet"
TRAINING_FOLDS = "results/ml/folds.json"
#: One trained model (a directory) per model and fold; the autoencoder's are model "autoencoder".
MODELS_DIR = "results/models"
MODEL_DIR = MODELS_DIR + "/{model}/fold{fold}"
AUTOENCODER_DIR = MODELS_DIR + "/autoencoder/fold{fold}"
#: The out-of-fold scores of one model (or the autoencoder): one directory, the output of its
#: one scoring job, holding one file per sample and variation.
SCORE_DIR = "results/scores/{model}"
SCORE_FILE = SCORE_DIR + "/{sample}/{variation}.parquet"
#: The evaluation of one model, and the comparison of the models.
EVALUATION_DIR = "results/evaluation/{model}"
EVALUATION_METRICS = EVALUATION_DIR + "/metrics.json"
EVALUATION_ROC = EVALUATION_DIR + "/roc.png"
EVALUATION_OVERTRAINING = EVALUATION_DIR + "/overtraining.png"
EVALUATION_IMPORTANCE = EVALUATION_DIR + "/importance.png"
MODEL_COMPARISON_TABLE = "results/evaluation/comparison.csv"
MODEL_COMPARISON_FIGURE = "results/evaluation/comparison.png"
MODEL_COMPARISON_ROC = "results/evaluation/roc_all.png"
#: The optimiser study of one network (ml.optimiser_study): loss curves and AUCs, and its figure.
OPTIMISER_STUDY_DIR = "results/evaluation/optimiser_study"
OPTIMISER_STUDY = OPTIMISER_STUDY_DIR + "/study.json"
OPTIMISER_STUDY_FIGURE = OPTIMISER_STUDY_DIR + "/validation_loss.png"

# ---------------------------------------------------------------- b-jet energy regression

#: The two halves' models ({half}: 0 or 1, filled by the rule; not a Snakemake wildcard).
REGRESSION_MODEL = "results/regression/model_half{half}.ubj"
REGRESSION_SUMMARY = "results/regression/summary.json"
REGRESSION_PLOT = "results/regression/mbb_regression.png"
#: The regressed m_bb of one sample and variation (one row per feature-table row).
REGRESSED_MBB = "results/regression/m_bb/{sample}/{variation}.parquet"

# ---------------------------------------------------------------- unsupervised learning

#: The autoencoder's evaluation on the simulated samples.
ANOMALY_METRICS = "results/anomaly/metrics.json"
ANOMALY_ROC = "results/anomaly/roc.png"
ANOMALY_SCORE_DISTRIBUTIONS = "results/anomaly/score_distributions.png"
ANOMALY_FEATURE_ERRORS = "results/anomaly/feature_errors.png"
#: The blind search for an unmodelled signal.
BLIND_SEARCH = "results/anomaly/blind_search.json"
BLIND_SEARCH_TABLE = "results/anomaly/blind_search.csv"
BLIND_SEARCH_FIGURE = "results/anomaly/blind_search.png"
BLIND_SEARCH_TAILS = "results/anomaly/blind_search_tails.png"
#: PCA and clustering diagnostics of the feature space.
PCA_SUMMARY = "results/diagnostics/pca/summary.json"
PCA_SCREE = "results/diagnostics/pca/scree.png"
PCA_COMPONENTS = "results/diagnostics/pca/components.png"
PCA_LOADINGS = "results/diagnostics/pca/loadings.png"
CLUSTERING_SUMMARY = "results/diagnostics/clustering/summary.json"
CLUSTERING_KMEANS_SELECTION = "results/diagnostics/clustering/kmeans_selection.png"
CLUSTERING_KMEANS_COMPOSITION = "results/diagnostics/clustering/kmeans_composition.png"
CLUSTERING_DBSCAN = "results/diagnostics/clustering/dbscan.png"

# ---------------------------------------------------------------- statistical inference

#: Everything fitted for one discriminant lives in its fit directory.
FIT_DIR = "results/fit/{discriminant}"
HISTOGRAMS = FIT_DIR + "/histograms.json"
WORKSPACE = FIT_DIR + "/workspace.json"
BINNING = FIT_DIR + "/binning.json"
CABINETRY_CONFIG = FIT_DIR + "/cabinetry.yaml"
TEMPLATES_DIR = FIT_DIR + "/templates"
FIT_RESULT = FIT_DIR + "/fit.json"
YIELDS = FIT_DIR + "/yields.csv"
PREFIT_FIGURE = FIT_DIR + "/prefit.png"
POSTFIT_FIGURE = FIT_DIR + "/postfit.png"
PULLS_FIGURE = FIT_DIR + "/pulls.png"
CORRELATION_FIGURE = FIT_DIR + "/correlation.png"
RANKING = FIT_DIR + "/ranking.json"
RANKING_FIGURE = FIT_DIR + "/ranking.png"
SCAN = FIT_DIR + "/scan.json"
#: One scan figure per scanned parameter ({parameter}: its file-name-safe form,
#: thetaflow.inference.discriminants.scan_figure_name; filled by code, not a wildcard).
SCAN_FIGURE = FIT_DIR + "/scan_{parameter}.png"
LIMIT = FIT_DIR + "/limit.json"
LIMIT_FIGURE = FIT_DIR + "/limit.png"
#: Asimov, toy and injection closure of a closure discriminant.
ASIMOV_CLOSURE = FIT_DIR + "/closure/asimov.json"
TOY_CLOSURE = FIT_DIR + "/closure/toys.json"
TOY_CLOSURE_FIGURE = FIT_DIR + "/closure/toys.png"
INJECTION_CLOSURE = FIT_DIR + "/closure/injection.json"
INJECTION_CLOSURE_FIGURE = FIT_DIR + "/closure/injection.png"
#: The comparison of the discriminants and the headline numbers of the run.
DISCRIMINANT_COMPARISON_TABLE = "results/fit/comparison.csv"
DISCRIMINANT_COMPARISON_FIGURE = "results/fit/comparison.png"
SUMMARY = "results/summary.json"
#: The HTML report's front page: the workflow's description and the headline numbers.
REPORT_FRONT_PAGE = "results/report/front_page.rst"

# ---------------------------------------------------------------- model benchmarks (GPU, FPGA)

GPU_BENCHMARK = "results/benchmarks/gpu/benchmark.json"
GPU_INFERENCE_TABLE = "results/benchmarks/gpu/inference.csv"
GPU_INFERENCE_FIGURE = "results/benchmarks/gpu/inference.png"
#: Joules per training and per million inferences of each benchmarked model (rule benchmark_gpu).
ENERGY_TABLE = "results/benchmarks/energy/models.csv"
#: The FPGA tiers of one benchmarked model ({bench}), of the reference network, and the table.
FPGA_BENCHMARK = "results/benchmarks/fpga/{bench}.json"
FPGA_REFERENCE = "results/benchmarks/fpga/reference.json"
FPGA_TIERS = "results/benchmarks/fpga/tiers.csv"
FPGA_PRECISION_SCAN = "results/benchmarks/fpga/precision_scan.png"

# ---------------------------------------------------------------- provenance, logs, rule benchmarks

#: The run's record, written last.
PROVENANCE = "results/provenance.json"
#: Each job's log and Snakemake benchmark file (see log and rule_benchmark).
LOG_DIR = "results/logs"
RULE_BENCHMARK_DIR = "results/benchmarks/rules"
#: The benchmark scripts' own records (benchmarks/, not workflow products).
FOUNDATION_BENCHMARK_DIR = "results/benchmarks/foundation"
UNSUPERVISED_BENCHMARK = "results/benchmarks/unsupervised.json"


def log(name: str) -> str:
    """The log of the job ``name`` (wildcards kept): ``log("ingest/{sample}")`` is
    ``results/logs/ingest/{sample}.log``."""
    return f"{LOG_DIR}/{name}.log"


def rule_benchmark(name: str) -> str:
    """The Snakemake benchmark file of the job ``name`` (wildcards kept):
    ``rule_benchmark("ingest/{sample}")`` is ``results/benchmarks/rules/ingest/{sample}.tsv``."""
    return f"{RULE_BENCHMARK_DIR}/{name}.tsv"


# ---------------------------------------------------------------- which rule writes a path

#: The rules writing each output template (both ingestion rules write events and cutflows: one
#: for simulated samples, one for data), in match order: the autoencoder's model and score
#: directories before the classifiers' templates that also match them.
_WRITERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (SIMULATED_CHUNK, ("simulate",)),
    (EVENTS, ("ingest_simulation", "ingest_data")),
    (CUTFLOW_TABLE, ("cutflow_table",)),
    (CUTFLOW, ("ingest_simulation", "ingest_data")),
    (FEATURE_TABLE, ("features",)),
    (CONTROL_PLOT, ("control_plots",)),
    (TRAINING_TABLE, ("training_data",)),
    (TRAINING_FOLDS, ("training_data",)),
    (AUTOENCODER_DIR, ("train_autoencoder",)),
    (MODEL_DIR, ("train",)),
    (SCORE_DIR.format(model="autoencoder"), ("score_autoencoder",)),
    (SCORE_DIR, ("score",)),
    (MODEL_COMPARISON_TABLE, ("compare_models",)),
    (MODEL_COMPARISON_FIGURE, ("compare_models",)),
    (MODEL_COMPARISON_ROC, ("compare_models",)),
    (OPTIMISER_STUDY, ("optimiser_study",)),
    (OPTIMISER_STUDY_FIGURE, ("optimiser_study",)),
    (EVALUATION_METRICS, ("evaluate",)),
    (EVALUATION_ROC, ("evaluate",)),
    (EVALUATION_OVERTRAINING, ("evaluate",)),
    (EVALUATION_IMPORTANCE, ("evaluate",)),
    (REGRESSION_MODEL, ("bjet_regression",)),
    (REGRESSION_SUMMARY, ("bjet_regression",)),
    (REGRESSION_PLOT, ("bjet_regression",)),
    (REGRESSED_MBB, ("regressed_mbb",)),
    (ANOMALY_METRICS, ("evaluate_autoencoder",)),
    (ANOMALY_ROC, ("evaluate_autoencoder",)),
    (ANOMALY_SCORE_DISTRIBUTIONS, ("evaluate_autoencoder",)),
    (ANOMALY_FEATURE_ERRORS, ("evaluate_autoencoder",)),
    (BLIND_SEARCH, ("blind_search",)),
    (BLIND_SEARCH_TABLE, ("blind_search",)),
    (BLIND_SEARCH_FIGURE, ("blind_search",)),
    (BLIND_SEARCH_TAILS, ("blind_search",)),
    (PCA_SUMMARY, ("pca",)),
    (PCA_SCREE, ("pca",)),
    (PCA_COMPONENTS, ("pca",)),
    (PCA_LOADINGS, ("pca",)),
    (CLUSTERING_SUMMARY, ("clustering",)),
    (CLUSTERING_KMEANS_SELECTION, ("clustering",)),
    (CLUSTERING_KMEANS_COMPOSITION, ("clustering",)),
    (CLUSTERING_DBSCAN, ("clustering",)),
    (DISCRIMINANT_COMPARISON_TABLE, ("compare_discriminants",)),
    (DISCRIMINANT_COMPARISON_FIGURE, ("compare_discriminants",)),
    (HISTOGRAMS, ("histograms",)),
    (WORKSPACE, ("workspace",)),
    (BINNING, ("workspace",)),
    (CABINETRY_CONFIG, ("workspace",)),
    (TEMPLATES_DIR, ("workspace",)),
    (FIT_RESULT, ("fit",)),
    (YIELDS, ("fit",)),
    (PREFIT_FIGURE, ("fit",)),
    (POSTFIT_FIGURE, ("fit",)),
    (PULLS_FIGURE, ("fit",)),
    (CORRELATION_FIGURE, ("fit",)),
    (RANKING, ("ranking",)),
    (RANKING_FIGURE, ("ranking",)),
    (SCAN, ("scan",)),
    (LIMIT, ("limit",)),
    (LIMIT_FIGURE, ("limit",)),
    (ASIMOV_CLOSURE, ("asimov_closure",)),
    (TOY_CLOSURE, ("toys",)),
    (TOY_CLOSURE_FIGURE, ("toys",)),
    (INJECTION_CLOSURE, ("injection",)),
    (INJECTION_CLOSURE_FIGURE, ("injection",)),
    (SUMMARY, ("summary",)),
    (REPORT_FRONT_PAGE, ("report_front_page",)),
    (GPU_BENCHMARK, ("benchmark_gpu",)),
    (GPU_INFERENCE_TABLE, ("benchmark_gpu",)),
    (GPU_INFERENCE_FIGURE, ("benchmark_gpu",)),
    (ENERGY_TABLE, ("benchmark_gpu",)),
    (FPGA_REFERENCE, ("benchmark_fpga_reference",)),
    (FPGA_TIERS, ("fpga_summary",)),
    (FPGA_PRECISION_SCAN, ("fpga_summary",)),
    (FPGA_BENCHMARK, ("benchmark_fpga",)),
    (PROVENANCE, ("provenance",)),
)
#: The templates that are directory outputs: a path inside one is written by its rule.
_DIRECTORIES = frozenset(
    {AUTOENCODER_DIR, MODEL_DIR, SCORE_DIR.format(model="autoencoder"), SCORE_DIR, TEMPLATES_DIR}
)


class Producer(NamedTuple):
    """Who writes a path: the rule(s), and the rule's output holding it (the path itself, or
    the directory output it lies in: deleting that makes Snakemake rerun the rule)."""

    rules: tuple[str, ...]
    output: str


def _pattern(template: str, directory: bool) -> re.Pattern[str]:
    """``template`` as a regular expression: a wildcard is one path component."""
    spelled = "".join(
        re.escape(text) + ("[^/]+" if wildcard else "")
        for text, wildcard in re.findall(r"([^{]*)(?:\{(\w+)\})?", template)
    )
    return re.compile(f"(?P<output>{spelled})" + ("(?:/.+)?" if directory else ""))


_PATTERNS = tuple(
    (_pattern(template, template in _DIRECTORIES), rules) for template, rules in _WRITERS
)


def producer(path: str | os.PathLike[str]) -> Producer | None:
    """The rule(s) writing ``path`` (relative to the run's directory or absolute), found by the
    templates above; None for a path no rule writes. Used to say how to rebuild a bad file."""
    parts = PurePath(path).parts
    for start, part in enumerate(parts):
        if part != RESULTS:
            continue
        relative = "/".join(parts[start:])
        for pattern, rules in _PATTERNS:
            match = pattern.fullmatch(relative)
            if match:
                return Producer(rules, str(PurePath(*parts[:start], match["output"])))
    return None
