# Unsupervised learning: autoencoder anomaly score (one network per fold, out-of-fold
# scores in the classifiers' format), its evaluation, the blind search for an unmodelled
# signal, and PCA / clustering diagnostics of the feature space.


rule train_autoencoder:
    input:
        unpack(anomaly_training_files),
    output:
        directory(paths.AUTOENCODER_DIR),
    log:
        paths.log("anomaly/train/fold{fold}"),
    benchmark:
        paths.rule_benchmark("anomaly/train/fold{fold}")
    conda:
        "../../envs/ml.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        settings=autoencoder_training_settings,
    script:
        "../../scripts/train_autoencoder.py"


rule score_autoencoder:
    input:
        features=all_feature_files(),
        models=autoencoder_dirs(),
    output:
        directory(score_dir("autoencoder")),
    log:
        paths.log("anomaly/score"),
    benchmark:
        paths.rule_benchmark("anomaly/score")
    conda:
        "../../envs/ml.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        settings=autoencoder_scoring_settings,
        files=autoencoder_score_files,
    script:
        "../../scripts/score_autoencoder.py"


rule evaluate_autoencoder:
    input:
        unpack(simulated_nominal_files),
        scores=score_dir("autoencoder"),
        models=autoencoder_dirs(),
    output:
        metrics=paths.ANOMALY_METRICS,
        roc=report(
            paths.ANOMALY_ROC,
            caption="../report/anomaly_roc.rst",
            category="Unsupervised",
            subcategory="Autoencoder",
        ),
        distributions=report(
            paths.ANOMALY_SCORE_DISTRIBUTIONS,
            caption="../report/anomaly_scores.rst",
            category="Unsupervised",
            subcategory="Autoencoder",
        ),
        feature_errors=report(
            paths.ANOMALY_FEATURE_ERRORS,
            caption="../report/anomaly_feature_errors.rst",
            category="Unsupervised",
            subcategory="Autoencoder",
        ),
    log:
        paths.log("anomaly/evaluate"),
    benchmark:
        paths.rule_benchmark("anomaly/evaluate")
    conda:
        "../../envs/ml.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    params:
        settings=autoencoder_evaluation_settings,
        scores=simulated_nominal_scores,
    script:
        "../../scripts/evaluate_autoencoder.py"


rule blind_search:
    input:
        unpack(blind_search_features),
        scores=blind_search_score_dirs,
    output:
        json=paths.BLIND_SEARCH,
        table=report(
            paths.BLIND_SEARCH_TABLE,
            caption="../report/blind_search.rst",
            category="Unsupervised",
            subcategory="Blind search",
        ),
        significance=report(
            paths.BLIND_SEARCH_FIGURE,
            caption="../report/blind_search.rst",
            category="Unsupervised",
            subcategory="Blind search",
        ),
        tails=report(
            paths.BLIND_SEARCH_TAILS,
            caption="../report/blind_search_tails.rst",
            category="Unsupervised",
            subcategory="Blind search",
        ),
    log:
        paths.log("anomaly/blind_search"),
    benchmark:
        paths.rule_benchmark("anomaly/blind_search")
    conda:
        "../../envs/ml.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=10,
    params:
        settings=blind_search_settings,
        scores=blind_search_scores,
    script:
        "../../scripts/blind_search.py"


rule pca:
    input:
        unpack(simulated_nominal_files),
    output:
        summary=paths.PCA_SUMMARY,
        scree=report(
            paths.PCA_SCREE,
            caption="../report/pca.rst",
            category="Unsupervised",
            subcategory="PCA",
        ),
        projections=report(
            paths.PCA_COMPONENTS,
            caption="../report/pca.rst",
            category="Unsupervised",
            subcategory="PCA",
        ),
        loadings=report(
            paths.PCA_LOADINGS,
            caption="../report/pca.rst",
            category="Unsupervised",
            subcategory="PCA",
        ),
    log:
        paths.log("diagnostics/pca"),
    benchmark:
        paths.rule_benchmark("diagnostics/pca")
    conda:
        "../../envs/ml.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        settings=diagnostics_settings,
    script:
        "../../scripts/pca.py"


rule clustering:
    input:
        unpack(simulated_nominal_files),
    output:
        summary=paths.CLUSTERING_SUMMARY,
        kmeans_selection=report(
            paths.CLUSTERING_KMEANS_SELECTION,
            caption="../report/clustering.rst",
            category="Unsupervised",
            subcategory="Clustering",
        ),
        kmeans_composition=report(
            paths.CLUSTERING_KMEANS_COMPOSITION,
            caption="../report/clustering.rst",
            category="Unsupervised",
            subcategory="Clustering",
        ),
        dbscan=report(
            paths.CLUSTERING_DBSCAN,
            caption="../report/clustering.rst",
            category="Unsupervised",
            subcategory="Clustering",
        ),
    log:
        paths.log("diagnostics/clustering"),
    benchmark:
        paths.rule_benchmark("diagnostics/clustering")
    conda:
        "../../envs/ml.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=10,
    params:
        settings=diagnostics_settings,
    script:
        "../../scripts/clustering.py"
