# Benchmarks of the trained models: GPU vs CPU speed (inference per batch size, training
# steps) and the FPGA tiers (fixed-point fidelity, clock cycles of a generated design,
# resource estimates). Each number says how it was obtained; nothing is measured on
# hardware that is not there.


rule benchmark_gpu:
    input:
        unpack(gpu_benchmark_inputs),
    output:
        json="results/benchmarks/gpu/benchmark.json",
        table=report(
            "results/benchmarks/gpu/inference.csv",
            caption="../report/benchmark_gpu.rst",
            category="Benchmarks",
            subcategory="GPU",
        ),
        figure=report(
            "results/benchmarks/gpu/inference.png",
            caption="../report/benchmark_gpu.rst",
            category="Benchmarks",
            subcategory="GPU",
        ),
    log:
        "results/logs/benchmarks/gpu.log",
    benchmark:
        "results/benchmarks/rules/benchmarks/gpu.tsv"
    conda:
        "../../envs/benchmarks.yaml"
    threads: 2
    resources:
        mem_mb=6000,
        runtime=30,
        gpu=1,
    params:
        settings=gpu_benchmark_settings,
        models=gpu_benchmark_models,
    script:
        "../../scripts/benchmark_gpu.py"


rule benchmark_fpga:
    input:
        unpack(fpga_benchmark_inputs),
    output:
        "results/benchmarks/fpga/{bench}.json",
    log:
        "results/logs/benchmarks/fpga/{bench}.log",
    benchmark:
        "results/benchmarks/rules/benchmarks/fpga/{bench}.tsv"
    wildcard_constraints:
        bench=_alternatives(BENCHMARK_MODELS),
    conda:
        "../../envs/benchmarks.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=60,
    params:
        settings=fpga_benchmark_settings,
    script:
        "../../scripts/benchmark_fpga.py"


rule benchmark_fpga_reference:
    output:
        "results/benchmarks/fpga/reference.json",
    log:
        "results/logs/benchmarks/fpga/reference.log",
    benchmark:
        "results/benchmarks/rules/benchmarks/fpga/reference.tsv"
    conda:
        "../../envs/benchmarks.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        settings=fpga_reference_settings,
    script:
        "../../scripts/benchmark_fpga_reference.py"


rule fpga_summary:
    input:
        unpack(fpga_summary_inputs),
    output:
        table=report(
            "results/benchmarks/fpga/tiers.csv",
            caption="../report/benchmark_fpga.rst",
            category="Benchmarks",
            subcategory="FPGA",
        ),
        figure=report(
            "results/benchmarks/fpga/precision_scan.png",
            caption="../report/benchmark_fpga.rst",
            category="Benchmarks",
            subcategory="FPGA",
        ),
    log:
        "results/logs/benchmarks/fpga/summary.log",
    benchmark:
        "results/benchmarks/rules/benchmarks/fpga/summary.tsv"
    conda:
        "../../envs/benchmarks.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../../scripts/fpga_summary.py"
