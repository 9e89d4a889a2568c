# Benchmarks of the trained models: GPU vs CPU speed (inference per batch size, training
# steps) with their energy (joules per training and per million inferences) and the FPGA tiers (fixed-point fidelity, clock cycles of a generated design,
# resource estimates). Each number says how it was obtained; nothing is measured on
# hardware that is not there.


rule benchmark_gpu:
    input:
        unpack(gpu_benchmark_inputs),
    output:
        json=paths.GPU_BENCHMARK,
        table=report(
            paths.GPU_INFERENCE_TABLE,
            caption="../report/benchmark_gpu.rst",
            category="Benchmarks",
            subcategory="GPU",
        ),
        figure=report(
            paths.GPU_INFERENCE_FIGURE,
            caption="../report/benchmark_gpu.rst",
            category="Benchmarks",
            subcategory="GPU",
        ),
        energy=report(
            paths.ENERGY_TABLE,
            caption="../report/benchmark_energy.rst",
            category="Benchmarks",
            subcategory="Energy",
        ),
    log:
        paths.log("benchmarks/gpu"),
    benchmark:
        paths.rule_benchmark("benchmarks/gpu")
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
        paths.FPGA_BENCHMARK,
    log:
        paths.log("benchmarks/fpga/{bench}"),
    benchmark:
        paths.rule_benchmark("benchmarks/fpga/{bench}")
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
        paths.FPGA_REFERENCE,
    log:
        paths.log("benchmarks/fpga/reference"),
    benchmark:
        paths.rule_benchmark("benchmarks/fpga/reference")
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
            paths.FPGA_TIERS,
            caption="../report/benchmark_fpga.rst",
            category="Benchmarks",
            subcategory="FPGA",
        ),
        figure=report(
            paths.FPGA_PRECISION_SCAN,
            caption="../report/benchmark_fpga.rst",
            category="Benchmarks",
            subcategory="FPGA",
        ),
    log:
        paths.log("benchmarks/fpga/summary"),
    benchmark:
        paths.rule_benchmark("benchmarks/fpga/summary")
    conda:
        "../../envs/benchmarks.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../../scripts/fpga_summary.py"
