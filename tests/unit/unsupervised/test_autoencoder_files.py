"""A truncated autoencoder model file stops its one loader with a CorruptResultError naming
the file and the rule that rebuilds it."""

from __future__ import annotations

import json

import pytest

from thetaflow.core import paths
from thetaflow.core.errors import CorruptResultError
from thetaflow.unsupervised.autoencoder import MODEL_FILE, RECORD_FILE, load_autoencoder_fold


def test_truncated_autoencoder_names_file_corruption_and_rule(tmp_path):
    directory = tmp_path / paths.AUTOENCODER_DIR.format(fold=1)
    directory.mkdir(parents=True)
    record = json.dumps({"fold": 1, "folds": 2, "inputs": ["m_bb_gev"]})
    (directory / RECORD_FILE).write_text(record)
    (directory / MODEL_FILE).write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(CorruptResultError) as caught:
        load_autoencoder_fold(directory, 1, 2, ["m_bb_gev"])
    message = str(caught.value)
    assert message.startswith(f"{directory / MODEL_FILE} is corrupt or unreadable (")
    assert f"delete {directory} and rerun snakemake" in message
    assert message.endswith("snakemake --forcerun train_autoencoder")
    assert (directory / RECORD_FILE).read_text() == record
