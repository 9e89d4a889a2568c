"""Snakemake adapter of rule compare_discriminants: sensitivity of every discriminant."""

from thetaflow.core.logs import job_log
from thetaflow.inference.summary import compare_discriminants

with job_log(snakemake.log[0]):
    compare_discriminants(
        snakemake.params.settings,
        dict(zip(snakemake.params.discriminants, snakemake.input.fits, strict=True)),
        dict(zip(snakemake.params.discriminants, snakemake.input.limits, strict=True)),
        dict(snakemake.output.items()),
    )
