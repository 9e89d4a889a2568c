"""Snakemake adapter of rule histograms: fine templates of one discriminant."""

from thetaflow.config import load_samples
from thetaflow.inference.histograms import build_templates
from thetaflow.logs import job_log

with job_log(snakemake.log[0]):
    samples = load_samples(snakemake.config)
    build_templates(snakemake.config, samples, snakemake.wildcards.discriminant).save(snakemake.output[0])
