"""Snakemake adapter of rule simulate: one chunk of one sample."""

from thetaflow.core.logs import job_log
from thetaflow.simulation.production import simulate_sample_chunk

with job_log(snakemake.log[0]):
    simulate_sample_chunk(
        snakemake.params.settings,
        snakemake.wildcards.sample,
        int(snakemake.wildcards.chunk),
        snakemake.output[0],
    )
