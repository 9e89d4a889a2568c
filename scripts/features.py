"""Snakemake adapter of rule features: one sample and variation."""

from thetaflow.features import build_features
from thetaflow.logs import job_log

with job_log(snakemake.log[0]):
    build_features(
        snakemake.config,
        snakemake.wildcards.sample,
        snakemake.input.events,
        snakemake.input.cutflow,
        snakemake.output[0],
    )
