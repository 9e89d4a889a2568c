"""Energy of a block of work: the machine's counters where they can be read, else an estimate.

Sources, tried in this order and named in every result (``source``, ``method``):

* **RAPL** through the Linux powercap interface: the package domains
  ``/sys/class/powercap/intel-rapl:N`` (name ``package-N``; on AMD Zen too), whose
  ``energy_uj`` counts micro-joules and wraps at ``max_energy_range_uj``. A counter is read at
  the start and the end and, for long blocks, every :data:`POLL_SECONDS` in a background thread,
  so that a wrap between two reads is undone (a package drawing 400 W wraps a 262 kJ range in
  about 11 minutes). Since CVE-2020-8694 ``energy_uj`` is readable by root only on most
  distributions: an unreadable counter is said in the note and the estimate is used instead.
* **NVML** on NVIDIA GPUs, when :mod:`pynvml` is importable:
  ``nvmlDeviceGetTotalEnergyConsumption`` (milli-joules since the driver loaded, Volta and
  newer), summed over the GPUs NVML sees, for blocks that run on a GPU.
* **Estimate**, where no CPU counter is readable: the CPU time of this process and its
  (waited-for) children × ``benchmarks.energy.cpu_watts_per_core``, labelled
  ``"method": "estimate"``. The default, 12 W per core, is the Green Algorithms calculator's
  thermal design power per core of an unknown CPU (Lannelongue et al., Adv. Sci. 8 (2021)
  2100707; ``TDP_cpu.csv``, row ``Any``); a busy core at its share of TDP, idle, memory and
  uncore power left out.

Counters measure whole devices (every process on the CPU package or GPU), the estimate only
this process tree: the note of each result says which.

Why not ``codecarbon``'s offline tracker: it reads the same RAPL files and the same NVML call,
and where neither is readable it falls back to a TDP estimate at 50 % load from its CPU table;
the extra it brings is CO₂ (an electricity-mix factor by country), which no output here needs.
It samples on a 15 s background timer by default, too coarse for the millisecond inference
points of the GPU benchmark, and would add a dependency (with pandas, requests, psutil and
its own CSV output) to every training environment. The counter reader here is a few dozen
lines, reads at exactly the block's edges and says which source it used.
"""

from __future__ import annotations

import re
import resource
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from thetaflow.core.errors import ThetaflowError

#: The powercap tree of the Linux kernel.
POWERCAP = Path("/sys/class/powercap")
#: Power per busy CPU core of the estimate, in W, where the config does not set it (the
#: schema's default of ``benchmarks.energy.cpu_watts_per_core``): Green Algorithms' TDP per
#: core of an unknown CPU.
DEFAULT_CPU_WATTS_PER_CORE = 12.0
#: Seconds between reads of a wrapping RAPL counter during a long block.
POLL_SECONDS = 30.0
#: ``method`` of a result: every counted part from counters, none, or GPU counted and CPU not.
MEASURED, ESTIMATE, MIXED = "measured", "estimate", "mixed"

_PACKAGE_DOMAIN = re.compile(r"intel-rapl:\d+")
_NVIDIA_DRIVER = Path("/proc/driver/nvidia/gpus")


class EnergyError(ThetaflowError, RuntimeError):
    """An energy measurement used out of order (read before it was stopped)."""


@dataclass(frozen=True)
class EnergySettings:
    """How energy is estimated where no counter is readable."""

    cpu_watts_per_core: float = DEFAULT_CPU_WATTS_PER_CORE

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> EnergySettings:
        """From ``benchmarks.energy`` (a job's config slice without it gets the default)."""
        spec = config.get("benchmarks", {}).get("energy", {})
        return cls(float(spec.get("cpu_watts_per_core", DEFAULT_CPU_WATTS_PER_CORE)))


@dataclass(frozen=True)
class EnergyMeasurement:
    """The energy of one block of work.

    Attributes:
        joules: energy of the block (CPU package(s), plus the GPUs for a GPU block).
        seconds: wall time of the block.
        cpu_seconds: CPU time (user + system) of this process and its children in the block.
        method: ``measured`` (counters), ``estimate`` (CPU time × power per core) or
            ``mixed`` (GPU from NVML, CPU estimated).
        source: which counters, or the estimate's formula with its power per core.
        note: what the number covers and what it leaves out.
    """

    joules: float
    seconds: float
    cpu_seconds: float
    method: str
    source: str
    note: str

    def as_dict(self) -> dict[str, float | str]:
        """The JSON object of the measurement."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnergyMeasurement:
        """From :meth:`as_dict`'s object."""
        return cls(**data)


@dataclass
class _RaplCounter:
    """One RAPL package counter (µJ, wrapping at ``max_uj``), accumulated across reads."""

    name: str
    path: Path
    max_uj: int
    last: int
    total_uj: int = 0

    def update(self) -> None:
        now = int(self.path.read_text())
        delta = now - self.last
        if delta < 0:  # the counter wrapped past max_energy_range_uj since the last read
            delta += self.max_uj
        self.total_uj += delta
        self.last = now


def rapl_counters(root: Path = POWERCAP) -> tuple[list[_RaplCounter], str]:
    """The RAPL package counters under ``root``, started now, or none and the reason.

    Only package domains count (their core/uncore/DRAM subdomains ``intel-rapl:N:M`` and a
    platform ``psys`` domain overlap them); all of them must be readable, since a partial sum
    would under-count.
    """
    if not root.is_dir():
        return [], f"no powercap interface ({root} absent)"
    counters = []
    for domain in sorted(d for d in root.iterdir() if _PACKAGE_DOMAIN.fullmatch(d.name)):
        try:
            name = (domain / "name").read_text().strip()
            if not name.startswith("package"):
                continue
            counters.append(
                _RaplCounter(
                    name=name,
                    path=domain / "energy_uj",
                    max_uj=int((domain / "max_energy_range_uj").read_text()),
                    last=int((domain / "energy_uj").read_text()),
                )
            )
        except PermissionError:
            return [], (
                f"RAPL counter {domain / 'energy_uj'} not readable by this user (root-only on "
                "most hosts)"
            )
        except (OSError, ValueError) as err:
            return [], f"RAPL counter {domain / 'energy_uj'} unreadable ({err})"
    if not counters:
        return [], f"no RAPL package domain under {root}"
    return counters, ""


