"""The typed view of ``regions:`` and its schema."""

from __future__ import annotations

import copy

import pytest

from thetaflow.core.config import validate
from thetaflow.core.errors import ConfigError
from thetaflow.core.regions import (
    INCLUSIVE,
    Region,
    RegionKind,
    analysis_regions,
    signal_region_names,
)

REGIONS = [
    {"name": "sr", "kind": "signal", "expr": "90 < mbb_gev < 150"},
    {"name": "cr_top", "kind": "control", "expr": "not same_flavour"},
]


def test_without_regions_the_analysis_has_one_inclusive_signal_region():
    assert analysis_regions({}) == (Region(INCLUSIVE, RegionKind.SIGNAL, None),)
    assert analysis_regions({}) == (Region("inclusive", "signal", None),)  # type: ignore[arg-type]
    assert signal_region_names({}) == (INCLUSIVE,)


def test_regions_in_config_order_with_their_kind():
    regions = analysis_regions({"regions": REGIONS})
    assert [r.name for r in regions] == ["sr", "cr_top"]
    assert [r.is_signal for r in regions] == [True, False]
    assert regions[1] == Region("cr_top", RegionKind.CONTROL, "not same_flavour")
    assert signal_region_names({"regions": REGIONS}) == ("sr",)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "sr", "kind": "validation", "expr": "n_jets > 2"}, r"regions\[0\]\.kind"),
        ({"name": "sr", "kind": "signal"}, r"regions\[0\].*'expr' is a required property"),
        ({"name": "2sr", "kind": "signal", "expr": "n_jets > 2"}, r"regions\[0\]\.name"),
    ],
)
def test_schema_refuses_bad_region_entries(default_config, entry, message):
    config = copy.deepcopy(default_config)
    config["regions"] = [entry]
    with pytest.raises(ConfigError, match=message):
        validate(config, "config.schema.yaml", "config")
    config["regions"] = REGIONS
    validate(config, "config.schema.yaml", "config")
