"""Unsupervised anomaly score: an autoencoder trained on background-dominated events.

The autoencoder learns to reconstruct the (standardised) input features of the events it is
trained on — by default the simulated backgrounds, alternatively all simulated known physics
or the pseudo-data's sidebands (``anomaly.training.source``) — through a narrow bottleneck.
Events unlike the training set reconstruct badly; the per-event reconstruction error is the
anomaly score. No label is used in training, so the score can find a signal that no
supervised model was trained on (the blind search, :mod:`thetaflow.unsupervised.blind_search`).

Folds are the supervised stage's (:func:`thetaflow.ml.folds.assign_folds` from ``ml.seed``
and ``ml.folds``): the fold-k autoencoder is trained and validated on the other folds only
and scores every event of fold k, in every sample and variation.

Anomaly error. Per event, the squared reconstruction error of each standardised feature is
divided by that feature's mean squared error on the validation events (``error:
normalised``, the default): a χ²-like sum in which a feature the network cannot compress
for any event (an angle, a b-tag score) weighs as much as one it reconstructs precisely (a
mass), so an event is anomalous when it is badly reconstructed *for that feature*. ``mse``
is the plain mean squared error, ``max`` the largest normalised term. The variational
autoencoder adds β·KL/d (its loss, evaluated at the posterior mean).

Score format. The raw error ``e`` is unbounded and its scale depends on the fold's network.
The score written is the monotone map ``score = e / (e + e_ref)``, where ``e_ref`` is the
weighted median error of the fold's own validation events: a score in [0, 1) that is 0.5 for
a typical training event and tends to 1 for anomalies (e = 9·e_ref gives 0.9, 99·e_ref
0.99). Being monotone it leaves every ROC and tail selection unchanged; the reference makes
the folds' scores comparable; and 1 − score = e_ref/(e + e_ref) keeps float64 resolution for
errors up to ~10¹⁵·e_ref, so the far tail is never flattened into ties (an exponential map
would be).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from thetaflow.core.errors import ConfigError, ThetaflowError
from thetaflow.core.io import atomic_directory, read_table, reading_result, write_table
from thetaflow.core.samples import Sample, load_samples, main_data_sample
from thetaflow.features.labels import LABEL_BACKGROUND, LABEL_SIGNAL
from thetaflow.ml.folds import (
    ID_COLUMNS,
    assign_folds,
    check_inputs,
    event_ids,
    ids_checksum,
    ml_inputs,
    read_fold_record,
    subsample,
    validation_flags,
)
from thetaflow.ml.models.nn import configure_tensorflow

# keras/TensorFlow are imported where used: this module's settings are read by the config
# checks at every workflow parse
if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
RECORD_FILE = "autoencoder.json"
SOURCES = ("backgrounds", "simulation", "sidebands")
KINDS = ("ae", "vae")
ERRORS = ("normalised", "mse", "max")
#: a feature whose weighted standard deviation is below this (relative to max(1, |mean|))
#: in the training set is constant: dropped, with a note, instead of dividing by zero
CONSTANT_TOLERANCE = 1e-9
PREDICT_BATCH = 65536


class AnomalyError(ThetaflowError, ValueError):
    """Unusable inputs of the unsupervised stage; the message names the key, sample or file."""


# ----------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class AutoencoderSettings:
    """The network and its training (config ``anomaly.model``), and the seed.

    No field defaults: the schema (``config.schema.yaml``) is the one place they are written;
    :meth:`from_config` reads the validated config, where they are filled in.
    """

    kind: str
    hidden_layers: tuple[int, ...]
    bottleneck: int
    epochs: int
    batch_size: int
    learning_rate: float
    patience: int
    kl_weight: float
    error: str
    seed: int

    @classmethod
    def from_config(cls, config: Mapping, fold: int = 0) -> AutoencoderSettings:
        """From the validated ``anomaly.model`` (defaults filled by the schema) and
        ``anomaly.seed``."""
        spec = dict(config["anomaly"]["model"])
        spec["hidden_layers"] = tuple(spec["hidden_layers"])
        seed = int(config["anomaly"]["seed"]) * 100 + fold
        return cls(**spec, seed=seed)


def anomaly_inputs(config: Mapping) -> list[str]:
    """Input features of the autoencoder: ``anomaly.inputs``, else the classifiers' inputs."""
    return list(config["anomaly"]["inputs"] or ml_inputs(config))


