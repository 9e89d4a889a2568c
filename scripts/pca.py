"""Snakemake adapter of rule pca: PCA of the feature space fitted on training folds."""

from thetaflow.core.logs import job_log
from thetaflow.unsupervised.diagnostics import run_pca

with job_log(snakemake.log[0]):
    run_pca(
        snakemake.params.settings, dict(snakemake.input.items()), dict(snakemake.output.items())
    )
