"""Snakemake adapter of rule benchmark_fpga: the three FPGA tiers of one model."""

from thetaflow.benchmarking.fpga import run_fpga_benchmark
from thetaflow.core.logs import job_log

with job_log(snakemake.log[0]):
    run_fpga_benchmark(
        snakemake.params.settings,
        snakemake.wildcards.bench,
        snakemake.input.table,
        snakemake.input.get("model"),
        snakemake.output[0],
    )
