# Control plots of every feature and the cutflow table, marked for the HTML report.


rule control_plots:
    input:
        unpack(nominal_feature_files),
    output:
        report(
            expand("results/plots/control/{feature}.png", feature=FEATURES),
            caption="../report/control_plot.rst",
            category="Samples and control plots",
            subcategory="Control plots",
        ),
    log:
        "results/logs/control_plots.log",
    benchmark:
        "results/benchmarks/rules/control_plots.tsv"
    conda:
        "../../envs/plotting.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=15,
    params:
        settings=control_plot_settings,
    script:
        "../../scripts/control_plots.py"


rule cutflow_table:
    input:
        expand("results/cutflow/{sample}.json", sample=SAMPLES),
    output:
        report(
            "results/cutflow/cutflow.csv",
            caption="../report/cutflow.rst",
            category="Samples and control plots",
            subcategory="Cutflow",
        ),
    log:
        "results/logs/cutflow_table.log",
    benchmark:
        "results/benchmarks/rules/cutflow_table.tsv"
    conda:
        "../../envs/plotting.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../../scripts/cutflow_table.py"
