"""Snakemake adapter of rule benchmark_fpga_reference: the tiers on the hls4ml jet-tagging MLP."""

from thetaflow.benchmarking.fpga import run_reference
from thetaflow.core.logs import job_log

with job_log(snakemake.log[0]):
    run_reference(snakemake.params.settings, snakemake.output[0])
