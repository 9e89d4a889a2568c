"""The results layout of thetaflow.core.paths: the paths a run's products keep."""

from thetaflow.core import paths


def test_log_and_rule_benchmark_keep_the_wildcards():
    assert paths.log("ingest/{sample}") == "results/logs/ingest/{sample}.log"
    assert paths.rule_benchmark("fit/{discriminant}/fit") == (
        "results/benchmarks/rules/fit/{discriminant}/fit.tsv"
    )


def test_templates_fill_to_the_layout():
    assert paths.FEATURE_TABLE.format(sample="zh", variation="nominal") == (
        "results/features/zh/nominal.parquet"
    )
    assert paths.SCORE_FILE.format(model="nn", sample="zh", variation="jes_up") == (
        "results/scores/nn/zh/jes_up.parquet"
    )
    assert paths.MODEL_DIR.format(model="bdt", fold=2) == "results/models/bdt/fold2"
    assert paths.SCAN_FIGURE.format(discriminant="nn", parameter="mu") == (
        "results/fit/nn/scan_mu.png"
    )
    assert paths.REGRESSION_MODEL.format(half=1) == "results/regression/model_half1.ubj"


def test_every_path_is_under_results():
    spelled = [v for k, v in vars(paths).items() if k.isupper() and isinstance(v, str)]
    assert spelled
    assert all(v == paths.RESULTS or v.startswith(paths.RESULTS + "/") for v in spelled)