def training_source(config: Mapping) -> Mapping:
    """The validated ``anomaly.training`` block (defaults filled by the schema). Its
    ``sideband_data`` may be absent: it then means the main data sample (see
    :func:`sideband_data`), a default that depends on the sample list, so not in the schema."""
    return config["anomaly"]["training"]


def sideband_data(config: Mapping, samples: Mapping[str, Sample]) -> str:
    """The pseudo-data sample whose sidebands train the autoencoder (``source: sidebands``):
    ``anomaly.training.sideband_data``, else the main data sample; there must be one."""
    # absent: the main data sample (depends on the sample list, so no schema default)
    data = training_source(config).get("sideband_data") or main_data_sample(config, samples)
    if data is None:
        raise ConfigError(
            "config key 'anomaly.training.sideband_data': not set and the sample list has no "
            "data sample for the sidebands"
        )
    return str(data)


def check_bottleneck(bottleneck: int, width: int, where: str) -> None:
    """A bottleneck as wide as the input lets the network learn the identity: refused."""
    if bottleneck >= width:
        raise ConfigError(
            f"{where}: the bottleneck ({bottleneck}) must be narrower than the input ({width} "
            "features); an autoencoder as wide as its input learns the identity and scores nothing "
            "as anomalous"
        )


def training_samples(config: Mapping, samples: Mapping[str, Sample]) -> list[str]:
    """The samples whose nominal feature tables the autoencoder's training reads."""
    source = training_source(config)["source"]
    if source == "backgrounds":
        return [s.name for s in samples.values() if s.kind == "background"]
    sm = [s.name for s in samples.values() if s.is_standard_model_mc]
    if source == "simulation":
        return sm
    return [*sm, sideband_data(config, samples)]  # simulation only for the signal-fraction estimate


# ----------------------------------------------------------------------------- standardisation


