"""Classifier evaluation (:mod:`thetaflow.ml.metrics`) and its figures (:mod:`thetaflow.ml.plots`).

Exact values are checked on small hand-made inputs whose ROC points, AUCs and
interpolations are worked out in the comments; the weighted functions are checked against
scikit-learn and scipy where those define the same quantity (positive weights, unweighted
KS statistic). Statistical checks use fixed seeds and binomial bands wide enough (99.9 %)
not to be flaky if the seeds change.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve

from thetaflow.ml.metrics import (
    ImportanceResult,
    KsResult,
    ModelMetrics,
    Roc,
    ScoredSample,
    auc,
    best_single_feature_auc,
    effective_sample_size,
    metrics_table,
    permutation_importance,
    score_summary,
    signal_efficiency_at,
    single_feature_aucs,
    weighted_ks,
    weighted_roc,
)
from thetaflow.ml.plots import plot_comparison, plot_importances, plot_overtraining, plot_roc_curves

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def toy(n: int, seed: int, shift: float = 1.0, n_features: int = 3):
    """Two classes of ``n`` events each; only feature 0 differs between them (by ``shift``)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2 * n, n_features))
    y = np.r_[np.ones(n, int), np.zeros(n, int)]
    X[:n, 0] += shift
    w = rng.uniform(0.5, 1.5, size=2 * n)
    return X, y, w


# ----------------------------------------------------------------------------- ROC


