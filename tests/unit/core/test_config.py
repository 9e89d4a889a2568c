"""Config validation: bad configs and sample lists get errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from thetaflow.analysis import load_analysis
from thetaflow.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "config" / "config.yaml"


def load_with(overrides: dict, tmp_path: Path, samples: dict | None = None):
    """Load the default config with ``overrides`` merged in (and a custom sample list)."""
    if samples is not None:
        path = tmp_path / "samples.yaml"
        path.write_text(yaml.safe_dump(samples))
        overrides = {**overrides, "samples": str(path)}
    return load_analysis([CONFIG], overrides=overrides)


def default_samples() -> dict:
    return yaml.safe_load((REPO / "config" / "samples.yaml").read_text())


def test_default_and_ci_configs_are_valid():
    config, samples = load_analysis([CONFIG])
    assert config["ingest"]["tree"] == "Events"  # default filled
    assert {s.kind for s in samples.values()} == {"signal", "background", "data", "bsm"}
    ci, _ = load_analysis([CONFIG, REPO / "config" / "ci.yaml"])
    assert ci["analysis"]["lumi_fb"] < config["analysis"]["lumi_fb"]


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        (
            {"analysis": {"lumi_fbb": 3.0}},
            r"key 'analysis.lumi_fbb': unknown key \(did you mean 'lumi_fb'\?\); "
            r"allowed in 'analysis': lumi_fb, name, sqrt_s_tev",
        ),
        (
            {"analysis": {"lumi_fb": "lots"}},
            r"key 'analysis.lumi_fb': 'lots' is not of type 'number'",
        ),
        ({"analysis": {"lumi_fb": -1}}, r"key 'analysis.lumi_fb'"),
        ({"simulation": {"events_per_chunk": 1.5}}, r"key 'simulation.events_per_chunk'"),
        ({"ingest": {"chunk_size": 0}}, r"key 'ingest.chunk_size'"),
        (
            {"selection": {"cuts": [{"name": "x", "expression": "n_jets > 1"}]}},
            r"key 'selection.cuts\[0\]'",
        ),
        (
            {"unknown_section": {}},
            r"key 'unknown_section': unknown key; allowed in '\(top level\)'",
        ),
        ({"analysis": {"lumi_fb": float("nan")}}, r"key 'analysis.lumi_fb': a finite number"),
        (
            {"ml": {"models": {"nn": {"params": {"epochs": float("inf")}}}}},
            r"ml.models.nn.params.epochs",
        ),
    ],
)
def test_schema_errors_name_the_key(overrides, pattern, tmp_path):
    with pytest.raises(ConfigError, match=pattern):
        load_with(overrides, tmp_path)


@pytest.mark.parametrize(
    ("cut", "pattern"),
    [
        ("__import__('os').system('true')", r"selection.cuts\[0\].expr"),
        ("n_jets.__class__", r"attribute access"),
        ("mll > 3", r"'mll'"),  # not an event variable
        ("n_jets >", r"selection.cuts\[0\].expr"),
        ("open('x')", r"open"),
    ],
)
def test_forbidden_cut_expressions_are_rejected(cut, pattern, tmp_path):
    with pytest.raises(ConfigError, match=pattern):
        load_with({"selection": {"cuts": [{"name": "bad", "expr": cut}]}}, tmp_path)


def test_unknown_feature_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown feature 'm_bbb' \(did you mean 'm_bb_gev'\?\)"):
        load_with({"features": ["m_bbb"]}, tmp_path)


def test_sample_list_errors_name_the_sample(tmp_path):
    samples = default_samples()
    samples["zh"]["xsec_pb"] = "big"
    with pytest.raises(ConfigError, match=r"key 'zh.xsec_pb'"):
        load_with({}, tmp_path, samples)
    samples = default_samples()
    samples["ttbar"]["generate"]["higgs_mass_gev"] = 130.0
    with pytest.raises(
        ConfigError, match=r"samples.ttbar.generate.higgs_mass_gev': a parameter of model 'zh'"
    ):
        load_with({}, tmp_path, samples)
    samples = default_samples()
    samples["extra"] = {
        "kind": "background",
        "xsec_pb": 1.0,
        "files": [str(tmp_path / "missing.root")],
    }
    with pytest.raises(
        ConfigError, match=r"samples.extra.files\[0\]': file not found: .*missing.root"
    ):
        load_with({}, tmp_path, samples)
    samples = default_samples()
    samples["both"] = {
        "kind": "background",
        "xsec_pb": 1.0,
        "files": ["a.root"],
        "generate": {"model": "zz", "n_events": 5},
    }
    with pytest.raises(ConfigError, match=r"key 'both.files': not allowed: .* not both"):
        load_with({}, tmp_path, samples)
    samples = default_samples()
    del samples["zz"]["xsec_pb"]
    with pytest.raises(ConfigError, match=r"samples.zz': simulated samples need 'xsec_pb'"):
        load_with({}, tmp_path, samples)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"nothere.yaml: file not found"):
        load_analysis([tmp_path / "nothere.yaml"])


@pytest.mark.parametrize("is_data", [False, True])
@pytest.mark.parametrize("jes", [True, False])
def test_variations_and_their_jet_energy_scale_factors(is_data, jes):
    """Simulation with a JES systematic gets nominal, jes_up, jes_down (1 ± shift); data and
    configs without it only nominal; config.variation_names gives the same names."""
    from thetaflow.ingestion.ingest import variations
    from thetaflow.ingestion.variations import variation_names

    config, _ = load_analysis([CONFIG])
    shift = config["systematics"]["shape"]["jes"]["relative_shift"]
    if not jes:
        config["systematics"]["shape"].pop("jes")
    expected = [("nominal", 1.0)] + (
        [("jes_up", 1.0 + shift), ("jes_down", 1.0 - shift)] if jes and not is_data else []
    )
    assert [(v.name, v.jes_factor) for v in variations(config, is_data)] == expected
    assert variation_names(config, is_data) == [name for name, _ in expected]
