"""One read of each request body: 413 over ``TEXTCLS_MAX_BODY_BYTES``, 422 for JSON that lies.

``BodyGuard`` reads a POST body once, bounded (from ``Content-Length`` before reading anything,
then by counting bytes, for chunked bodies or a header that lies), refuses what must not reach
a route, and hands the bytes on: in ``scope[BODY]`` for the /classify route, and replayed to
``receive`` for FastAPI's routes. Refusals render through ``app.edge.errors``.

JSON that Python's parser accepts but JSON and Unicode do not used to break later, as 500s:
- a string holding a lone UTF-16 surrogate (``"\\ud800"``): it cannot be encoded as UTF-8, so
  it failed the model call (and every other request batched with it), the database driver,
  and the validation error that echoed it back;
- ``NaN``, ``Infinity``, ``-Infinity``: not JSON; the validation error echoing them could not
  be rendered (Starlette's JSON refuses non-finite floats);
- a number beyond the float range (``1e400``, read as infinity): the same.
``refusal`` finds the first two, parsing the body only when a fast substring scan finds an
escape or one of those words; escaped surrogate pairs (``"\\ud83d\\ude00"``, as
``json.dumps`` writes emoji) pass. ``app.edge.errors.validation_error_handler`` renders
FastAPI's 422 without echoing the input, so an infinite number (or a huge integer) that
reaches validation still gets its 422.
"""

from __future__ import annotations

import json
import math

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.edge.errors import send_service_error
from app.errors import InvalidInput, PayloadTooLarge

# The scope key under which the body's bytes travel on to the route.
BODY = "textcls.body"

SURROGATE = (
    "the JSON body holds a lone UTF-16 surrogate escape (\\ud800-\\udfff without its pair), "
    "which is not valid Unicode"
)
NON_FINITE = "the JSON body holds NaN or Infinity, which JSON does not allow"
OUT_OF_RANGE = "the JSON body holds a number beyond the float range"


class _Refused(ValueError):
    pass


def _constant(name: str) -> float:
    raise _Refused(NON_FINITE)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(OUT_OF_RANGE)
    return value


def refusal(body: bytes) -> str | None:
    """Why ``body`` is refused, or None when it is fine (or not JSON: the route says so)."""
    # Substring tests (memmem) are several times faster than one regex over a large body.
    if b"\\u" not in body and b"NaN" not in body and b"Infinity" not in body:
        return None
    try:
        value = json.loads(body, parse_constant=_constant, parse_float=_float)
    except _Refused as exc:
        return str(exc)
    except (ValueError, RecursionError):
        return None  # not JSON, or nested too deep: the route's own parsing answers that
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE
    return None


class BodyGuard:
    """Pure ASGI middleware: reads, bounds and checks each request body once."""

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
                    await send_service_error(send, self._too_large(declared), path=scope["path"])
                    return
                break
        message = await receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            body = message.get("body", b"")  # the usual case: the whole body in one message
        else:
            read = await self._read_rest(message, receive)
            if isinstance(read, int):
                await send_service_error(send, self._too_large(read), path=scope["path"])
                return
            if read is None:  # the client went away; let the app see it as it would
                await self.app(scope, replay([message], receive), send)
                return
            body = read
        if len(body) > limit:
            await send_service_error(send, self._too_large(len(body)), path=scope["path"])
            return
        reason = refusal(body)
        if reason is not None:
            await send_service_error(send, InvalidInput(reason), path=scope["path"])
            return
        scope[BODY] = body
        await self.app(scope, replay([{"type": "http.request", "body": body}], receive), send)

    async def _read_rest(self, first: Message, receive: Receive) -> bytes | int | None:
        """The whole body from ``first`` on; its size so far once over the limit; None when
        the client disconnected."""
        chunks: list[bytes] = []
        size = 0
        message = first
        while True:
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return size
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
            message = await receive()

    def _too_large(self, size: int) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"request body of {size}+ bytes is over the limit of {self.max_body_bytes} bytes "
            "(TEXTCLS_MAX_BODY_BYTES)"
        )


def replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out ``messages`` (already read) first, then reads on."""
    queue = list(messages)

    async def replay() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay
