"""Snakemake adapter of rule compare_models: one table and figure across models."""

from thetaflow.core.logs import job_log
from thetaflow.ml.evaluation import compare_models

with job_log(snakemake.log[0]):
    compare_models(
        snakemake.params.settings,
        list(snakemake.input.metrics),
        snakemake.input.table,
        dict(snakemake.output.items()),
    )
