"""Snakemake adapter of rule report_front_page: the front page with the headline numbers."""

from pathlib import Path

from thetaflow.core.logs import job_log
from thetaflow.operations.report import write_front_page

with job_log(snakemake.log[0]):
    write_front_page(
        Path(snakemake.input.description),
        Path(snakemake.input.summary),
        Path(snakemake.output[0]),
    )