def test_roc_hand_made_with_weights_and_ties():
    # sorted by score: 0.9 (sig, w1) | 0.8 (bkg, w2) + 0.8 (sig, w3) tie | 0.3 (bkg, w2)
    # totals: signal 4, background 4
    roc = weighted_roc([0.8, 0.9, 0.3, 0.8], [0, 1, 0, 1], [2.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(roc.thresholds, [np.inf, 0.9, 0.8, 0.3])
    np.testing.assert_array_equal(roc.signal_efficiency, [0.0, 0.25, 1.0, 1.0])
    np.testing.assert_array_equal(roc.background_efficiency, [0.0, 0.0, 0.5, 1.0])
    # trapezoids: 0 + 0.5*(0.25+1)/2 + 0.5*1 = 0.8125
    assert auc(roc) == pytest.approx(0.8125, abs=1e-15)


def test_roc_ties_do_not_depend_on_order():
    scores, labels, weights = [0.5, 0.5, 0.5, 0.1], [1, 0, 1, 0], [1.0, 1.0, 2.0, 1.0]
    a = weighted_roc(scores, labels, weights)
    b = weighted_roc(scores[::-1], labels[::-1], weights[::-1])
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.signal_efficiency, [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(a.background_efficiency, [0.0, 0.5, 1.0])


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([0.9, 0.8, 0.2, 0.1], 1.0),  # perfectly separating
        ([0.5, 0.5, 0.5, 0.5], 0.5),  # constant
        ([0.1, 0.2, 0.8, 0.9], 0.0),  # reversed
    ],
)
def test_auc_limits(scores, expected):
    assert auc(weighted_roc(scores, [1, 1, 0, 0], [1.0, 2.0, 0.5, 1.0])) == expected


def test_roc_matches_sklearn_for_positive_weights():
    rng = np.random.default_rng(7)
    n = 3000
    y = rng.integers(0, 2, n)
    scores = np.round(rng.normal(y * 0.8, 1.0), 1)  # rounding creates many ties
    w = rng.exponential(1.0, n)
    roc = weighted_roc(scores, y, w)
    fpr, tpr, thr = roc_curve(y, scores, sample_weight=w, drop_intermediate=False)
    np.testing.assert_allclose(roc.background_efficiency, fpr, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(roc.signal_efficiency, tpr, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(roc.thresholds, thr)
    assert auc(roc) == pytest.approx(roc_auc_score(y, scores, sample_weight=w), rel=1e-12)


def test_roc_unit_weights_default():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    s = rng.normal(y, 1.0)
    assert auc(weighted_roc(s, y)) == pytest.approx(roc_auc_score(y, s), rel=1e-12)
    assert auc(weighted_roc(s, y, None)) == auc(weighted_roc(s, y, np.ones(500)))


def test_roc_negative_weights_clipped_and_monotonic():
    # background (label 0) at scores 4, 3, 2 with weights 1, -0.5, 1.5 (total 2):
    # raw cumulative efficiency 0.5, 0.25, 1.0 -> the dip is flattened to 0.5
    roc = weighted_roc([4, 3, 2, 1], [0, 0, 0, 1], [1.0, -0.5, 1.5, 1.0])
    np.testing.assert_array_equal(roc.background_efficiency, [0.0, 0.5, 0.5, 1.0, 1.0])
    np.testing.assert_array_equal(roc.signal_efficiency, [0.0, 0.0, 0.0, 0.0, 1.0])
    # overshoot: background weights 3, -1 (total 2): raw 1.5 -> clipped to 1
    roc = weighted_roc([4, 3, 1], [0, 0, 1], [3.0, -1.0, 1.0])
    np.testing.assert_array_equal(roc.background_efficiency, [0.0, 1.0, 1.0, 1.0])
    # a realistic sample with 10 % negative weights
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 2000)
    s = rng.normal(y, 1.0)
    w = rng.exponential(1.0, 2000) * np.where(rng.random(2000) < 0.1, -1.0, 1.0)
    roc = weighted_roc(s, y, w)
    for eff in (roc.background_efficiency, roc.signal_efficiency):
        assert eff[0] == 0.0 and eff[-1] == 1.0
        assert np.all(np.diff(eff) >= 0) and eff.min() >= 0.0 and eff.max() <= 1.0
    assert 0.7 < auc(roc) < 0.8  # the true AUC of N(1,1) vs N(0,1) is Φ(1/√2) = 0.760


@pytest.mark.parametrize(
    ("scores", "labels", "weights", "match"),
    [
        ([1.0, 2.0], [1, 1], [1.0, 1.0], "background total weight"),
        ([1.0, 2.0], [1, 0], [-1.0, 1.0], "signal total weight"),
        ([1.0, np.nan], [1, 0], [1.0, 1.0], "NaN"),
        ([1.0, 2.0], [1, 2], [1.0, 1.0], "labels"),
        ([1.0, 2.0], [1, 0], [1.0], "length"),
    ],
)
def test_roc_rejects_bad_inputs(scores, labels, weights, match):
    with pytest.raises(ValueError, match=match):
        weighted_roc(scores, labels, weights)


def test_signal_efficiency_at_hand_made_roc():
    roc = Roc(
        background_efficiency=np.array([0.0, 0.0, 0.05, 0.2, 1.0]),
        signal_efficiency=np.array([0.0, 0.4, 0.6, 0.9, 1.0]),
        thresholds=np.array([np.inf, 4.0, 3.0, 2.0, 1.0]),
    )
    # 1 %: on the segment (0.00, 0.4)-(0.05, 0.6): 0.4 + 0.2 * 0.01 / 0.05 = 0.44
    assert signal_efficiency_at(roc, 0.01) == pytest.approx(0.44, abs=1e-12)
    # 10 %: on the segment (0.05, 0.6)-(0.20, 0.9): 0.6 + 0.3 * 0.05 / 0.15 = 0.7
    assert signal_efficiency_at(roc, 0.10) == pytest.approx(0.70, abs=1e-12)
    # on a vertical step the best signal efficiency is returned
    assert signal_efficiency_at(roc, 0.0) == 0.4
    assert signal_efficiency_at(roc, 0.05) == 0.6
    assert signal_efficiency_at(roc, 1.0) == 1.0
    with pytest.raises(ValueError, match="background efficiency"):
        signal_efficiency_at(roc, 1.5)


def test_signal_efficiency_at_from_events():
    # background weights 1 each at scores 0.95, 0.5 ... : 10 background events, 2 signal
    scores = np.r_[0.99, 0.98, np.linspace(0.9, 0.1, 10)]
    labels = np.r_[1, 1, np.zeros(10, int)]
    roc = weighted_roc(scores, labels)
    # both signal events above every background event: efficiency 1 at any working point
    assert signal_efficiency_at(roc, 0.01) == 1.0
    assert signal_efficiency_at(roc, 0.10) == 1.0
    # a constant score: the diagonal, eps_S = eps_B
    roc = weighted_roc(np.zeros(12), labels)
    assert signal_efficiency_at(roc, 0.01) == pytest.approx(0.01)
    assert signal_efficiency_at(roc, 0.10) == pytest.approx(0.10)


# ----------------------------------------------------------------------------- KS


def test_effective_sample_size():
    assert effective_sample_size(np.ones(10)) == 10.0
    assert effective_sample_size([1.0, 1.0, 2.0]) == pytest.approx(16 / 6)
    assert effective_sample_size([3.0, 3.0]) == pytest.approx(2.0)
    assert effective_sample_size([]) == 0.0


@pytest.mark.parametrize("discrete", [False, True])
def test_ks_unweighted_statistic_matches_scipy(discrete):
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 1, 300), rng.normal(0.2, 1.2, 170)
    if discrete:  # many ties within and across samples
        a, b = np.round(a), np.round(b)
    res = weighted_ks(a, None, b, None)
    # method="asymp": the exact method rounds the statistic onto its lattice of k/lcm(na, nb)
    assert res.statistic == stats.ks_2samp(a, b, method="asymp").statistic
    assert res.statistic == pytest.approx(stats.ks_2samp(a, b).statistic, rel=1e-12)
    assert res.n_eff_a == 300 and res.n_eff_b == 170
    assert weighted_ks(a, np.ones(300), b, np.ones(170)) == res


def test_ks_weight_semantics():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=100), rng.normal(size=80)
    wa = rng.uniform(0.5, 2.0, 100)
    wb = rng.uniform(0.5, 2.0, 80)
    base = weighted_ks(a, wa, b, wb)
    # a global scale of either sample's weights changes nothing
    scaled = weighted_ks(a, 7.0 * wa, b, 0.1 * wb)
    assert scaled.statistic == pytest.approx(base.statistic, rel=1e-12)
    assert scaled.pvalue == pytest.approx(base.pvalue, rel=1e-9)
    # integer weights give the statistic of repeated events, with fewer effective events
    k = rng.integers(1, 4, 100)
    res = weighted_ks(a, k, b, None)
    assert res.statistic == pytest.approx(stats.ks_2samp(np.repeat(a, k), b).statistic, rel=1e-12)
    assert res.n_eff_a == pytest.approx(k.sum() ** 2 / (k**2).sum())


