"""Snakemake adapter of rule score: out-of-fold scores of every sample and variation."""

from thetaflow.core.logs import job_log
from thetaflow.ml.scoring import score_samples

with job_log(snakemake.log[0]):
    score_samples(
        snakemake.params.settings,
        snakemake.wildcards.model,
        list(snakemake.input.models),
        dict(zip(snakemake.input.features, snakemake.params.files, strict=True)),
        record_dir=snakemake.output[0],
    )
