"""Snakemake adapter of rule scan: profile-likelihood scans."""

from thetaflow.core.logs import job_log
from thetaflow.inference.beyond import scans

with job_log(snakemake.log[0]):
    scans(
        snakemake.params.settings,
        snakemake.input[0],
        {"results": snakemake.output.results, **snakemake.params.figures},
    )
