"""Logging set-up for the Snakemake script adapters.

A rule's script calls :func:`job_log` with the rule's ``log:`` file, so both ``logging``
records and anything written to ``sys.stderr`` (warnings, library messages) land there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def job_log(path: str | None) -> Iterator[None]:
    """Send stderr and all ``logging`` output of the block to ``path`` (stderr if None)."""
    if path is None:
        logging.basicConfig(level=logging.INFO, format=FORMAT, force=True)
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as stream:
        old_stderr = sys.stderr
        # native libraries (TensorFlow, XGBoost) write to file descriptor 2 directly
        saved_fd = os.dup(2)
        os.dup2(stream.fileno(), 2)
        sys.stderr = stream
        logging.basicConfig(level=logging.INFO, format=FORMAT, stream=stream, force=True)
        logging.captureWarnings(True)
        try:
            yield
        except BaseException:
            logging.getLogger("thetaflow").exception("job failed")
            raise
        finally:
            logging.shutdown()
            sys.stderr = old_stderr
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
