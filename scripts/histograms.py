"""Snakemake adapter of rule histograms: fine templates of one discriminant's model."""

from thetaflow.core.logs import job_log
from thetaflow.core.samples import load_samples
from thetaflow.inference.model import build_model_templates

with job_log(snakemake.log[0]):
    samples = load_samples(snakemake.params.settings)
    build_model_templates(
        snakemake.params.settings, samples, snakemake.wildcards.discriminant
    ).save(snakemake.output[0])
