"""PostgreSQL native partitioning of ``prediction_log`` by ranges of ``created_at``.

``partition_table`` converts the table once (``textcls logs partition``, servers stopped):
the same columns, indexes and id sequence, partitioned by day (or by N days), with a DEFAULT
partition that takes any row no range covers, so an INSERT never fails for want of one.
PostgreSQL requires the partition key in every unique constraint: the primary key becomes
``(id, created_at)`` and the de-duplicating key ``(request_id, index, role, created_at)``; a
replayed row keeps its ``created_at``, so replays still skip rows already there.

``manage_partitions`` is the pruner's part: it creates partitions ahead of time and drops
those wholly past the retention; a partition holding rows with feedback still kept is
detached, its kept rows moved to the DEFAULT partition, and then dropped.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, text

from app.predlog.retention import RetentionPolicy

log = logging.getLogger(__name__)

TABLE = "prediction_log"
DEFAULT_PARTITION = "prediction_log_default"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Partitions exist at least this far ahead of now, so the DEFAULT partition stays empty.
AHEAD = timedelta(days=3)
_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")
_INDEXES = (
    "prediction_log_pkey",
    "uq_prediction_log_request_index_role",
    "ix_prediction_log_created_at",
    "ix_prediction_log_model_version",
    "ix_prediction_log_text_created_at",
)


class NotPostgres(Exception):
    """Partitioning is PostgreSQL's; SQLite's log is pruned row by row."""


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    start: datetime
    end: datetime


@dataclass(slots=True, kw_only=True)
class PartitionResult:
    partitions: int = 0
    rows: int = 0
    created: int = 0
    dropped: int = 0
    rows_deleted: int = 0
    dropped_until: datetime | None = None  # the end of the newest partition dropped


def is_partitioned(engine: Engine) -> bool:
    """Whether ``prediction_log`` is a partitioned table (PostgreSQL only)."""
    if engine.dialect.name != "postgresql":
        return False
    with engine.connect() as conn:
        kind = conn.execute(
            text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:t)"), {"t": TABLE}
        ).scalar()
    return kind == "p"


def _name(start: datetime) -> str:
    return f"{TABLE}_p{start:%Y%m%d}"


def _floor(moment: datetime, width: timedelta) -> datetime:
    return EPOCH + width * ((moment - EPOCH) // width)


def partitions(conn: Connection) -> list[Partition]:
    """The range partitions, oldest first (the DEFAULT partition left out)."""
    conn.execute(text("SET LOCAL TimeZone = 'UTC'"))
    found = []
    rows = conn.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:t)"
        ),
        {"t": TABLE},
    )
    for name, bound in rows:
        match = _BOUND.search(bound or "")
        if match is None:
            continue
        start, end = (datetime.fromisoformat(v).astimezone(UTC) for v in match.groups())
        found.append(Partition(name, start, end))
    return sorted(found, key=lambda p: p.start)


def _create(conn: Connection, start: datetime, width: timedelta) -> None:
    conn.execute(
        text(
            f'CREATE TABLE "{_name(start)}" PARTITION OF {TABLE} '
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{(start + width).isoformat()}')"
        )
    )


def partition_table(engine: Engine, *, days: int, now: datetime | None = None) -> PartitionResult:
    """Convert ``prediction_log`` into a table partitioned by ``days``-day ranges."""
    if engine.dialect.name != "postgresql":
        raise NotPostgres(
            "partitioning needs PostgreSQL; on SQLite the pruner deletes old rows in batches"
        )
    if is_partitioned(engine):
        raise NotPostgres("prediction_log is partitioned already")
    width = timedelta(days=days)
    now = now or datetime.now(UTC)
    result = PartitionResult()
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL TimeZone = 'UTC'"))
        conn.execute(text(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE"))
        oldest = conn.execute(text(f"SELECT min(created_at) FROM {TABLE}")).scalar() or now
        conn.execute(text(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_unpartitioned"))
        for index in _INDEXES:
            conn.execute(text(f"ALTER INDEX {index} RENAME TO {index}_unpartitioned"))
        conn.execute(text(f"ALTER SEQUENCE {TABLE}_id_seq OWNED BY NONE"))
        conn.execute(
            text(
                f"CREATE TABLE {TABLE} (LIKE {TABLE}_unpartitioned INCLUDING DEFAULTS "
                "INCLUDING COMMENTS) PARTITION BY RANGE (created_at)"
            )
        )
        conn.execute(
            text(
                f"ALTER TABLE {TABLE} ADD CONSTRAINT prediction_log_pkey "
                "PRIMARY KEY (id, created_at)"
            )
        )
        conn.execute(
            text(
                f"ALTER TABLE {TABLE} ADD CONSTRAINT uq_prediction_log_request_index_role "
                'UNIQUE (request_id, "index", role, created_at)'
            )
        )
        conn.execute(text(f"CREATE INDEX ix_prediction_log_created_at ON {TABLE} (created_at)"))
        conn.execute(
            text(f"CREATE INDEX ix_prediction_log_model_version ON {TABLE} (model, version)")
        )
        conn.execute(
            text(
                f"CREATE INDEX ix_prediction_log_text_created_at ON {TABLE} (created_at) "
                "WHERE text IS NOT NULL OR text_sha256 IS NOT NULL"
            )
        )
        conn.execute(text(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {TABLE} DEFAULT"))
        start = _floor(oldest, width)
        while start < now + AHEAD:
            _create(conn, start, width)
            result.partitions += 1
            start += width
        result.rows = conn.execute(
            text(f"INSERT INTO {TABLE} SELECT * FROM {TABLE}_unpartitioned")
        ).rowcount
        conn.execute(text(f"DROP TABLE {TABLE}_unpartitioned"))
        conn.execute(text(f"ALTER SEQUENCE {TABLE}_id_seq OWNED BY {TABLE}.id"))
    log.info("prediction_log partitioned: %d partitions, %d rows", result.partitions, result.rows)
    return result


# Creating, detaching and dropping a partition lock the whole table for a moment; behind a
# long query that lock would queue every INSERT. Past this wait the pass gives up and the
# next one tries again.
LOCK_TIMEOUT_MS = 2000


def _bound_lock_waits(conn: Connection) -> None:
    conn.execute(text(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}"))


_KEPT = (
    "EXISTS (SELECT 1 FROM feedback f WHERE f.request_id = p.request_id "
    'AND f."index" = p."index"{since})'
)


def manage_partitions(
    engine: Engine, policy: RetentionPolicy, *, now: datetime, dry_run: bool = False
) -> PartitionResult:
    """Create partitions ``AHEAD`` of ``now``; drop those wholly older than the retention."""
    result = PartitionResult()
    with engine.begin() as conn:
        _bound_lock_waits(conn)
        existing = partitions(conn)
        if not existing:
            return result
        width = existing[-1].end - existing[-1].start
        start = existing[-1].end
        while start < now + AHEAD:
            if not dry_run:
                _create(conn, start, width)
            result.created += 1
            start += width
    if not policy.row_days:
        return result
    cutoff = now - timedelta(days=policy.row_days)
    since = ""
    params: dict[str, object] = {}
    if policy.feedback_days:
        since = " AND f.created_at >= :feedback_cutoff"
        params["feedback_cutoff"] = now - timedelta(days=policy.feedback_days)
    kept = _KEPT.format(since=since)
    for part in existing:
        if part.end > cutoff:
            break
        with engine.begin() as conn:
            _bound_lock_waits(conn)
            total = conn.execute(text(f'SELECT count(*) FROM "{part.name}"')).scalar() or 0
            keep = (
                conn.execute(
                    text(f'SELECT count(*) FROM "{part.name}" p WHERE {kept}'), params
                ).scalar()
                or 0
            )
            result.dropped += 1
            result.rows_deleted += total - keep
            result.dropped_until = part.end
            if dry_run:
                continue
            conn.execute(text(f'ALTER TABLE {TABLE} DETACH PARTITION "{part.name}"'))
            if keep:
                # No range covers these any more: they land in the DEFAULT partition.
                conn.execute(
                    text(f'INSERT INTO {TABLE} SELECT * FROM "{part.name}" p WHERE {kept}'),
                    params,
                )
            conn.execute(text(f'DROP TABLE "{part.name}"'))
        log.info(
            "dropped partition %s of the prediction log (%d rows, %d with feedback kept)",
            part.name,
            total,
            keep,
        )
    return result