@dataclass(frozen=True)
class Standardisation:
    """Per-feature (x − mean)/scale of the kept features; constant features are dropped."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    dropped: tuple[str, ...] = ()

    @classmethod
    def fit(cls, X: np.ndarray, w: np.ndarray | None, names: Sequence[str]) -> Standardisation:
        """Weighted mean and standard deviation of each column; constant columns dropped."""
        X = np.asarray(X, dtype=np.float64)
        if len(X) == 0:
            raise AnomalyError("cannot standardise features of an empty training set")
        w = np.ones(len(X)) if w is None else np.abs(np.asarray(w, dtype=np.float64))
        mean = np.average(X, axis=0, weights=w)
        std = np.sqrt(np.average((X - mean) ** 2, axis=0, weights=w))
        constant = std <= CONSTANT_TOLERANCE * np.maximum(1.0, np.abs(mean))
        dropped = tuple(n for n, c in zip(names, constant, strict=True) if c)
        if dropped:
            log.warning(
                "constant feature(s) %s in the training set: dropped (no information, would be NaN "
                "after standardisation)",
                ", ".join(dropped),
            )
        keep = ~constant
        return cls(
            features=tuple(n for n, k in zip(names, keep, strict=True) if k),
            mean=tuple(float(m) for m in mean[keep]),
            scale=tuple(float(s) for s in std[keep]),
            dropped=dropped,
        )

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Standardised kept features of ``frame`` (float32, columns in ``features`` order)."""
        X = frame[list(self.features)].to_numpy(dtype=np.float64)
        return ((X - np.asarray(self.mean)) / np.asarray(self.scale)).astype(np.float32)

    def transform_array(self, X: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """As :meth:`transform`, for an array whose columns are ``names``."""
        index = [list(names).index(f) for f in self.features]
        return (
            (np.asarray(X, dtype=np.float64)[:, index] - np.asarray(self.mean))
            / np.asarray(self.scale)
        ).astype(np.float32)


# ----------------------------------------------------------------------------- training set


@dataclass(frozen=True)
class TrainingSet:
    """The events the autoencoders learn from, with folds and validation flags."""

    table: pd.DataFrame  # ids, sample, label, weight, inputs, fold, is_validation
    source: str
    signal_fraction: float
    note: str


def load_tables(
    feature_files: Mapping[str, str], inputs: Sequence[str], extra: Sequence[str] = ()
) -> dict[str, pd.DataFrame]:
    """Nominal feature tables (ids, sample, label, weight, inputs, extra columns) by sample."""
    columns = list(dict.fromkeys([*ID_COLUMNS, "sample", "label", "weight", *inputs, *extra]))
    tables = {}
    for sample, path in feature_files.items():
        frame = read_table(path)
        check_inputs(frame, list(dict.fromkeys([*inputs, *extra])), f"sample '{sample}' ({path})")
        tables[sample] = frame[columns]
    return tables


def select_training_set(
    config: Mapping,
    samples: Mapping[str, Sample],
    tables: Mapping[str, pd.DataFrame],
    inputs: Sequence[str],
) -> TrainingSet:
    """The training events of ``anomaly.training.source`` and their signal fraction.

    ``backgrounds``: every simulated background event, physics weights (|w|);
    ``simulation``: all simulated known physics, signal included (its expected share is the
    signal fraction); ``sidebands``: pseudo-data events outside the signal-region window,
    unit weights, the signal fraction estimated from the simulation in the same region.
    A signal fraction above ``anomaly.training.max_signal_fraction`` is warned about: the
    set is then not background-dominated and the score learns part of the signal.
    """
    spec = training_source(config)
    source = spec["source"]
    sm = [s for s in tables if samples[s].is_standard_model_mc]
    if source == "sidebands":
        data = sideband_data(config, samples)
        feature = spec["signal_region"]["feature"]
        lo, hi = spec["signal_region"]["window_gev"]

        def outside(frame: pd.DataFrame) -> pd.Series:
            return (frame[feature] < lo) | (frame[feature] > hi)

        table = tables[data][outside(tables[data])]
        mc = pd.concat([tables[s][outside(tables[s])] for s in sm], ignore_index=True)
        note = f"pseudo-data '{data}' outside {feature} in [{lo}, {hi}]"
    else:
        names = [s for s in sm if source == "simulation" or samples[s].kind == "background"]
        table = pd.concat([tables[s] for s in names], ignore_index=True)
        mc = table
        what = "known physics" if source == "simulation" else "backgrounds"
        note = f"simulated {what}: {', '.join(names)}"
    total = mc["weight"].sum()
    signal = mc.loc[mc["label"] == LABEL_SIGNAL, "weight"].sum()
    fraction = float(signal / total) if total > 0 else 0.0
    ceiling = spec["max_signal_fraction"]
    if fraction > ceiling:
        log.warning(
            "anomaly.training.source '%s': expected signal fraction %.3g of the training set is "
            "above anomaly.training.max_signal_fraction = %.3g: not background-dominated, the "
            "autoencoder learns part of the signal and scores it less anomalous",
            source,
            fraction,
            ceiling,
        )
    table = table.reset_index(drop=True).copy()
    if source == "sidebands":
        table["weight"] = 1.0
    ml = config["ml"]
    ids = event_ids(table)
    table["fold"] = assign_folds(*ids, ml["seed"], ml["folds"])
    table["is_validation"] = validation_flags(*ids, ml["seed"], ml["validation_fraction"])
    if len(table) == 0:
        raise AnomalyError(f"anomaly.training.source '{source}': no training event ({note})")
    return TrainingSet(table, source, fraction, note)


# ----------------------------------------------------------------------------- networks


def build_networks(width: int, settings: AutoencoderSettings) -> tuple[keras.Model, keras.Model]:
    """(training model, scoring model) of an autoencoder or a variational autoencoder.

    Both are plain functional Keras models of Dense layers (``model.keras`` loads in safe
    mode, no custom objects). For the AE they are the same model, x → x̂. For the VAE the
    training model samples z ~ N(μ, σ²) and adds β·KL/width to the loss; the scoring model
    maps x → [x̂(μ), μ, log σ²] with the same layers.
    """
    import keras

    x = keras.Input(shape=(width,), name="x")
    h = x
    for i, units in enumerate(settings.hidden_layers):
        h = keras.layers.Dense(units, activation="elu", name=f"encoder_{i}")(h)
    decoder_layers = [
        keras.layers.Dense(units, activation="elu", name=f"decoder_{i}")
        for i, units in enumerate(reversed(settings.hidden_layers))
    ]
    output_layer = keras.layers.Dense(width, name="reconstruction")

    def decode(z: Any) -> Any:
        for layer in decoder_layers:
            z = layer(z)
        return output_layer(z)

    if settings.kind == "ae":
        z = keras.layers.Dense(settings.bottleneck, name="bottleneck")(h)
        model = keras.Model(x, decode(z), name="autoencoder")
        return model, model
    z_mean = keras.layers.Dense(settings.bottleneck, name="z_mean")(h)
    z_log_var = keras.layers.Dense(settings.bottleneck, name="z_log_var")(h)
    z = _Sampling(settings.kl_weight / width, settings.seed, name="sampling")([z_mean, z_log_var])
    training = keras.Model(x, decode(z), name="vae_training")
    scoring = keras.Model(x, [decode(z_mean), z_mean, z_log_var], name="vae")
    return training, scoring


def _sampling_class() -> type:
    import keras

    class Sampling(keras.layers.Layer):
        """z = μ + σ·ε, adding β·KL(N(μ, σ²) ‖ N(0, 1)) to the model's loss (training only)."""

        def __init__(self, kl_scale: float, seed: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.kl_scale = kl_scale
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, inputs: Any) -> Any:
            z_mean, z_log_var = inputs
            kl = -0.5 * keras.ops.sum(
                1 + z_log_var - keras.ops.square(z_mean) - keras.ops.exp(z_log_var), axis=1
            )
            self.add_loss(self.kl_scale * keras.ops.mean(kl))
            eps = keras.random.normal(keras.ops.shape(z_mean), seed=self.seed_generator)
            return z_mean + keras.ops.exp(0.5 * z_log_var) * eps

    return Sampling


def _Sampling(kl_scale: float, seed: int, name: str) -> Any:  # noqa: N802 (a layer factory)
    return _sampling_class()(kl_scale, seed, name=name)


@dataclass(frozen=True)
class Reconstruction:
    """Per-event reconstruction of standardised inputs."""

    squared_error: np.ndarray  # (n, d): (x − x̂)² per feature, standardised units
    kl: np.ndarray  # (n,): KL term of the VAE (0 for the AE)

    def error(
        self, kl_weight: float, mode: str = "mse", feature_scale: Sequence[float] | None = None
    ) -> np.ndarray:
        """The anomaly error (see the module): ``mse``, or per-feature squared errors over
        ``feature_scale`` averaged (``normalised``) or maximised (``max``); + β·KL/d."""
        d = self.squared_error.shape[1]
        if mode == "mse":
            terms = self.squared_error
        elif mode in ("normalised", "max"):
            if feature_scale is None:
                raise ValueError(f"error mode '{mode}' needs the per-feature scale")
            terms = self.squared_error / np.maximum(
                np.asarray(feature_scale, dtype=np.float64), 1e-12
            )
        else:
            raise ValueError(f"unknown error mode {mode!r}; expected one of {ERRORS}")
        base = terms.max(axis=1) if mode == "max" else terms.mean(axis=1)
        return base + kl_weight * self.kl / d


def reconstruct(model: keras.Model, X: np.ndarray, kind: str) -> Reconstruction:
    """Run the scoring model in batches (one traced call, not ``model.predict``)."""
    forward = _forward(model, X.shape[1])
    sq = np.empty(X.shape, dtype=np.float64)
    kl = np.zeros(len(X), dtype=np.float64)
    for lo in range(0, len(X), PREDICT_BATCH):
        batch = X[lo : lo + PREDICT_BATCH]
        out = forward(batch)
        if kind == "vae":
            rec, mu, log_var = (np.asarray(o, dtype=np.float64) for o in out)
            kl[lo : lo + len(batch)] = -0.5 * np.sum(1 + log_var - mu**2 - np.exp(log_var), axis=1)
        else:
            rec = np.asarray(out, dtype=np.float64)
        sq[lo : lo + len(batch)] = (batch - rec) ** 2
    return Reconstruction(sq, kl)


def _forward(model: keras.Model, width: int) -> Any:
    """The model's inference call traced once for any batch size (cached on the model)."""
    import tensorflow as tf

    cached = getattr(model, "_thetaflow_forward", None)
    if cached is None:
        spec = tf.TensorSpec(shape=(None, width), dtype=tf.float32)
        cached = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        model._thetaflow_forward = cached
    return cached


def score_from_error(error: np.ndarray, reference: float) -> np.ndarray:
    """The written score: ``e / (e + e_ref)``, monotone in e, in [0, 1), 0.5 at e = e_ref."""
    error = np.maximum(np.asarray(error, dtype=np.float64), 0.0)
    return error / (error + reference)


def error_ratio(score: np.ndarray) -> np.ndarray:
    """Inverse of :func:`score_from_error`: e / e_ref from the score."""
    score = np.asarray(score, dtype=np.float64)
    return score / np.maximum(1.0 - score, 1e-300)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """Median of ``values`` with non-negative ``weights``."""
    order = np.argsort(values)
    cum = np.cumsum(np.abs(weights)[order])
    return float(values[order][np.searchsorted(cum, 0.5 * cum[-1])])


def _unit_mean(w: np.ndarray) -> np.ndarray:
    w = np.abs(np.asarray(w, dtype=np.float64))
    return (
        (w / w.mean()).astype(np.float32)
        if len(w) and w.mean() > 0
        else np.ones(len(w), np.float32)
    )


@dataclass
class FitResult:
    """A trained fold autoencoder with everything needed to score."""

    scoring: Any
    standardisation: Standardisation
    reference_error: float
    record: dict


def fit_autoencoder(
    train_X: np.ndarray,
    train_w: np.ndarray,
    valid_X: np.ndarray,
    valid_w: np.ndarray,
    names: Sequence[str],
    settings: AutoencoderSettings,
    threads: int = 1,
) -> FitResult:
    """Standardise on the training set, train with early stopping on the validation loss.

    Returns the scoring model, the standardisation and the reference error (weighted median
    error of the validation events) that maps errors to scores.
    """
    import keras

    std = Standardisation.fit(train_X, train_w, names)
    check_bottleneck(
        settings.bottleneck,
        len(std.features),
        "anomaly.model.bottleneck (after dropping constant features)",
    )
    if len(valid_X) == 0:
        raise AnomalyError(
            "the validation set is empty: more events or a larger ml.validation_fraction are needed"
        )
    configure_tensorflow(threads)
    keras.utils.set_random_seed(settings.seed)
    Xt, Xv = std.transform_array(train_X, names), std.transform_array(valid_X, names)
    training, scoring = build_networks(Xt.shape[1], settings)
    training.compile(optimizer=keras.optimizers.Adam(settings.learning_rate), loss="mse")
    stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=settings.patience, restore_best_weights=True
    )
    start = time.perf_counter()
    history = training.fit(
        Xt,
        Xt,
        sample_weight=_unit_mean(train_w),
        validation_data=(Xv, Xv, _unit_mean(valid_w)),
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        shuffle=True,
        callbacks=[stopping],
        verbose=0,
    )
    seconds = time.perf_counter() - start
    valid_rec = reconstruct(scoring, Xv, settings.kind)
    feature_scale = np.average(valid_rec.squared_error, axis=0, weights=np.abs(valid_w)).tolist()
    errors = valid_rec.error(settings.kl_weight, settings.error, feature_scale)
    reference = weighted_median(errors, valid_w)
    record = {
        "kind": settings.kind,
        "settings": asdict(settings),
        "epochs_run": len(history.history["val_loss"]),
        "best_epoch": int(stopping.best_epoch) + 1,
        "best_valid_loss": float(stopping.best),
        "train_seconds": seconds,
        "reference_error": reference,
        "error": settings.error,
        "feature_scale": feature_scale,
    }
    log.info(
        "autoencoder (%s): %d epochs, best %d (valid loss %.4f), reference error %.4f, %.1f s",
        settings.kind,
        record["epochs_run"],
        record["best_epoch"],
        record["best_valid_loss"],
        reference,
        seconds,
    )
    return FitResult(scoring, std, reference, record)


