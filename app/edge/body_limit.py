"""Pure ASGI middleware answering 413 for bodies over ``TEXTCLS_MAX_BODY_BYTES``.

Checked twice: from ``Content-Length`` before reading anything, and by counting bytes while
reading, for chunked bodies or a header that lies. The body is read here (it is small JSON
by design) and replayed to the app, so the 413 is a clean JSON answer rather than an error
half-way through parsing.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.edge.errors import send_service_error
from app.errors import PayloadTooLarge


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0  # let the server or the byte count deal with it
                if declared > limit:
                    await self._reject(scope, receive, send, declared)
                    return
                break
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away; let the app see that as it normally would.
                await self.app(scope, replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._reject(scope, receive, send, size)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, replay([body], receive), send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        exc = PayloadTooLarge(
            f"request body of {size}+ bytes is over the limit of {self.max_body_bytes} bytes "
            "(TEXTCLS_MAX_BODY_BYTES)"
        )
        await send_service_error(send, exc)


def replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out ``messages`` (already read) first, then reads on."""
    queue = list(messages)

    async def replay() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay
