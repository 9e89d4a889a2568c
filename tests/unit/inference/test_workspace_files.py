"""A truncated or foreign pyhf workspace stops the fits with a CorruptResultError naming the
file and the rule that rebuilds it."""

from __future__ import annotations

import json

import pytest

from thetaflow.core import paths
from thetaflow.core.errors import CorruptResultError
from thetaflow.inference.fit import load_model


@pytest.mark.parametrize(
    ("text", "problem"),
    [('{"channels": [{"name": "SR", "samples"', "JSONDecodeError"), ('{"channels": 1}', "")],
)
def test_bad_workspace_names_file_corruption_and_rule(text, problem, tmp_path):
    workspace = tmp_path / paths.WORKSPACE.format(discriminant="nn")
    workspace.parent.mkdir(parents=True)
    workspace.write_text(text)
    binning = workspace.with_name("binning.json")
    binning.write_text(json.dumps({"bins": [0, 1]}))
    with pytest.raises(CorruptResultError) as caught:
        load_model(str(workspace))
    message = str(caught.value)
    assert message.startswith(f"{workspace} is corrupt or unreadable ({problem}")
    assert message.endswith("snakemake --forcerun workspace")
    assert workspace.read_text() == text and json.loads(binning.read_text()) == {"bins": [0, 1]}
