"""Snakemake adapter of rule optimiser_study: one network trained with each optimiser."""

from thetaflow.core.logs import job_log
from thetaflow.ml.optimiser_study import optimiser_study

with job_log(snakemake.log[0]):
    optimiser_study(
        snakemake.params.settings,
        snakemake.input[0],
        dict(snakemake.output.items()),
        snakemake.threads,
    )
