"""Snakemake adapter of rule pca: PCA of the feature space fitted on training folds."""

from thetaflow.diagnostics import run_pca
from thetaflow.logs import job_log

with job_log(snakemake.log[0]):
    run_pca(snakemake.config, dict(snakemake.input.items()), dict(snakemake.output.items()))
