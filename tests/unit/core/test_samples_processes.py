"""Fit processes of the sample list: a sample splits into processes by its hard-process truth
(``processes:``), the splits partition its events, names are unique across the list, and a
pseudo-data sample's true normalisation factors name existing processes."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml

from thetaflow.core.errors import ConfigError
from thetaflow.core.samples import (
    PROCESS_TRUTH_COLUMNS,
    FitProcess,
    Sample,
    check_samples,
    load_samples,
    process_masks,
    pseudo_data_factors,
)

Z_HF_LF = {
    "zjets_hf": {"expr": "lhe_nb > 0 or lhe_nc > 0", "label": "Z+hf", "color": "#1f77b4"},
    "zjets_lf": {"expr": "lhe_nb == 0 and lhe_nc == 0", "label": "Z+lf"},
}


@pytest.fixture()
def specs(default_analysis) -> dict[str, dict]:
    """The default sample list's specs, Z+jets split into Z+hf and Z+lf (a private copy)."""
    out = {name: copy.deepcopy(dict(s.spec)) for name, s in default_analysis[1].items()}
    out["zjets"]["processes"] = copy.deepcopy(Z_HF_LF)
    return out


def as_samples(specs: dict[str, dict]) -> dict[str, Sample]:
    return {name: Sample(name, spec) for name, spec in specs.items()}


def truth(nb: list[int], nc: list[int]) -> dict[str, np.ndarray]:
    return {"lhe_nb": np.array(nb, np.uint8), "lhe_nc": np.array(nc, np.uint8)}


def test_truth_columns_are_the_lhe_heavy_flavour_counts():
    assert PROCESS_TRUTH_COLUMNS == {"lhe_nb": "LHE_Nb", "lhe_nc": "LHE_Nc"}


def test_a_sample_without_processes_is_its_own_fit_process(default_analysis):
    zz = default_analysis[1]["zz"]
    assert zz.fit_processes == (FitProcess("zz", None, "ZZ→ℓℓbb̄", "#9467bd"),)
    masks = process_masks(zz, truth([2, 0, 2], [0, 0, 0]))
    assert list(masks) == ["zz"] and masks["zz"].tolist() == [True, True, True]


def test_processes_give_fit_processes_in_list_order(specs):
    zjets = as_samples(specs)["zjets"]
    assert zjets.fit_processes == (
        FitProcess("zjets_hf", "lhe_nb > 0 or lhe_nc > 0", "Z+hf", "#1f77b4"),
        FitProcess("zjets_lf", "lhe_nb == 0 and lhe_nc == 0", "Z+lf", None),
    )
    check_samples(as_samples(specs))  # a valid list


def test_process_masks_split_z_jets_by_flavour(specs):
    """b pair → Z+hf, c pair → Z+hf, light → Z+lf; also from a table with other columns."""
    zjets = as_samples(specs)["zjets"]
    columns = {**truth([2, 0, 0, 2], [0, 2, 0, 0]), "mbb": np.zeros(4)}
    masks = process_masks(zjets, columns)
    assert masks["zjets_hf"].tolist() == [True, True, False, True]
    assert masks["zjets_lf"].tolist() == [False, False, True, False]
    assert process_masks(zjets, truth([], []))["zjets_hf"].shape == (0,)


@pytest.mark.parametrize(
    ("exprs", "message"),
    [
        ({"zjets_hf": "lhe_nb > 0", "zjets_lf": "lhe_nb == 0 and lhe_nc == 0"}, "in none of"),
        ({"zjets_hf": "lhe_nb >= 0", "zjets_lf": "lhe_nb == 0"}, "in more than one of"),
    ],
)
def test_processes_that_do_not_partition_the_events_are_an_error(specs, exprs, message):
    for name, expr in exprs.items():
        specs["zjets"]["processes"][name]["expr"] = expr
    zjets = as_samples(specs)["zjets"]
    # event 1 (a c pair) is in no process in the first case, in both in the second
    with pytest.raises(ConfigError, match=message) as err:
        process_masks(zjets, truth([2, 0, 0], [0, 2, 0]))
    text = str(err.value)
    assert "samples.zjets.processes" in text and "lhe_nb=0, lhe_nc=2" in text
    assert "zjets_hf" in text and "zjets_lf" in text


def test_a_process_expression_must_select(specs):
    specs["zjets"]["processes"]["zjets_hf"]["expr"] = "lhe_nb + lhe_nc"
    with pytest.raises(ConfigError, match=r"zjets_hf\.expr.*must select events"):
        process_masks(as_samples(specs)["zjets"], truth([2], [0]))


