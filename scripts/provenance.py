"""Snakemake adapter of rule provenance: the run's record in results/provenance.json."""

from pathlib import Path

from thetaflow.core.logs import job_log
from thetaflow.operations.provenance import write_provenance

with job_log(snakemake.log[0]):
    write_provenance(
        Path(snakemake.output[0]),
        config=snakemake.params.settings,
        repo=Path(snakemake.params.repo),
        benchmark_dir=Path(snakemake.params.benchmark_dir),
        patterns=snakemake.params.patterns,
        constraints=snakemake.params.constraints,
    )