def test_ks_identical_distributions_give_uniform_pvalues():
    rng = np.random.default_rng(2024)
    n_toys = 200
    pvalues = {"unweighted": [], "weighted": []}
    for _ in range(n_toys):
        a, b = rng.normal(size=400), rng.normal(size=250)
        pvalues["unweighted"].append(weighted_ks(a, None, b, None).pvalue)
        wa, wb = rng.uniform(0.2, 2.0, 400), rng.uniform(0.2, 2.0, 250)
        pvalues["weighted"].append(weighted_ks(a, wa, b, wb).pvalue)
    # number of p < 0.05 is Binomial(200, 0.05) for a correct test: 99.9 % band
    lo, hi = stats.binom.interval(0.999, n_toys, 0.05)
    for p in pvalues.values():
        p = np.asarray(p)
        assert np.all((p >= 0) & (p <= 1))
        assert lo <= np.sum(p < 0.05) <= hi
        # and roughly uniform overall: mean of U(0,1) over 200 draws is 0.5 ± 0.02
        assert abs(p.mean() - 0.5) < 0.07


def test_ks_shifted_distributions_give_zero_pvalue():
    rng = np.random.default_rng(8)
    a, b = rng.normal(0.0, 1.0, 2000), rng.normal(0.3, 1.0, 2000)
    res = weighted_ks(a, rng.uniform(0.5, 1.5, 2000), b, rng.uniform(0.5, 1.5, 2000))
    assert res.pvalue < 1e-8
    assert 0.08 < res.statistic < 0.16  # true value 2Φ(0.15) - 1 = 0.119


def test_ks_rejects_bad_inputs():
    with pytest.raises(ValueError, match="positive total weight"):
        weighted_ks([1.0, 2.0], [-1.0, 0.5], [1.0], None)
    with pytest.raises(ValueError, match="weights"):
        weighted_ks([1.0, 2.0], [1.0], [1.0], None)


# ----------------------------------------------------------------------------- importances


