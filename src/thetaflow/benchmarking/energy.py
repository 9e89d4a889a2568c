"""Energy per model: joules per training and per million inferences.

The meter itself (RAPL, NVML, or the labelled estimate from CPU time) is
:mod:`thetaflow.core.energy`, below every stage, since the training jobs of :mod:`thetaflow.ml`
measure themselves with it and write the result into ``training.json``. Here are the
benchmarks' uses of it: the energy of exactly the timed calls of a benchmark point
(:func:`timed_with_energy`, warm-up left out) and the per-model table that rule
``benchmark_gpu`` writes (:func:`energy_table`), from the benchmarked fold's training record
and the measured inference points.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from thetaflow.benchmarking.timing import TimingResult, TimingSettings, time_calls
from thetaflow.core.energy import (
    ESTIMATE,
    MEASURED,
    MIXED,
    EnergyMeasurement,
    EnergyMeter,
    EnergySettings,
    rapl_counters,
)
from thetaflow.ml.record import TRAINING_RECORD, TrainingRecord

#: Inferences of the "per million" figure.
MILLION = 1_000_000


def timed_with_energy(
    fn: Callable[[], Any],
    events_per_call: int,
    timing: TimingSettings,
    what: str,
    energy: EnergySettings,
    gpus: bool = False,
) -> tuple[TimingResult, EnergyMeasurement]:
    """:func:`~thetaflow.benchmarking.timing.time_calls` of ``fn``, and the energy of its
    timed calls.

    The meter starts when the last warm-up call returns (compilation and caches left out, as
    from the latencies) and stops when ``time_calls`` returns; the energy of that window (and
    its CPU time) is scaled by the share of it the timed calls took, the mean power of the
    window times the calls' time: the loop's bookkeeping and the percentiles are left out (a
    few per cent of a point of milliseconds, nothing of the default points of a second).
    ``gpus``: the calls run on a GPU, whose energy counts too."""
    meter = EnergyMeter(energy, gpus=gpus)
    done = 0

    def call() -> None:
        nonlocal done
        fn()
        done += 1
        if done == timing.warmup:
            meter.start()

    if timing.warmup == 0:
        meter.start()
    result = time_calls(call, events_per_call, timing, what)
    window = meter.stop()
    share = min(1.0, result.total_s / window.seconds) if window.seconds > 0 else 1.0
    return result, replace(
        window,
        joules=window.joules * share,
        seconds=result.total_s,
        cpu_seconds=window.cpu_seconds * share,
        note=f"{window.note}; the timed calls' {share:.3f} of the metered window",
    )


def joules_per_million(measurement: EnergyMeasurement, events: int) -> float:
    """Energy per million events of a measurement that covered ``events`` events."""
    return measurement.joules * MILLION / events


def estimate_note(methods: Iterable[str], settings: EnergySettings) -> str | None:
    """The output's plain statement that its joules are (partly) estimated, with the reason
    no counter was read; None when every figure was measured."""
    if set(methods) <= {MEASURED}:
        return None
    _, why = rapl_counters()
    return (
        f"energy: no CPU energy counter read{f' ({why})' if why else ''}; rows with energy_method "
        f"'{ESTIMATE}' or '{MIXED}' estimate the CPU part as CPU time × "
        f"{settings.cpu_watts_per_core:g} W per core (benchmarks.energy.cpu_watts_per_core), "
        "not a measurement"
    )


@dataclass(frozen=True)
class EnergyRow:
    """One line of the per-model energy table.

    ``what`` is ``training`` (one training job of fold ``benchmarks.fold``: the model's fit,
    as ``training.json`` records it) or ``inference``; ``joules`` is per ``per``.
    """

    model: str
    family: str
    what: str
    device: str
    batch: int | None
    joules: float
    per: str
    seconds: float
    method: str
    source: str

    def as_dict(self) -> dict[str, Any]:
        """The CSV/JSON row."""
        return asdict(self)


def energy_record(directory: str | Path) -> TrainingRecord | None:
    """The training record of a model directory if it holds one with an energy measurement
    (records written before energy was measured, and the autoencoder's, have none)."""
    path = Path(directory) / TRAINING_RECORD
    if not path.is_file():
        return None
    try:
        record = TrainingRecord.read(directory)
    except ValueError:  # not a classifier's training record (the autoencoder writes its own)
        return None
    return record if record.energy is not None else None


def energy_table(
    families: Mapping[str, str],
    model_dirs: Mapping[str, str | None],
    inference: Iterable[Mapping[str, Any]],
) -> list[EnergyRow]:
    """Per model: the benchmarked fold's training energy (where its record has one) and the
    energy per million inferences of each measured (device, batch) point.

    ``families``: model → family of the models measured; ``inference``: the inference rows of
    :func:`thetaflow.benchmarking.gpu.inference_points` (keys model, device, batch, calls,
    joules_per_million, energy_method, energy_source).
    """
    rows = []
    points = list(inference)
    for model, family in families.items():
        directory = model_dirs.get(model)
        record = energy_record(directory) if directory else None
        if record is not None and record.energy is not None:
            rows.append(
                EnergyRow(
                    model=model,
                    family=family,
                    what="training",
                    device="job",
                    batch=None,
                    joules=record.energy.joules,
                    per=f"training of fold {record.fold} ({record.n_train} events)",
                    seconds=record.energy.seconds,
                    method=record.energy.method,
                    source=record.energy.source,
                )
            )
        for point in points:
            if point["model"] != model:
                continue
            seconds = float(point["total_s"]) / int(point["calls"]) / int(point["batch"])
            rows.append(
                EnergyRow(
                    model=model,
                    family=family,
                    what="inference",
                    device=str(point["device"]),
                    batch=int(point["batch"]),
                    joules=float(point["joules_per_million"]),
                    per="million inferences",
                    seconds=seconds * MILLION,
                    method=str(point["energy_method"]),
                    source=str(point["energy_source"]),
                )
            )
    return rows
