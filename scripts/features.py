"""Snakemake adapter of rule features: one sample and variation."""

from thetaflow.core.logs import job_log
from thetaflow.features.compute import build_features

with job_log(snakemake.log[0]):
    build_features(
        snakemake.params.settings,
        snakemake.wildcards.sample,
        snakemake.input.events,
        snakemake.input.cutflow,
        snakemake.output[0],
    )
