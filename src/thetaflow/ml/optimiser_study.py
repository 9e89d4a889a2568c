"""Optimiser study: one NN trained on one fold with each optimiser of a list, compared.

The network of an ``ml.models`` entry of family ``nn`` (its hyperparameters, the same seed
and hence the same initial weights and batch order for every optimiser) is trained on a
seeded subsample of one fold's training set with each entry of ``ml.optimiser_study.
optimizers`` (an optimiser, its learning rate and momentum). Each run is the family's own
fit (its early stopping and learning-rate schedule included, ``epochs`` capped), so a curve
may end before ``epochs``. Recorded per optimiser: the validation loss after every epoch and
the AUC of the trained network (the best epoch's weights) on the fold's validation events,
with physics weights. The result is a JSON and one figure (loss curves, AUC per optimiser).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from thetaflow.core.errors import ConfigError
from thetaflow.core.io import write_json
from thetaflow.ml.folds import fold_sets, ml_inputs
from thetaflow.ml.metrics import auc, weighted_roc
from thetaflow.ml.models.base import Dataset, ModelConfigError
from thetaflow.ml.models.nn import NeuralNet, OptimizerError
from thetaflow.ml.training import TrainingArrays, keep_signal_subsample, model_seed

log = logging.getLogger(__name__)

SECTION = "ml.optimiser_study"


@dataclass(frozen=True)
class OptimizerChoice:
    """One entry of the study: an optimiser (``OPTIMIZERS`` of the nn family), its learning
    rate (None: the model's) and momentum (None: the optimiser's default, if it takes one)."""

    name: str
    learning_rate: float | None = None
    momentum: float | None = None

    def params(self, base: Mapping[str, Any], epochs: int) -> dict[str, Any]:
        """The model's hyperparameters ``base`` with this optimiser and ``epochs`` epochs."""
        optimizer: dict[str, Any] = {"name": self.name}
        if self.momentum is not None:
            optimizer["momentum"] = self.momentum
        out = {**base, "optimizer": optimizer, "epochs": epochs}
        if self.learning_rate is not None:
            out["learning_rate"] = self.learning_rate
        return out


@dataclass(frozen=True)
class StudySettings:
    """The ``ml.optimiser_study`` section: the studied model and its hyperparameters, the
    fold, the epochs, the training subsample and the optimisers."""

    model: str
    params: Mapping[str, Any]
    fold: int
    epochs: int
    max_train_events: int
    optimizers: tuple[OptimizerChoice, ...]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> StudySettings:
        """The section of ``config`` (schema-validated), checked against ``ml``.

        Raises:
            ConfigError: naming the key: a model that is not an ``ml.models`` entry of
                family ``nn``, a fold outside ``ml.folds`` (when the config holds it), an
                optimiser the family refuses (unknown name, bad momentum or learning rate).
        """
        ml = config["ml"]
        spec = ml["optimiser_study"]
        model = spec["model"]
        entry = ml["models"].get(model)
        if entry is None or entry["family"] != NeuralNet.family:
            nets = [n for n, m in ml["models"].items() if m["family"] == NeuralNet.family]
            raise ConfigError(
                f"config key '{SECTION}.model': '{model}' is not an entry of 'ml.models' of "
                f"family '{NeuralNet.family}' ({', '.join(nets) or 'none'})"
            )
        if "folds" in ml and spec["fold"] >= ml["folds"]:
            raise ConfigError(
                f"config key '{SECTION}.fold': {spec['fold']} is not one of the {ml['folds']} "
                "folds of 'ml.folds'"
            )
        settings = cls(
            model=model,
            params=dict(entry.get("params", {})),
            fold=spec["fold"],
            epochs=spec["epochs"],
            max_train_events=spec["max_train_events"],
            optimizers=tuple(OptimizerChoice(**choice) for choice in spec["optimizers"]),
        )
        for i, choice in enumerate(settings.optimizers):
            key = f"{SECTION}.optimizers[{i}]"
            try:
                NeuralNet.check_params(model, choice.params(settings.params, settings.epochs))
            except OptimizerError as err:
                raise ConfigError(f"config key '{key}.{err.key}': {err}") from err
            except ModelConfigError as err:
                raise ConfigError(f"config key '{key}': {err}") from err
        return settings


@dataclass(frozen=True)
class OptimizerRun:
    """One optimiser's training: its settings as used, the validation loss after each epoch
    (weighted BCE), the best epoch (1-based), the validation AUC of the trained network."""

    label: str
    optimizer: dict[str, Any]
    learning_rate: float
    valid_loss: list[float]
    best_epoch: int
    valid_auc: float
    train_seconds: float


@dataclass(frozen=True)
class StudyResult:
    """The study: the model, the fold, the epochs, the sizes of the sets, one run per
    optimiser in config order."""

    model: str
    fold: int
    epochs: int
    n_train: int
    n_valid: int
    runs: list[OptimizerRun]

    def to_json(self) -> dict[str, Any]:
        """The JSON document of the study."""
        return asdict(self)


def check(config: Mapping[str, Any]) -> None:
    """The config check of the section (no-op without it); see :meth:`StudySettings.from_config`."""
    if "optimiser_study" in config.get("ml", {}):
        StudySettings.from_config(config)


