# Statistical inference per discriminant: fine histograms -> HistFactory workspace (cabinetry
# on pyhf) -> fit of the pseudo-data, impacts, scans, significance and limits; Asimov, toy and
# injection closure for the closure discriminants; one comparison and results/summary.json.
# Memory requests: 1.5-3x the peak RSS of the default run (250-300 MB; toys 565 MB with workers).


rule histograms:
    input:
        template_files,
    output:
        "results/fit/{discriminant}/histograms.json",
    log:
        "results/logs/fit/{discriminant}/histograms.log",
    benchmark:
        "results/benchmarks/rules/fit/{discriminant}/histograms.tsv"
    conda:
        "../../envs/inference.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        settings=histogram_settings,
    script:
        "../../scripts/histograms.py"


rule workspace:
    input:
        "results/fit/{discriminant}/histograms.json",
    output:
        workspace="results/fit/{discriminant}/workspace.json",
        binning="results/fit/{discriminant}/binning.json",
        cabinetry="results/fit/{discriminant}/cabinetry.yaml",
        templates=directory("results/fit/{discriminant}/templates"),
    log:
        "results/logs/fit/{discriminant}/workspace.log",
    benchmark:
        "results/benchmarks/rules/fit/{discriminant}/workspace.tsv"
    conda:
        "../../envs/inference.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        settings=workspace_settings,
    script:
        "../../scripts/workspace.py"


rule fit:
    input:
        workspace="results/fit/{discriminant}/workspace.json",
        cabinetry="results/fit/{discriminant}/cabinetry.yaml",
    output:
        results="results/fit/{discriminant}/fit.json",
        yields=report(
            "results/fit/{discriminant}/yields.csv",
            caption="../report/yields.rst",
            category="Statistics",
            subcategory="{discriminant}",
        ),
        prefit=report(
            "results/fit/{discriminant}/prefit.png",
            caption="../report/prefit.rst",
            category="Statistics",
            subcategory="{discriminant}",
        ),
        postfit=report(
            "results/fit/{discriminant}/postfit.png",
            caption="../report/postfit.rst",
            category="Statistics",
            subcategory="{discriminant}",
        ),
        pulls=report(
            "results/fit/{discriminant}/pulls.png",
            caption="../report/pulls.rst",
            category="Statistics",
            subcategory="{discriminant}",
        ),
        correlation=report(
            "results/fit/{discriminant}/correlation.png",
            caption="../report/correlation.rst",
            category="Statistics",
            subcategory="{discriminant}",
        ),
    log:
        "results/logs/fit/{discriminant}/fit.log",
    benchmark:
        "results/benchmarks/rules/fit/{discriminant}/fit.tsv"
    conda:
        "../../envs/inference.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    params:
        settings=fit_settings,
    script:
        "../../scripts/fit.py"


rule ranking:
    input:
        "results/fit/{discriminant}/workspace.json",
    output:
        results="results/fit/{discriminant}/ranking.json",
        figure=report(
            "results/fit/{discriminant}/ranking.png",
            caption="../report/ranking.rst",
            category="Statistics",
            subcategory="{discriminant}",
        ),
    log:
        "results/logs/fit/{discriminant}/ranking.log",
    benchmark:
        "results/benchmarks/rules/fit/{discriminant}/ranking.tsv"
    conda:
        "../../envs/inference.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=20,
    params:
        settings=ranking_settings,
    script:
        "../../scripts/ranking.py"


rule scan:
    input:
        "results/fit/{discriminant}/workspace.json",
    output:
        results="results/fit/{discriminant}/scan.json",
        figures=report(
            scan_figures("{discriminant}"),
            caption="../report/scan.rst",
            category="Statistics",
            subcategory="{discriminant}",
        ),
    log:
        "results/logs/fit/{discriminant}/scan.log",
    benchmark:
        "results/benchmarks/rules/fit/{discriminant}/scan.tsv"
    conda:
        "../../envs/inference.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=20,
    params:
        settings=scan_settings,
        figures=scan_figure_map,
    script:
        "../../scripts/scan.py"


