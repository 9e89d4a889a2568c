"""System tools and library versions the benchmarks rely on.

The FPGA tiers need a C++ compiler (hls4ml/conifer emulation), GHDL (VHDL simulation), Yosys
(logic synthesis cross-check) and the nlohmann-json headers (conifer's C++ backend). They are
Debian packages installed by ``workflow/install_system_packages.sh`` (called by
``workflow/bootstrap.sh setup``); :func:`require_tools` names whatever is missing.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from thetaflow.core.errors import ThetaflowError

#: tool name -> (how it is found, Debian package providing it)
SYSTEM_TOOLS: dict[str, tuple[str, str]] = {
    "g++": ("executable", "g++"),
    "ghdl": ("executable", "ghdl"),
    "yosys": ("executable", "yosys"),
    "nlohmann-json": ("/usr/include/nlohmann/json.hpp", "nlohmann-json3-dev"),
}
INSTALLER = "workflow/install_system_packages.sh"


class MissingToolError(ThetaflowError, RuntimeError):
    """A system tool a benchmark tier needs is not installed; the message names it."""


def find_tool(name: str) -> str | None:
    """Path of a tool of :data:`SYSTEM_TOOLS` (executable or header), None if absent."""
    how, _ = SYSTEM_TOOLS[name]
    if how == "executable":
        return shutil.which(name)
    return how if Path(how).is_file() else None


def missing_tools(names: Sequence[str]) -> list[str]:
    """The tools of ``names`` that are not installed."""
    return [n for n in names if find_tool(n) is None]


def require_tools(names: Sequence[str], purpose: str) -> None:
    """Raise :class:`MissingToolError` naming each missing tool and its Debian package."""
    missing = missing_tools(names)
    if missing:
        listed = ", ".join(f"{n} (Debian package {SYSTEM_TOOLS[n][1]})" for n in missing)
        raise MissingToolError(
            f"{purpose} needs {listed}, not found on this machine; install with `bash {INSTALLER}` "
            "(run by `bash workflow/bootstrap.sh setup` as root) or switch this tier off in the "
            "config"
        )


def tool_version(name: str) -> str | None:
    """First line of ``name --version`` (``-V`` for yosys); None if absent or failing."""
    if find_tool(name) is None or SYSTEM_TOOLS[name][0] != "executable":
        return None
    flag = "-V" if name == "yosys" else "--version"
    try:
        out = subprocess.run(
            [name, flag], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.strip().splitlines()[0] if out.strip() else None


def library_versions(names: Sequence[str]) -> dict[str, str | None]:
    """Installed version of each Python distribution (None if not installed)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def host_info() -> dict[str, object]:
    """Host name, OS, CPU model, logical cores and Python version."""
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "hostname": platform.node(),
        "os": platform.platform(),
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "affinity_cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
        "python": platform.python_version(),
    }


@contextlib.contextmanager
def emulation_environment(workdir: Path) -> Iterator[Path]:
    """Run hls4ml/conifer builds inside ``workdir`` with the right compiler environment.

    conifer compiles helper libraries in the current directory and calls ``python3 -m
    pybind11`` from ``PATH``, and needs the ``ap_fixed`` headers: this puts the running
    interpreter's directory first on ``PATH``, points ``XILINX_AP_INCLUDE`` at the headers
    hls4ml ships (the same Xilinx ``ap_types``) and changes into ``workdir``.
    """
    import hls4ml  # deferred: heavy (it imports TensorFlow); only the FPGA emulation needs it

    workdir.mkdir(parents=True, exist_ok=True)
    saved = {k: os.environ.get(k) for k in ("PATH", "XILINX_AP_INCLUDE")}
    cwd = os.getcwd()
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    os.environ["XILINX_AP_INCLUDE"] = str(
        Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"
    )
    os.chdir(workdir)
    try:
        yield workdir
    finally:
        os.chdir(cwd)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
