# Helpers shared by the .smk files: the sample list, variations, targets, input functions
# and each job's settings (its params: the config it reads, see job_settings). Rules call
# these named functions instead of lambdas (snakemake --lint).

import os
import sys

from snakemake.exceptions import WorkflowError

# the library of this checkout, for this process and for the jobs (the rules' conda envs
# under --use-conda hold thetaflow's dependencies, not thetaflow itself)
sys.path.insert(0, os.path.join(workflow.basedir, "src"))

from thetaflow.operations.batch import BatchError, check_slurm, put_on_job_pythonpath

put_on_job_pythonpath(os.path.join(workflow.basedir, "src"))

from thetaflow.analysis import prepare
from thetaflow.benchmarking.inputs import benchmark_model_dir
from thetaflow.core import paths
from thetaflow.core.errors import ConfigError
from thetaflow.core.samples import (
    REMOTE_PREFIXES,
    main_data_sample,
    pseudo_data_processes,
)
from thetaflow.core.settings import config_slice
from thetaflow.inference.discriminants import (
    COUNT,
    closure_discriminants,
    discriminant,
    pair_name,
    scan_figure_name,
)
from thetaflow.inference.histograms import model_observables, template_inputs
from thetaflow.ingestion.variations import variation_names
from thetaflow.unsupervised.autoencoder import training_samples

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


def job_settings(keys, samples=(), keys_of=(), present=()):
    """A job's config slice (thetaflow.core.settings): the config sub-trees at the dotted
    ``keys`` and the specs of ``samples`` (sample-list order), nested as in the config. A
    rule's params hold it and its script passes it to the library instead of the whole
    config, so a change to a key reruns exactly the jobs that read it."""
    wanted = set(samples)
    specs = {name: SAMPLES[name].spec for name in SAMPLES if name in wanted}
    return config_slice(config, keys, specs, keys_of, present)


def simulation_settings(wildcards):
    """One simulated chunk: the simulation section and its seed, the luminosity (pseudo-data),
    the sample's spec and, for pseudo-data, the specs of the processes it sums."""
    sample = SAMPLES[wildcards.sample]
    processes = pseudo_data_processes(sample, SAMPLES) if sample.is_pseudo_data else []
    return job_settings(
        ["analysis.lumi_fb", "seeds.simulation", "simulation"],
        [sample.name, *processes],
    )


def ingest_settings(wildcards):
    """The ingestion of one sample: reading, NanoAOD version, selection, regions, shape
    variations, its spec."""
    return job_settings(
        [
            "analysis.lumi_fb",
            "ingest",
            "nanoaod",
            "regions",
            "selection",
            "systematics.shape",
        ],
        [wildcards.sample],
    )


def feature_settings(wildcards):
    """The feature table of one sample and variation: features, weight variations, its spec."""
    return job_settings(["features", "systematics.weight"], [wildcards.sample])


def training_data_settings(wildcards):
    """The training table: inputs, folds, validation split, negative-weight policy, the
    regions (training uses the signal regions)."""
    return job_settings(
        [
            "features",
            "ml.inputs",
            "ml.seed",
            "ml.folds",
            "ml.validation_fraction",
            "ml.negative_weights",
            "regions",
        ]
    )


def model_settings(wildcards):
    """One model on one fold: its ml.models entry, the shared training settings, the
    models' names (a model's seed is its position among them) and the energy estimate's
    power per core (training.json records the fit's energy)."""
    return job_settings(
        [
            "benchmarks.energy",
            "features",
            "ml.inputs",
            "ml.seed",
            "ml.folds",
            "ml.max_train_events",
            f"ml.models.{wildcards.model}",
        ],
        keys_of=["ml.models"],
    )


def scoring_settings(wildcards):
    """Out-of-fold scores of one model: its ml.models entry, inputs and seed."""
    return job_settings(
        ["features", "ml.inputs", "ml.seed", f"ml.models.{wildcards.model}"]
    )


