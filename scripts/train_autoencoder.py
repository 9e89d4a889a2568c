"""Snakemake adapter of rule train_autoencoder: the autoencoder of one fold."""

from thetaflow.core.logs import job_log
from thetaflow.unsupervised.autoencoder import train_autoencoder_fold

with job_log(snakemake.log[0]):
    train_autoencoder_fold(
        snakemake.params.settings,
        dict(snakemake.input.items()),
        int(snakemake.wildcards.fold),
        snakemake.output[0],
        snakemake.threads,
    )
