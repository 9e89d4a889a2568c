"""Snakemake adapter of rule blind_search: tail excess of every discriminant."""

from thetaflow.core.logs import job_log
from thetaflow.unsupervised.blind_search import run_blind_search, scores_by_discriminant

with job_log(snakemake.log[0]):
    run_blind_search(
        snakemake.params.settings,
        scores_by_discriminant(list(snakemake.params.scores)),
        {k: v for k, v in snakemake.input.items() if k != "scores"},
        dict(snakemake.output.items()),
    )
