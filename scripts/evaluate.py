"""Snakemake adapter of rule evaluate: metrics and figures of one model."""

from thetaflow.core.logs import job_log
from thetaflow.ml.evaluation import evaluate_model

with job_log(snakemake.log[0]):
    evaluate_model(
        snakemake.params.settings,
        snakemake.wildcards.model,
        list(snakemake.input.models),
        snakemake.input.table,
        snakemake.input.scores,
        dict(snakemake.params.scores),
        dict(snakemake.output.items()),
    )
