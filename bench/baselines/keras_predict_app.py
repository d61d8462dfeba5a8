"""Baseline A: FastAPI calling Keras ``model.predict`` once per request, the tutorial way.

The artifact is a SavedModel, not a ``.keras`` file, so the Keras model is rebuilt around it
with ``keras.layers.TFSMLayer`` (Keras 3's documented way to use a SavedModel); the numbers
it computes are the signature's, and ``predict`` adds Keras's per-call machinery (a data
adapter and iterator per call), which is the cost this baseline shows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import FastAPI

from app.edge.schemas import ClassifyRequest, ClassifyResponse
from bench.baselines.shaping import load_metadata, model_path_from_env, ranked_response, texts_of
from training.artifact import INPUT_KEY, OUTPUT_KEY, SIGNATURE_KEY


def create_app() -> FastAPI:
    """``uvicorn --factory bench.baselines.keras_predict_app:create_app``."""
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        import keras

        layer = keras.layers.TFSMLayer(str(model_path_from_env()), call_endpoint=SIGNATURE_KEY)
        inputs = keras.Input(shape=(), dtype="string", name=INPUT_KEY)
        model = keras.Model(inputs, layer(inputs)[OUTPUT_KEY])
        model.predict(np.array(["warm up"], dtype=object), verbose=0)
        state["meta"], state["model"] = load_metadata(), model
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/readyz")
    async def readyz() -> dict[str, bool]:
        return {"ready": "model" in state}

    @app.post("/classify", response_model=ClassifyResponse)
    def classify(request: ClassifyRequest) -> ClassifyResponse:
        """One ``model.predict`` per request, in FastAPI's thread pool."""
        texts = np.array(texts_of(request), dtype=object)
        probabilities = state["model"].predict(texts, verbose=0)
        return ranked_response(request, probabilities, state["meta"])

    return app
