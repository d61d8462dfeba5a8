"""X-Request-ID: echoed when valid, generated when absent, 400 when invalid, and logged."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.live_service import make_settings, wait_ready


@pytest.fixture(scope="module")
def service(
    tiny_model_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Path]]:
    tmp = tmp_path_factory.mktemp("request_id")
    settings = make_settings(tmp, tiny_model_repo, api_keys="chat:k", max_body_bytes=4096)
    with TestClient(create_app(settings), headers={"X-API-Key": "k"}) as client:
        wait_ready(client)
        yield client, tmp / "log.db"


def test_valid_id_is_echoed_and_returned_in_the_body(service: tuple[TestClient, Path]) -> None:
    client, _ = service
    rid = "chat-42:msg.7_A"
    r = client.post("/classify", json={"text": "card lost"}, headers={"X-Request-ID": rid})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == rid
    assert r.json()["request_id"] == rid


def test_missing_id_is_generated_as_uuid4_hex(service: tuple[TestClient, Path]) -> None:
    client, _ = service
    r1 = client.post("/classify", json={"text": "card lost"})
    r2 = client.post("/classify", json={"text": "card lost"})
    for r in (r1, r2):
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
        assert r.json()["request_id"] == r.headers["x-request-id"]
    assert r1.headers["x-request-id"] != r2.headers["x-request-id"]


@pytest.mark.parametrize(
    "bad", ["", "a" * 65, "has space", "semi;colon", "caf\u00e9", "new\tline", "../etc"]
)
def test_invalid_id_is_400_with_a_message(service: tuple[TestClient, Path], bad: str) -> None:
    client, _ = service
    r = client.post(
        "/classify", json={"text": "card lost"}, headers={"X-Request-ID": bad.encode("latin-1")}
    )
    assert r.status_code == 400
    assert "X-Request-ID" in r.json()["detail"]
    # The refusal has its own fresh id, never the rejected value.
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])


def test_two_ids_are_400(service: tuple[TestClient, Path]) -> None:
    client, _ = service
    r = client.post(
        "/classify",
        json={"text": "card lost"},
        headers=[("X-Request-ID", "one"), ("X-Request-ID", "two")],
    )
    assert r.status_code == 400


def test_every_answer_carries_an_id(service: tuple[TestClient, Path]) -> None:
    client, _ = service
    answers = [
        client.get("/healthz"),
        client.get("/nope"),
        client.post("/classify", json={"text": "x"}, headers={"X-API-Key": "wrong"}),
        client.post("/classify", content=b"{" + b" " * 5000 + b"}"),  # over the body limit
        client.post("/classify", json={"texts": []}),
    ]
    assert [a.status_code for a in answers] == [200, 404, 401, 413, 422]
    for a in answers:
        assert re.fullmatch(r"[0-9a-f]{32}", a.headers["x-request-id"])
    r = client.get("/healthz", headers={"X-Request-ID": "probe-1"})
    assert r.headers["x-request-id"] == "probe-1"


def test_the_id_is_the_logged_request_id(tiny_model_repo: Path, tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path, tiny_model_repo))) as client:
        wait_ready(client)
        r = client.post(
            "/classify", json={"texts": ["a", "b"]}, headers={"X-Request-ID": "logged-1"}
        )
        assert r.status_code == 200
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'log.db'}")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text('SELECT request_id, "index" FROM prediction_log ORDER BY "index"')
        ).all()
    engine.dispose()
    assert [tuple(row) for row in rows] == [("logged-1", 0), ("logged-1", 1)]


def test_generated_ids_are_random_hex_and_a_forked_child_makes_its_own() -> None:
    import os

    from app.plane.request_ids import new_request_id

    ids = [new_request_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first id must not be the parent's next one
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    assert child != new_request_id()
