"""Refuses JSON bodies whose strings hold lone UTF-16 surrogates (``"\\ud800"``) with a 422.

JSON lets a string escape half of a surrogate pair, and Python's parser turns it into a
``str`` that cannot be encoded as UTF-8. Such a string fails wherever it is encoded: in the
model call (failing every other request batched with it), in the database driver, and even
in the validation error that would echo it back. So it is refused here, once, for every
route, before anything parses it. Escaped pairs (``"\\ud83d\\ude00"``, as ``json.dumps``
writes emoji) are fine and pass.
"""

from __future__ import annotations

import json

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DETAIL = (
    "the JSON body holds a lone UTF-16 surrogate escape (\\ud800-\\udfff without its pair), "
    "which is not valid Unicode"
)


def has_lone_surrogate(body: bytes) -> bool:
    """True when ``body`` is JSON with a string (or key) that is not valid Unicode."""
    if b"\\u" not in body:
        return False  # only an escape can make a surrogate: raw UTF-8 cannot encode one
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return False  # not JSON, or nested too deep: the route's own parsing answers that
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class LoneSurrogateGuard:
    """Pure ASGI middleware; reads the body (the body limit, outside it, has bounded it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        chunks: list[bytes] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                if has_lone_surrogate(b"".join(chunks)):
                    await _refuse(send)
                    return
                break
        queue: list[Message] = [
            {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        ]
        if messages[-1]["type"] != "http.request":
            queue = messages  # the client went away; let the app see it as it would

        async def replay() -> Message:
            return queue.pop(0) if queue else await receive()

        await self.app(scope, replay, send)


async def _refuse(send: Send) -> None:
    body = orjson.dumps({"detail": DETAIL})
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
