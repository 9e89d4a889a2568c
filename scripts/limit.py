"""Snakemake adapter of rule limit: significance and CLs upper limits on mu."""

from thetaflow.core.logs import job_log
from thetaflow.inference.beyond import significance_and_limit

with job_log(snakemake.log[0]):
    significance_and_limit(
        snakemake.params.settings, snakemake.input[0], dict(snakemake.output.items())
    )
