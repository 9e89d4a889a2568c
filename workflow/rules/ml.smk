# Supervised learning: training table with folds, one model per (model, fold), out-of-fold
# scores for every sample and variation, evaluation per model and one comparison.


rule training_data:
    input:
        unpack(mc_nominal_feature_files),
    output:
        table="results/ml/training.parquet",
        folds="results/ml/folds.json",
    log:
        "results/logs/ml/training_data.log",
    benchmark:
        "results/benchmarks/rules/ml/training_data.tsv"
    conda:
        "../../envs/ml.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        settings=training_data_settings,
    script:
        "../../scripts/training_data.py"


rule train:
    input:
        "results/ml/training.parquet",
    output:
        directory("results/models/{model}/fold{fold}"),
    log:
        "results/logs/ml/train/{model}/fold{fold}.log",
    benchmark:
        "results/benchmarks/rules/ml/train/{model}/fold{fold}.tsv"
    conda:
        "../../envs/ml.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        settings=model_settings,
    script:
        "../../scripts/train.py"


rule score:
    input:
        features=all_feature_files(),
        models=fold_model_dirs,
    output:
        directory(score_dir("{model}")),
    log:
        "results/logs/ml/score/{model}.log",
    benchmark:
        "results/benchmarks/rules/ml/score/{model}.tsv"
    conda:
        "../../envs/ml.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        settings=scoring_settings,
        files=model_score_files,
    script:
        "../../scripts/score.py"


rule evaluate:
    input:
        table="results/ml/training.parquet",
        models=fold_model_dirs,
    output:
        metrics="results/evaluation/{model}/metrics.json",
        roc=report(
            "results/evaluation/{model}/roc.png",
            caption="../report/roc.rst",
            category="Supervised",
            subcategory="{model}",
        ),
        overtraining=report(
            "results/evaluation/{model}/overtraining.png",
            caption="../report/overtraining.rst",
            category="Supervised",
            subcategory="{model}",
        ),
        importance=report(
            "results/evaluation/{model}/importance.png",
            caption="../report/importance.rst",
            category="Supervised",
            subcategory="{model}",
        ),
    log:
        "results/logs/ml/evaluate/{model}.log",
    benchmark:
        "results/benchmarks/rules/ml/evaluate/{model}.tsv"
    conda:
        "../../envs/ml.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        settings=scoring_settings,
    script:
        "../../scripts/evaluate.py"


rule compare_models:
    input:
        metrics=expand("results/evaluation/{model}/metrics.json", model=MODELS),
        table="results/ml/training.parquet",
    output:
        table=report(
            "results/evaluation/comparison.csv",
            caption="../report/comparison.rst",
            category="Supervised",
            subcategory="Comparison",
        ),
        figure=report(
            "results/evaluation/comparison.png",
            caption="../report/comparison.rst",
            category="Supervised",
            subcategory="Comparison",
        ),
        roc=report(
            "results/evaluation/roc_all.png",
            caption="../report/roc.rst",
            category="Supervised",
            subcategory="Comparison",
        ),
    log:
        "results/logs/ml/compare_models.log",
    benchmark:
        "results/benchmarks/rules/ml/compare_models.tsv"
    conda:
        "../../envs/ml.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        settings=comparison_model_settings,
    script:
        "../../scripts/compare_models.py"


rule bjet_regression:
    input:
        unpack(mc_nominal_feature_files),
    output:
        model0="results/regression/model_half0.ubj",
        model1="results/regression/model_half1.ubj",
        summary="results/regression/summary.json",
        plot=report(
            "results/regression/mbb_regression.png",
            caption="../report/regression.rst",
            category="Supervised",
            subcategory="b-jet energy regression",
        ),
    log:
        "results/logs/ml/bjet_regression.log",
    benchmark:
        "results/benchmarks/rules/ml/bjet_regression.tsv"
    conda:
        "../../envs/ml.yaml"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=20,
    params:
        settings=regression_settings,
    script:
        "../../scripts/bjet_regression.py"


rule regressed_mbb:
    input:
        features="results/features/{sample}/{variation}.parquet",
        models=rules.bjet_regression.output[:2],
    output:
        "results/regression/m_bb/{sample}/{variation}.parquet",
    log:
        "results/logs/ml/regressed_mbb/{sample}/{variation}.log",
    benchmark:
        "results/benchmarks/rules/ml/regressed_mbb/{sample}/{variation}.tsv"
    conda:
        "../../envs/ml.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        settings=regressed_mbb_settings,
    script:
        "../../scripts/regressed_mbb.py"
