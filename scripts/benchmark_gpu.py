"""Snakemake adapter of rule benchmark_gpu: CPU and GPU timing of the benchmarked models."""

from thetaflow.benchmarking.gpu import run_gpu_benchmark
from thetaflow.core.logs import job_log

with job_log(snakemake.log[0]):
    run_gpu_benchmark(
        snakemake.params.settings,
        snakemake.input.table,
        snakemake.params.models,
        dict(snakemake.output.items()),
        threads=snakemake.threads,
    )
