# Supervised learning: training table with folds, one model per (model, fold), out-of-fold
# scores for every sample and variation, evaluation per model and one comparison.


rule training_data:
    input:
        unpack(mc_nominal_feature_files),
    output:
        table=paths.TRAINING_TABLE,
        folds=paths.TRAINING_FOLDS,
    log:
        paths.log("ml/training_data"),
    benchmark:
        paths.rule_benchmark("ml/training_data")
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
        paths.TRAINING_TABLE,
    output:
        directory(paths.MODEL_DIR),
    log:
        paths.log("ml/train/{model}/fold{fold}"),
    benchmark:
        paths.rule_benchmark("ml/train/{model}/fold{fold}")
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
        paths.log("ml/score/{model}"),
    benchmark:
        paths.rule_benchmark("ml/score/{model}")
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
        table=paths.TRAINING_TABLE,
        # ancient: the training samples' scores change only with the table or the models, both
        # inputs here; a new pseudo-data or variation table reruns score, not this evaluation
        scores=ancient(score_dir("{model}")),
        models=fold_model_dirs,
    output:
        metrics=paths.EVALUATION_METRICS,
        roc=report(
            paths.EVALUATION_ROC,
            caption="../report/roc.rst",
            category="Supervised",
            subcategory="{model}",
        ),
        overtraining=report(
            paths.EVALUATION_OVERTRAINING,
            caption="../report/overtraining.rst",
            category="Supervised",
            subcategory="{model}",
        ),
        importance=report(
            paths.EVALUATION_IMPORTANCE,
            caption="../report/importance.rst",
            category="Supervised",
            subcategory="{model}",
        ),
    log:
        paths.log("ml/evaluate/{model}"),
    benchmark:
        paths.rule_benchmark("ml/evaluate/{model}")
    conda:
        "../../envs/ml.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        settings=scoring_settings,
        scores=training_score_files,
    script:
        "../../scripts/evaluate.py"


rule compare_models:
    input:
        metrics=expand(paths.EVALUATION_METRICS, model=MODELS),
        table=paths.TRAINING_TABLE,
    output:
        table=report(
            paths.MODEL_COMPARISON_TABLE,
            caption="../report/comparison.rst",
            category="Supervised",
            subcategory="Comparison",
        ),
        figure=report(
            paths.MODEL_COMPARISON_FIGURE,
            caption="../report/comparison.rst",
            category="Supervised",
            subcategory="Comparison",
        ),
        roc=report(
            paths.MODEL_COMPARISON_ROC,
            caption="../report/roc.rst",
            category="Supervised",
            subcategory="Comparison",
        ),
    log:
        paths.log("ml/compare_models"),
    benchmark:
        paths.rule_benchmark("ml/compare_models")
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


rule optimiser_study:
    input:
        paths.TRAINING_TABLE,
    output:
        json=paths.OPTIMISER_STUDY,
        figure=report(
            paths.OPTIMISER_STUDY_FIGURE,
            caption="../report/optimiser_study.rst",
            category="Supervised",
            subcategory="Optimiser study",
        ),
    log:
        paths.log("ml/optimiser_study"),
    benchmark:
        paths.rule_benchmark("ml/optimiser_study")
    conda:
        "../../envs/ml.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        settings=optimiser_study_settings,
    script:
        "../../scripts/optimiser_study.py"


rule bjet_regression:
    input:
        unpack(mc_nominal_feature_files),
    output:
        model0=paths.REGRESSION_MODEL.format(half=0),
        model1=paths.REGRESSION_MODEL.format(half=1),
        summary=paths.REGRESSION_SUMMARY,
        plot=report(
            paths.REGRESSION_PLOT,
            caption="../report/regression.rst",
            category="Supervised",
            subcategory="b-jet energy regression",
        ),
    log:
        paths.log("ml/bjet_regression"),
    benchmark:
        paths.rule_benchmark("ml/bjet_regression")
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
        features=paths.FEATURE_TABLE,
        models=rules.bjet_regression.output[:2],
    output:
        paths.REGRESSED_MBB,
    log:
        paths.log("ml/regressed_mbb/{sample}/{variation}"),
    benchmark:
        paths.rule_benchmark("ml/regressed_mbb/{sample}/{variation}")
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
