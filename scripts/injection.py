"""Snakemake adapter of rule injection: fitted vs injected signal strength."""

from thetaflow.core.logs import job_log
from thetaflow.inference.closure import injection_scan

with job_log(snakemake.log[0]):
    injection_scan(snakemake.params.settings, snakemake.input[0], dict(snakemake.output.items()))
