# Feature engineering: one flat table per sample and variation.


rule features:
    input:
        events=paths.EVENTS,
        cutflow=paths.CUTFLOW,
    output:
        paths.FEATURE_TABLE,
    log:
        paths.log("features/{sample}/{variation}"),
    benchmark:
        paths.rule_benchmark("features/{sample}/{variation}")
    conda:
        "../../envs/features.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=15,
    params:
        settings=feature_settings,
    script:
        "../../scripts/features.py"
