"""ONNX export of the bdt and nn families, and scoring of exported files with onnxruntime.

The boosted trees go through onnxmltools, the Keras network through tf2onnx
(``tf2onnx.convert.from_keras``). Keras 3's own ``model.export(format="onnx")`` is not
used: with Keras 3.15/TF 2.21 it leaves the ``Normalization`` mean and variance as
dangling graph inputs, so the exported file cannot be run on the features alone.

Every exported file takes one float32 input ``x`` of shape (n, n_features) and records in
its metadata which output (and column) is the signal probability, so :func:`onnx_scores`
reads any of them the same way.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from thetaflow.ml.models.base import Classifier
from thetaflow.ml.models.bdt import BDT
from thetaflow.ml.models.nn import NeuralNet

# onnx, the converters and runtimes (onnxruntime, onnxmltools, tf2onnx/TensorFlow) are
# imported where used: only the training and scoring jobs of the exported families need them
if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

INPUT_NAME = "x"
BDT_OPSET = 15  # the highest opset onnxmltools 1.16 converts XGBoost to
NN_OPSET = 17
META_OUTPUT, META_COLUMN = "thetaflow.score_output", "thetaflow.score_column"


def has_onnx_export(family: str) -> bool:
    """Whether models of ``family`` can be exported to ONNX."""
    return family in _EXPORTERS


def export_onnx(model: Classifier, path: Path) -> None:
    """Write ``model`` as an ONNX file at ``path``.

    Raises:
        ValueError: the model's family has no ONNX export (only bdt and nn have one).
    """
    exporter = _EXPORTERS.get(model.family)
    if exporter is None:
        raise ValueError(
            f"model '{model.name}': family '{model.family}' has no ONNX export; "
            f"supported families: {', '.join(sorted(_EXPORTERS))}"
        )
    import onnx

    proto, output, column = exporter(model)
    meta = {
        META_OUTPUT: output,
        META_COLUMN: str(column),
        "thetaflow.family": model.family,
        "thetaflow.model": model.name,
        "thetaflow.feature_names": json.dumps(list(model.feature_names)),
    }
    onnx.helper.set_model_props(proto, meta)
    onnx.checker.check_model(proto)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(proto, path)
    log.info("%s: exported %s to %s", model.name, model.family, path)


def onnx_scores(path: Path, X: np.ndarray, threads: int = 1) -> np.ndarray:
    """Signal probability (float64, shape (n,)) of each row of ``X`` from an exported file.

    Raises:
        ValueError: the file was not written by :func:`export_onnx` (no score metadata).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    meta = session.get_modelmeta().custom_metadata_map
    if META_OUTPUT not in meta:
        raise ValueError(
            f"{path}: no '{META_OUTPUT}' metadata; not written by thetaflow's export_onnx"
        )
    (out,) = session.run(
        [meta[META_OUTPUT]], {INPUT_NAME: np.ascontiguousarray(X, dtype=np.float32)}
    )
    out = np.asarray(out, dtype=np.float64)
    return out[:, int(meta[META_COLUMN])] if out.ndim == 2 and out.shape[1] > 1 else out.reshape(-1)


def _export_bdt(model: Classifier) -> tuple[onnx.ModelProto, str, int]:
    """The booster as a TreeEnsembleClassifier; its ``probabilities`` column 1 is signal."""
    from onnxmltools.convert import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    assert isinstance(model, BDT)
    n = len(model.feature_names)
    proto = convert_xgboost(
        model.booster,
        initial_types=[(INPUT_NAME, FloatTensorType([None, n]))],
        target_opset=BDT_OPSET,
    )
    return proto, "probabilities", 1


def _export_nn(model: Classifier) -> tuple[onnx.ModelProto, str, int]:
    """The Keras graph (Normalization included) traced by tf2onnx; one sigmoid output."""
    import tensorflow as tf
    import tf2onnx

    assert isinstance(model, NeuralNet)
    spec = (tf.TensorSpec((None, len(model.feature_names)), tf.float32, name=INPUT_NAME),)
    proto, _ = tf2onnx.convert.from_keras(model.keras_model, input_signature=spec, opset=NN_OPSET)
    return proto, proto.graph.output[0].name, 0


_EXPORTERS: dict[str, Callable[[Classifier], tuple[onnx.ModelProto, str, int]]] = {
    BDT.family: _export_bdt,
    NeuralNet.family: _export_nn,
}
