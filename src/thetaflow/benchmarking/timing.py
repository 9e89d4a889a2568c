"""Latency and throughput of a callable: warm-up, minimum count and duration, percentiles.

Each timed call is measured on its own with ``time.perf_counter_ns``; the first
``warmup`` calls (compilation, caches, GPU kernel selection) are discarded. Timing goes on
until at least ``min_calls`` calls *and* ``min_seconds`` have passed, but stops at
``max_seconds``; a point that ends below ``min_calls`` raises :class:`BenchmarkError`
instead of reporting a percentile of too few samples.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from thetaflow.core.errors import ThetaflowError


class BenchmarkError(ThetaflowError, RuntimeError):
    """A benchmark point could not be measured as configured; the message names it."""


@dataclass(frozen=True)
class TimingSettings:
    """How long and how often each point is timed (no field defaults: the config's are in
    the schema, filled into the validated ``benchmarks.gpu`` that :meth:`from_config` reads)."""

    warmup: int
    min_calls: int
    min_seconds: float
    max_seconds: float

    @classmethod
    def from_config(cls, spec: Mapping[str, Any]) -> TimingSettings:
        """From the validated ``benchmarks.gpu`` block (keys warmup_calls, min_calls, ...)."""
        out = cls(
            warmup=int(spec["warmup_calls"]),
            min_calls=int(spec["min_calls"]),
            min_seconds=float(spec["min_seconds"]),
            max_seconds=float(spec["max_seconds"]),
        )
        if out.min_calls < 1 or out.warmup < 0 or out.max_seconds <= 0:
            raise BenchmarkError(
                "benchmarks.gpu: min_calls must be >= 1, warmup_calls >= 0 and max_seconds > 0, "
                f"got {out}"
            )
        return out


@dataclass(frozen=True)
class TimingResult:
    """Per-call latency percentiles (seconds) and throughput of one point."""

    calls: int
    events_per_call: int
    p50_s: float
    p90_s: float
    p99_s: float
    mean_s: float
    total_s: float

    @property
    def events_per_s(self) -> float:
        """Throughput: events per call over the mean call time."""
        return self.events_per_call / self.mean_s if self.mean_s > 0 else float("inf")

    def as_dict(self) -> dict[str, float | int]:
        """JSON-ready fields, throughput included."""
        return {**asdict(self), "events_per_s": self.events_per_s}


def time_calls(
    fn: Callable[[], Any], events_per_call: int, settings: TimingSettings, what: str
) -> TimingResult:
    """Time ``fn()`` repeatedly; ``what`` names the point in errors.

    ``fn`` must block until its result exists (for a GPU call: copy the result to the host).
    """
    for _ in range(settings.warmup):
        fn()
    times: list[int] = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
        elapsed = time.perf_counter() - start
        if len(times) >= settings.min_calls and elapsed >= settings.min_seconds:
            break
        if elapsed >= settings.max_seconds:
            break
    if len(times) < settings.min_calls:
        raise BenchmarkError(
            f"{what}: only {len(times)} timed calls in max_seconds={settings.max_seconds:g} s, "
            "below "
            f"min_calls={settings.min_calls}; raise benchmarks.gpu.max_seconds or lower "
            "min_calls/batch size"
        )
    ns = np.asarray(times, dtype=np.float64) * 1e-9
    p50, p90, p99 = np.percentile(ns, [50, 90, 99])
    return TimingResult(
        calls=len(times),
        events_per_call=events_per_call,
        p50_s=float(p50),
        p90_s=float(p90),
        p99_s=float(p99),
        mean_s=float(ns.mean()),
        total_s=float(ns.sum()),
    )
