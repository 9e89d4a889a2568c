# Embedded simulation: one job per sample and chunk writes a NanoAOD-like ROOT file.


rule simulate:
    output:
        temp(paths.SIMULATED_CHUNK),
    log:
        paths.log("simulate/{sample}/{chunk}"),
    benchmark:
        paths.rule_benchmark("simulate/{sample}/{chunk}")
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
