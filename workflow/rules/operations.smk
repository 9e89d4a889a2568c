# Operations: the provenance record at the end of the DAG (git commit, config hash, package
# versions, host, start/end, per-rule wall time and peak memory from the benchmark files) and
# a pre-flight check that SLURM answers before the first job is submitted to it.


localrules:
    provenance,


rule provenance:
    input:
        provenance_inputs,
    output:
        PROVENANCE,
    log:
        "results/logs/provenance.log",
    benchmark:
        "results/benchmarks/rules/provenance.tsv"
    conda:
        "../../envs/operations.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        settings=provenance_settings,
        patterns=benchmark_patterns,
        constraints=benchmark_constraints,
        benchmark_dir="results/benchmarks/rules",
        repo=workflow.basedir,
    script:
        "../../scripts/provenance.py"


onstart:
    batch_preflight()
