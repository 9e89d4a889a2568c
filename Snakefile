# thetaflow: simulated NanoAOD -> features -> ML -> pyhf fit of the physics parameters θ.
# Entry point: configuration, schema validation, rule includes and the target rule.

from snakemake.utils import min_version

min_version("9.0")


# the default analysis; --configfile FILE merges a user's (or config/ci.yaml) over it;
# common.smk validates the merged config before any rule is defined
configfile: f"{workflow.basedir}/config/config.yaml"


include: "workflow/rules/common.smk"


# numpy's and TensorFlow's CPU kernels pinned for every job (jobs inherit this environment):
# the same numbers on AVX2 and AVX-512 machines; thetaflow.core.determinism says why
from thetaflow.core.determinism import pin_cpu_dispatch

pin_cpu_dispatch()


# front page of the HTML report (snakemake --report results/report.html): the run's headline
# numbers once rule report_front_page has written them, else the description alone
report: report_front_page_source()


wildcard_constraints:
    sample=_alternatives(list(SAMPLES)),
    variation="|".join(MC_VARIATIONS),
    chunk=r"\d+",
    model=_alternatives(MODELS),
    fold=r"\d+",
    discriminant=_alternatives(DISCRIMINANTS),


include: "workflow/rules/simulate.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/ml.smk"
include: "workflow/rules/unsupervised.smk"
include: "workflow/rules/inference.smk"
include: "workflow/rules/operations.smk"
include: "workflow/rules/benchmarks.smk"


rule all:
    default_target: True
    input:
        all_targets(),
        paths.PROVENANCE,
