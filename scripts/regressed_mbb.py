"""Snakemake adapter of rule regressed_mbb: corrected m_bb of one sample and variation."""

from thetaflow.core.logs import job_log
from thetaflow.ml.regression import apply_bjet_regression

with job_log(snakemake.log[0]):
    apply_bjet_regression(
        snakemake.params.settings,
        list(snakemake.input.models),
        snakemake.input.features,
        snakemake.output[0],
    )