def comparison_model_settings(wildcards):
    """The comparison of the models: their inputs."""
    return job_settings(["features", "ml.inputs"])


def optimiser_study_settings(wildcards):
    """The optimiser study: its section, the studied model's ml.models entry, the inputs
    and the models' names (its seed is the model's fold-training seed)."""
    model = config["ml"]["optimiser_study"]["model"]
    return job_settings(
        [
            "features",
            "ml.inputs",
            "ml.seed",
            "ml.optimiser_study",
            f"ml.models.{model}",
        ],
        keys_of=["ml.models"],
    )


def control_plot_settings(wildcards):
    """The control plots: features, the plots section, the luminosity and energy of the
    legend, the regions (a panel each), and the specs (kind, legend, fit processes) of the
    known physics and the main data sample.
    """
    return job_settings(
        [
            "analysis.lumi_fb",
            "analysis.sqrt_s_tev",
            "features",
            "inference.data",
            "plots",
            "regions",
        ],
        list(nominal_feature_files(wildcards)),
    )


def regression_settings(wildcards):
    """The b-jet energy regression (trained on the simulated known physics)."""
    return job_settings(["regression"], SM_MC_SAMPLES)


def regressed_mbb_settings(wildcards):
    """Applying the b-jet energy regression to one table: its seed (the halves' split)."""
    return job_settings(["regression.seed"])


def sample_variations(name):
    """Variations produced for a sample: nominal only for data."""
    return ["nominal"] if SAMPLES[name].is_data else MC_VARIATIONS


def simulation_chunks(wildcards):
    """The simulated chunk files of a generated sample."""
    # uproot (the simulation's writer) is imported only when a DAG with simulated samples is built
    from thetaflow.simulation.production import sample_chunks

    spec = SAMPLES[wildcards.sample].spec["generate"]
    n = sample_chunks(spec, config["simulation"]["events_per_chunk"])
    return expand(
        paths.SIMULATED_CHUNK,
        sample=wildcards.sample,
        chunk=range(n),
    )


def ingest_inputs(wildcards):
    """Input files of a sample that Snakemake can track: simulated chunks or local files."""
    sample = SAMPLES[wildcards.sample]
    if sample.is_generated:
        return simulation_chunks(wildcards)
    return [f for f in sample.spec["files"] if not f.startswith(REMOTE_PREFIXES)]


def ingest_files(wildcards, input):
    """All input files of a sample, remote URLs (root://...) included, in config order."""
    sample = SAMPLES[wildcards.sample]
    return list(input) if sample.is_generated else list(sample.spec["files"])


def nominal_feature_files(wildcards):
    """Nominal feature tables of the known physics and the main data sample, keyed by
    sample (for control plots)."""
    shown = SM_MC_SAMPLES + ([MAIN_DATA] if MAIN_DATA else [])
    return {
        name: paths.FEATURE_TABLE.format(sample=name, variation="nominal")
        for name in shown
    }


def mc_nominal_feature_files(wildcards):
    """Nominal feature tables of the simulated known physics, keyed by sample (training
    data; a bsm sample is never trained on)."""
    return {
        name: paths.FEATURE_TABLE.format(sample=name, variation="nominal")
        for name in SM_MC_SAMPLES
    }


def fold_model_dirs(wildcards):
    """The trained model directories of every fold of one model, in fold order."""
    return expand(paths.MODEL_DIR, model=wildcards.model, fold=FOLDS)


def sample_variation_pairs():
    """Every (sample, variation) that has a feature table, in a fixed order."""
    return [(name, v) for name in SAMPLES for v in sample_variations(name)]


def all_feature_files():
    """Feature tables of every sample and variation (the scoring inputs)."""
    return [
        paths.FEATURE_TABLE.format(sample=s, variation=v)
        for s, v in sample_variation_pairs()
    ]


