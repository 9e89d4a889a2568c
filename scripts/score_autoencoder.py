"""Snakemake adapter of rule score_autoencoder: out-of-fold anomaly scores of every table."""

from thetaflow.anomaly import score_autoencoder
from thetaflow.logs import job_log

with job_log(snakemake.log[0]):
    score_autoencoder(
        snakemake.config,
        list(snakemake.input.models),
        dict(zip(snakemake.input.features, snakemake.params.files)),
    )