rule limit:
    input:
        "results/fit/{discriminant}/workspace.json",
    output:
        results="results/fit/{discriminant}/limit.json",
        figure=report(
            "results/fit/{discriminant}/limit.png",
            caption="../report/limit.rst",
            category="Statistics",
            subcategory="{discriminant}",
        ),
    log:
        "results/logs/fit/{discriminant}/limit.log",
    benchmark:
        "results/benchmarks/rules/fit/{discriminant}/limit.tsv"
    conda:
        "../../envs/inference.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=30,
    params:
        settings=limit_settings,
    script:
        "../../scripts/limit.py"


rule asimov_closure:
    input:
        "results/fit/{discriminant}/workspace.json",
    output:
        "results/fit/{discriminant}/closure/asimov.json",
    log:
        "results/logs/fit/{discriminant}/asimov_closure.log",
    benchmark:
        "results/benchmarks/rules/fit/{discriminant}/asimov_closure.tsv"
    conda:
        "../../envs/inference.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        settings=asimov_settings,
    script:
        "../../scripts/asimov_closure.py"


rule toys:
    input:
        "results/fit/{discriminant}/workspace.json",
    output:
        results="results/fit/{discriminant}/closure/toys.json",
        figure=report(
            "results/fit/{discriminant}/closure/toys.png",
            caption="../report/toys.rst",
            category="Statistics",
            subcategory="Closure",
        ),
    log:
        "results/logs/fit/{discriminant}/toys.log",
    benchmark:
        "results/benchmarks/rules/fit/{discriminant}/toys.tsv"
    conda:
        "../../envs/inference.yaml"
    threads: 2
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        settings=toy_settings,
    script:
        "../../scripts/toys.py"


rule injection:
    input:
        "results/fit/{discriminant}/workspace.json",
    output:
        results="results/fit/{discriminant}/closure/injection.json",
        figure=report(
            "results/fit/{discriminant}/closure/injection.png",
            caption="../report/injection.rst",
            category="Statistics",
            subcategory="Closure",
        ),
    log:
        "results/logs/fit/{discriminant}/injection.log",
    benchmark:
        "results/benchmarks/rules/fit/{discriminant}/injection.tsv"
    conda:
        "../../envs/inference.yaml"
    threads: 2
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        settings=injection_settings,
    script:
        "../../scripts/injection.py"


rule compare_discriminants:
    input:
        fits=expand("results/fit/{d}/fit.json", d=DISCRIMINANTS),
        limits=expand("results/fit/{d}/limit.json", d=DISCRIMINANTS),
    output:
        table=report(
            "results/fit/comparison.csv",
            caption="../report/discriminant_comparison.rst",
            category="Statistics",
            subcategory="Comparison",
        ),
        figure=report(
            "results/fit/comparison.png",
            caption="../report/discriminant_comparison.rst",
            category="Statistics",
            subcategory="Comparison",
        ),
    log:
        "results/logs/fit/compare_discriminants.log",
    benchmark:
        "results/benchmarks/rules/fit/compare_discriminants.tsv"
    conda:
        "../../envs/inference.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        settings=comparison_settings,
        discriminants=DISCRIMINANTS,
    script:
        "../../scripts/compare_discriminants.py"


rule summary:
    input:
        comparison="results/fit/comparison.csv",
        fits=expand("results/fit/{d}/fit.json", d=DISCRIMINANTS),
        limits=expand("results/fit/{d}/limit.json", d=DISCRIMINANTS),
        asimov=expand("results/fit/{d}/closure/asimov.json", d=CLOSURE_DISCRIMINANTS),
        toys=expand("results/fit/{d}/closure/toys.json", d=CLOSURE_DISCRIMINANTS),
        injection=expand(
            "results/fit/{d}/closure/injection.json", d=CLOSURE_DISCRIMINANTS
        ),
    output:
        "results/summary.json",
    log:
        "results/logs/summary.log",
    benchmark:
        "results/benchmarks/rules/summary.tsv"
    conda:
        "../../envs/inference.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        discriminants=DISCRIMINANTS,
        closure=CLOSURE_DISCRIMINANTS,
        settings=summary_settings,
    script:
        "../../scripts/summary.py"
