"""Snakemake adapter of rule workspace: rebinned templates -> HistFactory workspace."""

from thetaflow.core.logs import job_log
from thetaflow.inference.workspace import build_workspace

with job_log(snakemake.log[0]):
    build_workspace(
        snakemake.params.settings,
        snakemake.input[0],
        dict(snakemake.output.items()),
        snakemake.wildcards.discriminant,
    )
