"""Snakemake adapter of rule limit: significance and CLs upper limits on mu."""

from thetaflow.inference.beyond import significance_and_limit
from thetaflow.logs import job_log

with job_log(snakemake.log[0]):
    significance_and_limit(snakemake.config, snakemake.input[0], dict(snakemake.output.items()))
