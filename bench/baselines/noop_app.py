"""The HTTP ceiling: the same request and response schemas as /classify, and no model at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import FastAPI

from app.edge.schemas import ClassifyRequest, ClassifyResponse
from bench.baselines.shaping import load_metadata, ranked_response, texts_of


def create_app() -> FastAPI:
    """``uvicorn --factory bench.baselines.noop_app:create_app``; answers with fixed numbers."""
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        meta = load_metadata()
        # A fixed probability row shaped like the model's, so the body has the same size.
        row = np.linspace(1.0, 0.0, len(meta.labels), dtype=np.float32)
        state["meta"], state["row"] = meta, row / row.sum()
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/readyz")
    async def readyz() -> dict[str, bool]:
        return {"ready": "meta" in state}

    @app.post("/classify", response_model=ClassifyResponse)
    async def classify(request: ClassifyRequest) -> ClassifyResponse:
        """Parse, shape a response, no inference: what HTTP + JSON + pydantic cost alone."""
        n = len(texts_of(request))
        probabilities = np.broadcast_to(state["row"], (n, len(state["row"])))
        return ranked_response(request, probabilities, state["meta"])

    return app
