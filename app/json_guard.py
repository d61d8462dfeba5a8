"""Refuses, with a 422, JSON bodies that Python's parser accepts but JSON and Unicode do not.

Three things get through ``json.loads`` and break later, as 500s:
- a string holding a lone UTF-16 surrogate (``"\\ud800"``): it cannot be encoded as UTF-8, so
  it fails in the model call (failing every other request batched with it), in the database
  driver, and in the validation error that would echo it back;
- ``NaN``, ``Infinity``, ``-Infinity``: not JSON, and the error that echoes them cannot be
  rendered;
- a number beyond the float range (``1e400``, read as infinity): the same.
So they are refused here, once, for every route, before the route parses the body. Escaped
surrogate pairs (``"\\ud83d\\ude00"``, as ``json.dumps`` writes emoji) are fine and pass. The
body is parsed here only when a cheap scan finds one of these could be in it.
"""

from __future__ import annotations

import json
import math
import re

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# An escape, a non-finite literal, or an exponent of three digits or more.
_SUSPECT = re.compile(rb"\\u|NaN|Infinity|[eE][+-]?[0-9]{3}")

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
    if not _SUSPECT.search(body):
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
                    await _refuse(send, reason)
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


async def _refuse(send: Send, detail: str) -> None:
    body = orjson.dumps({"detail": detail})
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
