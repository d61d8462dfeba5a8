"""The prediction log writer against real SQLite files and the real PostgreSQL."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app.config import Settings
from app.predlog.engine import create_db_engine
from app.predlog.inserts import insert_rows
from app.predlog.migrate import upgrade
from app.predlog.records import LogTextMode, to_row
from app.predlog.spill_file import SpillFile
from app.predlog.tables import PredictionLog
from app.predlog.writer import PredictionLogWriter
from tests.app.predlog.backends import (  # noqa: F401  (fixtures)
    db_url,
    postgres_url,
    with_schema,
)
from tests.app.predlog.factories import make_record, make_records
from tests.app.predlog.tcp_proxy import TcpProxy


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def settings_for(url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "log_spill_path": tmp_path / "spill.jsonl",
        "log_retry_max_s": 0.2,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def count_rows(url: str) -> int:
    engine = create_db_engine(url)
    try:
        with Session(engine) as s:
            return s.scalar(select(func.count()).select_from(PredictionLog)) or 0
    finally:
        engine.dispose()


def migrated(url: str) -> str:
    engine = create_db_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def writers() -> Iterator[list[PredictionLogWriter]]:
    """Writers a test starts; stopped at the end even when the test fails."""
    started: list[PredictionLogWriter] = []
    yield started
    for w in started:
        w.stop(5)


class StandInMetrics:
    """The attributes app.metrics.Metrics gives the writer, on a private registry."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.log_rows_written = Counter("log_rows_written", "", registry=r)
        self.log_queue_depth = Gauge("log_queue_depth", "", registry=r)
        self.log_rows_spilled = Counter("log_rows_spilled", "", registry=r)
        self.log_rows_replayed = Counter("log_rows_replayed", "", registry=r)
        self.log_write_errors = Counter("log_write_errors", "", registry=r)
        self.log_rows_dropped = Counter("log_rows_dropped", "", ["reason"], registry=r)
        self.log_rows_pruned = Counter("log_rows_pruned", "", ["action"], registry=r)
        self.log_rows_sampled_out = Counter("log_rows_sampled_out", "", registry=r)

    def value(self, name: str) -> float:
        return self.registry.get_sample_value(name) or 0.0


