"""A full disk, for real: a file-size limit (``ulimit -f``; CPython ignores SIGXFSZ, so writes
past it fail with EFBIG) on a serving process whose log is SQLite. Every request is answered,
lost rows are counted as they are lost, /healthz says the log is degraded while /readyz stays
200, and writing resumes by itself when the limit is lifted."""

from __future__ import annotations

import logging
import resource
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.conftest import make_settings, wait_ready, wait_until
from tests.app.test_metrics import parse, total, value


@contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Every file this process writes is capped at ``limit`` bytes, until the block ends."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def _post_for(client: TestClient, seconds: float, statuses: list[int], k: int) -> None:
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        r = client.post("/classify", json={"texts": [f"lost card {k}-{i}", f"refund {k}-{i}"]})
        statuses.append(r.status_code)
        i += 1


def test_full_disk_drops_rows_counted_and_writing_resumes(
    tiny_model_repo: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "log.db"
    spill = tmp_path / "spill.jsonl"
    settings = make_settings(
        tiny_model_repo,
        log_predictions=True,
        database_url=f"sqlite:///{db}",
        log_spill_path=spill,
        log_buffer_rows=50,  # little memory: a full disk loses rows quickly
        log_batch_size=50,
        log_retry_max_s=0.2,
    )
    app = create_app(settings)
    statuses: list[int] = []
    with TestClient(app) as c:
        wait_ready(c)
        writer = app.state.services.log_writer
        _post_for(c, 0.5, statuses, 0)
        assert writer.flush(10) and c.get("/healthz").json()["log"] == "ok"
        # Below what the database and its WAL already hold: their next pages cannot be
        # written, and the spill file takes a few KB at most.
        limit = min(db.stat().st_size, 8192)
        with caplog.at_level(logging.ERROR), file_size_limit(limit):
            threads = [
                threading.Thread(target=_post_for, args=(c, 1.5, statuses, k)) for k in (1, 2)
            ]
            for t in threads:
                t.start()
            wait_until(lambda: sum(writer.rows_dropped.values()) > 0, timeout=20)
            health = c.get("/healthz")
            ready = c.get("/readyz")
            for t in threads:
                t.join(30)
            dropped_while_full = parse(c.get("/metrics").text)
        assert health.status_code == 200 and health.json()["log"].startswith("degraded")
        assert "losing rows" in health.json()["log"]
        assert ready.status_code == 200
        assert set(statuses) == {200}
        assert set(writer.rows_dropped) == {"file_too_large"}
        assert total(dropped_while_full, "textcls_log_rows_dropped_total") > 0
        # Said, but not once per lost batch.
        lost_lines = [r for r in caplog.records if "lost" in r.getMessage()]
        assert 1 <= len(lost_lines) <= 2
        assert "File too large" in caplog.text

        # Space is back: with no restart, new rows reach the database again.
        after: list[int] = []
        _post_for(c, 0.5, after, 3)
        assert set(after) == {200}
        assert writer.flush(20)
        wait_until(lambda: not writer.spill_pending, timeout=20)
        metrics = parse(c.get("/metrics").text)
    answered = 2 * len(statuses + after)
    dropped = total(metrics, "textcls_log_rows_dropped_total")
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT count(*) FROM prediction_log").fetchone()[0]
        resumed = conn.execute(
            "SELECT count(*) FROM prediction_log WHERE text LIKE 'lost card 3-%'"
        ).fetchone()[0]
    assert resumed == len(after)  # every row after the disk came back was written
    assert rows + dropped == answered  # each answered prediction is either logged or counted
    assert value(metrics, "textcls_log_rows_dropped_total", reason="file_too_large") == dropped
    assert c.get("/healthz").status_code == 200
