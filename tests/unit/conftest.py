"""Fixtures shared by the unit tests of several stages: a disk that fails mid-write."""

from __future__ import annotations

import contextlib
import resource
import signal
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest


@contextlib.contextmanager
def _file_size_limit(n_bytes: int) -> Iterator[None]:
    """Within the block, every write past byte ``n_bytes`` of a file fails with EFBIG (the
    kernel's file size limit): a write failure midway in Python, C and C++ writers alike."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


@pytest.fixture
def file_size_limit() -> Callable[[int], AbstractContextManager[None]]:
    """``with file_size_limit(n):`` makes writes fail after ``n`` bytes of any file."""
    return _file_size_limit
