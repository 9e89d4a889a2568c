# Operations: the provenance record at the end of the DAG (git commit, config hash, package
# versions, host, start/end, per-rule wall time and peak memory from the benchmark files) and
# a pre-flight check that SLURM answers before the first job is submitted to it.


localrules:
    provenance,
    report_front_page,


rule provenance:
    input:
        provenance_inputs,
    output:
        paths.PROVENANCE,
    log:
        paths.log("provenance"),
    benchmark:
        paths.rule_benchmark("provenance")
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
        benchmark_dir=paths.RULE_BENCHMARK_DIR,
        repo=workflow.basedir,
    script:
        "../../scripts/provenance.py"


# the front page of `snakemake --report`: the description and this run's headline numbers
rule report_front_page:
    input:
        description=REPORT_DESCRIPTION,
        summary=paths.SUMMARY,
    output:
        paths.REPORT_FRONT_PAGE,
    log:
        paths.log("report_front_page"),
    benchmark:
        paths.rule_benchmark("report_front_page")
    conda:
        "../../envs/operations.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../../scripts/report_front_page.py"


onstart:
    batch_preflight()