def score_dir(model):
    """The directory of one model's (or the autoencoder's) score files: the output of its
    one scoring job. Consumers depend on it, not on the ~3 x samples files inside: one
    output instead of hundreds keeps Snakemake's input-to-output matching fast."""
    return paths.SCORE_DIR.format(model=model)


def score_files(model):
    """Score files of one model, one per sample and variation (same order as features)."""
    return [
        paths.SCORE_FILE.format(model=model, sample=s, variation=v)
        for s, v in sample_variation_pairs()
    ]


def model_score_files(wildcards):
    """Score files the scoring job of one model writes into its directory (feature order)."""
    return score_files(wildcards.model)


def training_score_files(wildcards):
    """Nominal scores of one model for the training table's samples, keyed by sample."""
    return {
        name: paths.SCORE_FILE.format(
            model=wildcards.model, sample=name, variation="nominal"
        )
        for name in SM_MC_SAMPLES
    }


def autoencoder_score_files(wildcards):
    """Score files the autoencoder's scoring job writes into its directory (feature order)."""
    return score_files("autoencoder")


def ml_targets():
    """Scores of every sample and variation, evaluations, the model comparison and, when
    configured, the optimiser study."""
    targets = []
    targets += [score_dir(model) for model in MODELS]
    if MODELS:
        targets += expand(paths.EVALUATION_METRICS, model=MODELS)
        targets.append(paths.MODEL_COMPARISON_TABLE)
    if "optimiser_study" in config.get("ml", {}):
        targets.append(paths.OPTIMISER_STUDY)
    if "regression" in config:
        targets.append(paths.REGRESSION_SUMMARY)
        targets += [
            paths.REGRESSED_MBB.format(sample=s, variation=v)
            for s, v in sample_variation_pairs()
        ]
    return targets


def all_targets():
    """Everything the default analysis produces so far."""
    targets = expand(paths.CUTFLOW, sample=SAMPLES)
    for name in SAMPLES:
        targets += expand(
            paths.FEATURE_TABLE,
            sample=name,
            variation=sample_variations(name),
        )
    targets += expand(paths.CONTROL_PLOT, feature=FEATURES)
    targets.append(paths.CUTFLOW_TABLE)
    return (
        targets
        + ml_targets()
        + unsupervised_targets()
        + inference_targets()
        + benchmark_targets()
    )


# ----------------------------------------------------------------- unsupervised (anomaly, diagnostics)


# an empty anomaly.inputs means the classifiers' inputs (ml.inputs, else every feature)
ANOMALY_INPUT_FALLBACK = ["features", "ml.inputs"]


def autoencoder_training_settings(wildcards):
    """The autoencoder of one fold: the anomaly network, its inputs and training set, the
    folds of the ml section, and the specs of the samples it trains on."""
    return job_settings(
        [
            "anomaly.inputs",
            "anomaly.model",
            "anomaly.seed",
            "anomaly.training",
            *ANOMALY_INPUT_FALLBACK,
            "ml.folds",
            "ml.seed",
            "ml.validation_fraction",
        ],
        training_samples(config, SAMPLES),
    )


def autoencoder_scoring_settings(wildcards):
    """Out-of-fold anomaly scores: the autoencoder's inputs and the fold seed."""
    return job_settings(["anomaly.inputs", *ANOMALY_INPUT_FALLBACK, "ml.seed"])


def autoencoder_evaluation_settings(wildcards):
    """The autoencoder's evaluation on the simulated samples (their specs: kind, legend)."""
    return job_settings(
        ["anomaly.inputs", *ANOMALY_INPUT_FALLBACK, "ml.seed"],
        SM_MC_SAMPLES + BSM_SAMPLES,
    )


def blind_search_settings(wildcards):
    """The blind search: its settings and its samples' specs (kind, legend)."""
    return job_settings(["anomaly.blind_search"], blind_search_samples())


