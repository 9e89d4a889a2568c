"""Atomic writers of thetaflow.core.io under write failures: a write that fails midway (the
file size limit: EFBIG after some bytes) or a flush that fails (ENOSPC, EIO, as a full disk
or a network file system reports them) leaves no output at the final path that looks
complete, no temporary, and a previous complete output untouched."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pandas as pd
import pytest

from thetaflow.core import io
from thetaflow.core.io import (
    atomic_directory,
    atomic_path,
    atomic_paths,
    write_json,
    write_table,
)

PAYLOAD = b"x" * 5000
FRAME = pd.DataFrame({"event": range(500), "weight": [0.5] * 500})


def write_path(target: Path) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(PAYLOAD)


def write_paths(target: Path) -> None:
    """Two outputs written together: the second one's write fails."""
    with atomic_paths([target.with_name("first.bin"), target]) as (first, second):
        first.write_bytes(b"small")
        second.write_bytes(PAYLOAD)


def write_directory(target: Path) -> None:
    with atomic_directory(target) as tmp:
        (tmp / "record.json").write_text("{}")
        (tmp / "model.bin").write_bytes(PAYLOAD)


WRITERS = {
    "atomic_path": (write_path, "out.bin"),
    "atomic_paths": (write_paths, "second.bin"),
    "atomic_directory": (write_directory, "model_dir"),
    "write_json": (lambda target: write_json(target, {"x": "y" * 5000}), "out.json"),
    "write_table": (lambda target: write_table(target, FRAME), "out.parquet"),
}


def listing(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


@pytest.mark.parametrize("writer", sorted(WRITERS))
@pytest.mark.parametrize("after_bytes", [0, 100])
def test_a_write_failing_midway_leaves_nothing(writer, after_bytes, tmp_path, file_size_limit):
    write, name = WRITERS[writer]
    with pytest.raises(OSError), file_size_limit(after_bytes):  # noqa: PT012
        write(tmp_path / name)
    assert listing(tmp_path) == set()


@pytest.mark.parametrize("writer", sorted(WRITERS))
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_a_failing_flush_leaves_the_previous_output(writer, code, tmp_path, monkeypatch):
    write, name = WRITERS[writer]
    write(tmp_path / name)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    def fail(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(io.os, "fsync", fail)
    with pytest.raises(OSError) as caught:
        write(tmp_path / name)
    assert caught.value.errno == code
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_good_writes_land_complete(writer, tmp_path):
    write, name = WRITERS[writer]
    write(tmp_path / name)
    write(tmp_path / name)  # replacing a previous output
    assert name in listing(tmp_path)
    assert not [p for p in listing(tmp_path) if ".tmp" in p]
