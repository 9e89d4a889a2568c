# Ingestion: NanoAOD (simulated or user files) -> selected events per variation + cutflow.
# Simulation gets every shape variation from one read; data only the nominal.


rule ingest_simulation:
    input:
        ingest_inputs,
    output:
        events=expand(paths.EVENTS, variation=MC_VARIATIONS, allow_missing=True),
        cutflow=paths.CUTFLOW,
    log:
        paths.log("ingest/{sample}"),
    benchmark:
        paths.rule_benchmark("ingest/{sample}")
    wildcard_constraints:
        sample=_alternatives(MC_SAMPLES),
    conda:
        "../../envs/ingest.yaml"
    threads: 1
    resources:
        mem_mb=2500,
        runtime=30,
    params:
        files=ingest_files,
        variations=MC_VARIATIONS,
        settings=ingest_settings,
    script:
        "../../scripts/ingest.py"


rule ingest_data:
    input:
        ingest_inputs,
    output:
        events=expand(paths.EVENTS, variation=["nominal"], allow_missing=True),
        cutflow=paths.CUTFLOW,
    log:
        paths.log("ingest/{sample}"),
    benchmark:
        paths.rule_benchmark("ingest/{sample}")
    wildcard_constraints:
        sample=_alternatives(DATA_SAMPLES),
    conda:
        "../../envs/ingest.yaml"
    threads: 1
    resources:
        mem_mb=2500,
        runtime=30,
    params:
        files=ingest_files,
        variations=["nominal"],
        settings=ingest_settings,
    script:
        "../../scripts/ingest.py"
