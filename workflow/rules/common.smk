# Helpers shared by the .smk files: the sample list, variations, targets and input
# functions. Rules call these named functions instead of lambdas (snakemake --lint).

import os
import sys

from snakemake.exceptions import WorkflowError

# the library of this checkout, for this process and for the jobs (the rules' conda envs
# under --use-conda hold thetaflow's dependencies, not thetaflow itself)
sys.path.insert(0, os.path.join(workflow.basedir, "src"))

from thetaflow.operations.batch import put_on_job_pythonpath

put_on_job_pythonpath(os.path.join(workflow.basedir, "src"))

from thetaflow.analysis import prepare
from thetaflow.core.errors import ConfigError
from thetaflow.core.samples import main_data_sample
from thetaflow.ingestion.variations import variation_names

# the one load path (thetaflow.analysis): schema validation with defaults, the sample list,
# every stage's checks; config["samples"] becomes the absolute path of the list
try:
    SAMPLES = prepare(config, [workflow.basedir], source="config")
except ConfigError as err:
    raise WorkflowError(str(err))

MC_SAMPLES = [s.name for s in SAMPLES.values() if not s.is_data]
# known physics (signal, background): trained on, stacked, fitted; kind bsm is none of these
SM_MC_SAMPLES = [s.name for s in SAMPLES.values() if s.is_standard_model_mc]
BSM_SAMPLES = [s.name for s in SAMPLES.values() if s.is_bsm]
MAIN_DATA = main_data_sample(config, SAMPLES)
DATA_SAMPLES = [s.name for s in SAMPLES.values() if s.is_data]
GENERATED_SAMPLES = [s.name for s in SAMPLES.values() if s.is_generated]
MC_VARIATIONS = variation_names(config, is_data=False)
FEATURES = list(config["features"])
MODELS = list(config["ml"]["models"]) if "ml" in config else []
FOLDS = list(range(config["ml"]["folds"])) if "ml" in config else []
NEVER = "(?!x)x"  # a regex that matches nothing, for an empty sample group


def _alternatives(names):
    return "|".join(names) if names else NEVER


def simulation_settings(wildcards):
    """Config a simulated chunk depends on (a change reruns it: params rerun trigger)."""
    return {
        "seed": config["seeds"]["simulation"],
        "simulation": config["simulation"],
        "lumi_fb": config["analysis"]["lumi_fb"],
        "samples": {n: s.spec for n, s in SAMPLES.items() if s.is_generated},
    }


def ingest_settings(wildcards):
    """Config the ingestion of a sample depends on."""
    return {
        "ingest": config["ingest"],
        "selection": config["selection"],
        "systematics": config.get("systematics", {}),
        "lumi_fb": config["analysis"]["lumi_fb"],
        "sample": SAMPLES[wildcards.sample].spec,
    }


def feature_settings(wildcards):
    """Config the feature tables depend on."""
    return {
        "features": config["features"],
        "systematics": config.get("systematics", {}),
    }


def ml_settings(wildcards):
    """Config shared by every model: folds, seed, inputs, weights policy."""
    return {k: v for k, v in config["ml"].items() if k != "models"}


def regression_settings(wildcards):
    """Config of the b-jet energy regression."""
    return config.get("regression", {})


def model_settings(wildcards):
    """One model's config entry plus the shared ML settings."""
    return {"model": config["ml"]["models"][wildcards.model], **ml_settings(wildcards)}


def sample_variations(name):
    """Variations produced for a sample: nominal only for data."""
    return ["nominal"] if SAMPLES[name].is_data else MC_VARIATIONS


def simulation_chunks(wildcards):
    """The simulated chunk files of a generated sample."""
    from thetaflow.simulation.production import sample_chunks

    spec = SAMPLES[wildcards.sample].spec["generate"]
    n = sample_chunks(spec, config["simulation"]["events_per_chunk"])
    return expand(
        "results/simulation/{sample}/{chunk}.root",
        sample=wildcards.sample,
        chunk=range(n),
    )


def ingest_inputs(wildcards):
    """Input files of a sample that Snakemake can track: simulated chunks or local files."""
    sample = SAMPLES[wildcards.sample]
    if sample.is_generated:
        return simulation_chunks(wildcards)
    return [f for f in sample.spec["files"] if "://" not in f]


def ingest_files(wildcards, input):
    """All input files of a sample, remote URLs (root://...) included, in config order."""
    sample = SAMPLES[wildcards.sample]
    return list(input) if sample.is_generated else list(sample.spec["files"])


