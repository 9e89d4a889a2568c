# Statistical inference per discriminant: fine histograms -> HistFactory workspace (cabinetry
# on pyhf) -> fit of the pseudo-data, impacts, scans, significance and limits; Asimov, toy and
# injection closure for the closure discriminants; one comparison and the headline summary.
# Memory requests: 1.5-3x the peak RSS of the default run (250-300 MB; toys 565 MB with workers).


rule histograms:
    input:
        template_files,
    output:
        paths.HISTOGRAMS,
    log:
        paths.log("fit/{discriminant}/histograms"),
    benchmark:
        paths.rule_benchmark("fit/{discriminant}/histograms")
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
        paths.HISTOGRAMS,
    output:
        workspace=paths.WORKSPACE,
        binning=paths.BINNING,
        cabinetry=paths.CABINETRY_CONFIG,
        templates=directory(paths.TEMPLATES_DIR),
    log:
        paths.log("fit/{discriminant}/workspace"),
    benchmark:
        paths.rule_benchmark("fit/{discriminant}/workspace")
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
        workspace=paths.WORKSPACE,
        cabinetry=paths.CABINETRY_CONFIG,
        binning=paths.BINNING,
    output:
        results=paths.FIT_RESULT,
        yields=report(
            paths.YIELDS,
            caption="../report/yields.rst",
            category="Statistical inference",
            subcategory="{discriminant}",
        ),
        prefit=report(
            paths.PREFIT_FIGURE,
            caption="../report/prefit.rst",
            category="Statistical inference",
            subcategory="{discriminant}",
        ),
        postfit=report(
            paths.POSTFIT_FIGURE,
            caption="../report/postfit.rst",
            category="Statistical inference",
            subcategory="{discriminant}",
        ),
        pulls=report(
            paths.PULLS_FIGURE,
            caption="../report/pulls.rst",
            category="Statistical inference",
            subcategory="{discriminant}",
        ),
        correlation=report(
            paths.CORRELATION_FIGURE,
            caption="../report/correlation.rst",
            category="Statistical inference",
            subcategory="{discriminant}",
        ),
    log:
        paths.log("fit/{discriminant}/fit"),
    benchmark:
        paths.rule_benchmark("fit/{discriminant}/fit")
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
        paths.WORKSPACE,
    output:
        results=paths.RANKING,
        figure=report(
            paths.RANKING_FIGURE,
            caption="../report/ranking.rst",
            category="Statistical inference",
            subcategory="{discriminant}",
        ),
    log:
        paths.log("fit/{discriminant}/ranking"),
    benchmark:
        paths.rule_benchmark("fit/{discriminant}/ranking")
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
        paths.WORKSPACE,
    output:
        results=paths.SCAN,
        figures=report(
            scan_figures("{discriminant}"),
            caption="../report/scan.rst",
            category="Statistical inference",
            subcategory="{discriminant}",
        ),
    log:
        paths.log("fit/{discriminant}/scan"),
    benchmark:
        paths.rule_benchmark("fit/{discriminant}/scan")
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
        paths.WORKSPACE,
    output:
        results=paths.LIMIT,
        figure=report(
            paths.LIMIT_FIGURE,
            caption="../report/limit.rst",
            category="Statistical inference",
            subcategory="{discriminant}",
        ),
    log:
        paths.log("fit/{discriminant}/limit"),
    benchmark:
        paths.rule_benchmark("fit/{discriminant}/limit")
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
        paths.WORKSPACE,
    output:
        paths.ASIMOV_CLOSURE,
    log:
        paths.log("fit/{discriminant}/asimov_closure"),
    benchmark:
        paths.rule_benchmark("fit/{discriminant}/asimov_closure")
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
        paths.WORKSPACE,
    output:
        results=paths.TOY_CLOSURE,
        figure=report(
            paths.TOY_CLOSURE_FIGURE,
            caption="../report/toys.rst",
            category="Statistical inference",
            subcategory="Closure",
        ),
    log:
        paths.log("fit/{discriminant}/toys"),
    benchmark:
        paths.rule_benchmark("fit/{discriminant}/toys")
    conda:
        "../../envs/inference.yaml"
    threads: 1
    resources:
        mem_mb=2500,
        runtime=60,
    params:
        settings=toy_settings,
    script:
        "../../scripts/toys.py"


rule injection:
    input:
        paths.WORKSPACE,
    output:
        results=paths.INJECTION_CLOSURE,
        figure=report(
            paths.INJECTION_CLOSURE_FIGURE,
            caption="../report/injection.rst",
            category="Statistical inference",
            subcategory="Closure",
        ),
    log:
        paths.log("fit/{discriminant}/injection"),
    benchmark:
        paths.rule_benchmark("fit/{discriminant}/injection")
    conda:
        "../../envs/inference.yaml"
    threads: 1
    resources:
        mem_mb=2500,
        runtime=60,
    params:
        settings=injection_settings,
    script:
        "../../scripts/injection.py"


rule compare_discriminants:
    input:
        fits=expand(paths.FIT_RESULT, discriminant=DISCRIMINANTS),
        limits=expand(paths.LIMIT, discriminant=DISCRIMINANTS),
    output:
        table=report(
            paths.DISCRIMINANT_COMPARISON_TABLE,
            caption="../report/discriminant_comparison.rst",
            category="Statistical inference",
            subcategory="Comparison",
        ),
        figure=report(
            paths.DISCRIMINANT_COMPARISON_FIGURE,
            caption="../report/discriminant_comparison.rst",
            category="Statistical inference",
            subcategory="Comparison",
        ),
    log:
        paths.log("fit/compare_discriminants"),
    benchmark:
        paths.rule_benchmark("fit/compare_discriminants")
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
        comparison=paths.DISCRIMINANT_COMPARISON_TABLE,
        fits=expand(paths.FIT_RESULT, discriminant=DISCRIMINANTS),
        limits=expand(paths.LIMIT, discriminant=DISCRIMINANTS),
        asimov=expand(paths.ASIMOV_CLOSURE, discriminant=CLOSURE_DISCRIMINANTS),
        toys=expand(paths.TOY_CLOSURE, discriminant=CLOSURE_DISCRIMINANTS),
        injection=expand(paths.INJECTION_CLOSURE, discriminant=CLOSURE_DISCRIMINANTS),
    output:
        paths.SUMMARY,
    log:
        paths.log("summary"),
    benchmark:
        paths.rule_benchmark("summary")
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
