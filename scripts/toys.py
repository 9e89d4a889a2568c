"""Snakemake adapter of rule toys: pull distributions of mu from pseudo-experiments."""

from thetaflow.core.logs import job_log
from thetaflow.inference.closure import toy_closure

with job_log(snakemake.log[0]):
    toy_closure(snakemake.params.settings, snakemake.input[0], dict(snakemake.output.items()))