def test_an_unknown_name_in_a_process_expression_is_named(specs):
    specs["zjets"]["processes"]["zjets_hf"]["expr"] = "lhe_nb > 0 or n_c > 0"
    with pytest.raises(ConfigError) as err:
        check_samples(as_samples(specs))
    assert "samples.zjets.processes.zjets_hf.expr" in str(err.value)
    assert "'n_c'" in str(err.value) and "lhe_nb, lhe_nc" in str(err.value)


@pytest.mark.parametrize(
    ("where", "name", "message"),
    [
        ("zjets", "ttbar", "the name of sample 'ttbar'"),
        ("zjets", "data", "the name of sample 'data'"),
        ("zz", "zjets_hf", "also a fit process of sample 'zjets'"),
    ],
)
def test_process_names_are_unique_across_the_list(specs, where, name, message):
    specs[where]["processes"] = {
        **specs[where].get("processes", {}),
        name: {"expr": "lhe_nb >= 0"},
    }
    with pytest.raises(ConfigError, match=message):
        check_samples(as_samples(specs))


@pytest.mark.parametrize("kind_sample", ["data", "bsm"])
def test_processes_only_on_signal_and_background(specs, kind_sample):
    specs[kind_sample]["processes"] = {"x_part": {"expr": "lhe_nb >= 0"}}
    with pytest.raises(ConfigError, match=rf"samples\.{kind_sample}\.processes': only signal"):
        check_samples(as_samples(specs))


def test_pseudo_data_normalisation_names_existing_processes(specs):
    specs["data"]["generate"]["pseudo_data"]["normalisation"] = {"zjets_hf": 1.25, "zjets": 0.9}
    with pytest.raises(ConfigError) as err:
        check_samples(as_samples(specs))
    text = str(err.value)
    assert "samples.data.generate.pseudo_data.normalisation.zjets'" in text
    assert "zjets_hf, zjets_lf" in text  # the processes it could have named
    # a bsm process only where the pseudo-data sample sums it
    specs["data"]["generate"]["pseudo_data"]["normalisation"] = {"bsm": 2.0}
    with pytest.raises(ConfigError, match="normalisation.bsm"):
        check_samples(as_samples(specs))
    specs["data_bsm"]["generate"]["pseudo_data"]["normalisation"] = {"bsm": 2.0}
    specs["data"]["generate"]["pseudo_data"]["normalisation"] = {"zjets_hf": 1.25}
    check_samples(as_samples(specs))


def test_pseudo_data_factors_default_one_and_signal_times_mu(specs):
    pd = specs["data"]["generate"]["pseudo_data"]
    pd["mu_injected"] = 0.5
    pd["normalisation"] = {"zjets_hf": 1.25, "zjets_lf": 0.9, "ttbar": 1.1, "zh": 2.0}
    samples = as_samples(specs)
    assert pseudo_data_factors(samples["data"], samples) == {
        "zh": 1.0,  # μ_injected × k
        "zz": 1.0,
        "zjets_hf": 1.25,
        "zjets_lf": 0.9,
        "ttbar": 1.1,
    }


def test_the_schema_takes_processes_and_normalisation(specs, tmp_path):
    path = tmp_path / "samples.yaml"
    path.write_text(yaml.safe_dump(specs, allow_unicode=True))
    samples = load_samples({"samples": str(path)})
    assert [p.name for p in samples["zjets"].fit_processes] == ["zjets_hf", "zjets_lf"]
    for bad, key in (
        ({"zjets_hf": {"label": "no expr"}}, "zjets.processes.zjets_hf"),
        ({"zjets_hf": {"expr": "lhe_nb > 0", "colour": "red"}}, "colour"),
        ({}, "zjets.processes"),
    ):
        specs["zjets"]["processes"] = bad
        path.write_text(yaml.safe_dump(specs, allow_unicode=True))
        with pytest.raises(ConfigError, match=key):
            load_samples({"samples": str(path)})
    specs["zjets"]["processes"] = copy.deepcopy(Z_HF_LF)
    specs["data"]["generate"]["pseudo_data"]["normalisation"] = {"zjets_hf": -1.0}
    path.write_text(yaml.safe_dump(specs, allow_unicode=True))
    with pytest.raises(ConfigError, match="normalisation.zjets_hf"):
        load_samples({"samples": str(path)})
