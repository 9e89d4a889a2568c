"""The same numbers on every x86-64 machine with AVX2 or AVX-512: pinned CPU code paths.

numpy and TensorFlow look at the CPU when they start and pick kernels for its instruction
set; the kernels round differently in the last bit, and a network's training or a boosted
tree's split search turns last bits into different models. With the thread counts fixed,
the job-to-job differences between an AVX2 and an AVX-512 machine come from:

* numpy (2.4) dispatches its ufuncs per instruction set. On AVX-512 machines (``X86_V4``)
  transcendental functions such as ``sinh``, ``arcsinh`` or ``arctan2`` run Intel SVML code,
  elsewhere the C library's, and float32 ``sin``/``cos``/``exp``/``log`` have their own
  kernels per target: the ``vector`` four-vector arithmetic of the features differs in the
  last bit for some events. Disabling the targets above ``X86_V3`` (AVX2+FMA) runs the
  AVX2 code on AVX-512 machines; AVX2 machines are unchanged.
* TensorFlow on Linux enables its oneDNN graph rewrite (fused MatMul+BiasAdd+ReLU, oneDNN's
  inner product and gemm) only on CPUs with AVX512-VNNI, AVX512-BF16, AVX-VNNI or AMX; other
  CPUs run Eigen's contraction (with oneDNN's sgemm as its block kernel), whose split of the
  summed dimension follows the L1 cache size the CPU reports. ``TF_ENABLE_ONEDNN_OPTS=1`` takes
  the oneDNN path everywhere (each product summed by one gemm call, blocked by instruction set
  and thread count only); ``ONEDNN_MAX_CPU_ISA=AVX2`` makes oneDNN use its AVX2 kernels on
  AVX-512 machines too. ``TF_ENABLE_ONEDNN_OPTS=0`` alone would not do: the Eigen path still
  dispatches its sgemm on the instruction set and splits on the cache size.

xgboost (no AVX or AVX-512 code of its own: one code path everywhere) and the C library's libm
(the same FMA variants on every AVX2 machine) need nothing. TensorFlow on a GPU is not covered.

numpy reads ``NPY_DISABLE_CPU_FEATURES`` once, at import, and TensorFlow ``TF_ENABLE_ONEDNN_OPTS``
at import, so the variables must be in the environment before a job starts: the Snakefile
calls :func:`pin_cpu_dispatch` before any job runs (local jobs, ``script:`` jobs and cluster
jobs inherit its environment); :func:`thetaflow.ml.models.nn.configure_tensorflow` calls it
too, for TensorFlow in processes started outside the workflow.
"""

from __future__ import annotations

import os
import platform
from collections.abc import MutableMapping

#: the variables that are set to these values, whatever they were before
PINNED = {"TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_MAX_CPU_ISA": "AVX2"}
#: numpy's dispatch targets above AVX2 (numpy 2.4 names; numpy warns at import about an unknown
#: name and ignores it), added to those ``NPY_DISABLE_CPU_FEATURES`` already lists
NUMPY_DISABLED = ("X86_V4", "AVX512_ICL", "AVX512_SPR")


def pin_cpu_dispatch(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Pin numpy's and oneDNN's kernels to AVX2 in ``environ`` (default: ``os.environ``).

    Only on x86-64, where the names mean something. Returns the variables it changed (name →
    new value), empty when the environment was pinned already.
    """
    env = os.environ if environ is None else environ
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return {}
    wanted = dict(PINNED)
    disabled = env.get("NPY_DISABLE_CPU_FEATURES", "").replace(",", " ").split()
    missing = [f for f in NUMPY_DISABLED if f not in disabled]
    if missing:
        wanted["NPY_DISABLE_CPU_FEATURES"] = " ".join([*disabled, *missing])
    changed = {k: v for k, v in wanted.items() if env.get(k) != v}
    env.update(changed)
    return changed
