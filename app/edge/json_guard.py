"""JSON that Python's parser accepts but JSON and Unicode do not: refused with 422, not a 500.

Three things get through ``json.loads`` and used to break later, as 500s:
- a string holding a lone UTF-16 surrogate (``"\\ud800"``): it cannot be encoded as UTF-8, so
  it failed the model call (and every other request batched with it), the database driver,
  and the validation error that echoed it back;
- ``NaN``, ``Infinity``, ``-Infinity``: not JSON; the validation error echoing them could not
  be rendered (Starlette's JSON refuses non-finite floats);
- a number beyond the float range (``1e400``, read as infinity): the same.
``JsonGuard`` refuses the first two before the route parses the body; it parses it itself only
when a fast substring scan finds an escape or one of those words. Escaped surrogate pairs
(``"\\ud83d\\ude00"``, as ``json.dumps`` writes emoji) pass.
``app.edge.errors.validation_error_handler`` renders FastAPI's 422 without echoing the input,
so an infinite number (or a huge integer) that reaches validation still gets its 422.
"""

from __future__ import annotations

import json
import math

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.edge.body_limit import replay
from app.edge.errors import send_error

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


class JsonGuard:
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
                reason = refusal(b"".join(chunks))
                if reason is not None:
                    await send_error(send, 422, reason)
                    return
                break
        queue: list[Message] = [
            {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        ]
        if messages[-1]["type"] != "http.request":
            queue = messages  # the client went away; let the app see it as it would
        await self.app(scope, replay(queue, receive), send)
