"""Snakemake adapter of rule train: one model on one fold."""

from thetaflow.core.logs import job_log
from thetaflow.ml.training import train_fold

with job_log(snakemake.log[0]):
    train_fold(
        snakemake.params.settings,
        snakemake.wildcards.model,
        int(snakemake.wildcards.fold),
        snakemake.input[0],
        snakemake.output[0],
        snakemake.threads,
    )
