"""Snakemake adapter of rule control_plots: one plot per feature."""

from thetaflow.core.logs import job_log
from thetaflow.features.control_plots import control_plots

with job_log(snakemake.log[0]):
    control_plots(snakemake.params.settings, dict(snakemake.input.items()), list(snakemake.output))
