"""/classify judges every request as a FastAPI route with ``body: ClassifyRequest`` would.

/classify is a plain Starlette route that parses its body itself (app.edge.routes.classify).
To show that its answers, and the order of its refusals, are FastAPI's, each app under test
also gets a reference FastAPI route, written here in the test, taking the body as a pydantic
parameter behind the same client-route dependencies; every request goes to both and status,
body and the headers clients read must be equal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, Request
from fastapi.testclient import TestClient

from app.edge.access import client_routes
from app.edge.deps import caller_of, services_of
from app.edge.responses import OrjsonResponse
from app.edge.routes.classify import classification_body
from app.edge.schemas import ClassifyRequest
from app.main import create_app
from tests.app.conftest import make_settings, wait_ready

KEY = "chat-secret-0123456789abcdef"
GOOD = {"authorization": f"Bearer {KEY}"}
COMPARED_HEADERS = ("content-type", "retry-after", "www-authenticate", "x-request-id")
REFERENCE = "/reference-classify"

reference = APIRouter()


@reference.post(REFERENCE)
async def reference_classify(body: ClassifyRequest, request: Request) -> OrjsonResponse:
    classifier = services_of(request).classifier
    client, request_id = caller_of(request)
    if body.texts is None:
        texts = classifier.check_texts([body.text], single=True)
    else:
        texts = classifier.check_texts(body.texts)
    result = await classifier.classify(
        texts,
        model=body.model,
        version=body.version,
        top_k=body.top_k,
        threshold=body.threshold,
        margin=body.margin,
        client=client,
        request_id=request_id,
    )
    return OrjsonResponse(classification_body(result))


@pytest.fixture(scope="module", params=["api keys", "open"])
def service(request: pytest.FixtureRequest, tiny_model_repo: Path) -> Iterator[tuple]:
    """(client, mode) for a service with API keys, and for an open one."""
    extra = {"api_keys": f"chat:{KEY}"} if request.param == "api keys" else {}
    settings = make_settings(tiny_model_repo, max_body_bytes=4096, max_text_chars=1000, **extra)
    app = create_app(settings)
    app.include_router(reference, **client_routes(settings))
    with TestClient(app) as client:
        wait_ready(client)
        yield client, request.param


def _answer(client: TestClient, path: str, content: bytes, headers: dict[str, str]) -> tuple:
    r = client.post(path, content=content, headers=headers)
    picked = {h: r.headers.get(h) for h in COMPARED_HEADERS}
    if picked["x-request-id"] != headers["x-request-id"]:
        picked["x-request-id"] = "<generated>"  # a new random id each time
    return r.status_code, r.json(), picked


def _send_both(service: tuple, content: bytes, headers: dict[str, str]) -> tuple:
    client, mode = service
    headers = {
        "x-request-id": "case-1",
        "content-type": "application/json",
        **(GOOD if mode == "api keys" else {}),
        **headers,
    }
    got = _answer(client, "/classify", content, headers)
    want = _answer(client, REFERENCE, content, headers)
    assert got == want, content
    return got


GOOD_BODIES: list[dict[str, Any]] = [
    {"text": "I lost my card yesterday"},
    {"texts": ["where is my refund", "please reset my password"], "top_k": 2},
    {"text": "my payment failed", "top_k": 1000, "threshold": 0.99},
    {"text": "my payment failed", "threshold": 1, "model": None, "version": None},
    {"text": "  hi  ", "model": "example", "version": 1},
    {"text": "caf\u00e9 \U0001f600 emoji as escapes"},
]


@pytest.mark.parametrize("body", GOOD_BODIES, ids=range(len(GOOD_BODIES)))
def test_good_requests_get_the_same_answer(service: tuple, body: dict[str, Any]) -> None:
    status, answer, _ = _send_both(service, json.dumps(body).encode(), {})
    assert status == 200 and answer["predictions"]


BAD_BODIES = [
    b"",
    b"not json",
    b"[1, 2]",
    b'{"text": "a", "texts": ["b"]}',
    b"{}",
    b'{"text": "   "}',
    b'{"texts": []}',
    b'{"text": "' + b"x" * 3000 + b'"}',
    b'{"texts": ["a", 3]}',
    b'{"text": 5}',
    b'{"text": "a", "colour": "red"}',
    b'{"text": "a", "top_k": 0}',
    b'{"text": "a", "top_k": true}',
    b'{"text": "a", "top_k": 1.0}',
    b'{"text": "a", "version": "1"}',
    b'{"text": "a", "threshold": 1.5}',
    b'{"text": "a", "threshold": NaN}',
    b'{"text": "a", "threshold": 1e400}',
    b'{"text": "\\ud800"}',
    b'{"text": "a", "top_k": 99999999999999999999999}',
    b'{"text": "a", "model": "nope"}',
    b'{"text": "a", "version": 7}',
    b'{"text": "a", "text": "b"}',
    b"[" * 5000 + b"]" * 5000,
    b"\xff\xfe",
]


@pytest.mark.parametrize("content", BAD_BODIES, ids=range(len(BAD_BODIES)))
def test_bad_requests_get_the_same_answer(service: tuple, content: bytes) -> None:
    status, _, _ = _send_both(service, content, {})
    assert status != 500


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": "Bearer wrong-key"},
        {"authorization": "Basic abc"},
        {"authorization": "Bearer"},
        {"authorization": "Bearer  " + KEY + " "},
        {"authorization": "", "x-api-key": KEY},
        {"authorization": "Basic abc", "x-api-key": KEY},
        {"content-type": "text/plain"},
        {"content-type": ""},
        {"content-type": "application/problem+json"},
        {"content-type": "application/json; charset=utf-8"},
        {"content-type": "Application/JSON"},
        {"x-request-id": "bad id!"},
    ],
    ids=lambda h: json.dumps(h)[:40],
)
def test_headers_are_judged_the_same(service: tuple, headers: dict[str, str]) -> None:
    _send_both(service, b'{"text": "where is my refund"}', headers)


@pytest.mark.parametrize("content", [b"not json", b'{"text": 5}', b'{"text": "a"}'])
def test_a_missing_key_is_judged_in_the_same_order(service: tuple, content: bytes) -> None:
    """Unreadable JSON is refused before the key is checked, invalid fields after it."""
    client, mode = service
    headers = {"x-request-id": "case-2", "content-type": "application/json"}
    got = _answer(client, "/classify", content, headers)
    assert got == _answer(client, REFERENCE, content, headers)
    if mode == "api keys" and content != b"not json":
        assert got[0] == 401


def test_a_body_over_the_limit_is_413(service: tuple) -> None:
    status, answer, _ = _send_both(service, b'{"text": "' + b"y" * 5000 + b'"}', {})
    assert status == 413 and "TEXTCLS_MAX_BODY_BYTES" in answer["detail"]
