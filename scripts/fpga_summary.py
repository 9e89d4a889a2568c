"""Snakemake adapter of rule fpga_summary: the FPGA tiers table and precision-scan figure."""

from thetaflow.benchmarking.plots import summarise_fpga
from thetaflow.core.logs import job_log

with job_log(snakemake.log[0]):
    summarise_fpga(
        list(snakemake.input.models),
        snakemake.input.get("reference"),
        dict(snakemake.output.items()),
    )