def diagnostics_settings(wildcards):
    """The PCA and clustering diagnostics of the simulated samples."""
    return job_settings(
        [
            "anomaly.inputs",
            *ANOMALY_INPUT_FALLBACK,
            "diagnostics",
            "ml.folds",
            "ml.seed",
        ],
        SM_MC_SAMPLES + BSM_SAMPLES,
    )


def anomaly_training_files(wildcards):
    """Nominal feature tables the autoencoder trains on, keyed by sample."""
    names = training_samples(config, SAMPLES)
    return {
        name: paths.FEATURE_TABLE.format(sample=name, variation="nominal")
        for name in names
    }


def autoencoder_dirs(wildcards=None):
    """The autoencoder of every fold, in fold order."""
    return expand(paths.AUTOENCODER_DIR, fold=FOLDS)


def simulated_nominal_files(wildcards=None):
    """Nominal feature tables of every simulated sample (known physics and bsm)."""
    return {
        name: paths.FEATURE_TABLE.format(sample=name, variation="nominal")
        for name in SM_MC_SAMPLES + BSM_SAMPLES
    }


def simulated_nominal_scores(wildcards=None):
    """Nominal autoencoder scores of every simulated sample, keyed by sample."""
    return {
        name: paths.SCORE_FILE.format(
            model="autoencoder", sample=name, variation="nominal"
        )
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
        name: paths.FEATURE_TABLE.format(sample=name, variation="nominal")
        for name in blind_search_samples()
    }


def blind_search_scores(wildcards):
    """Nominal scores of every discriminant for the blind search's samples."""
    return [
        paths.SCORE_FILE.format(model=disc, sample=name, variation="nominal")
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
            paths.ANOMALY_METRICS,
            paths.BLIND_SEARCH,
        ]
    if "diagnostics" in config:
        targets += [
            paths.PCA_SUMMARY,
            paths.CLUSTERING_SUMMARY,
        ]
    return targets


# ----------------------------------------------------------------- statistical inference

DISCRIMINANTS = (
    list(config["inference"]["discriminants"]) if "inference" in config else []
)


def _closure_discriminants():
    return closure_discriminants(config) if "inference" in config else []


CLOSURE_DISCRIMINANTS = _closure_discriminants()


def _discriminant_key(wildcards):
    return f"inference.discriminants.{wildcards.discriminant}"


def _model_keys(wildcards):
    """The config keys of one discriminant's model: the entries of every discriminant it
    fits in some region, the regions and their fit settings."""
    return [
        f"inference.discriminants.{name}"
        for name in model_observables(config, wildcards.discriminant)
        if name != COUNT
    ] + ["regions", "inference.regions"]


def histogram_settings(wildcards):
    """The fine templates of one discriminant: its entry, binning, systematics, the main
    data sample, the specs of the samples whose tables it reads, and what tells the source
    of its scores (the models' names, whether the anomaly and regression sections exist).
    """
    return job_settings(
        [
            "features",
            "inference.binning",
            "inference.data",
            *_model_keys(wildcards),
            "inference.systematics",
        ],
        template_inputs(config, SAMPLES, wildcards.discriminant),
        keys_of=["ml.models"],
        present=["anomaly", "regression"],
    )


def workspace_settings(wildcards):
    """The HistFactory workspace of one discriminant: binning, normalisation, systematics."""
    return job_settings(
        [
            "analysis.name",
            "inference.binning",
            *_model_keys(wildcards),
            "inference.normalisation",
            "inference.parameters",
            "inference.poi_bounds",
            "inference.systematics",
        ]
    )


def fit_settings(wildcards):
    """The fit of one discriminant's pseudo-data, and its figures: the luminosity label and
    the labels and colours of the simulated samples."""
    return job_settings(
        [
            "analysis.lumi_fb",
            "analysis.sqrt_s_tev",
            "inference.binning",
            *_model_keys(wildcards),
            "inference.minos",
            "inference.parameters",
            "inference.poi_bounds",
        ],
        [name for name, sample in SAMPLES.items() if sample.is_standard_model_mc],
    )


