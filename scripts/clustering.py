"""Snakemake adapter of rule clustering: k-means and DBSCAN on a stratified subsample."""

from thetaflow.core.logs import job_log
from thetaflow.unsupervised.diagnostics import run_clustering

with job_log(snakemake.log[0]):
    run_clustering(
        snakemake.params.settings, dict(snakemake.input.items()), dict(snakemake.output.items())
    )
