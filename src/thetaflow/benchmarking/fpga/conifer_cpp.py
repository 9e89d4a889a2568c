"""conifer's C++ emulation of a BDT at every precision of a scan, from one g++ build.

conifer's C++ backend (``conifer.backends.cpp``) compiles, for each model and each precision,
a pybind11 bridge around the header-only ``conifer::BDT<Config>`` of its ``conifer.h``: the
precision enters only as the typedefs of ``Config``; the trees are read at run time from the
model's JSON. The compiled code thus depends on the precision alone, and a precision scan paid
one g++ run per precision (~13 s of CPU each on a 2-core machine), mostly the same header
parsing. :func:`build_emulation` instantiates every precision in one shared object, with
conifer's typedefs and compiler command, so a scan compiles once; nothing of the model is
compiled in, so one build serves every model without stale reuse. Its outputs equal
conifer's per-precision builds bit for bit (``tests/unit/benchmarking/test_fpga_conifer.py``).
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

from thetaflow.benchmarking.tools import emulation_environment
from thetaflow.core.errors import ThetaflowError
from thetaflow.core.io import atomic_path


class EmulationBuildError(ThetaflowError, RuntimeError):
    """g++ failed (or timed out) on the conifer emulation; the message names the source."""


def _typedefs(precision: str) -> dict[str, str]:
    """conifer's C++-backend types for ``precision`` (what its writer puts in ``BDTConfig``)."""
    from conifer.backends import cpp  # deferred: optional FPGA dependency

    cfg = cpp.writer.CPPConfig({**cpp.auto_config(), "Precision": precision})
    return {
        "threshold_t": cfg.threshold_precision,
        "input_t": cfg.input_precision,
        "weight_t": cfg.weight_precision,
        "score_t": cfg.score_precision,
    }


def _source(precisions: Sequence[str]) -> tuple[str, str]:
    """(module name, C++ source): conifer's bridge with one ``Config``/``BDT`` per precision.

    The module name and the namespace of the configurations carry a hash of the typedefs, so
    two builds loaded in one process share a symbol only where they share its definition.
    """
    configs = []
    for i, precision in enumerate(precisions):
        types = "".join(f"    typedef {t} {name};\n" for name, t in _typedefs(precision).items())
        configs.append(
            f"struct Config{i} : conifer::ConiferConfiguration {{\n{types}"
            "    static constexpr bool useAddTree = false;\n};\n"
        )
    digest = hashlib.sha256("".join(configs).encode()).hexdigest()[:16]
    module = f"thetaflow_conifer_{digest}"
    classes = "".join(
        f'  py::class_<conifer::BDT<{module}::Config{i}>>(m, "BDT{i}", py::module_local())\n'
        "      .def(py::init<const std::string &>())\n"
        f'      .def("decision_function", &conifer::BDT<{module}::Config{i}>'
        "::_decision_function_double);\n"
        for i in range(len(precisions))
    )
    source = (
        '#include "conifer.h"\n#include <pybind11/pybind11.h>\n#include <pybind11/stl.h>\n'
        f'#include "ap_fixed.h"\n\nnamespace {module} {{\n{"".join(configs)}}}\n\n'
        f"namespace py = pybind11;\nPYBIND11_MODULE({module}, m){{\n{classes}}}\n"
    )
    return module, source


def _compile_command(source: Path, library: Path) -> list[str]:
    """conifer's g++ command line (``CPPModel.compile``), for ``source`` into ``library``."""
    import conifer  # deferred: optional FPGA dependency
    from conifer import utils

    pybind = subprocess.run(
        [sys.executable, "-m", "pybind11", "--includes"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    header_dir = Path(conifer.__file__).parent / "backends" / "cpp" / "include"
    return [
        "g++",
        "-O3",
        "-shared",
        "-std=c++14",
        "-fPIC",
        *shlex.split(pybind),
        *shlex.split(utils._ap_include() or ""),
        *shlex.split(utils._json_include() or ""),
        f"-I{header_dir}/",
        *shlex.split(utils._gcc_opts()),
        str(source),
        "-o",
        str(library),
    ]


@dataclass(frozen=True)
class ConiferEmulation:
    """One compiled shared object holding conifer's C++ emulation at each of ``precisions``."""

    precisions: tuple[str, ...]
    library: Path
    compile_s: float
    _module: ModuleType = field(repr=False)

    def predict(self, model_json: Path, precision: str, Z: np.ndarray) -> np.ndarray:
        """The logit at ``precision`` of the BDT in ``model_json`` (:func:`save_ensemble`) for
        standardised ``Z``, row by row as conifer's ``decision_function``; first class only."""
        if precision not in self.precisions:
            raise KeyError(f"{self.library} has no emulation at {precision} ({self.precisions})")
        bdt = getattr(self._module, f"BDT{self.precisions.index(precision)}")(str(model_json))
        rows = np.ascontiguousarray(Z, dtype=np.float64)
        out = np.array([bdt.decision_function(row) for row in rows], dtype=np.float64)
        return out.reshape(len(rows), -1)[:, 0]

    def to_json(self) -> dict[str, object]:
        """What the benchmark JSON records of the build."""
        return {
            "method": "one g++ build of conifer's C++ emulation with every precision instantiated",
            "precisions": list(self.precisions),
            "compile_s": self.compile_s,
        }


def save_ensemble(ensemble: dict, path: Path) -> Path:
    """Write ``ensemble`` as the JSON the emulation reads, with conifer's own ``save``
    (atomically); the same file serves every precision."""
    import conifer  # deferred: optional FPGA dependency

    model = conifer.model.make_model(copy.deepcopy(ensemble), conifer.backends.cpp.auto_config())
    with atomic_path(path) as tmp:
        model.save(str(tmp))
    return path


def build_emulation(precisions: Sequence[str], workdir: Path, timeout: float) -> ConiferEmulation:
    """Compile conifer's C++ emulation for all ``precisions`` in ``workdir``, once.

    The shared object is written under a temporary name and renamed when g++ succeeds, so a
    failed or killed build leaves nothing that looks finished.
    """
    precisions = tuple(dict.fromkeys(precisions))
    module, text = _source(precisions)
    workdir = workdir.resolve()  # the build runs inside it (emulation_environment)
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / f"{module}.cpp"
    source.write_text(text)
    library = workdir / f"{module}.so"
    start = time.perf_counter()
    with emulation_environment(workdir), atomic_path(library) as tmp:
        cmd = _compile_command(source, tmp)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as err:
            raise EmulationBuildError(
                f"conifer emulation {source}: g++ did not finish in {timeout:g} s"
            ) from err
        if proc.returncode != 0:
            raise EmulationBuildError(
                f"conifer emulation {source}: `{shlex.join(cmd)}` failed (exit "
                f"{proc.returncode}): {proc.stderr.strip()[-800:]}"
            )
    compile_s = time.perf_counter() - start
    spec = importlib.util.spec_from_file_location(module, library)
    if spec is None or spec.loader is None:
        raise EmulationBuildError(f"conifer emulation {library}: not loadable as {module}")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return ConiferEmulation(precisions, library, compile_s, loaded)
