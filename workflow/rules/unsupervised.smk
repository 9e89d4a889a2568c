# Unsupervised learning: autoencoder anomaly score (one network per fold, out-of-fold
# scores in the classifiers' format), its evaluation, the blind search for an unmodelled
# signal, and PCA / clustering diagnostics of the feature space.


rule train_autoencoder:
    input:
        unpack(anomaly_training_files),
    output:
        directory("results/models/autoencoder/fold{fold}"),
    log:
        "results/logs/anomaly/train/fold{fold}.log",
    benchmark:
        "results/benchmarks/rules/anomaly/train/fold{fold}.tsv"
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
        "results/logs/anomaly/score.log",
    benchmark:
        "results/benchmarks/rules/anomaly/score.tsv"
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
        metrics="results/anomaly/metrics.json",
        roc=report(
            "results/anomaly/roc.png",
            caption="../report/anomaly_roc.rst",
            category="Unsupervised",
            subcategory="Autoencoder",
        ),
        distributions=report(
            "results/anomaly/score_distributions.png",
            caption="../report/anomaly_scores.rst",
            category="Unsupervised",
            subcategory="Autoencoder",
        ),
        feature_errors=report(
            "results/anomaly/feature_errors.png",
            caption="../report/anomaly_feature_errors.rst",
            category="Unsupervised",
            subcategory="Autoencoder",
        ),
    log:
        "results/logs/anomaly/evaluate.log",
    benchmark:
        "results/benchmarks/rules/anomaly/evaluate.tsv"
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
        json="results/anomaly/blind_search.json",
        table=report(
            "results/anomaly/blind_search.csv",
            caption="../report/blind_search.rst",
            category="Unsupervised",
            subcategory="Blind search",
        ),
        significance=report(
            "results/anomaly/blind_search.png",
            caption="../report/blind_search.rst",
            category="Unsupervised",
            subcategory="Blind search",
        ),
        tails=report(
            "results/anomaly/blind_search_tails.png",
            caption="../report/blind_search_tails.rst",
            category="Unsupervised",
            subcategory="Blind search",
        ),
    log:
        "results/logs/anomaly/blind_search.log",
    benchmark:
        "results/benchmarks/rules/anomaly/blind_search.tsv"
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
        summary="results/diagnostics/pca/summary.json",
        scree=report(
            "results/diagnostics/pca/scree.png",
            caption="../report/pca.rst",
            category="Unsupervised",
            subcategory="PCA",
        ),
        projections=report(
            "results/diagnostics/pca/components.png",
            caption="../report/pca.rst",
            category="Unsupervised",
            subcategory="PCA",
        ),
        loadings=report(
            "results/diagnostics/pca/loadings.png",
            caption="../report/pca.rst",
            category="Unsupervised",
            subcategory="PCA",
        ),
    log:
        "results/logs/diagnostics/pca.log",
    benchmark:
        "results/benchmarks/rules/diagnostics/pca.tsv"
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
        summary="results/diagnostics/clustering/summary.json",
        kmeans_selection=report(
            "results/diagnostics/clustering/kmeans_selection.png",
            caption="../report/clustering.rst",
            category="Unsupervised",
            subcategory="Clustering",
        ),
        kmeans_composition=report(
            "results/diagnostics/clustering/kmeans_composition.png",
            caption="../report/clustering.rst",
            category="Unsupervised",
            subcategory="Clustering",
        ),
        dbscan=report(
            "results/diagnostics/clustering/dbscan.png",
            caption="../report/clustering.rst",
            category="Unsupervised",
            subcategory="Clustering",
        ),
    log:
        "results/logs/diagnostics/clustering.log",
    benchmark:
        "results/benchmarks/rules/diagnostics/clustering.tsv"
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
