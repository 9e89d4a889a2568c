"""Progress lines: first and last always, otherwise at most one per interval."""

from __future__ import annotations

import logging

from thetaflow.core.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_is_rate_limited_and_always_reports_the_end(caplog):
    clock = Clock()
    progress = Progress(
        logging.getLogger("t"), "training", 100, "epochs", interval_s=10, clock=clock
    )
    logged = []
    with caplog.at_level(logging.INFO):
        for done in range(1, 101):
            clock.now = done * 0.5  # 0.5 s per epoch: 50 s in all
            logged.append(progress.update(done, loss=0.5))
    assert logged[0] and logged[-1]
    assert sum(logged) == 6  # epoch 1, then every 10 s (20 epochs), then the last
    assert "training: 100/100 epochs (100%)" in caplog.records[-1].getMessage()
    assert "loss 0.5" in caplog.records[0].getMessage()
    assert "~" in caplog.records[1].getMessage()


def test_xgboost_callback_feeds_progress(caplog):
    import numpy as np
    import xgboost as xgb

    from thetaflow.core.progress import xgboost_callback

    progress = Progress(logging.getLogger("t"), "boosting", 5, "rounds", interval_s=0)
    X = np.random.default_rng(1).normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    with caplog.at_level(logging.INFO):
        xgb.XGBClassifier(n_estimators=5, callbacks=[xgboost_callback(progress)]).fit(
            X, y, eval_set=[(X, y)], verbose=False
        )
    assert progress.lines == 5 and "validation_0_logloss" in caplog.records[-1].getMessage()
