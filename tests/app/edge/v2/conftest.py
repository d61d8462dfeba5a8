"""One real server for the V2 tests: HTTP and gRPC in one process, API keys, the log on."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.main import create_app
from tests.app.live_service import make_settings
from tests.live_server import free_port, live_server

KEY = "v2-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
GRPC_AUTH = {"authorization": f"Bearer {KEY}"}
MAX_TEXTS = 8
MAX_TEXT_CHARS = 300
ENGLISH = ["I still have not received my new card", "cancel my order please", "refund"]
CHINESE = ["我的卡还没有收到", "请帮我取消订单", "退款什么时候到账？"]


@dataclass
class V2Server:
    url: str
    grpc_url: str
    log_db: Path

    def classify(self, texts: list[str], **fields: Any) -> dict[str, Any]:
        r = httpx.post(self.url + "/classify", json={"texts": texts, **fields}, headers=AUTH)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def logged(self, request_id: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.log_db) as db:
            return db.execute(
                'SELECT "index", label, client FROM prediction_log WHERE request_id = ? '
                'ORDER BY "index"',
                (request_id,),
            ).fetchall()


@pytest.fixture(scope="module")
def v2(tiny_model_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[V2Server]:
    tmp = tmp_path_factory.mktemp("v2")
    port = free_port()
    settings = make_settings(
        tmp,
        tiny_model_repo,
        api_keys=f"svc:{KEY}",
        grpc_port=port,
        max_texts=MAX_TEXTS,
        max_text_chars=MAX_TEXT_CHARS,
        max_batch_wait_ms=1,
    )
    with live_server(create_app(settings)) as url:
        yield V2Server(url, f"127.0.0.1:{port}", tmp / "log.db")
