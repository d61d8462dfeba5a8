"""A real textcls server (uvicorn, real model) behind a front that records what reached it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.main import create_app
from tests.app.live_service import make_settings
from tests.live_server import live_server


@dataclass
class Seen:
    method: str
    path: str
    request_id: str | None
    status: int = 0


@dataclass
class Front:
    """ASGI wrapper around the real app: records each request (and its answer's status), and
    answers the first ``fail_next`` POSTs itself with 503 + ``Retry-After`` (a replica that
    is briefly overloaded), so a test can watch a client retry and then succeed."""

    app: ASGIApp
    fail_next: int = 0
    retry_after: str = "1"
    seen: list[Seen] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        rid = headers.get(b"x-request-id")
        seen = Seen(scope["method"], scope["path"], rid.decode() if rid else None)
        if scope["path"] != "/readyz":
            self.seen.append(seen)
        if scope["method"] == "POST" and self.fail_next > 0:
            self.fail_next -= 1
            seen.status = 503
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"retry-after", self.retry_after.encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b'{"detail": "overloaded"}'})
            return

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen.status = message["status"]
            await send(message)

        await self.app(scope, receive, record)

    def posts(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST" and s.path == path]


@dataclass
class Served:
    url: str
    front: Front


def serve(tmp: Path, model_dir: Path, **overrides: object) -> Iterator[Served]:
    front = Front(create_app(make_settings(tmp, model_dir, **overrides)))
    with live_server(front) as url:
        yield Served(url, front)


@pytest.fixture(scope="module")
def server(tiny_model_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """An open server with the prediction log on (SQLite), shared by a module's tests."""
    yield from serve(tmp_path_factory.mktemp("client"), tiny_model_repo)


@pytest.fixture
def front(server: Served) -> Iterator[Front]:
    """The shared server's front, cleared for this test."""
    server.front.seen.clear()
    server.front.fail_next = 0
    yield server.front
    server.front.fail_next = 0
