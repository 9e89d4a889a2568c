"""The analysis' figure style: the experiment label and atomic PNG output, shared by every
stage's plots."""

from __future__ import annotations

import logging

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mplhep  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from thetaflow.core.io import atomic_path  # noqa: E402

log = logging.getLogger(__name__)


def experiment_label(ax: plt.Axes, rlabel: str) -> None:
    """The thetaflow experiment label (mplhep) with ``rlabel`` on the right."""
    mplhep.label.exp_label(exp="thetaflow", llabel="Simulation", rlabel=rlabel, ax=ax)


def save_figure(fig: Figure, output: str) -> None:
    """Write ``fig`` as a PNG atomically and close it."""
    with atomic_path(output) as tmp:
        fig.savefig(tmp, dpi=90, bbox_inches="tight")
    plt.close(fig)
    log.info("plot %s", output)
