"""Snakemake adapter of rule score: out-of-fold scores of one sample and variation."""

from thetaflow.logs import job_log
from thetaflow.scoring import score_sample

with job_log(snakemake.log[0]):
    score_sample(
        snakemake.config,
        snakemake.wildcards.model,
        list(snakemake.input.models),
        snakemake.input.features,
        snakemake.output[0],
    )