def run_label(params: Mapping[str, Any]) -> str:
    """A legend label naming the optimiser and its settings: ``"nesterov (lr 0.01, m 0.9)"``."""
    optimizer = params["optimizer"]
    text = f"lr {params['learning_rate']:g}"
    if "momentum" in optimizer:
        text += f", m {optimizer['momentum']:g}"
    return f"{optimizer['name']} ({text})"


def run_study(
    settings: StudySettings,
    train: Dataset,
    valid: Dataset,
    valid_weight: np.ndarray,
    seed: int,
    threads: int = 1,
) -> StudyResult:
    """Fit the model once per optimiser of ``settings`` on ``train`` (``valid`` for the loss
    curves and early stopping) and score ``valid``; AUC with the physics weights
    ``valid_weight``. Every fit has the same ``seed``: the same initial weights and batches."""
    runs = []
    for choice in settings.optimizers:
        net = NeuralNet(
            settings.model,
            choice.params(settings.params, settings.epochs),
            seed,
            train.feature_names,
        )
        net.threads = threads
        report = net.fit(train, valid)
        roc = weighted_roc(net.predict(valid.X), valid.y, valid_weight)
        run = OptimizerRun(
            label=run_label(net.params),
            optimizer=net.params["optimizer"],
            learning_rate=float(net.params["learning_rate"]),
            valid_loss=report.extra["valid_loss"],
            best_epoch=int(report.extra["best_epoch"]),
            valid_auc=auc(roc),
            train_seconds=report.train_seconds,
        )
        log.info(
            "%s: %d epochs, best %d, valid loss %.4f, AUC %.4f",
            run.label,
            len(run.valid_loss),
            run.best_epoch,
            min(run.valid_loss),
            run.valid_auc,
        )
        runs.append(run)
    return StudyResult(
        model=settings.model,
        fold=settings.fold,
        epochs=settings.epochs,
        n_train=len(train),
        n_valid=len(valid),
        runs=runs,
    )


def plot_study(result: StudyResult, output: str) -> None:
    """Validation loss vs epoch, one line per optimiser (its AUC in the legend), and the
    validation AUC per optimiser in a second panel; a PNG written atomically."""
    # imported here: the config check imports this module at every workflow parse
    import matplotlib.pyplot as plt
    import mplhep

    from thetaflow.plotting.style import experiment_label, save_figure  # sets the Agg backend

    with plt.style.context(mplhep.style.ROOT):
        fig, (left, right) = plt.subplots(
            1, 2, figsize=(17, 8), gridspec_kw={"width_ratios": [3, 2]}
        )
        colors = [f"C{i}" for i in range(10)]  # the style's colour cycle
        for i, run in enumerate(result.runs):
            epochs = np.arange(1, len(run.valid_loss) + 1)
            color = colors[i % len(colors)]
            left.plot(
                epochs,
                run.valid_loss,
                marker="o",
                markersize=4,
                color=color,
                label=f"{run.label}: AUC {run.valid_auc:.4f}",
            )
            left.plot(run.best_epoch, run.valid_loss[run.best_epoch - 1], "*", color=color, ms=12)
        left.set_xlabel("epoch")
        left.set_ylabel("validation loss (weighted BCE)")
        left.legend(fontsize=12, loc="upper right")
        experiment_label(left, f"{result.model}, fold {result.fold}, {result.n_train} events")
        # the AUCs as points on a range around them: optimisers differ in the third decimal
        aucs = np.array([run.valid_auc for run in result.runs])
        y = np.arange(len(result.runs))
        right.scatter(aucs, y, s=120, c=[colors[i % len(colors)] for i in y], zorder=3)
        for auc_value, row in zip(aucs, y, strict=True):
            right.annotate(
                f"{auc_value:.4f}",
                (auc_value, row),
                xytext=(0, 10),
                textcoords="offset points",
                ha="center",
                fontsize=12,
            )
        pad = max(0.005, 0.3 * float(aucs.max() - aucs.min()))
        right.set_xlim(float(aucs.min()) - pad, float(aucs.max()) + pad)
        right.set_ylim(len(y) - 0.5, -0.7)
        right.set_yticks(y, [run.label for run in result.runs], fontsize=12)
        right.grid(axis="x", alpha=0.3)
        right.set_xlabel("validation AUC (best epoch)")
        fig.tight_layout()
        save_figure(fig, output)


def optimiser_study(
    config: Mapping[str, Any], table_path: str, outputs: Mapping[str, str], threads: int = 1
) -> StudyResult:
    """Workflow entry point: the study on the training table at ``table_path``; writes
    ``outputs["json"]`` and ``outputs["figure"]`` (each atomically)."""
    settings = StudySettings.from_config(config)
    data = TrainingArrays.read(table_path, ml_inputs(config))
    sets = fold_sets(data.fold, data.is_validation, settings.fold)
    seed = model_seed(config, settings.model, settings.fold)
    limit = settings.max_train_events
    train_mask = keep_signal_subsample(sets.train, data.is_signal, limit, seed)
    valid_mask = keep_signal_subsample(sets.valid, data.is_signal, limit // 4, seed + 1)
    result = run_study(
        settings,
        data.dataset(train_mask),
        data.dataset(valid_mask),
        data.weight[valid_mask],
        seed,
        threads,
    )
    plot_study(result, outputs["figure"])
    write_json(outputs["json"], result.to_json())
    return result
