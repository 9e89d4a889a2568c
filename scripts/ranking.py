"""Snakemake adapter of rule ranking: impacts of the nuisance parameters on mu."""

from thetaflow.core.logs import job_log
from thetaflow.inference.beyond import ranking

with job_log(snakemake.log[0]):
    ranking(snakemake.params.settings, snakemake.input[0], dict(snakemake.output.items()))
