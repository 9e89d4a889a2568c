"""Snakemake adapter of rule evaluate_autoencoder: metrics and figures of the anomaly score."""

from thetaflow.core.logs import job_log
from thetaflow.unsupervised.evaluation import evaluate_autoencoder

with job_log(snakemake.log[0]):
    features = {k: v for k, v in snakemake.input.items() if k not in ("scores", "models")}
    evaluate_autoencoder(
        snakemake.params.settings,
        {name: snakemake.params.scores[name] for name in features},
        features,
        list(snakemake.input.models),
        dict(snakemake.output.items()),
    )
