"""Snakemake adapter of rule workspace: rebinned templates -> HistFactory workspace."""

from thetaflow.inference.workspace import build_workspace
from thetaflow.logs import job_log

with job_log(snakemake.log[0]):
    build_workspace(snakemake.config, snakemake.input[0], dict(snakemake.output.items()))