def nominal_feature_files(wildcards):
    """Nominal feature tables of the known physics and the main data sample, keyed by
    sample (for control plots)."""
    shown = SM_MC_SAMPLES + ([MAIN_DATA] if MAIN_DATA else [])
    return {name: f"results/features/{name}/nominal.parquet" for name in shown}


def mc_nominal_feature_files(wildcards):
    """Nominal feature tables of the simulated known physics, keyed by sample (training
    data; a bsm sample is never trained on)."""
    return {name: f"results/features/{name}/nominal.parquet" for name in SM_MC_SAMPLES}


def fold_model_dirs(wildcards):
    """The trained model directories of every fold of one model, in fold order."""
    return expand(
        "results/models/{model}/fold{fold}", model=wildcards.model, fold=FOLDS
    )


def sample_variation_pairs():
    """Every (sample, variation) that has a feature table, in a fixed order."""
    return [(name, v) for name in SAMPLES for v in sample_variations(name)]


def all_feature_files():
    """Feature tables of every sample and variation (the scoring inputs)."""
    return [f"results/features/{s}/{v}.parquet" for s, v in sample_variation_pairs()]


def score_dir(model):
    """The directory of one model's (or the autoencoder's) score files: the output of its
    one scoring job. Consumers depend on it, not on the ~3 x samples files inside: one
    output instead of hundreds keeps Snakemake's input-to-output matching fast."""
    return f"results/scores/{model}"


def score_files(model):
    """Score files of one model, one per sample and variation (same order as features)."""
    return [
        f"results/scores/{model}/{s}/{v}.parquet" for s, v in sample_variation_pairs()
    ]


def model_score_files(wildcards):
    """Score files the scoring job of one model writes into its directory (feature order)."""
    return score_files(wildcards.model)


def autoencoder_score_files(wildcards):
    """Score files the autoencoder's scoring job writes into its directory (feature order)."""
    return score_files("autoencoder")


def ml_targets():
    """Scores of every sample and variation, evaluations and the model comparison."""
    targets = []
    targets += [score_dir(model) for model in MODELS]
    if MODELS:
        targets += expand("results/evaluation/{model}/metrics.json", model=MODELS)
        targets.append("results/evaluation/comparison.csv")
    if "regression" in config:
        targets.append("results/regression/summary.json")
        targets += [
            f"results/regression/m_bb/{s}/{v}.parquet"
            for s, v in sample_variation_pairs()
        ]
    return targets


def all_targets():
    """Everything the default analysis produces so far."""
    targets = expand("results/cutflow/{sample}.json", sample=SAMPLES)
    for name in SAMPLES:
        targets += expand(
            "results/features/{sample}/{variation}.parquet",
            sample=name,
            variation=sample_variations(name),
        )
    targets += expand("results/plots/control/{feature}.png", feature=FEATURES)
    targets.append("results/cutflow/cutflow.csv")
    return (
        targets
        + ml_targets()
        + unsupervised_targets()
        + inference_targets()
        + benchmark_targets()
    )


# ----------------------------------------------------------------- unsupervised (anomaly, diagnostics)


def anomaly_settings(wildcards):
    """Config the autoencoder depends on (with the folds of the ml section)."""
    return {"anomaly": config.get("anomaly", {}), **ml_settings(wildcards)}


def diagnostics_settings(wildcards):
    """Config the PCA and clustering diagnostics depend on."""
    return {
        "diagnostics": config.get("diagnostics", {}),
        "anomaly_inputs": config.get("anomaly", {}).get("inputs", []),
        **ml_settings(wildcards),
    }


def anomaly_training_files(wildcards):
    """Nominal feature tables the autoencoder trains on, keyed by sample."""
    from thetaflow.unsupervised.autoencoder import training_samples

    names = training_samples(config, SAMPLES)
    return {name: f"results/features/{name}/nominal.parquet" for name in names}


def autoencoder_dirs(wildcards=None):
    """The autoencoder of every fold, in fold order."""
    return expand("results/models/autoencoder/fold{fold}", fold=FOLDS)


def simulated_nominal_files(wildcards=None):
    """Nominal feature tables of every simulated sample (known physics and bsm)."""
    return {
        name: f"results/features/{name}/nominal.parquet"
        for name in SM_MC_SAMPLES + BSM_SAMPLES
    }