def test_permutation_importance_only_informative_feature_matters():
    X, y, w = toy(1500, seed=1, shift=1.5)
    model = LogisticRegression().fit(X, y, sample_weight=w)

    def predict(arr: np.ndarray) -> np.ndarray:
        return model.predict_proba(arr)[:, 1]

    X_before = X.copy()
    names = ["informative", "noise_a", "noise_b"]
    result = permutation_importance(predict, X, y, w, names, seed=42, repeats=3)
    np.testing.assert_array_equal(X, X_before)  # input not modified
    assert list(result) == names
    assert all(isinstance(r, ImportanceResult) for r in result.values())
    assert result["informative"].mean_auc_drop > 0.25  # baseline AUC ≈ 0.86, permuted ≈ 0.5
    assert result["informative"].std < 0.05
    for name in ("noise_a", "noise_b"):
        assert abs(result[name].mean_auc_drop) < 0.01
    # seeded: the same seed reproduces the result exactly, another seed does not
    assert permutation_importance(predict, X, y, w, names, seed=42, repeats=3) == result
    assert permutation_importance(predict, X, y, w, names, seed=43, repeats=3) != result


def test_best_single_feature_auc_either_direction():
    X, y, w = toy(1000, seed=2, shift=0.5)
    X[:1000, 2] -= 1.5  # feature 2 is lower for signal: it separates, reversed
    names = ["f0", "f1", "f2"]
    aucs = single_feature_aucs(X, y, w, names)
    raw = auc(weighted_roc(X[:, 2], y, w))
    assert raw < 0.5
    assert aucs["f2"] == pytest.approx(1.0 - raw)
    assert aucs["f1"] == pytest.approx(0.5, abs=0.04)
    name, value = best_single_feature_auc(X, y, w, names)
    assert name == "f2" and value == aucs["f2"] and value > aucs["f0"] > 0.6


def test_single_feature_auc_hand_made_and_nan():
    # NaN ranks below every value: "up" separates perfectly, "down" perfectly reversed
    X = np.array([[0.9, 0.1], [0.8, np.nan], [0.2, 0.8], [np.nan, 0.9]])
    assert single_feature_aucs(X, [1, 1, 0, 0], None, ["up", "down"]) == {"up": 1.0, "down": 1.0}
    # without the NaN: signal {0.1, 0.85} vs background {0.8, 0.9}, 1 of 4 pairs ordered
    X[1, 1] = 0.85
    assert single_feature_aucs(X, [1, 1, 0, 0], None, ["up", "down"])["down"] == 0.75


# ----------------------------------------------------------------------------- summary


def scored_samples(seed: int, shift: float = 1.0) -> tuple[ScoredSample, ScoredSample]:
    rng = np.random.default_rng(seed)

    def one(n: int) -> ScoredSample:
        y = rng.integers(0, 2, n)
        s = 1.0 / (1.0 + np.exp(-rng.normal(y * shift - shift / 2, 1.0)))
        return ScoredSample(s, y, rng.uniform(0.5, 1.5, n))

    return one(3000), one(2000)


def test_score_summary():
    train, test = scored_samples(9)
    m = score_summary("bdt", train, test, train_seconds=12.5, inference_seconds=0.5)
    roc = weighted_roc(*test)
    assert m.model == "bdt" and m.n_test == 2000
    assert m.auc == auc(roc)
    assert m.sig_eff_at_1pct == signal_efficiency_at(roc, 0.01)
    assert m.sig_eff_at_10pct == signal_efficiency_at(roc, 0.10)
    assert 0 < m.sig_eff_at_1pct < m.sig_eff_at_10pct < 1
    assert m.train_seconds == 12.5 and m.inference_seconds_per_event == pytest.approx(0.5 / 2000)
    sig_train, sig_train_w = train.of_class(1)
    sig_test, sig_test_w = test.of_class(1)
    assert m.ks_signal == weighted_ks(sig_train, sig_train_w, sig_test, sig_test_w)
    assert isinstance(m.ks_background, KsResult) and m.ks_background.pvalue > 1e-3


def metrics(name: str, auc_value: float) -> ModelMetrics:
    ks = KsResult(0.01, 0.5, 100.0, 50.0)
    return ModelMetrics(name, auc_value, 0.1, 0.4, ks, ks, 1.0, 1e-6, 1000)


