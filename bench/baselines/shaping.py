"""Build the same response body textcls returns from a row of probabilities."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np

from app.edge.schemas import ClassifyRequest, ClassifyResponse, Prediction, RankedLabel
from training.artifact import Metadata, read_metadata

MODEL_PATH_ENV = "TEXTCLS_BENCH_MODEL_PATH"
DEFAULT_TOP_K = 3


def model_path_from_env() -> Path:
    """The model version folder a baseline serves, from ``TEXTCLS_BENCH_MODEL_PATH``."""
    raw = os.environ.get(MODEL_PATH_ENV)
    if not raw:
        raise RuntimeError(f"{MODEL_PATH_ENV} is not set: point it at a model version folder")
    return Path(raw)


def texts_of(request: ClassifyRequest) -> list[str]:
    return [request.text] if request.text is not None else list(request.texts or [])


def ranked_response(
    request: ClassifyRequest, probabilities: np.ndarray, meta: Metadata
) -> ClassifyResponse:
    """What a straightforward service does: argsort each row, take the top k, compare."""
    top_k = min(request.top_k or DEFAULT_TOP_K, len(meta.labels))
    threshold = meta.fallback.threshold if request.threshold is None else request.threshold
    predictions = []
    for row in probabilities:
        order = np.argsort(-row)[:top_k]
        ranking = [RankedLabel(label=meta.labels[i], confidence=float(row[i])) for i in order]
        predictions.append(
            Prediction(
                label=ranking[0].label,
                confidence=ranking[0].confidence,
                fallback=ranking[0].confidence < threshold,
                ranking=ranking,
            )
        )
    return ClassifyResponse(
        request_id=uuid.uuid4().hex, model=meta.name, version=meta.version, predictions=predictions
    )


def load_metadata() -> Metadata:
    return read_metadata(model_path_from_env())
