# Control plots of every feature and the cutflow table, marked for the HTML report.


rule control_plots:
    input:
        unpack(nominal_feature_files),
    output:
        report(
            expand(paths.CONTROL_PLOT, feature=FEATURES),
            caption="../report/control_plot.rst",
            category="Samples and control plots",
            subcategory="Control plots",
        ),
    log:
        paths.log("control_plots"),
    benchmark:
        paths.rule_benchmark("control_plots")
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
        expand(paths.CUTFLOW, sample=SAMPLES),
    output:
        report(
            paths.CUTFLOW_TABLE,
            caption="../report/cutflow.rst",
            category="Samples and control plots",
            subcategory="Cutflow",
        ),
    log:
        paths.log("cutflow_table"),
    benchmark:
        paths.rule_benchmark("cutflow_table")
    conda:
        "../../envs/plotting.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../../scripts/cutflow_table.py"
