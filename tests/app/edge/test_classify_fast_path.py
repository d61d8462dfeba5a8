"""The /classify fast path answers exactly as the FastAPI route does, for good and bad requests.

Two apps over the same tiny model: one as built, one with ClassifyFastPath removed. Every
request below goes to both; status, body and the headers clients read must be equal. A spy on
the app behind the fast path shows which requests it answered itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.edge.classify_fast_path import ClassifyFastPath
from app.main import create_app
from tests.app.conftest import make_settings, wait_ready

KEY = "chat-secret-0123456789abcdef"
GOOD = {"authorization": f"Bearer {KEY}"}
COMPARED_HEADERS = ("content-type", "retry-after", "www-authenticate", "x-request-id")


def _fast_path(app: FastAPI) -> ClassifyFastPath:
    layer: Any = app.middleware_stack
    while not isinstance(layer, ClassifyFastPath):
        layer = layer.app
    return layer


class _Spy:
    """Wraps the app behind the fast path and counts the requests handed to it."""

    def __init__(self, app: Any) -> None:
        self.app, self.calls = app, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.calls += 1
        await self.app(scope, receive, send)


def _client(model_dir: Path, fast: bool, **settings: Any) -> TestClient:
    app = create_app(make_settings(model_dir, max_body_bytes=4096, max_text_chars=1000, **settings))
    if not fast:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not ClassifyFastPath]
    return TestClient(app)


@pytest.fixture(scope="module", params=["api keys", "open"])
def pair(request: pytest.FixtureRequest, tiny_model_repo: Path) -> Iterator[tuple]:
    """(fast client, slow client, spy) for a service with API keys, and for an open one."""
    extra = {"api_keys": f"chat:{KEY}"} if request.param == "api keys" else {}
    with (
        _client(tiny_model_repo, True, **extra) as fast,
        _client(tiny_model_repo, False, **extra) as slow,
    ):
        wait_ready(fast)
        wait_ready(slow)
        layer = _fast_path(fast.app)  # type: ignore[arg-type]
        spy = _Spy(layer.app)
        layer.app = spy
        yield fast, slow, spy, request.param


def _answer(client: TestClient, content: bytes, headers: dict[str, str]) -> tuple:
    r = client.post("/classify", content=content, headers=headers)
    picked = {h: r.headers.get(h) for h in COMPARED_HEADERS}
    if picked["x-request-id"] != headers["x-request-id"]:
        picked["x-request-id"] = "<generated>"  # a new random id each time
    return r.status_code, r.json(), picked


def _send_both(pair: tuple, content: bytes, headers: dict[str, str]) -> tuple[tuple, int]:
    fast, slow, spy, mode = pair
    headers = {
        "x-request-id": "case-1",
        "content-type": "application/json",
        **(GOOD if mode == "api keys" else {}),
        **headers,
    }
    before = spy.calls
    got = _answer(fast, content, headers)
    want = _answer(slow, content, headers)
    assert got == want, content
    return got, spy.calls - before


GOOD_BODIES = [
    {"text": "I lost my card yesterday"},
    {"texts": ["where is my refund", "please reset my password"], "top_k": 2},
    {"text": "my payment failed", "top_k": 1000, "threshold": 0.99},
    {"text": "my payment failed", "threshold": 1, "model": None, "version": None},
    {"text": "  hi  ", "model": "example", "version": 1},
    {"text": "caf\u00e9 \U0001f600 emoji as escapes"},
]


@pytest.mark.parametrize("body", GOOD_BODIES, ids=range(len(GOOD_BODIES)))
def test_good_requests_are_answered_by_the_fast_path_identically(pair, body) -> None:
    (status, answer, _), handed_on = _send_both(pair, json.dumps(body).encode(), {})
    assert status == 200 and answer["predictions"]
    assert handed_on == 0


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
    b"\xff\xfe",
]


@pytest.mark.parametrize("content", BAD_BODIES, ids=range(len(BAD_BODIES)))
def test_bad_requests_get_the_same_answer_either_way(pair, content: bytes) -> None:
    (status, _, _), _ = _send_both(pair, content, {})
    assert status != 500


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": "Bearer wrong-key"},
        {"authorization": "Basic abc"},
        {"authorization": "Bearer"},
        {"authorization": "Bearer  " + KEY + " "},
        {"authorization": "", "x-api-key": KEY},
        {"content-type": "text/plain"},
        {"content-type": ""},
        {"content-type": "application/problem+json"},
        {"content-type": "application/json; charset=utf-8"},
        {"x-request-id": "bad id!"},
    ],
    ids=lambda h: json.dumps(h)[:40],
)
def test_headers_are_judged_the_same_either_way(pair, headers: dict[str, str]) -> None:
    _send_both(pair, b'{"text": "where is my refund"}', headers)


def test_a_body_over_the_limit_is_413_either_way(pair) -> None:
    (status, _, _), handed_on = _send_both(pair, b'{"text": "' + b"y" * 5000 + b'"}', {})
    assert status == 413 and handed_on == 1