def test_metrics_table_sorted_by_auc():
    table = metrics_table([metrics("a", 0.80), metrics("b", 0.90), metrics("c", 0.85)])
    assert isinstance(table, pd.DataFrame)
    assert list(table["model"]) == ["b", "c", "a"]
    assert list(table.index) == [0, 1, 2]
    assert {
        "auc",
        "sig_eff_at_1pct",
        "sig_eff_at_10pct",
        "ks_signal_pvalue",
        "ks_background_statistic",
        "train_seconds",
        "inference_seconds_per_event",
        "n_test",
    } <= set(table.columns)
    assert table.loc[0, "ks_signal_n_eff_b"] == 50.0
    assert list(metrics_table([]).columns) == list(table.columns)
    with pytest.raises(ValueError, match="duplicate model names: a"):
        metrics_table([metrics("a", 0.8), metrics("a", 0.9)])


# ----------------------------------------------------------------------------- plots


def assert_png(path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000
    assert not list(path.parent.glob(".*tmp*"))  # atomic write left no temporary file


@pytest.fixture()
def figures(monkeypatch) -> list:
    """Every figure the plotting functions save, kept for inspection after the PNG is written."""
    import thetaflow.ml.plots as plots

    saved = []
    original = plots.save_figure

    def keep(fig, output):
        saved.append(fig)
        original(fig, output)

    monkeypatch.setattr(plots, "save_figure", keep)
    return saved


def unit_density(scores, weights, edges) -> np.ndarray:
    counts, _ = np.histogram(scores, bins=edges, weights=weights)
    return counts / (counts.sum() * np.diff(edges)[0])


def test_plot_roc_curves(tmp_path, figures):
    train, test = scored_samples(4)
    rocs = {"bdt": weighted_roc(*test), "perfect": weighted_roc([1, 1, 0, 0], [1, 1, 0, 0])}
    reference = weighted_roc(test.scores**2, test.labels)
    out = tmp_path / "roc.png"
    plot_roc_curves(rocs, str(out), reference=reference)
    assert_png(out)
    (ax,) = figures[0].axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    # one curve per model and the reference, each labelled with its own AUC and drawn as
    # (signal efficiency, background efficiency) at the points of non-zero background efficiency
    curves = {**rocs, "best single feature": reference}
    for name, roc in curves.items():
        line = lines[f"{name} (AUC = {auc(roc):.3f})"]
        keep = roc.background_efficiency > 0
        np.testing.assert_array_equal(line.get_xdata(), roc.signal_efficiency[keep])
        np.testing.assert_array_equal(line.get_ydata(), roc.background_efficiency[keep])
    assert lines[f"bdt (AUC = {auc(rocs['bdt']):.3f})"].get_linestyle() == "-"
    ref = lines[f"best single feature (AUC = {auc(reference):.3f})"]
    assert ref.get_linestyle() == "--" and ref.get_color() == "grey"
    assert 0.7 < auc(rocs["bdt"]) < 0.8 and auc(rocs["perfect"]) == 1.0
    random = lines["random"]
    np.testing.assert_allclose(random.get_xdata(), random.get_ydata())
    # the working points are marked as horizontal lines at 1 % and 10 %
    marks = sorted(
        line.get_ydata()[0] for line in ax.get_lines() if line.get_label().startswith("_")
    )
    assert marks == [0.01, 0.1]
    assert ax.get_yscale() == "log" and ax.get_xlim() == (0.0, 1.0)
    assert "Signal efficiency" in ax.get_xlabel() and "Background efficiency" in ax.get_ylabel()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:3] == [f"{n} (AUC = {auc(r):.3f})" for n, r in curves.items()]
    out2 = tmp_path / "sub" / "roc.png"
    plot_roc_curves(rocs, str(out2), None)
    assert_png(out2)
    labels = [line.get_label() for line in figures[1].axes[0].get_lines()]
    assert not any(label.startswith("best single feature") for label in labels)


