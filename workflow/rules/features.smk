# Feature engineering: one flat table per sample and variation.


rule features:
    input:
        events="results/events/{sample}/{variation}.parquet",
        cutflow="results/cutflow/{sample}.json",
    output:
        "results/features/{sample}/{variation}.parquet",
    log:
        "results/logs/features/{sample}/{variation}.log",
    benchmark:
        "results/benchmarks/rules/features/{sample}/{variation}.tsv"
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
