"""Two Snakemake runs in one working directory: the second stops with the lock message and
harms nothing of the first, which finishes with complete outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, TOY_CONFIG, run_snakemake

# the first run's target: simulation and ingestion of one sample
TARGET = "results/cutflow/zz.json"


@pytest.mark.workflow
def test_second_run_in_the_same_directory_is_refused_and_harms_nothing(tmp_path):
    # the target first: --configfile takes every argument after it
    args = [TARGET, "--cores", "2", "--directory", str(tmp_path), "--configfile", str(TOY_CONFIG)]
    first = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args],
        env={**os.environ, "MPLBACKEND": "Agg"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    locks = tmp_path / ".snakemake" / "locks"
    deadline = time.monotonic() + 120
    while not (locks.is_dir() and any(locks.iterdir())):
        if first.poll() is not None:
            pytest.fail(
                f"the first run ended before it locked the directory:\n{first.stdout.read()}"
            )
        assert time.monotonic() < deadline, "the first run never locked the directory"
        time.sleep(0.05)
    # the first run (and its jobs) held still while it holds the lock: no race with its end
    os.killpg(first.pid, signal.SIGSTOP)
    try:
        second = run_snakemake(*args, timeout=300)
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    out, _ = first.communicate(timeout=600)

    assert second.returncode != 0
    assert "cannot be locked" in second.stdout + second.stderr
    assert first.returncode == 0, out[-3000:]
    # the first run's product is complete and its lock released
    assert json.loads((tmp_path / TARGET).read_text())["selected"]["nominal"] > 0
    assert not locks.exists() or not any(locks.iterdir())
