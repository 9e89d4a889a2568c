"""Snakemake adapter of rule training_data: the training table with folds."""

from thetaflow.core.logs import job_log
from thetaflow.ml.training import prepare_training_data

with job_log(snakemake.log[0]):
    prepare_training_data(
        snakemake.params.settings,
        dict(snakemake.input.items()),
        snakemake.output.table,
        snakemake.output.folds,
    )
