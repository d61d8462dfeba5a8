"""Baseline B: FastAPI calling the SavedModel signature once per request, no batching."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from app.edge.schemas import ClassifyRequest, ClassifyResponse
from bench.baselines.shaping import load_metadata, model_path_from_env, ranked_response, texts_of
from training.artifact import INPUT_KEY, OUTPUT_KEY, SIGNATURE_KEY


def create_app() -> FastAPI:
    """``uvicorn --factory bench.baselines.signature_app:create_app``."""
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        import tensorflow as tf

        state["tf"] = tf
        state["meta"] = load_metadata()
        state["module"] = tf.saved_model.load(str(model_path_from_env()))
        state["fn"] = state["module"].signatures[SIGNATURE_KEY]
        state["fn"](**{INPUT_KEY: tf.constant(["warm up"])})
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/readyz")
    async def readyz() -> dict[str, bool]:
        return {"ready": "fn" in state}

    # A plain `def` route, as most FastAPI model services are written: FastAPI runs it in its
    # thread pool, so concurrent requests call the model concurrently, one request per call.
    @app.post("/classify", response_model=ClassifyResponse)
    def classify(request: ClassifyRequest) -> ClassifyResponse:
        """One signature call per request."""
        tf = state["tf"]
        out = state["fn"](**{INPUT_KEY: tf.constant(texts_of(request), dtype=tf.string)})
        return ranked_response(request, out[OUTPUT_KEY].numpy(), state["meta"])

    return app
