"""Tier 1 machinery shared by every backend: the precision scan (the fidelity of every
``ap_fixed<W,I>`` of ``benchmarks.fpga.scan_widths`` against the float model), the check of
the default precision against ``min_agreement``, the input-range profile against the default
precision, and the sigmoid that turns a logit into a score."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from thetaflow.benchmarking.fixedpoint import FixedType, PrecisionError, fidelity, profile_inputs
from thetaflow.benchmarking.fpga.settings import FidelityError, FPGASettings

log = logging.getLogger(__name__)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def scan_types(settings: FPGASettings) -> list[FixedType]:
    """The ``ap_fixed<W,I>`` of the scan: each of ``scan_widths``, I from the default."""
    return [settings.default_precision.with_width(width) for width in settings.scan_widths]


def precision_scan(
    settings: FPGASettings,
    emulate: Callable[[FixedType], tuple[np.ndarray, dict]],
    float_score: np.ndarray,
    labels: np.ndarray,
    to_score: Callable[[np.ndarray], np.ndarray],
    name: str,
) -> list[dict]:
    """Fidelity of every ``ap_fixed<W,I>`` of the scan (I from the default precision)."""
    rows = []
    for ftype in scan_types(settings):
        width = ftype.width
        try:
            out, info = emulate(ftype)
        except PrecisionError as err:
            if width == settings.default_precision.width:
                raise
            log.warning("%s", err)
            rows.append(
                {
                    "precision": ftype.hls(),
                    "width": width,
                    "agreement": None,
                    "note": f"not emulated: {err}",
                }
            )
            continue
        fid = fidelity(float_score, to_score(out), labels, settings.background_efficiency)
        rows.append({"precision": ftype.hls(), "width": width, **fid.as_dict(), **info})
        log.info(
            "%s %s: agreement %.4f, AUC %.4f (float %.4f)",
            name,
            ftype.hls(),
            fid.agreement,
            fid.auc_fixed,
            fid.auc_float,
        )
    return rows


def check_default(rows: Sequence[dict], settings: FPGASettings, name: str) -> dict:
    """The default precision's row; below ``min_agreement`` raises :class:`FidelityError`."""
    row = next(r for r in rows if r["width"] == settings.default_precision.width)
    if row["agreement"] < settings.min_agreement:
        raise FidelityError(
            f"{name}: fixed-point emulation at {row['precision']} agrees with the float model on "
            f"{row['agreement']:.4f} of the events, below benchmarks.fpga.min_agreement = "
            f"{settings.min_agreement}; "
            f"choose a wider benchmarks.fpga.default_precision (see the scan in the log)"
        )
    return row


def check_input_range(
    Z: np.ndarray, features: Sequence[str], settings: FPGASettings, name: str
) -> dict:
    """Input profile against the default precision; overflow raises unless allowed."""
    report = profile_inputs(Z, features, settings.default_precision)
    if not report.ok:
        if not settings.allow_input_overflow:
            raise PrecisionError(
                f"{name}: {report.message()} — these would wrap around in the firmware; widen the "
                "integer part "
                "of benchmarks.fpga.default_precision or set "
                "benchmarks.fpga.allow_input_overflow: true"
            )
        log.warning("%s: %s", name, report.message())
    return {
        "type": report.type,
        "range": [report.low, report.high],
        "overflowing": report.overflowing,
        "max_abs_input": float(np.abs(Z).max()),
        "message": report.message(),
    }
