"""conifer's C++ emulation built once for every precision (fpga.conifer_cpp) against conifer's
own per-precision builds: the same logits bit for bit, for two different models through the
same build (nothing of a model is compiled in, so nothing stale is reused), and a failed build
that leaves no shared object behind.

Compiles with g++ like tests/unit/benchmarking/test_benchmarking.py (about a minute of g++).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from thetaflow.benchmarking import fpga, tools
from thetaflow.benchmarking.fpga.conifer_cpp import EmulationBuildError

SEED = 5
#: the scan's shape: double (the conversion check), a width that wraps, the default
PRECISIONS = ("double", "ap_fixed<8,6>", "ap_fixed<12,6>", "ap_fixed<16,6>")


def ensemble(directory: Path, n_trees: int, depth: int, seed: int) -> dict:
    """A conifer ensemble of a small xgboost BDT on 4 toy features (standardised as is)."""
    import xgboost as xgb

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, 4))
    y = (X[:, 0] + 0.8 * X[:, 1] - 0.5 * X[:, 2] + 0.5 * rng.normal(size=600) > 0).astype(int)
    directory.mkdir(parents=True)
    xgb.XGBClassifier(n_estimators=n_trees, max_depth=depth, random_state=seed).fit(
        X, y
    ).get_booster().save_model(directory / "model.ubj")
    return fpga.load_bdt_ensemble(directory, np.zeros(4), np.ones(4))[1]


def inputs(ens: dict) -> np.ndarray:
    """Normal inputs, some far outside ap_fixed<8,6> (wrap-around), some equal to thresholds."""
    rng = np.random.default_rng(SEED)
    Z = rng.normal(size=(300, 4))
    Z[:20] *= 40.0
    tree = ens["trees"][0][0]
    for node, feature in enumerate(tree["feature"]):
        if feature >= 0:
            Z[20 + node, feature] = tree["threshold"][node]
    return Z


def conifer_build(ens: dict, precision: str, workdir: Path, Z: np.ndarray) -> np.ndarray:
    """The logits of conifer's own C++ backend, compiled for this model and precision alone."""
    import conifer

    cfg = {**conifer.backends.cpp.auto_config(), "OutputDir": str(workdir), "Precision": precision}
    with tools.emulation_environment(workdir):
        model = conifer.model.make_model(copy.deepcopy(ens), cfg)
        model.compile()
        out = model.decision_function(np.ascontiguousarray(Z, dtype=np.float64))
    return np.asarray(out, dtype=np.float64).reshape(len(Z), -1)[:, 0]


@pytest.fixture(scope="module")
def emulation(tmp_path_factory: pytest.TempPathFactory) -> fpga.ConiferEmulation:
    return fpga.build_emulation(PRECISIONS, tmp_path_factory.mktemp("build"), timeout=600.0)


def test_one_build_equals_conifer_per_precision(
    emulation: fpga.ConiferEmulation, tmp_path: Path
) -> None:
    ens = ensemble(tmp_path / "a", n_trees=8, depth=3, seed=1)
    Z = inputs(ens)
    model_json = fpga.save_ensemble(ens, tmp_path / "a" / "model.json")
    # the default precision is compared on the second model, below
    for k, precision in enumerate(("double", "ap_fixed<8,6>")):
        shared = emulation.predict(model_json, precision, Z)
        fresh = conifer_build(ens, precision, tmp_path / f"conifer_{k}", Z)
        np.testing.assert_array_equal(shared, fresh, err_msg=precision)
    # one shared object for every precision, written under its final name only when complete
    assert [p.suffix for p in emulation.library.parent.iterdir()].count(".so") == 1
    assert emulation.to_json()["precisions"] == list(PRECISIONS)


def test_a_new_model_through_the_same_build_is_not_stale(
    emulation: fpga.ConiferEmulation, tmp_path: Path
) -> None:
    first = ensemble(tmp_path / "a", n_trees=8, depth=3, seed=1)
    second = ensemble(tmp_path / "b", n_trees=5, depth=2, seed=2)
    Z = inputs(first)
    before = emulation.predict(fpga.save_ensemble(first, tmp_path / "a.json"), "ap_fixed<16,6>", Z)
    after = emulation.predict(fpga.save_ensemble(second, tmp_path / "b.json"), "ap_fixed<16,6>", Z)
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(
        after, conifer_build(second, "ap_fixed<16,6>", tmp_path / "conifer_b", Z)
    )
    with pytest.raises(KeyError, match=r"no emulation at ap_fixed<10,6>"):
        emulation.predict(tmp_path / "b.json", "ap_fixed<10,6>", Z)


def test_failed_build_leaves_no_shared_object(tmp_path: Path) -> None:
    with pytest.raises(EmulationBuildError, match=r"conifer emulation .*failed \(exit"):
        fpga.build_emulation(["ap_fixed<16,6>", "not_a_type"], tmp_path, timeout=600.0)
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".so"]
