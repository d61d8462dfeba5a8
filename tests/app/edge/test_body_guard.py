"""413 for bodies over TEXTCLS_MAX_BODY_BYTES, from Content-Length and while streaming."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.edge.body_guard import BodyGuard
from app.main import create_app
from tests.app.conftest import make_settings, wait_ready

LIMIT = 4096


@pytest.fixture(scope="module")
def small_client(tiny_model_repo: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(tiny_model_repo, max_body_bytes=LIMIT))) as c:
        wait_ready(c)
        yield c


def _body(size: int) -> bytes:
    body = json.dumps({"text": "x" * size}).encode()
    return body


def test_declared_length_over_the_limit_is_413(small_client: TestClient) -> None:
    r = small_client.post(
        "/classify", content=_body(LIMIT), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert "TEXTCLS_MAX_BODY_BYTES" in r.json()["detail"]


def test_streamed_body_over_the_limit_is_413(small_client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # chunked transfer: no Content-Length to trust
        body = _body(LIMIT)
        for i in range(0, len(body), 512):
            yield body[i : i + 512]

    r = small_client.post(
        "/classify", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert "over the limit of 4096 bytes" in r.json()["detail"]


def test_lying_content_length_is_caught_while_reading() -> None:
    """Straight at the ASGI level: the header claims 100 bytes, 5000 arrive."""
    reached_app = []

    async def app(scope, receive, send) -> None:  # the app behind the limit
        reached_app.append(await receive())

    messages = [
        {"type": "http.request", "body": b"x" * 2500, "more_body": True},
        {"type": "http.request", "body": b"x" * 2500, "more_body": False},
    ]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/classify",
        "headers": [(b"content-length", b"100")],
        "query_string": b"",
    }
    asyncio.run(BodyGuard(app, LIMIT)(scope, receive, send))
    assert reached_app == []
    assert sent[0]["status"] == 413
    assert b"5000+ bytes" in sent[1]["body"]


def test_body_under_the_limit_is_served(small_client: TestClient) -> None:
    r = small_client.post(
        "/classify", content=_body(LIMIT - 100), headers={"content-type": "application/json"}
    )
    assert r.status_code == 200


def test_every_route_that_takes_a_body_documents_its_413(small_client: TestClient) -> None:
    """The limit guards every route with a body, so each one's OpenAPI answers list 413: a
    client generated from the document (or schemathesis) then expects it."""
    paths = small_client.get("/openapi.json").json()["paths"]
    answered: dict[str, tuple[int, list[str]]] = {}
    for path, operations in paths.items():
        for method, operation in operations.items():
            if "requestBody" not in operation:
                continue
            url = path.format(name="example", version="1", label="x", intent_id="1")
            r = small_client.request(
                method, url, content=_body(LIMIT), headers={"content-type": "application/json"}
            )
            answered[f"{method.upper()} {path}"] = (r.status_code, sorted(operation["responses"]))
    assert len(answered) >= 9 and all(status == 413 for status, _ in answered.values()), answered
    undocumented = [route for route, (_, documented) in answered.items() if "413" not in documented]
    assert not undocumented, undocumented
