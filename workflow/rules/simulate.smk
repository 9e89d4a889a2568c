# Embedded simulation: one job per sample and chunk writes a NanoAOD-like ROOT file.


rule simulate:
    output:
        temp("results/simulation/{sample}/{chunk}.root"),
    log:
        "results/logs/simulate/{sample}/{chunk}.log",
    benchmark:
        "results/benchmarks/rules/simulate/{sample}/{chunk}.tsv"
    conda:
        "../../envs/simulation.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        settings=simulation_settings,
    script:
        "../../scripts/simulate.py"