def ranking_settings(wildcards):
    """The impacts of one discriminant's nuisance parameters."""
    return job_settings(["inference.poi_bounds"])


def scan_settings(wildcards):
    """The profile-likelihood scans of one discriminant."""
    return job_settings(
        ["inference.parameters", "inference.poi_bounds", "inference.scan"]
    )


def limit_settings(wildcards):
    """Significance and CLs limit of one discriminant."""
    return job_settings(
        ["inference.parameters", "inference.poi_bounds", "inference.limit"]
    )


def asimov_settings(wildcards):
    """The Asimov closure of one discriminant."""
    return job_settings(
        ["inference.parameters", "inference.poi_bounds", "inference.closure.asimov_mu"]
    )


def toy_settings(wildcards):
    """The toy closure of one discriminant: its signal strengths, number of toys and seed."""
    return job_settings(
        [
            "inference.parameters",
            "inference.poi_bounds",
            "inference.closure.toy_mu",
            "inference.closure.toys",
            "inference.closure.seed",
        ]
    )


def injection_settings(wildcards):
    """The injection scan of one discriminant: its signal strengths, toys and seed."""
    return job_settings(
        [
            "inference.parameters",
            "inference.poi_bounds",
            "inference.closure.injection_mu",
            "inference.closure.injection_toys",
            "inference.closure.seed",
        ]
    )


def comparison_settings(wildcards):
    """The comparison of the discriminants: the reference one and the luminosity."""
    return job_settings(["analysis.lumi_fb", "inference.reference"])


def summary_settings(wildcards):
    """The headline numbers: the analysis, the headline and reference discriminants."""
    return job_settings(
        [
            "analysis.name",
            "analysis.lumi_fb",
            "inference.data",
            "inference.headline",
            "inference.reference",
        ]
    )


def template_files(wildcards):
    """Every feature/score file the fine histograms of one discriminant's model read."""
    files = template_inputs(config, SAMPLES, wildcards.discriminant)
    read = [path for per_sample in files.values() for path in per_sample]
    scored = [
        name
        for name in model_observables(config, wildcards.discriminant)
        if discriminant(config, name).source == "score"
    ]
    # score files are written by one job per model: depend on its directory
    for name in scored:
        inside = score_dir(name) + "/"
        read = [p for p in read if not p.startswith(inside)]
    return read + [score_dir(name) for name in scored]


def _scanned():
    """What the scans draw: each scanned parameter, then each pair of a 2D scan."""
    scan = config["inference"]["scan"]
    return list(scan["parameters"]) + [pair_name(a, b) for a, b in scan["pairs"]]


def scan_figures(discriminant):
    """The scan figures of one discriminant, one per scanned parameter or pair."""
    return [
        paths.SCAN_FIGURE.format(
            discriminant=discriminant, parameter=scan_figure_name(p)
        )
        for p in _scanned()
    ]


def scan_figure_map(wildcards):
    """Scanned parameter (or pair) -> its figure, for the scan script."""
    return dict(zip(_scanned(), scan_figures(wildcards.discriminant)))


def inference_targets():
    """Every fit output of every discriminant, the closure checks, the summary and the
    report's front page that states its numbers."""
    if "inference" not in config:
        return []
    targets = []
    for d in DISCRIMINANTS:
        targets += [
            path.format(discriminant=d)
            for path in (paths.FIT_RESULT, paths.RANKING, paths.SCAN, paths.LIMIT)
        ]
    for d in CLOSURE_DISCRIMINANTS:
        targets += [
            path.format(discriminant=d)
            for path in (
                paths.ASIMOV_CLOSURE,
                paths.TOY_CLOSURE,
                paths.INJECTION_CLOSURE,
            )
        ]
    return targets + [
        paths.DISCRIMINANT_COMPARISON_TABLE,
        paths.SUMMARY,
        paths.REPORT_FRONT_PAGE,
    ]


# ----------------------------------------------------------------- operations (provenance, batch)

