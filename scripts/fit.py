"""Snakemake adapter of rule fit: maximum-likelihood fit of the pseudo-data."""

from thetaflow.core.logs import job_log
from thetaflow.inference.fit import fit_data

with job_log(snakemake.log[0]):
    fit_data(
        snakemake.params.settings,
        snakemake.input.workspace,
        snakemake.input.cabinetry,
        dict(snakemake.output.items()),
        snakemake.input.binning,
    )