def test_one_multi_row_insert_per_batch(
    db_url: str,  # noqa: F811
    tmp_path: Path,
    writers: list[PredictionLogWriter],
) -> None:
    statements: list[int] = []

    def on_execute(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO prediction_log"):
            statements.append(len(parameters))

    event.listen(Engine, "before_cursor_execute", on_execute)
    try:
        writer = PredictionLogWriter(settings_for(migrated(db_url), tmp_path, log_batch_size=500))
        writers.append(writer)
        writer.submit(make_records(1200, per_request=4))  # queued before the thread runs
        writer.start()
        wait_until(lambda: writer.rows_written == 1200)
    finally:
        event.remove(Engine, "before_cursor_execute", on_execute)
    assert len(statements) == 3  # 500 + 500 + 200 rows
    assert count_rows(db_url) == 1200
    assert writer.healthy and writer.status == "ok" and writer.queue_depth == 0


SECRET = "mail jo@example.com, card 4111 1111 1111 1111"


@pytest.mark.parametrize(
    ("mode", "stored", "hashed"),  # hashed: the text whose sha256 is kept
    [
        ("full", SECRET, SECRET),
        ("redacted", "mail [EMAIL], card [CARD]", "mail [EMAIL], card [CARD]"),
        ("hash", None, SECRET),
        ("none", None, None),
    ],
)
def test_privacy_modes(
    db_url: str,  # noqa: F811
    tmp_path: Path,
    writers: list[PredictionLogWriter],
    mode: LogTextMode,
    stored: str | None,
    hashed: str | None,
) -> None:
    writer = PredictionLogWriter(settings_for(db_url, tmp_path, log_text=mode, auto_migrate=True))
    writers.append(writer)
    if make_url(db_url).get_backend_name() != "sqlite":
        migrated(db_url)  # only SQLite is migrated at start-up
    writer.start()
    writer.submit([make_record(text=SECRET)])
    assert writer.flush(10)
    engine = create_db_engine(db_url)
    with Session(engine) as s:
        row = s.scalars(select(PredictionLog)).one()
    engine.dispose()
    assert row.text == stored
    expected = hashlib.sha256(hashed.encode()).hexdigest() if hashed else None
    assert row.text_sha256 == expected


def test_stop_flushes_every_queued_row(
    db_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    writer = PredictionLogWriter(settings_for(migrated(db_url), tmp_path, log_batch_size=100))
    writer.start()
    for _ in range(20):
        writer.submit(make_records(100, per_request=5))
    writer.stop(30)
    assert count_rows(db_url) == 2000
    assert writer.rows_written == 2000 and writer.queue_depth == 0
    assert writer.status == "stopped" and not (tmp_path / "spill.jsonl").exists()


def _blocked_sqlite(tmp_path: Path) -> tuple[str, Path]:
    """A SQLite URL that cannot be opened until the test turns ``blocker`` into a folder."""
    blocker = tmp_path / "volume"
    blocker.write_text("not a folder")
    return f"sqlite:///{blocker / 'log.db'}", blocker


def _unblock(blocker: Path) -> None:
    blocker.unlink()
    blocker.mkdir()


def test_sqlite_unavailable_buffers_spills_and_replays_once(
    tmp_path: Path, writers: list[PredictionLogWriter]
) -> None:
    url, blocker = _blocked_sqlite(tmp_path)
    writer = PredictionLogWriter(settings_for(url, tmp_path, log_buffer_rows=10))
    writers.append(writer)
    writer.start()  # must not raise: the service starts and serves without its database
    assert not writer.healthy and writer.status.startswith("database unavailable")
    writer.submit(make_records(30, per_request=3))
    wait_until(lambda: writer.rows_spilled == 20 and writer.write_errors > 0)
    assert writer.queue_depth == 10
    assert len((tmp_path / "spill.jsonl").read_bytes().splitlines()) == 20
    _unblock(blocker)
    wait_until(lambda: writer.rows_replayed == 20 and writer.rows_written == 10)
    wait_until(lambda: not (tmp_path / "spill.jsonl").exists())
    assert count_rows(url) == 30 and writer.healthy and writer.rows_duplicate == 0


def test_stop_during_an_outage_spills_and_the_next_start_replays(
    tmp_path: Path, writers: list[PredictionLogWriter]
) -> None:
    url, blocker = _blocked_sqlite(tmp_path)
    first = PredictionLogWriter(settings_for(url, tmp_path, log_text="redacted"))
    first.start()
    first.submit(make_records(49, per_request=7) + [make_record(text="call +44 20 7946 0958")])
    first.stop(5)
    spilled = (tmp_path / "spill.jsonl").read_text()
    assert first.rows_spilled == 50 and len(spilled.splitlines()) == 50
    assert "7946" not in spilled and "[PHONE]" in spilled  # the privacy mode applies there too
    _unblock(blocker)
    second = PredictionLogWriter(settings_for(url, tmp_path))
    writers.append(second)
    second.start()
    wait_until(lambda: not (tmp_path / "spill.jsonl").exists())
    assert second.rows_replayed == 50 and count_rows(url) == 50


def test_a_leftover_spill_file_is_replayed_without_duplicates(
    db_url: str,  # noqa: F811
    tmp_path: Path,
    writers: list[PredictionLogWriter],
) -> None:
    # As after a crash between replaying a spill file and removing it: 10 of its rows are
    # already in the database, and the last line was cut short by a crash mid-append.
    rows = [to_row(r, "full") for r in make_records(30, per_request=3)]
    engine = create_db_engine(migrated(db_url))
    with engine.begin() as conn:
        insert_rows(conn, rows[:10])
    engine.dispose()
    spill = SpillFile(tmp_path / "spill.jsonl")
    spill.append(rows)
    with open(spill.path, "ab") as f:
        f.write(b'{"request_id": "half-writ')
    writer = PredictionLogWriter(settings_for(db_url, tmp_path, log_batch_size=7))
    writers.append(writer)
    writer.start()
    wait_until(lambda: not spill.path.exists())
    assert count_rows(db_url) == 30
    assert writer.rows_replayed == 20 and writer.rows_duplicate == 10


def _migrated_behind_proxy(database_url: str) -> tuple[TcpProxy, str]:
    """Migrate the database, start a TCP proxy to it; the proxy and the URL through it."""
    migrated(database_url)
    u = make_url(database_url)
    proxy = TcpProxy(u.host or "127.0.0.1", u.port or 5432)
    proxy.start()
    return proxy, u.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


@pytest.mark.postgres
def test_postgres_connection_cut_buffers_spills_and_replays_exactly_once(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
    writers: list[PredictionLogWriter],
) -> None:
    proxy, url = _migrated_behind_proxy(postgres_url)
    metrics = StandInMetrics()
    settings = settings_for(url, tmp_path, log_batch_size=50, log_buffer_rows=100)
    writer = PredictionLogWriter(settings, metrics=metrics)
    writers.append(writer)
    try:
        writer.start()
        writer.submit(make_records(200, per_request=4))
        wait_until(lambda: writer.rows_written == 200)
        proxy.cut()
        for _ in range(10):
            writer.submit(make_records(50, per_request=2))
        wait_until(lambda: writer.rows_spilled == 400)
        assert not writer.healthy and writer.queue_depth == 100
        assert len((tmp_path / "spill.jsonl").read_bytes().splitlines()) == 400
        assert count_rows(postgres_url) == 200
        proxy.restore()
        wait_until(lambda: writer.rows_replayed == 400 and writer.queue_depth == 0)
        wait_until(lambda: not (tmp_path / "spill.jsonl").exists())
    finally:
        proxy.close()
    assert count_rows(postgres_url) == 700
    assert writer.rows_written == 300 and writer.rows_duplicate == 0
    assert metrics.value("log_rows_written_total") == 300
    assert metrics.value("log_rows_spilled_total") == 400
    assert metrics.value("log_rows_replayed_total") == 400
    assert metrics.value("log_write_errors_total") == writer.write_errors > 0
    assert metrics.value("log_queue_depth") == 0


@pytest.mark.postgres
def test_a_row_postgres_refuses_does_not_block_the_others(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
    writers: list[PredictionLogWriter],
) -> None:
    writer = PredictionLogWriter(settings_for(migrated(postgres_url), tmp_path))
    writers.append(writer)
    writer.start()
    records = make_records(9) + [make_record(label="x" * 300)]  # label is VARCHAR(255)
    writer.submit(records)
    assert writer.flush(10)
    assert count_rows(postgres_url) == 9 and writer.rows_rejected == 1 and writer.healthy


def test_unreachable_postgres_does_not_stop_start(
    tmp_path: Path, writers: list[PredictionLogWriter]
) -> None:
    proxy = TcpProxy("127.0.0.1", 9)
    proxy.start()
    port = proxy.port
    proxy.close()  # a port nothing listens on
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/test"
    writer = PredictionLogWriter(settings_for(url, tmp_path))
    writers.append(writer)
    writer.start()
    assert not writer.healthy and "unavailable" in writer.status
    writer.submit([make_record()])
    assert not writer.flush(0.2)


def test_flush_waits_for_the_rows_submitted_before_it(
    tmp_path: Path, writers: list[PredictionLogWriter]
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    writer = PredictionLogWriter(settings_for(url, tmp_path))
    writers.append(writer)
    writer.start()
    for _ in range(50):
        writer.submit(make_records(10))
    assert writer.flush(10)
    engine = create_db_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM prediction_log")).scalar() == 500
    engine.dispose()


def test_two_writers_sharing_a_spill_file_lose_nothing(
    tmp_path: Path, writers: list[PredictionLogWriter]
) -> None:
    # As two worker processes of `textcls serve --workers 2` (same settings) during an outage.
    url, blocker = _blocked_sqlite(tmp_path)
    pair = [PredictionLogWriter(settings_for(url, tmp_path, log_buffer_rows=5)) for _ in range(2)]
    writers.extend(pair)
    for w in pair:
        w.start()
    for _ in range(10):
        for w in pair:
            w.submit(make_records(20, per_request=4))
    wait_until(lambda: all(w.rows_spilled == 195 for w in pair))
    _unblock(blocker)
    wait_until(lambda: all(w.queue_depth == 0 and not w.spill_pending for w in pair))
    assert count_rows(url) == 400 and not (tmp_path / "spill.jsonl").exists()
    assert sum(w.rows_replayed for w in pair) == 390


@pytest.mark.postgres
def test_stop_with_the_database_hanging_spills_what_the_writer_holds(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
    writers: list[PredictionLogWriter],
) -> None:
    proxy, url = _migrated_behind_proxy(postgres_url)
    writer = PredictionLogWriter(settings_for(url, tmp_path))
    try:
        writer.start()
        writer.submit(make_records(10))
        assert writer.flush(10)
        proxy.frozen = True  # the next INSERT is sent and never answered
        writer.submit(make_records(20, per_request=5))
        started = time.monotonic()
        writer.stop(timeout=1.0)
        assert time.monotonic() - started < 5
        assert len((tmp_path / "spill.jsonl").read_bytes().splitlines()) >= 20
    finally:
        proxy.close()
    proxy.frozen = False
    second = PredictionLogWriter(settings_for(postgres_url, tmp_path))
    writers.append(second)
    second.start()
    wait_until(lambda: not (tmp_path / "spill.jsonl").exists())
    assert count_rows(postgres_url) == 30


@pytest.mark.postgres
def test_a_call_stuck_on_a_connection_held_open_is_abandoned_and_retried(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
    writers: list[PredictionLogWriter],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The INSERT reaches the proxy, never the server: statement_timeout cannot fire and the
    # kernel acknowledges every byte, so only the writer's own watchdog ends the wait.
    monkeypatch.setattr("app.predlog.log_store.CALL_TIMEOUT_S", 1.0)
    proxy, url = _migrated_behind_proxy(postgres_url)
    writer = PredictionLogWriter(settings_for(url, tmp_path))
    writers.append(writer)
    try:
        writer.start()
        writer.submit(make_records(10))
        assert writer.flush(10)
        proxy.stall()  # the pooled connection: open, silent
        writer.submit(make_records(20, per_request=5))
        assert writer.flush(15), writer.status
        assert writer._store.watchdog.fired == 1
    finally:
        proxy.close()
    assert count_rows(postgres_url) == 30 and writer.rows_written == 30


@pytest.mark.postgres
def test_an_unmigrated_postgres_says_what_to_run(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
    writers: list[PredictionLogWriter],
) -> None:
    writer = PredictionLogWriter(settings_for(postgres_url, tmp_path))
    writers.append(writer)
    writer.start()  # PostgreSQL is never migrated by the server
    assert not writer.healthy and "textcls db upgrade" in writer.status
    writer.submit([make_record()])
    migrated(postgres_url)
    assert writer.flush(15) and count_rows(postgres_url) == 1