def train_autoencoder_fold(
    config: Mapping, feature_files: Mapping[str, str], fold: int, output_dir: str, threads: int = 1
) -> dict:
    """Workflow entry point: the fold-``fold`` autoencoder, trained on the other folds.

    Writes ``model.keras`` (the scoring network) and ``autoencoder.json`` (inputs,
    standardisation, dropped features, reference error, fold, sizes, id fingerprints of
    the training and validation events, training record) into ``output_dir``, atomically.
    """
    samples = load_samples(config)
    inputs = anomaly_inputs(config)
    spec = training_source(config)
    extra = [spec["signal_region"]["feature"]] if spec["source"] == "sidebands" else []
    tables = load_tables(feature_files, inputs, extra)
    training = select_training_set(config, samples, tables, inputs)
    table = training.table
    settings = AutoencoderSettings.from_config(config, fold)
    other = table["fold"].to_numpy() != fold
    valid = other & table["is_validation"].to_numpy()
    train = subsample(other & ~valid, spec["max_events"], settings.seed)
    valid = subsample(valid, spec["max_events"] // 4, settings.seed + 1)
    X = table[inputs].to_numpy(dtype=np.float64)
    w = table["weight"].to_numpy()
    result = fit_autoencoder(X[train], w[train], X[valid], w[valid], inputs, settings, threads)
    record = {
        **result.record,
        "inputs": inputs,
        "standardisation": asdict(result.standardisation),
        "fold": fold,
        "folds": config["ml"]["folds"],
        "source": training.source,
        "source_note": training.note,
        "signal_fraction": training.signal_fraction,
        "max_signal_fraction": spec["max_signal_fraction"],
        "n_train": int(train.sum()),
        "n_valid": int(valid.sum()),
        "train_ids": ids_checksum(table, train),
        "valid_ids": ids_checksum(table, valid),
        "score": "error / (error + reference_error)",
    }
    with atomic_directory(output_dir) as tmp:
        result.scoring.save(tmp / MODEL_FILE)
        (tmp / RECORD_FILE).write_text(
            json.dumps(record, indent=2, sort_keys=True, default=float) + "\n"
        )
    return record


# ----------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class FoldAutoencoder:
    """One fold's trained scoring network with its record."""

    model: Any
    record: dict

    @property
    def standardisation(self) -> Standardisation:
        s = self.record["standardisation"]
        return Standardisation(
            tuple(s["features"]), tuple(s["mean"]), tuple(s["scale"]), tuple(s["dropped"])
        )

    def reconstruct(self, frame: pd.DataFrame) -> Reconstruction:
        """Per-feature squared errors (standardised) of the rows of ``frame``."""
        return reconstruct(self.model, self.standardisation.transform(frame), self.record["kind"])

    def errors_and_scores(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(raw error, score) of every row of ``frame``."""
        rec = self.record
        error = self.reconstruct(frame).error(
            rec["settings"]["kl_weight"], rec["error"], rec["feature_scale"]
        )
        return error, score_from_error(error, rec["reference_error"])


def load_autoencoder_fold(
    directory: str | Path, fold: int, folds: int, inputs: Sequence[str]
) -> FoldAutoencoder:
    """One fold's autoencoder directory: ``autoencoder.json``, checked to be the record of
    fold ``fold`` of ``folds`` trained on ``inputs`` (a network of another fold would score
    its own training events), and the scoring network ``model.keras`` (safe mode). The one
    way the workflow reads a trained autoencoder; errors are AnomalyError naming the file, or
    CorruptResultError for an unreadable one."""
    import keras

    record = read_fold_record(
        directory, fold, folds, inputs, RECORD_FILE, "autoencoder", AnomalyError
    )
    path = Path(directory) / MODEL_FILE
    with reading_result(path):
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    return FoldAutoencoder(model, record)


def load_fold_autoencoders(config: Mapping, directories: Sequence[str]) -> list[FoldAutoencoder]:
    """Every fold's autoencoder, checked to belong to its fold and to these inputs."""
    configure_tensorflow(1)
    inputs = anomaly_inputs(config)
    return [
        load_autoencoder_fold(directory, k, len(directories), inputs)
        for k, directory in enumerate(directories)
    ]


def out_of_fold(
    config: Mapping, models: Sequence[FoldAutoencoder], frame: pd.DataFrame
) -> pd.DataFrame:
    """Fold, raw error and score of every row of ``frame``, each from its own fold's model."""
    folds = assign_folds(*event_ids(frame), config["ml"]["seed"], len(models))
    error = np.full(len(frame), np.nan)
    score = np.full(len(frame), np.nan)
    for k, model in enumerate(models):
        sel = folds == k
        if sel.any():
            error[sel], score[sel] = model.errors_and_scores(frame.loc[sel])
    return pd.DataFrame({"fold": folds, "error": error, "score": score})


def score_autoencoder(config: Mapping, model_dirs: Sequence[str], files: Mapping[str, str]) -> None:
    """Workflow entry point: out-of-fold anomaly scores of feature tables (input → output).

    Same format as the classifier scores: run, luminosityBlock, event, fold, score, one row
    per feature-table row in the same order.
    """
    models = load_fold_autoencoders(config, model_dirs)
    inputs = anomaly_inputs(config)
    for features_path, output in files.items():
        frame = read_table(features_path)
        check_inputs(frame, inputs, features_path)
        start = time.perf_counter()
        scored = out_of_fold(config, models, frame)
        out = frame[list(ID_COLUMNS)].copy()
        out["fold"] = scored["fold"].to_numpy()
        out["score"] = scored["score"].to_numpy()
        write_table(output, out)
        log.info(
            "%s: %d events scored in %.2f s", features_path, len(frame), time.perf_counter() - start
        )


__all__ = [
    "AnomalyError",
    "AutoencoderSettings",
    "FoldAutoencoder",
    "Standardisation",
    "LABEL_BACKGROUND",
    "anomaly_inputs",
    "fit_autoencoder",
    "load_autoencoder_fold",
    "load_fold_autoencoders",
    "out_of_fold",
    "score_autoencoder",
    "score_from_error",
    "select_training_set",
    "sideband_data",
    "train_autoencoder_fold",
]