# the report's description (workflow/report/); rule report_front_page adds the headline numbers
REPORT_DESCRIPTION = os.path.join(
    workflow.basedir, "workflow", "report", "workflow.rst"
)


def report_front_page_source():
    """The Snakefile's report: front page: this run's (the working directory's) page with
    the headline numbers once written, else the description alone."""
    if os.path.exists(paths.REPORT_FRONT_PAGE):
        return os.path.abspath(paths.REPORT_FRONT_PAGE)
    return REPORT_DESCRIPTION


def provenance_inputs(wildcards):
    """Every other target of the run, so that the provenance record is written last."""
    return [t for t in all_targets() if t != paths.PROVENANCE]


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


# benchmarks.models and benchmarks.fold are checked with the config (thetaflow.benchmarking.checks)
BENCHMARK_MODELS = (
    list(config["benchmarks"]["models"])
    if "benchmarks" in config and "ml" in config
    else []
)


def _benchmarked_model_keys(names):
    """The ml.models entries of the benchmarked supervised models (not the autoencoder)."""
    return [f"ml.models.{name}" for name in names if name in MODELS]


def gpu_benchmark_settings(wildcards):
    """The GPU benchmark: its settings and the energy estimate's, the benchmarked fold, the
    benchmarked models' entries and inputs (the autoencoder's too)."""
    return job_settings(
        [
            "anomaly.inputs",
            "benchmarks.energy",
            "benchmarks.fold",
            "benchmarks.gpu",
            "benchmarks.seed",
            "features",
            "ml.folds",
            "ml.inputs",
        ]
        + _benchmarked_model_keys(BENCHMARK_MODELS)
    )


def fpga_benchmark_settings(wildcards):
    """The FPGA tiers of one model: the FPGA settings, its fold, its entry and inputs."""
    return job_settings(
        [
            "anomaly.inputs",
            "benchmarks.fold",
            "benchmarks.fpga",
            "benchmarks.seed",
            "features",
            "ml.folds",
            "ml.inputs",
        ]
        + _benchmarked_model_keys([wildcards.bench])
    )


def fpga_reference_settings(wildcards):
    """The FPGA tiers of the reference network: the FPGA settings and the seed."""
    return job_settings(["benchmarks.fpga", "benchmarks.seed"])


def gpu_benchmark_inputs(wildcards):
    """Training table and the model directory of every benchmarked model, keyed by model."""
    inputs = {"table": paths.TRAINING_TABLE}
    for name in BENCHMARK_MODELS:
        directory = benchmark_model_dir(config, name)
        if directory:
            inputs[name] = directory
    return inputs


def gpu_benchmark_models(wildcards):
    """Benchmarked models and their directory (None: not in this config), for the script."""
    return {name: benchmark_model_dir(config, name) for name in BENCHMARK_MODELS}


def fpga_benchmark_inputs(wildcards):
    """Training table and the model directory of one benchmarked model (if it exists)."""
    inputs = {"table": paths.TRAINING_TABLE}
    directory = benchmark_model_dir(config, wildcards.bench)
    if directory:
        inputs["model"] = directory
    return inputs


def fpga_summary_inputs(wildcards):
    """Per-model FPGA results and, when switched on, the reference network's."""
    inputs = {"models": expand(paths.FPGA_BENCHMARK, bench=BENCHMARK_MODELS)}
    if config["benchmarks"]["fpga"].get("reference", True):
        inputs["reference"] = paths.FPGA_REFERENCE
    return inputs


def benchmark_targets():
    """The GPU benchmark and the FPGA tiers table, each when switched on."""
    if not BENCHMARK_MODELS:
        return []
    targets = []
    if config["benchmarks"]["gpu"].get("enabled", True):
        targets.append(paths.GPU_BENCHMARK)
    if config["benchmarks"]["fpga"].get("enabled", True):
        targets.append(paths.FPGA_TIERS)
    return targets
