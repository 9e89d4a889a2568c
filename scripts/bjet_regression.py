"""Snakemake adapter of rule bjet_regression: out-of-fold b-jet energy regression."""

from thetaflow.core.logs import job_log
from thetaflow.ml.regression import train_bjet_regression

with job_log(snakemake.log[0]):
    train_bjet_regression(
        snakemake.params.settings, dict(snakemake.input.items()), dict(snakemake.output.items())
    )
