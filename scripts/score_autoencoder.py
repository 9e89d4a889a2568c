"""Snakemake adapter of rule score_autoencoder: out-of-fold anomaly scores of every table."""

from thetaflow.core.logs import job_log
from thetaflow.unsupervised.autoencoder import score_autoencoder

with job_log(snakemake.log[0]):
    score_autoencoder(
        snakemake.params.settings,
        list(snakemake.input.models),
        dict(zip(snakemake.input.features, snakemake.params.files, strict=True)),
    )
