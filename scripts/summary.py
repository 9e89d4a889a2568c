"""Snakemake adapter of rule summary: the headline numbers in results/summary.json."""

from thetaflow.inference.summary import write_summary
from thetaflow.logs import job_log

with job_log(snakemake.log[0]):
    names, closure = snakemake.params.discriminants, snakemake.params.closure
    inputs = snakemake.input
    write_summary(
        snakemake.config,
        inputs.comparison,
        dict(zip(names, inputs.fits)),
        dict(zip(names, inputs.limits)),
        {name: files for name, files in zip(closure, zip(inputs.asimov, inputs.toys, inputs.injection))},
        snakemake.output[0],
    )