def simulated_nominal_scores(wildcards=None):
    """Nominal autoencoder scores of every simulated sample, keyed by sample."""
    return {
        name: f"results/scores/autoencoder/{name}/nominal.parquet"
        for name in SM_MC_SAMPLES + BSM_SAMPLES
    }


def blind_search_data():
    """The pseudo-data sets of the blind search (default every data sample)."""
    return config["anomaly"].get("blind_search", {}).get("data") or DATA_SAMPLES


def blind_search_samples():
    """Samples the blind search reads: simulation and its pseudo-data sets."""
    return SM_MC_SAMPLES + BSM_SAMPLES + blind_search_data()


def blind_search_features(wildcards):
    """Nominal feature tables (weights) of the blind search's samples, keyed by sample."""
    return {
        name: f"results/features/{name}/nominal.parquet"
        for name in blind_search_samples()
    }


def blind_search_scores(wildcards):
    """Nominal scores of every discriminant for the blind search's samples."""
    return [
        f"results/scores/{disc}/{name}/nominal.parquet"
        for disc in ["autoencoder"] + MODELS
        for name in blind_search_samples()
    ]


def blind_search_score_dirs(wildcards):
    """Score directories of every discriminant of the blind search (the files' producers)."""
    return [score_dir(disc) for disc in ["autoencoder"] + MODELS]


def unsupervised_targets():
    """Autoencoder scores and evaluation, blind search, PCA and clustering."""
    targets = []
    if "anomaly" in config:
        targets.append(score_dir("autoencoder"))
        targets += [
            "results/anomaly/metrics.json",
            "results/anomaly/blind_search.json",
        ]
    if "diagnostics" in config:
        targets += [
            "results/diagnostics/pca/summary.json",
            "results/diagnostics/clustering/summary.json",
        ]
    return targets


# ----------------------------------------------------------------- statistical inference

DISCRIMINANTS = (
    list(config["inference"]["discriminants"]) if "inference" in config else []
)


def _closure_discriminants():
    from thetaflow.inference.discriminants import closure_discriminants

    return closure_discriminants(config) if "inference" in config else []


CLOSURE_DISCRIMINANTS = _closure_discriminants()


def inference_settings(wildcards):
    """Config the statistical model and fits depend on (params rerun trigger)."""
    return {"inference": config["inference"], "lumi_fb": config["analysis"]["lumi_fb"]}


def template_files(wildcards):
    """Every feature/score file the fine histograms of one discriminant read."""
    from thetaflow.inference.discriminants import discriminant
    from thetaflow.inference.histograms import template_inputs

    files = template_inputs(config, SAMPLES, wildcards.discriminant)
    paths = [path for paths in files.values() for path in paths]
    disc = discriminant(config, wildcards.discriminant)
    if disc.source != "score":
        return paths
    # score files are written by one job per discriminant: depend on its directory
    inside = score_dir(disc.name) + "/"
    return [p for p in paths if not p.startswith(inside)] + [score_dir(disc.name)]


def scan_figures(discriminant):
    """The scan figures of one discriminant, one per scanned parameter."""
    from thetaflow.inference.discriminants import scan_figure_name

    return [
        f"results/fit/{discriminant}/scan_{scan_figure_name(p)}.png"
        for p in config["inference"]["scan"]["parameters"]
    ]


def scan_figure_map(wildcards):
    """Scanned parameter -> its figure, for the scan script."""
    parameters = config["inference"]["scan"]["parameters"]
    return dict(zip(parameters, scan_figures(wildcards.discriminant)))


def inference_targets():
    """Every fit output of every discriminant, the closure checks and the summary."""
    if "inference" not in config:
        return []
    targets = []
    for d in DISCRIMINANTS:
        targets += [
            f"results/fit/{d}/{name}"
            for name in ("fit.json", "ranking.json", "scan.json", "limit.json")
        ]
    for d in CLOSURE_DISCRIMINANTS:
        targets += [
            f"results/fit/{d}/closure/{name}.json"
            for name in ("asimov", "toys", "injection")
        ]
    return targets + ["results/fit/comparison.csv", "results/summary.json"]


# ----------------------------------------------------------------- operations (provenance, batch)

PROVENANCE = "results/provenance.json"


def provenance_inputs(wildcards):
    """Every other target of the run, so that the provenance record is written last."""
    return [t for t in all_targets() if t != PROVENANCE]


def benchmark_patterns(wildcards):
    """Benchmark file pattern of every rule that has one, keyed by rule name."""
    return {r.name: str(r.benchmark) for r in workflow.rules if r.benchmark}


