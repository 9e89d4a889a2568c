"""Snakemake adapter of rule ranking: impacts of the nuisance parameters on mu."""

from thetaflow.inference.beyond import ranking
from thetaflow.logs import job_log

with job_log(snakemake.log[0]):
    ranking(snakemake.config, snakemake.input[0], dict(snakemake.output.items()))
