"""Features, BDT and NN scores are bitwise the same on AVX2 and AVX-512 machines.

Each emulated machine runs the same small chain in a fresh process: ``vector`` features of
synthetic events, then a BDT and a NN fitted on them, then their scores. Its environment is the
machine's, with the project's CPU pin applied over it as the Snakefile does for every job
(:func:`thetaflow.core.determinism.pin_cpu_dispatch`). The machines:

* ``avx2``: an AVX2 CPU without AVX512-VNNI, AVX-VNNI or AMX (an AMD EPYC before Zen 4, say),
  where TensorFlow leaves its oneDNN graph rewrite off (``TF_ENABLE_ONEDNN_OPTS=0``, its Linux
  default there) and numpy and oneDNN have nothing above AVX2.
* ``avx512``: the host's whole instruction set with the rewrite on (TensorFlow's default on
  AVX512-VNNI or AMX CPUs); on an AVX-512 host numpy and oneDNN run their AVX-512 code.

Without the pin the NN scores differ on any x86-64 host (the rewrite), and on an AVX-512 host
the features and the BDT too.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from thetaflow.core.determinism import pin_cpu_dispatch

pytestmark = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"), reason="x86-64 instruction sets"
)

MACHINES = {
    "avx2": {
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    },
    "avx512": {"TF_ENABLE_ONEDNN_OPTS": "1"},
}
# what a machine's environment may set, and the test fixes or removes for hermetic runs
CONTROLLED = (
    "TF_ENABLE_ONEDNN_OPTS",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "NPY_DISABLE_CPU_FEATURES",
)

WORKER = """
import sys
import warnings

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import numpy as np
ignored = [str(w.message) for w in caught if "NPY_DISABLE_CPU_FEATURES" in str(w.message)]
assert not ignored, f"numpy ignored part of the pin: {ignored}"

import awkward as ak

from thetaflow.features.compute import FEATURES, compute_features
from thetaflow.ml.models import Dataset, build_classifier

rng = np.random.default_rng(11)
n = 3000
y = (np.arange(n) % 2).astype(np.int64)


def objects(counts, scale, extra):
    m = int(counts.sum())
    fields = {
        "pt": (rng.uniform(20.0, 150.0, m) * np.repeat(scale, counts)).astype(np.float32),
        "eta": rng.uniform(-2.5, 2.5, m).astype(np.float32),
        "phi": rng.uniform(-np.pi, np.pi, m).astype(np.float32),
        "mass": rng.uniform(0.0, 15.0, m).astype(np.float32),
        **extra(m),
    }
    return ak.unflatten(ak.zip(fields), counts)


events = ak.zip(
    {
        "leptons": objects(np.full(n, 2), np.ones(n), lambda m: {}),
        "jets": objects(
            rng.integers(2, 6, n),
            1.0 + 0.4 * y,
            lambda m: {"btag": rng.uniform(0.0, 1.0, m).astype(np.float32)},
        ),
        "met_pt": rng.uniform(0.0, 80.0, n).astype(np.float32),
        "met_phi": rng.uniform(-np.pi, np.pi, n).astype(np.float32),
    },
    depth_limit=1,
)
names = tuple(FEATURES)
features = compute_features(events, names)
X = np.column_stack([features[k] for k in names])
w = rng.uniform(0.5, 1.5, n)
train, valid = (Dataset(X[s], y[s], w[s], names) for s in (slice(0, 1800), slice(1800, 2400)))
scores = {"features": X}
for family, params in (
    ("bdt", {"n_estimators": 40}),
    ("nn", {"epochs": 3, "hidden_layers": [16, 16], "batch_size": 256}),
):
    model = build_classifier(family, family, params, 5, names)
    model.fit(train, valid)
    scores[family] = model.predict(X[2400:])
np.savez(sys.argv[1], **scores)
"""


def start_machine(name: str, machine: dict[str, str], tmp_path: Path) -> subprocess.Popen[str]:
    """The worker on the emulated ``machine``, the project's pin applied over its environment."""
    env = {k: v for k, v in os.environ.items() if k not in CONTROLLED}
    env.update(machine)
    env.update(
        CUDA_VISIBLE_DEVICES="",  # the CPU kernels are the subject, on a GPU host too
        KERAS_HOME=str(tmp_path / "keras"),
        OMP_NUM_THREADS="1",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    pin_cpu_dispatch(env)
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(tmp_path / f"{name}.npz")],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_same_bits_on_avx2_and_avx512_machines(tmp_path: Path) -> None:
    # side by side: each process spends most of its ~8 s importing TensorFlow
    procs = {name: start_machine(name, machine, tmp_path) for name, machine in MACHINES.items()}
    results = {}
    try:
        for name, proc in procs.items():
            _, stderr = proc.communicate(timeout=300)
            assert proc.returncode == 0, f"machine {name}:\n{stderr[-4000:]}"
            with np.load(tmp_path / f"{name}.npz") as arrays:
                results[name] = dict(arrays)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    first, second = results.values()
    assert first.keys() == second.keys() == {"features", "bdt", "nn"}
    differ = {
        k: int(np.sum(first[k] != second[k]))
        for k in first
        if first[k].tobytes() != second[k].tobytes()
    }
    assert not differ, f"values that differ between the emulated machines, per output: {differ}"


def test_pin_sets_the_variables_and_keeps_stricter_numpy_settings() -> None:
    env = {"NPY_DISABLE_CPU_FEATURES": "X86_V3", "TF_ENABLE_ONEDNN_OPTS": "0"}
    changed = pin_cpu_dispatch(env)
    assert env["TF_ENABLE_ONEDNN_OPTS"] == "1" and env["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert env["NPY_DISABLE_CPU_FEATURES"] == "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"
    assert changed == env
    assert pin_cpu_dispatch(env) == {}