def test_plot_overtraining(tmp_path, figures):
    from matplotlib.container import ErrorbarContainer
    from matplotlib.patches import StepPatch

    train, test = scored_samples(4)
    ks_s = weighted_ks(*train.of_class(1), *test.of_class(1))
    ks_b = weighted_ks(*train.of_class(0), *test.of_class(0))
    out = tmp_path / "overtraining.png"
    plot_overtraining(train, test, ks_s, ks_b, str(out), model="bdt", bins=20)
    assert_png(out)
    (ax,) = figures[0].axes
    scores = np.concatenate([train.scores, test.scores])
    edges = np.linspace(scores.min(), scores.max(), 21)
    # test histograms: unit-area densities of the test scores of each class, signal first
    stairs = [p for p in ax.patches if isinstance(p, StepPatch)]
    labelled = [p for p in stairs if p.get_label() and not p.get_label().startswith("_")]
    assert [p.get_label() for p in labelled] == ["Signal (test)", "Background (test)"]
    for patch, label in zip(labelled, (1, 0), strict=True):
        values, drawn_edges, _ = patch.get_data()
        np.testing.assert_allclose(drawn_edges, edges)
        np.testing.assert_allclose(values, unit_density(*test.of_class(label), edges))
        assert np.sum(values * np.diff(edges)) == pytest.approx(1.0)
    # train points: the densities of the train scores at the bin centres, with the KS p-values
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert [c.get_label() for c in bars] == [
        f"Signal (train), KS p = {ks_s.pvalue:.3f}",
        f"Background (train), KS p = {ks_b.pvalue:.3f}",
    ]
    for container, label in zip(bars, (1, 0), strict=True):
        x, y = container.lines[0].get_data()
        np.testing.assert_allclose(x, 0.5 * (edges[1:] + edges[:-1]))
        np.testing.assert_allclose(y, unit_density(*train.of_class(label), edges))
    # the classes differ: signal test density sits at higher scores than background's
    centres = 0.5 * (edges[1:] + edges[:-1])
    sig, bkg = (p.get_data()[0] for p in labelled)
    assert np.average(centres, weights=sig) > np.average(centres, weights=bkg) + 0.1
    assert ax.get_legend().get_title().get_text() == "bdt"
    assert ax.get_xlabel() == "Classifier score"


def test_plot_importances(tmp_path, figures):
    out = tmp_path / "importance.png"
    plot_importances(
        {"m_bb": 0.2, "pt_l": 0.01, "dr_bb": -0.002},
        str(out),
        "bdt",
        errors={"m_bb": 0.01, "pt_l": 0.002, "dr_bb": 0.001},
    )
    assert_png(out)
    (ax,) = figures[0].axes
    # bars bottom-up in increasing importance: the most important feature on top
    widths = [bar.get_width() for bar in ax.patches]
    assert widths == pytest.approx([-0.002, 0.01, 0.2])
    assert [bar.get_y() + bar.get_height() / 2 for bar in ax.patches] == pytest.approx([0, 1, 2])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["dr_bb", "pt_l", "m_bb"]
    from matplotlib.container import ErrorbarContainer

    (container,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    (errorbar,) = container.lines[2]
    segments = errorbar.get_segments()
    half_widths = [(seg[1][0] - seg[0][0]) / 2 for seg in segments]
    assert half_widths == pytest.approx([0.001, 0.002, 0.01])
    assert figures[0]._suptitle.get_text() == "bdt"
    assert ax.get_xlabel() == "AUC drop when permuted"


def test_plot_comparison(tmp_path, figures):
    table = metrics_table([metrics("a", 0.80), metrics("b", 0.90)])
    out = tmp_path / "comparison.png"
    plot_comparison(table, str(out), best_single_feature_auc=0.75, best_single_feature="m_bb")
    assert_png(out)
    (ax,) = figures[0].axes
    # three groups of bars (AUC, ε_S at 1 %, ε_S at 10 %), one bar per model in table order
    assert [t.get_text() for t in ax.get_xticklabels()] == ["b", "a"]
    heights = [bar.get_height() for container in ax.containers for bar in container]
    assert heights == pytest.approx([0.90, 0.80, 0.1, 0.1, 0.4, 0.4])
    assert [c.get_label() for c in ax.containers][0] == "AUC"
    # each bar is labelled with its value
    texts = sorted(t.get_text() for t in ax.texts if t.get_text()[:1].isdigit())
    assert texts == sorted(["0.900", "0.800", "0.100", "0.100", "0.400", "0.400"])
    (baseline,) = [line for line in ax.get_lines() if line.get_label().startswith("AUC of m_bb")]
    assert baseline.get_label() == "AUC of m_bb (0.750)"
    assert list(baseline.get_ydata()) == [0.75, 0.75]
    out2 = tmp_path / "comparison_plain.png"
    plot_comparison(table, str(out2))
    assert_png(out2)
    assert not [line for line in figures[1].axes[0].get_lines() if "AUC of" in line.get_label()]
