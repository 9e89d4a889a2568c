"""Snakemake adapter of rule train_autoencoder: the autoencoder of one fold."""

from thetaflow.anomaly import train_autoencoder_fold
from thetaflow.logs import job_log

with job_log(snakemake.log[0]):
    train_autoencoder_fold(
        snakemake.config,
        dict(snakemake.input.items()),
        int(snakemake.wildcards.fold),
        snakemake.output[0],
        snakemake.threads,
    )
