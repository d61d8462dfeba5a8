"""Pure ASGI fast path for well-formed ``POST /classify`` requests; the rest go to FastAPI.

FastAPI's per-request machinery (request object, dependency solving, body parsing through
stdlib json, response class) cost more event-loop CPU than everything /classify itself does,
batching, ranking and logging included (bench/request_cost.py). This middleware answers the
common case directly: it reads the body, validates it with the same pydantic model
(``ClassifyRequest.model_validate_json``), checks the API key and rate limit with the same
objects, and calls the same ``Classifier``. Whenever a request is anything but well-formed
and authorised (a body the JSON guard refuses, invalid JSON, a validation error, a missing or
unknown key, an unexpected content type, a body over the limit, a client gone away) it is
handed, with the bytes already read replayed, to the FastAPI app behind, which answers it
exactly as before. So the fast path only ever changes how fast a good request is answered;
every refusal comes from one place. tests/app/test_classify_fast_path.py checks the two
paths give the same answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.edge.auth import KeyStore, peer_client
from app.edge.body_limit import replay
from app.edge.errors import error_response
from app.edge.json_guard import refusal
from app.edge.rate_limit import RateLimiter
from app.edge.schemas import ClassifyRequest
from app.errors import ServiceError
from app.plane.classifier import Classification
from app.plane.services import Services

PATH = "/classify"
_JSON_HEADERS = [(b"content-type", b"application/json")]


def classification_body(result: Classification) -> dict[str, Any]:
    """The /classify response document (ClassifyResponse's shape), built without pydantic."""
    return {
        "request_id": result.request_id,
        "model": result.model,
        "version": result.version,
        "predictions": [
            {
                "label": p.label,
                "confidence": p.confidence,
                "fallback": p.fallback,
                "ranking": [{"label": lbl, "confidence": c} for lbl, c in p.ranking],
            }
            for p in result.predictions
        ],
    }


def _is_json(content_type: bytes | None) -> bool:
    # FastAPI (strict_content_type, its default) parses JSON only when the content type says
    # so; the rarer forms it also accepts (``application/x+json``) take the FastAPI path.
    if content_type is None:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json"


def _presented_key(authorization: bytes | None, api_key: bytes | None) -> str | None:
    """The key as the auth dependency reads it (Bearer first), or None when unsure."""
    if authorization:
        scheme, _, credentials = authorization.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
        return None
    return api_key.decode("latin-1") if api_key else None


class ClassifyFastPath:
    """Answers good ``POST /classify`` requests; passes everything else to ``app`` untouched."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        keys: KeyStore,
        limiter: RateLimiter,
        route: BaseRoute | None = None,
        services: Callable[[], Services | None] = lambda: None,
    ) -> None:
        self.app = app
        self.max_body_bytes = settings.max_body_bytes
        self.keys = keys
        self.limiter = limiter
        self.route = route
        self._services = services  # the app's services once its lifespan has started them

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])  # the last of a repeated header; checked below
        if not _is_json(headers.get(b"content-type")):
            await self.app(scope, receive, send)
            return
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await self.app(scope, receive, send)  # the body limit answers (or uvicorn did)
            return
        body, read = await self._read_body(receive)
        if body is None:
            await self.app(scope, replay(read, receive), send)
            return
        services: Services | None = self._services()
        request = self._parse(body, headers, len(scope["headers"]))
        client = self._client(scope, headers) if request is not None else None
        if request is None or client is None or services is None:
            await self.app(scope, replay(read, receive), send)
            return
        if self.route is not None:
            scope["route"] = self.route  # the HTTP metrics label it as the router would
        state = scope.setdefault("state", {})
        state["client"] = client
        try:
            self.limiter.check(client)
            classifier = services.classifier
            texts = classifier.check_texts(
                [request.text] if request.texts is None else request.texts
            )
            result = await classifier.classify(
                texts,
                request.model,
                request.version,
                request.top_k,
                request.threshold,
                client,
                state.get("request_id"),
                session=request.session,
            )
        except ServiceError as exc:
            response = error_response(exc)
            await response(scope, receive, send)
            return
        payload = orjson.dumps(classification_body(result))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _read_body(self, receive: Receive) -> tuple[bytes | None, list[Message]]:
        """(body, messages read); body is None when the app behind must see the messages."""
        read: list[Message] = []
        size = 0
        while True:
            message = await receive()
            read.append(message)
            if message["type"] != "http.request":
                return None, read  # the client went away
            size += len(message.get("body", b""))
            if size > self.max_body_bytes:
                return None, read  # over the limit: the body-limit middleware answers 413
            if not message.get("more_body", False):
                break
        if len(read) == 1:
            return read[0].get("body", b""), read
        return b"".join(m.get("body", b"") for m in read), read

    @staticmethod
    def _parse(body: bytes, headers: dict[bytes, bytes], n_headers: int) -> ClassifyRequest | None:
        if len(headers) != n_headers:
            return None  # a repeated header: let the app behind decide what it means
        if refusal(body) is not None:
            return None  # the JSON guard answers 422
        try:
            return ClassifyRequest.model_validate_json(body)
        except (ValidationError, ValueError):
            return None

    def _client(self, scope: Scope, headers: dict[bytes, bytes]) -> str | None:
        """The client's name as the auth dependency would set it; None when it would refuse."""
        if self.keys.is_open:
            return peer_client(scope)
        key = _presented_key(headers.get(b"authorization"), headers.get(b"x-api-key"))
        return self.keys.identify(key) if key is not None else None
