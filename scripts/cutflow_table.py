"""Snakemake adapter of rule cutflow_table: all samples' cutflows in one CSV."""

from thetaflow.core.logs import job_log
from thetaflow.ingestion.cutflow import cutflow_table

with job_log(snakemake.log[0]):
    cutflow_table(list(snakemake.input), snakemake.output[0])
