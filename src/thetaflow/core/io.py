"""Atomic output writing, and reading of other jobs' outputs, shared by every stage.

Every output of the workflow is written under a temporary name in the target directory,
flushed to the disk and renamed into place only when complete, so a killed or failed job never
leaves a file that looks finished. A file that is unreadable all the same (truncated by a full
disk outside the workflow, copied from elsewhere) stops its reader with a CorruptResultError
that names it and the rule that rebuilds it (:func:`reading_result`), not a parser's traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from thetaflow.core import paths
from thetaflow.core.errors import CorruptResultError, ThetaflowError

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


def _sync(path: Path) -> None:
    """Flush ``path`` to the disk, so that a deferred write error (a full or failing disk, a
    network file system's quota) is raised before the rename, not lost after it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_paths(paths: Sequence[str | os.PathLike[str]]) -> Iterator[list[Path]]:
    """Yield a temporary path next to each of ``paths``; on success flush them all, then
    rename each to its target.

    A temporary file lives in the same directory as its target (so the rename is atomic on
    POSIX) and keeps its suffix, because writers such as uproot choose the format by it. On
    any exception (a failed write or flush included) the temporary files are removed and no
    target is touched: outputs written together appear together or not at all.
    """
    targets = [Path(p) for p in paths]
    tmps = [t.with_name(f".{t.stem}.tmp{os.getpid()}{t.suffix}") for t in targets]
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield tmps
        for tmp in tmps:
            _sync(tmp)
        for tmp, target in zip(tmps, targets, strict=True):
            os.replace(tmp, target)
    except BaseException:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; flush it and rename it to ``path`` on success
    (:func:`atomic_paths` for one file)."""
    with atomic_paths([path]) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary directory next to ``path``; on success it replaces ``path``.

    For outputs that are a directory of files (a trained model, histogram folders): the
    consumer sees either the previous complete directory or the new complete one, never a
    half-written one. Its files are flushed before the rename. On any exception the temporary
    directory is removed and ``path`` is left untouched.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        for file in sorted(tmp.rglob("*")):
            if file.is_file():
                _sync(file)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented, key-sorted JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=True) + "\n")


def write_table(path: str | os.PathLike[str], frame: pd.DataFrame) -> None:
    """Write ``frame`` as parquet, without its index, atomically."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def _corrupt(path: str | os.PathLike[str], problem: str) -> CorruptResultError:
    """The error for an unusable file: what is wrong, and how to rebuild it (the rule that
    writes it, from :func:`thetaflow.core.paths.producer`)."""
    made = paths.producer(path)
    if made is None:
        rebuild = "delete it and rerun the job that wrote it"
    else:
        others = (
            f" (or {' or '.join(made.rules[1:])}, whichever writes it)" if made.rules[1:] else ""
        )
        rebuild = (
            f"delete {made.output} and rerun snakemake, or rerun the rule that writes it: "
            f"snakemake --forcerun {made.rules[0]}{others}"
        )
    return CorruptResultError(
        f"{path} is corrupt or unreadable ({problem}); to rebuild it, {rebuild}"
    )


@contextlib.contextmanager
def reading_result(path: str | os.PathLike[str]) -> Iterator[None]:
    """Report a failure inside the block, which parses ``path`` (another job's output), as a
    CorruptResultError naming the file and the rule that rebuilds it. A missing file and the
    library's own diagnoses (ThetaflowError) pass unchanged. The one wrapper of every reader of
    results: the helpers below, and the model loaders around their library's load call."""
    try:
        yield
    except (FileNotFoundError, MemoryError, ThetaflowError):
        raise
    except Exception as err:
        first_line = (str(err).strip().splitlines() or [""])[0]
        raise _corrupt(path, f"{type(err).__name__}: {first_line}") from err


def read_json(path: str | os.PathLike[str]) -> Any:
    """A JSON file; a missing one is a FileNotFoundError naming it, a truncated or malformed one
    a CorruptResultError."""
    with reading_result(path):
        try:
            return json.loads(Path(path).read_text())
        except FileNotFoundError as err:
            raise FileNotFoundError(f"{path}: file not found") from err


def read_table(path: str | os.PathLike[str], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A parquet table (only ``columns``, if given) as ``pandas.read_parquet`` reads it; a
    truncated or unreadable file, or one without ``columns``, is a CorruptResultError."""
    # pandas and pyarrow are imported where used: the feature jobs, which import this module,
    # never pay pandas' import (0.3 s a job), the simulation jobs (ROOT only) neither's
    import pandas as pd
    import pyarrow.parquet as pq

    with reading_result(path):
        if columns is not None:
            names = pq.read_schema(path).names
            missing = [c for c in columns if c not in names]
            if missing:
                raise _corrupt(path, f"no column(s) {', '.join(missing)}: not what its rule writes")
        return pd.read_parquet(path, columns=None if columns is None else list(columns))
