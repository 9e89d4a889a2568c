"""Progress lines for long steps, at a rate a log reader can follow.

``Progress`` logs the first update, then at most one line every ``interval_s`` seconds, and
always the last one (``done == total``), each with the fraction done, the elapsed time and
an estimate of the time left. ``keras_callback`` and ``xgboost_callback`` feed it from
training loops (one update per epoch / boosting round).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

DEFAULT_INTERVAL_S = 10.0


class Progress:
    """Rate-limited progress reporting of ``total`` units of work to ``logger``."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        total: int,
        unit: str = "",
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger, self.what, self.total, self.unit = logger, what, max(int(total), 1), unit
        self.interval_s, self.clock = interval_s, clock
        self.start = clock()
        self.last: float | None = None
        self.lines = 0

    def update(self, done: int, **values: float) -> bool:
        """Record ``done`` units; log a line if due. Returns whether a line was logged."""
        now = self.clock()
        final = done >= self.total
        if not final and self.last is not None and now - self.last < self.interval_s:
            return False
        elapsed = now - self.start
        left = elapsed / done * (self.total - done) if 0 < done < self.total else 0.0
        extra = "".join(f", {k} {v:.4g}" for k, v in values.items())
        self.logger.info(
            "%s: %d/%d %s (%.0f%%), %.1f s elapsed, ~%.0f s left%s",
            self.what,
            done,
            self.total,
            self.unit,
            100.0 * done / self.total,
            elapsed,
            left,
            extra,
        )
        self.last = now
        self.lines += 1
        return True


def keras_callback(progress: Progress) -> Any:
    """A Keras callback reporting each finished epoch (loss and validation loss) to ``progress``."""
    import keras  # deferred: TensorFlow is heavy and this module is imported at workflow parse time

    class _EpochProgress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            progress.update(
                epoch + 1, **{k: float(logs[k]) for k in ("loss", "val_loss") if k in logs}
            )

    return _EpochProgress()


def xgboost_callback(progress: Progress) -> Any:
    """An xgboost callback reporting each boosting round (last validation metric) to
    ``progress``."""
    import xgboost as xgb  # deferred: not needed at workflow parse time, which imports this module

    class _RoundProgress(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
            values = {
                f"{data}_{metric}": float(history[-1])
                for data, metrics in evals_log.items()
                for metric, history in metrics.items()
            }
            progress.update(epoch + 1, **values)
            return False  # never stop training

    return _RoundProgress()
