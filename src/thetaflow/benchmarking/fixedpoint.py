"""Fixed-point types, input-range profiling and fidelity metrics of emulated models.

A type is written as in Vivado/Vitis HLS, ``ap_fixed<W,I>`` (signed, W bits of which I are
integer bits including the sign) or ``ap_ufixed<W,I>`` (unsigned), optionally with rounding
and overflow modes: ``ap_fixed<16,6,AP_RND,AP_SAT>``. The defaults are ``AP_TRN`` (truncate)
and ``AP_WRAP`` (wrap around on overflow) — so an input outside the range silently wraps
in hardware; :func:`profile_inputs` finds such inputs before they do.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from thetaflow.core.errors import ThetaflowError
from thetaflow.ml.metrics import auc, signal_efficiency_at, weighted_roc

_TYPE = re.compile(
    r"^\s*ap_(u?)fixed\s*<\s*(\d+)\s*,\s*(-?\d+)\s*(?:,\s*(AP_\w+)\s*)?(?:,\s*(AP_\w+)\s*)?(?:,\s*\d+\s*)?>\s*$"
)


class PrecisionError(ThetaflowError, ValueError):
    """A fixed-point type is malformed or cannot represent the values it must hold."""


@dataclass(frozen=True)
class FixedType:
    """An ``ap_fixed``/``ap_ufixed`` type."""

    width: int
    integer: int
    signed: bool = True
    rounding: str = "AP_TRN"
    overflow: str = "AP_WRAP"

    @classmethod
    def parse(cls, text: str, where: str = "precision") -> FixedType:
        """Parse ``ap_fixed<W,I[,Q[,O]]>``; errors name ``where``."""
        m = _TYPE.match(str(text))
        if not m:
            raise PrecisionError(
                f"{where}: {text!r} is not a fixed-point type like 'ap_fixed<16,6>'"
            )
        unsigned, w, i, q, o = m.groups()
        width, integer = int(w), int(i)
        if width < 1 or width > 64 or integer > width:
            raise PrecisionError(f"{where}: {text!r} needs 1 <= W <= 64 and I <= W")
        return cls(width, integer, not unsigned, q or "AP_TRN", o or "AP_WRAP")

    @property
    def fractional(self) -> int:
        """Fractional bits F = W − I."""
        return self.width - self.integer

    @property
    def lsb(self) -> float:
        """Value of the least significant bit, 2^−F."""
        return 2.0**-self.fractional

    @property
    def low(self) -> float:
        """Smallest representable value."""
        return -(2.0 ** (self.integer - 1)) if self.signed else 0.0

    @property
    def high(self) -> float:
        """Largest representable value."""
        return (2.0 ** (self.integer - 1) if self.signed else 2.0**self.integer) - self.lsb

    def hls(self) -> str:
        """The HLS spelling, modes only where they differ from the defaults."""
        base = f"ap_{'' if self.signed else 'u'}fixed<{self.width},{self.integer}"
        if self.rounding != "AP_TRN" or self.overflow != "AP_WRAP":
            base += f",{self.rounding},{self.overflow}"
        return base + ">"

    def with_width(self, width: int) -> FixedType:
        """The same type with ``width`` total bits (integer bits kept)."""
        return FixedType(width, self.integer, self.signed, self.rounding, self.overflow)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """``x`` in this type (rounding and overflow modes applied), as float64."""
        scaled = np.asarray(x, dtype=np.float64) / self.lsb
        q = (
            np.floor(scaled + 0.5)
            if self.rounding in ("AP_RND", "AP_RND_CONV", "AP_RND_INF")
            else np.floor(scaled)
        )
        lo, hi = round(self.low / self.lsb), round(self.high / self.lsb)
        if self.overflow.startswith("AP_SAT"):
            q = np.clip(q, lo, hi)
        else:
            span = hi - lo + 1
            q = (q - lo) % span + lo
        return q * self.lsb


@dataclass(frozen=True)
class RangeReport:
    """Inputs outside a type's range: per feature, events beyond it and the largest |value|."""

    type: str
    low: float
    high: float
    overflowing: dict[str, dict[str, float]]
    events: int

    @property
    def ok(self) -> bool:
        """Whether every input of every event fits."""
        return not self.overflowing

    def message(self) -> str:
        """One line naming each overflowing feature, its count and its largest value."""
        if self.ok:
            return f"every input fits {self.type} (range [{self.low:g}, {self.high:g}])"
        parts = [
            f"{name}: {int(v['events'])} of {self.events} events outside (max |x| = "
            f"{v['max_abs']:.3g})"
            for name, v in self.overflowing.items()
        ]
        return (
            f"inputs outside the range [{self.low:g}, {self.high:g}] of {self.type}: "
            + "; ".join(parts)
        )


def profile_inputs(X: np.ndarray, names: Sequence[str], ftype: FixedType) -> RangeReport:
    """Which (standardised) inputs the type cannot represent, from the values themselves."""
    X = np.asarray(X, dtype=np.float64)
    outside = (ftype.low > X) | (ftype.high + ftype.lsb < X)
    over: dict[str, dict[str, float]] = {}
    for j, name in enumerate(names):
        n = int(outside[:, j].sum())
        if n:
            over[name] = {
                "events": n,
                "fraction": n / len(X),
                "max_abs": float(np.abs(X[:, j]).max()),
            }
    return RangeReport(ftype.hls(), ftype.low, ftype.high, over, len(X))


@dataclass(frozen=True)
class Fidelity:
    """A fixed-point model against its float original on the same events."""

    agreement: float
    threshold: float
    auc_float: float
    auc_fixed: float
    signal_efficiency_float: float
    signal_efficiency_fixed: float
    max_abs_difference: float
    mean_abs_difference: float

    def as_dict(self) -> dict[str, float]:
        """JSON-ready fields."""
        return dict(self.__dict__)


def working_point(score: np.ndarray, labels: np.ndarray, background_efficiency: float) -> float:
    """The cut on ``score`` keeping ``background_efficiency`` of the background events."""
    bkg = np.asarray(score)[np.asarray(labels) == 0]
    if len(bkg) == 0:
        raise ValueError("no background event to place the working point")
    return float(np.quantile(bkg, 1.0 - background_efficiency))


def fidelity(
    float_score: np.ndarray,
    fixed_score: np.ndarray,
    labels: np.ndarray,
    background_efficiency: float,
) -> Fidelity:
    """Agreement and physics metrics of ``fixed_score`` against ``float_score``.

    Agreement is the fraction of events that the fixed-point and the float model put on
    the same side of the working-point cut (the cut on the float score that keeps
    ``background_efficiency`` of the background); AUC and signal efficiency at that
    background efficiency are computed for both (events unweighted).
    """
    f = np.asarray(float_score, dtype=np.float64)
    q = np.asarray(fixed_score, dtype=np.float64)
    y = np.asarray(labels).astype(int)
    cut = working_point(f, y, background_efficiency)
    roc_f, roc_q = weighted_roc(f, y), weighted_roc(q, y)
    diff = np.abs(q - f)
    return Fidelity(
        agreement=float(np.mean((f > cut) == (q > cut))),
        threshold=cut,
        auc_float=auc(roc_f),
        auc_fixed=auc(roc_q),
        signal_efficiency_float=signal_efficiency_at(roc_f, background_efficiency),
        signal_efficiency_fixed=signal_efficiency_at(roc_q, background_efficiency),
        max_abs_difference=float(diff.max()),
        mean_abs_difference=float(diff.mean()),
    )
