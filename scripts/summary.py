"""Snakemake adapter of rule summary: the headline numbers in results/summary.json."""

from thetaflow.core.logs import job_log
from thetaflow.inference.summary import write_summary

with job_log(snakemake.log[0]):
    names, closure = snakemake.params.discriminants, snakemake.params.closure
    inputs = snakemake.input
    write_summary(
        snakemake.params.settings,
        inputs.comparison,
        dict(zip(names, inputs.fits, strict=True)),
        dict(zip(names, inputs.limits, strict=True)),
        dict(
            zip(
                closure,
                zip(inputs.asimov, inputs.toys, inputs.injection, strict=True),
                strict=True,
            )
        ),
        snakemake.output[0],
    )