def nvml_energy_mj() -> tuple[dict[str, int], str]:
    """Total energy counter (mJ) of every GPU NVML sees, by name, or none and the reason."""
    try:
        import pynvml  # deferred: optional, present only on GPU hosts that installed it
    except ImportError:
        if _NVIDIA_DRIVER.is_dir() and any(_NVIDIA_DRIVER.iterdir()):
            return {}, "an NVIDIA GPU is present, pynvml is not installed: GPU energy not counted"
        return {}, ""
    try:
        pynvml.nvmlInit()
        try:
            out = {}
            for i in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(i)
                name = pynvml.nvmlDeviceGetName(handle)
                name = name.decode() if isinstance(name, bytes) else name
                out[f"gpu{i} ({name})"] = int(pynvml.nvmlDeviceGetTotalEnergyConsumption(handle))
            return out, ""
        finally:
            pynvml.nvmlShutdown()
    except pynvml.NVMLError as err:
        return {}, f"NVML energy counter unreadable ({err}): GPU energy not counted"


def cpu_seconds() -> float:
    """CPU time (user + system, every thread) of this process and its waited-for children so
    far, at the microsecond resolution of ``getrusage`` (``os.times`` counts clock ticks)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class EnergyMeter:
    """Measures the energy between :meth:`start` and :meth:`stop`, or of a ``with`` block.

    ``gpus``: count the GPUs' energy (NVML) too: for work that runs on a GPU. ``powercap``:
    the powercap tree (a test points it at a fake one).

    >>> with EnergyMeter(EnergySettings()) as meter:  # doctest: +SKIP
    ...     work()
    >>> meter.result.joules, meter.result.method  # doctest: +SKIP
    """

    settings: EnergySettings
    gpus: bool = False
    powercap: Path = POWERCAP
    _rapl: list[_RaplCounter] = field(default_factory=list, init=False, repr=False)
    _notes: list[str] = field(default_factory=list, init=False, repr=False)
    _gpu_mj: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _start: tuple[float, float] = field(default=(0.0, 0.0), init=False, repr=False)
    _result: EnergyMeasurement | None = field(default=None, init=False, repr=False)
    _stop_polling: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _poller: threading.Thread | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def start(self) -> None:
        """Read every counter (and the CPU time) now."""
        self._rapl, why = rapl_counters(self.powercap)
        self._notes = [why] if why else []
        if self.gpus:
            self._gpu_mj, why = nvml_energy_mj()
            self._notes += [why] if why else []
        self._result = None
        self._stop_polling.clear()
        if self._rapl:
            self._poller = threading.Thread(target=self._poll, name="rapl-poll", daemon=True)
            self._poller.start()
        self._start = (time.perf_counter(), cpu_seconds())

    def _poll(self) -> None:
        """Read the RAPL counters every POLL_SECONDS, so that no wrap goes unseen."""
        while not self._stop_polling.wait(POLL_SECONDS):
            with self._lock:
                for counter in self._rapl:
                    counter.update()

    def stop(self) -> EnergyMeasurement:
        """Read every counter again; the energy since :meth:`start`."""
        seconds = time.perf_counter() - self._start[0]
        cpu = cpu_seconds() - self._start[1]
        self._stop_polling.set()
        if self._poller is not None:
            self._poller.join()
            self._poller = None
        parts, sources, joules = [], [], 0.0
        with self._lock:
            for counter in self._rapl:
                counter.update()
        if self._rapl:
            joules += sum(c.total_uj for c in self._rapl) * 1e-6
            sources.append("RAPL " + ", ".join(c.name for c in self._rapl) + " (powercap)")
            parts.append("the whole CPU package(s), every process on them")
        if self._gpu_mj:
            after, why = nvml_energy_mj()
            if why or after.keys() != self._gpu_mj.keys():
                self._notes.append(why or "the GPUs NVML sees changed: GPU energy not counted")
            else:
                joules += sum(after[g] - self._gpu_mj[g] for g in after) * 1e-3
                sources.append("NVML " + ", ".join(after))
                parts.append("the whole GPU(s), every process on them")
        if not self._rapl:
            watts = self.settings.cpu_watts_per_core
            joules += cpu * watts
            sources.append(
                f"estimate: {cpu:.4g} CPU s × {watts:g} W per core "
                "(benchmarks.energy.cpu_watts_per_core)"
            )
            parts.append(
                "CPU estimated from the CPU time of this process and its children (no idle, "
                "memory or uncore power)"
            )
        method = MEASURED if self._rapl else (MIXED if len(sources) > 1 else ESTIMATE)
        self._result = EnergyMeasurement(
            joules=joules,
            seconds=seconds,
            cpu_seconds=cpu,
            method=method,
            source=" + ".join(sources),
            note="; ".join(["covers " + " and ".join(parts), *self._notes]),
        )
        return self._result

    @property
    def result(self) -> EnergyMeasurement:
        """The measurement of the last finished block."""
        if self._result is None:
            raise EnergyError("energy meter read before its block was stopped")
        return self._result

    def __enter__(self) -> EnergyMeter:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
