"""Snakemake adapter of rule cutflow_table: all samples' cutflows in one CSV."""

from thetaflow.cutflow import cutflow_table
from thetaflow.logs import job_log

with job_log(snakemake.log[0]):
    cutflow_table(list(snakemake.input), snakemake.output[0])