def benchmark_constraints(wildcards):
    """Wildcard constraints of each rule (global ones first), to tell shared patterns apart."""
    glob = dict(workflow.wildcard_constraints)
    return {
        r.name: {**glob, **dict(getattr(r, "wildcard_constraints", None) or {})}
        for r in workflow.rules
        if r.benchmark
    }


def provenance_settings(wildcards):
    """The whole merged configuration: its hash goes into the record (and reruns it)."""
    return config


def batch_preflight():
    """Before the first job goes to a batch system: the local workflow profile must not
    be merged over the farm's, and SLURM must answer (one clear message, bounded time).
    """
    from thetaflow.operations.batch import BatchError, check_slurm

    plugin = workflow.executor_plugin
    if plugin is None or plugin.common_settings.local_exec:
        return
    if not any(arg.startswith("--workflow-profile") for arg in sys.argv):
        raise WorkflowError(
            f"executor {plugin.name}: Snakemake applied profiles/default (local settings: "
            "a 20 GB memory cap for all jobs together, 5 s latency-wait) over your batch "
            "profile; add --workflow-profile none"
        )
    if plugin.name == "slurm":
        try:
            check_slurm(timeout=30)
        except BatchError as err:
            raise WorkflowError(str(err))


# ----------------------------------------------------------------- benchmarks (GPU, FPGA)


def _benchmark_model_names():
    """benchmarks.models, each an ml.models entry or "autoencoder" (else a config error)."""
    if "benchmarks" not in config or "ml" not in config:
        return []
    spec = config["benchmarks"]
    names = spec.get("models", ["nn", "bdt", "autoencoder"])
    unknown = [n for n in names if n != "autoencoder" and n not in MODELS]
    if unknown:
        raise WorkflowError(
            f"config benchmarks.models: {', '.join(unknown)} not in ml.models "
            f"({', '.join(MODELS)}) and not 'autoencoder'"
        )
    if not 0 <= spec.get("fold", 0) < len(FOLDS):
        raise WorkflowError(
            f"config benchmarks.fold: {spec.get('fold')} is not one of the {len(FOLDS)} folds"
        )
    return list(names)


BENCHMARK_MODELS = _benchmark_model_names()


def benchmark_settings(wildcards):
    """Config the benchmarks depend on (and the models' config entries)."""
    return {
        "benchmarks": config["benchmarks"],
        "models": {m: config["ml"]["models"].get(m) for m in BENCHMARK_MODELS},
        "anomaly": config.get("anomaly"),
        **ml_settings(wildcards),
    }


def _benchmark_model_dir(name):
    """The benchmarked fold's model directory; None for an autoencoder this config lacks."""
    if name == "autoencoder" and "anomaly" not in config:
        return None
    return f"results/models/{name}/fold{config['benchmarks'].get('fold', 0)}"


def gpu_benchmark_inputs(wildcards):
    """Training table and the model directory of every benchmarked model, keyed by model."""
    inputs = {"table": "results/ml/training.parquet"}
    for name in BENCHMARK_MODELS:
        directory = _benchmark_model_dir(name)
        if directory:
            inputs[name] = directory
    return inputs


def gpu_benchmark_models(wildcards):
    """Benchmarked models and their directory (None: not in this config), for the script."""
    return {name: _benchmark_model_dir(name) for name in BENCHMARK_MODELS}


def fpga_benchmark_inputs(wildcards):
    """Training table and the model directory of one benchmarked model (if it exists)."""
    inputs = {"table": "results/ml/training.parquet"}
    directory = _benchmark_model_dir(wildcards.bench)
    if directory:
        inputs["model"] = directory
    return inputs


def fpga_summary_inputs(wildcards):
    """Per-model FPGA results and, when switched on, the reference network's."""
    inputs = {
        "models": expand("results/benchmarks/fpga/{bench}.json", bench=BENCHMARK_MODELS)
    }
    if config["benchmarks"]["fpga"].get("reference", True):
        inputs["reference"] = "results/benchmarks/fpga/reference.json"
    return inputs


def benchmark_targets():
    """The GPU benchmark and the FPGA tiers table, each when switched on."""
    if not BENCHMARK_MODELS:
        return []
    targets = []
    if config["benchmarks"]["gpu"].get("enabled", True):
        targets.append("results/benchmarks/gpu/benchmark.json")
    if config["benchmarks"]["fpga"].get("enabled", True):
        targets.append("results/benchmarks/fpga/tiers.csv")
    return targets
