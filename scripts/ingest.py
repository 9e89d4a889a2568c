"""Snakemake adapter of rules ingest_simulation / ingest_data: one sample."""

from thetaflow.core.logs import job_log
from thetaflow.ingestion.ingest import ingest_from_config

with job_log(snakemake.log[0]):
    ingest_from_config(
        snakemake.params.settings,
        snakemake.wildcards.sample,
        snakemake.params.files,
        dict(zip(snakemake.params.variations, snakemake.output.events, strict=True)),
        snakemake.output.cutflow,
    )
