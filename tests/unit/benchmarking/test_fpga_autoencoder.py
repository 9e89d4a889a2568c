"""FPGA tiers 2 and 3 of the autoencoder: ELU as hls4ml's lookup table in the da4ml design,
the reconstruction error in firmware, GHDL cycles, and the note for activations without a path.

Compiles with g++ (hls4ml) and simulates in GHDL like tests/unit/test_benchmarking.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from thetaflow.benchmarking import fpga, hdl
from thetaflow.benchmarking.fixedpoint import FixedType

SEED = 11
FTYPE = FixedType.parse("ap_fixed<16,6>")


def settings(**overrides: object) -> fpga.FPGASettings:
    base = {
        "clock_mhz": 200.0,
        "default_precision": FTYPE,
        "scan_widths": (16,),
        "output_precision": FixedType.parse("ap_ufixed<16,0,AP_RND,AP_SAT>"),
        "min_agreement": 0.99,
        "background_efficiency": 0.1,
        "events": 500,
        "latency": True,
        "resources": True,
        "da4ml_latency_cutoff": 5.0,
        "yosys_max_luts": 1e9,
        "yosys_family": "xcup",
        "tool_timeout_s": 300.0,
        "allow_input_overflow": False,
        "seed": SEED,
    }
    base.update(overrides)
    return fpga.FPGASettings(**base)  # type: ignore[arg-type]


def toy_autoencoder(
    activation: str, error_mode: str = "normalised", d: int = 4
) -> fpga.DenseNetwork:
    """d-3-2-3-d autoencoder with random weights (the cycle count and the arithmetic do not
    need a trained network); pre-activations reach well below zero, so ELU's table is used."""
    rng = np.random.default_rng(SEED)
    sizes = [d, 3, 2, 3, d]
    acts = [activation, "linear", activation, "linear"]
    layers = [
        (rng.normal(scale=0.8, size=(a, b)), rng.normal(scale=0.3, size=b), act)
        for a, b, act in zip(sizes[:-1], sizes[1:], acts, strict=True)
    ]
    return fpga.DenseNetwork(
        f"toy_{activation}_ae",
        "autoencoder",
        tuple("abcd"[:d]),
        np.zeros(d),
        np.ones(d),
        layers,
        error_mode=error_mode,
        feature_scale=rng.uniform(0.3, 1.5, size=d),
    )


def toy_events(n: int = 500, d: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    Z = rng.normal(size=(n, d)).astype(np.float32)
    return Z, (rng.uniform(size=n) < 0.3).astype(int)


def test_elu_table_is_hls4mls_on_every_input_code(tmp_path: Path) -> None:
    """hls4ml's ELU, compiled with g++, on all 2^16 codes of ap_fixed<16,6> (identity Dense
    layers, so the layer is exact) equals the table model the da4ml design implements."""
    d = 8
    eye = (np.eye(d), np.zeros(d))
    net = fpga.DenseNetwork(
        "elu_identity",
        "autoencoder",
        tuple("abcdefgh"),
        np.zeros(d),
        np.ones(d),
        [(*eye, "elu"), (*eye, "linear")],
    )
    Z = (np.arange(-(2**15), 2**15) * FTYPE.lsb).reshape(-1, d)
    types = fpga.LayerTypes(16, (FTYPE, FTYPE), (FTYPE, FTYPE), ((0.0, 0.0), (0.0, 0.0)))
    out, _ = fpga.hls4ml_emulate(net, Z, FTYPE, FTYPE, tmp_path / "hls4ml", types)
    np.testing.assert_array_equal(out, hdl.hls4ml_elu(Z, FTYPE))
    # the constants of the model are hls4ml's defaults for this layer
    defines = (tmp_path / "hls4ml" / "firmware" / "defines.h").read_text()
    parameters = (tmp_path / "hls4ml" / "firmware" / "parameters.h").read_text()
    assert f"typedef {hdl.ELU_TABLE_TYPE.hls()} dense_0_elu_table_t;" in defines
    assert f"table_size = {hdl.ELU_TABLE_SIZE};" in parameters


@pytest.mark.parametrize("mode", ["mse", "normalised", "max"])
def test_design_computes_the_error_bit_for_bit(mode: str, tmp_path: Path) -> None:
    """The da4ml design of an ELU autoencoder and its error (every error mode) predicts what
    the independent numpy model does, and the error follows the float error closely."""
    net = toy_autoencoder("elu", mode)
    Z, _ = toy_events()
    types = fpga.layer_types(net, fpga.layer_ranges(net, Z), FTYPE, "profile")
    error = fpga.error_path(net, Z, FTYPE, "profile")
    design = hdl.da4ml_design(
        net.layers, FTYPE, tmp_path, 5.0, 5.0, net.name, types.dense, types.activation, error
    )
    numpy_model = hdl.fixed_point_forward(
        net.layers, FTYPE, Z, types.dense, types.activation, error
    )
    np.testing.assert_array_equal(design.predict(Z), numpy_model)
    assert numpy_model.shape == (len(Z), 1)
    float_error = net.score(net.forward(Z), Z)
    np.testing.assert_allclose(
        numpy_model[:, 0], float_error, rtol=0.05, atol=0.05
    )  # errors up to ~20
    assert np.corrcoef(numpy_model[:, 0], float_error)[0, 1] > 0.999
    assert design.network_only is not None and design.network_only["stages"] < design.stages
    assert design.network_only["lut"] < design.lut_estimate


@pytest.mark.parametrize("activation", ["relu", "elu"])
def test_autoencoder_cycles_from_ghdl_and_estimates(activation: str, tmp_path: Path) -> None:
    """Tiers 2 and 3 of a small autoencoder: GHDL counts da4ml's stages plus the input
    register (as for the NN), the design agrees with the float error, Yosys synthesises it
    (the ELU design's lookup tables included)."""
    net = toy_autoencoder(activation)
    Z, y = toy_events()
    result = fpga.network_tiers(net, Z, y, settings(), tmp_path)
    lat, res = result.hardware
    assert lat["available"] and lat["cycles"] == lat["da4ml_stages"] + 1
    assert lat["ns"] == pytest.approx(lat["cycles"] * 5.0)
    assert lat["identical_to_numpy_model_fraction"] == 1.0
    assert lat["design_fidelity"]["agreement"] >= 0.99
    assert "reconstruction error" in lat["method"] and lat["error_path"]["mode"] == "normalised"
    assert ("lookup table" in lat["method"]) == (activation == "elu")
    assert lat["network_only_da4ml_stages"] < lat["da4ml_stages"]
    assert (
        res["label"] == "estimates"
        and res["da4ml"]["lut"] > res["da4ml"]["network_only"]["lut"] > 0
    )
    assert res["yosys"]["available"] and res["yosys"]["lut"] > 0 and res["yosys"]["ff"] > 0


def test_activation_without_a_design_path_gets_a_note(tmp_path: Path) -> None:
    """A hidden activation da4ml's tier does not implement: no cycle tier, a clear note, no
    crash."""
    net = toy_autoencoder("tanh")
    Z, y = toy_events()
    out = fpga.network_hardware(net, Z, y, net.score(net.forward(Z), Z), settings(), tmp_path)
    for tier in out:  # latency, resources
        assert tier["available"] is False
        assert tier["note"].startswith(
            "not available: toy_tanh_ae: hidden layer 0 uses activation 'tanh'"
        )
        assert "relu, linear, elu hidden layers only" in tier["note"]
