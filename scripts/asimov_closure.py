"""Snakemake adapter of rule asimov_closure: Asimov fits recover the injected mu."""

from thetaflow.core.logs import job_log
from thetaflow.inference.closure import asimov_closure

with job_log(snakemake.log[0]):
    asimov_closure(snakemake.params.settings, snakemake.input[0], snakemake.output[0])
