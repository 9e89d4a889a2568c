"""Reading other jobs' outputs (thetaflow.core.io): a truncated or unreadable file under
results/ stops its reader with a CorruptResultError naming it and the rule that rebuilds it;
a good file reads exactly as pandas/json read it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from thetaflow.core import paths
from thetaflow.core.errors import CorruptResultError, ThetaflowError
from thetaflow.core.io import read_json, read_table, reading_result, write_json, write_table

FRAME = pd.DataFrame(
    {"event": [1, 2, 3], "weight": [0.5, 1.0, 1.5], "m_bb_gev": [90.0, 125.0, 1e3]}
)


def truncate(path: Path) -> None:
    """Cut ``path`` to half its bytes, as a full disk outside the workflow would."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def contents(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def test_truncated_events_parquet_names_file_corruption_and_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = Path(paths.EVENTS.format(sample="zh", variation="nominal"))
    write_table(bad, FRAME)
    write_table(paths.EVENTS.format(sample="zh", variation="jes_up"), FRAME)
    truncate(bad)
    before = contents(tmp_path)
    with pytest.raises(CorruptResultError) as caught:
        read_table(bad)
    message = str(caught.value)
    assert message.startswith(f"{bad} is corrupt or unreadable (")
    assert "magic bytes" in message
    assert "delete results/events/zh/nominal.parquet and rerun snakemake" in message
    assert "snakemake --forcerun ingest_simulation (or ingest_data" in message
    assert isinstance(caught.value, ThetaflowError) and isinstance(caught.value, ValueError)
    assert contents(tmp_path) == before  # the bad file and its neighbours are left as they are


def test_table_without_the_asked_columns_is_named_with_its_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = paths.FEATURE_TABLE.format(sample="zz", variation="nominal")
    write_table(path, FRAME)
    with pytest.raises(CorruptResultError, match=r"no column\(s\) pt_bb: .*--forcerun features"):
        read_table(path, ["event", "pt_bb"])


def test_good_table_reads_as_pandas_reads_it(tmp_path):
    path = tmp_path / "t.parquet"
    write_table(path, FRAME)
    pd.testing.assert_frame_equal(read_table(path), pd.read_parquet(path))
    pd.testing.assert_frame_equal(
        read_table(path, ("weight", "event")), pd.read_parquet(path, columns=["weight", "event"])
    )
    pd.testing.assert_frame_equal(read_table(path), FRAME)


def test_missing_files_stay_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.parquet"):
        read_table(tmp_path / "nowhere.parquet", ["event"])
    with pytest.raises(FileNotFoundError, match="nowhere.json: file not found"):
        read_json(tmp_path / "nowhere.json")


def test_truncated_json_result_names_file_corruption_and_rule(tmp_path):
    bad = tmp_path / paths.FIT_RESULT.format(discriminant="nn")
    write_json(bad, {"mu": {"value": 1.0, "hesse": 0.2}})
    write_json(bad.parent / "limit.json", {"limit": 2.0})
    truncate(bad)
    before = contents(tmp_path)
    with pytest.raises(CorruptResultError) as caught:
        read_json(bad)
    message = str(caught.value)
    assert f"{bad} is corrupt or unreadable (JSONDecodeError" in message
    assert f"delete {bad} and rerun snakemake" in message
    assert message.endswith("snakemake --forcerun fit")
    assert contents(tmp_path) == before


def test_good_json_reads_as_json_reads_it(tmp_path):
    data = {"b": [1, 2.5, None], "a": {"nan": float("inf")}}
    write_json(tmp_path / "r.json", data)
    assert read_json(tmp_path / "r.json") == json.loads((tmp_path / "r.json").read_text())


def test_unknown_paths_still_say_how_to_rebuild(tmp_path):
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(CorruptResultError, match=r"corrupt .*delete it and rerun the job"):
        read_json(tmp_path / "x.json")


def test_reading_result_passes_diagnoses_and_missing_files_unchanged(tmp_path):
    with pytest.raises(ThetaflowError, match="own diagnosis"), reading_result(tmp_path):
        raise ThetaflowError("own diagnosis")
    with pytest.raises(FileNotFoundError), reading_result(tmp_path):
        raise FileNotFoundError(tmp_path)
    with pytest.raises(CorruptResultError, match=r"KeyError: 'fold'"), reading_result(tmp_path):
        raise KeyError("fold")
