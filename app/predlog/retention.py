"""Retention of the prediction log: delete old rows, blank old texts, expire old feedback.

Every change is made in transactions of at most ``batch_rows`` rows picked through an index
on ``created_at`` (the partial one for rows still holding a text), so the log writer's INSERTs
never wait behind one long statement. Rows that carry feedback are training data: they keep
their text and stay until the feedback itself expires (``feedback_days``; 0 never).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, delete, exists, func, select, text, update

from app.config import Settings
from app.predlog.tables import Feedback, PredictionLog

# Called after each batch with what it did ("deleted", "text_blanked", "feedback_deleted")
# and how many rows, so metrics count while a long pass runs.
OnBatch = Callable[[str, int], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPolicy:
    """How long the log keeps rows, texts and feedback, in days; 0 means forever."""

    row_days: float = 0.0
    text_days: float = 0.0
    feedback_days: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(
            row_days=settings.log_retention_days,
            text_days=settings.log_text_retention_days,
            feedback_days=settings.feedback_retention_days,
        )

    def overridden(self, **days: float | None) -> RetentionPolicy:
        """This policy with the ``days`` given (None: keep this policy's)."""
        return replace(self, **{k: v for k, v in days.items() if v is not None})

    @property
    def active(self) -> bool:
        return bool(self.row_days or self.text_days or self.feedback_days)

    def describe(self, log_text: str) -> str:
        """One line on what the log keeps and for how long."""

        def span(days: float) -> str:
            return "forever" if not days else f"{days:g} days"

        texts = {"full": "texts", "redacted": "redacted texts", "hash": "text hashes"}.get(log_text)
        parts = [f"rows {span(self.row_days)}"]
        if texts is None:
            parts.append("no texts (TEXTCLS_LOG_TEXT=none)")
        else:
            text_days = self.text_days
            if self.row_days and (not text_days or text_days > self.row_days):
                text_days = self.row_days
            parts.append(f"{texts} {span(text_days)}")
        parts.append(f"rows with feedback {span(self.feedback_days)}")
        return "prediction log keeps " + ", ".join(parts)


# The ``action`` labels of textcls_log_rows_pruned_total.
PRUNE_ACTIONS = ("deleted", "text_blanked", "feedback_deleted")


@dataclass(slots=True, kw_only=True)
class PruneCounts:
    """Rows a pass deleted or blanked (or, on a dry run, would)."""

    deleted: int = 0
    text_blanked: int = 0
    feedback_deleted: int = 0
    partitions_dropped: int = 0

    def add(self, action: str, n: int) -> None:
        setattr(self, action, getattr(self, action) + n)

    def describe(self, *, dry_run: bool) -> str:
        verb = "would be" if dry_run else "were"
        line = (
            f"{self.deleted} rows {verb} deleted, {self.text_blanked} texts {verb} blanked, "
            f"{self.feedback_deleted} feedback rows {verb} deleted"
        )
        if self.partitions_dropped:
            line += f", {self.partitions_dropped} partitions {verb} dropped"
        return line


_AGE_UNITS = {"d": 1.0, "h": 1 / 24, "w": 7.0}


def parse_age(value: str) -> float:
    """``30d``, ``12h``, ``2w`` or a plain number of days, as days; ValueError otherwise."""
    number, unit = (value[:-1], value[-1]) if value and value[-1] in _AGE_UNITS else (value, "d")
    days = float(number) * _AGE_UNITS[unit]
    if not days > 0:
        raise ValueError(f"not a positive age: {value!r}")
    return days


def _cutoff(now: datetime, days: float) -> datetime:
    return now - timedelta(days=days)


def _kept_feedback(policy: RetentionPolicy, now: datetime) -> ColumnElement[bool]:
    """The row has feedback that is still kept."""
    condition = (Feedback.request_id == PredictionLog.request_id) & (
        Feedback.index == PredictionLog.index
    )
    if policy.feedback_days:
        condition = condition & (Feedback.created_at >= _cutoff(now, policy.feedback_days))
    return exists().where(condition)


def _holds_text() -> ColumnElement[bool]:
    # The partial index's condition, word for word, so SQLite's planner uses that index.
    return PredictionLog.text.is_not(None) | PredictionLog.text_sha256.is_not(None)


def expired_feedback(policy: RetentionPolicy, now: datetime) -> ColumnElement[bool] | None:
    if not policy.feedback_days:
        return None
    return Feedback.created_at < _cutoff(now, policy.feedback_days)


def expired_rows(policy: RetentionPolicy, now: datetime) -> ColumnElement[bool] | None:
    if not policy.row_days:
        return None
    return (PredictionLog.created_at < _cutoff(now, policy.row_days)) & ~_kept_feedback(policy, now)


def expired_texts(policy: RetentionPolicy, now: datetime) -> ColumnElement[bool] | None:
    if not policy.text_days:
        return None
    return (
        (PredictionLog.created_at < _cutoff(now, policy.text_days))
        & _holds_text()
        & ~_kept_feedback(policy, now)
    )


def prune(
    engine: Engine,
    policy: RetentionPolicy,
    *,
    now: datetime,
    batch_rows: int,
    dry_run: bool = False,
    counted_until: datetime | None = None,
    on_batch: OnBatch | None = None,
    stop: threading.Event | None = None,
    pause_s: float = 0.0,
) -> PruneCounts:
    """Apply ``policy`` as of ``now``: expire feedback, delete rows, blank texts.

    ``dry_run`` counts what would go and changes nothing; rows created before
    ``counted_until`` are left out of its counts (partitions about to be dropped hold them).
    ``stop``, when set, ends the pass between two batches; ``pause_s`` is slept between
    batches to let inserts through.
    """
    counts = PruneCounts()

    def report(action: str, n: int) -> None:
        counts.add(action, n)
        if on_batch is not None and n:
            on_batch(action, n)

    steps: list[tuple[str, ColumnElement[bool] | None]] = [
        ("feedback_deleted", expired_feedback(policy, now)),
        ("deleted", expired_rows(policy, now)),
        ("text_blanked", expired_texts(policy, now)),
    ]
    if dry_run:
        return _count(engine, policy, now, after=counted_until)
    for action, where in steps:
        if where is None:
            continue
        while not (stop is not None and stop.is_set()):
            n = _run_batch(engine, action, where, batch_rows=batch_rows)
            report(action, n)
            if n < batch_rows:
                break
            if pause_s and stop is not None:
                stop.wait(pause_s)
    if counts.deleted and engine.dialect.name == "sqlite":
        release_free_pages(engine)
    return counts


def _run_batch(engine: Engine, action: str, where: ColumnElement[bool], *, batch_rows: int) -> int:
    """One transaction of at most ``batch_rows`` rows; how many it changed."""
    with engine.begin() as conn:
        if action == "feedback_deleted":
            ids = select(Feedback.id).where(where).limit(batch_rows)
            return conn.execute(delete(Feedback).where(Feedback.id.in_(ids))).rowcount
        ids = select(PredictionLog.id).where(where).limit(batch_rows)
        if action == "deleted":
            return conn.execute(delete(PredictionLog).where(PredictionLog.id.in_(ids))).rowcount
        blank = update(PredictionLog).where(PredictionLog.id.in_(ids))
        return conn.execute(blank.values(text=None, text_sha256=None)).rowcount


def _count(
    engine: Engine, policy: RetentionPolicy, now: datetime, *, after: datetime | None
) -> PruneCounts:
    """What a pass as of ``now`` would change, without changing it."""
    counts = PruneCounts()
    with engine.connect() as conn:
        fb = expired_feedback(policy, now)
        if fb is not None:
            counts.feedback_deleted = conn.scalar(select(func.count()).where(fb)) or 0
        rows = expired_rows(policy, now)
        if rows is not None and after is not None:
            rows = rows & (PredictionLog.created_at >= after)
        if rows is not None:
            counts.deleted = (
                conn.scalar(select(func.count()).select_from(PredictionLog).where(rows)) or 0
            )
        texts = expired_texts(policy, now)
        if texts is not None and after is not None:
            texts = texts & (PredictionLog.created_at >= after)
        if texts is not None:
            if rows is not None:  # rows about to be deleted are not blanked first
                texts = texts & ~rows
            counts.text_blanked = (
                conn.scalar(select(func.count()).select_from(PredictionLog).where(texts)) or 0
            )
    return counts


def release_free_pages(engine: Engine) -> None:
    """Hand a SQLite file's free pages back to the file system (incremental auto-vacuum).

    A file created without auto-vacuum ignores this; SQLite still reuses its free pages for
    new rows, so the file stops growing all the same.
    """
    raw = engine.raw_connection()
    try:
        # executescript steps the pragma to its end; a plain execute frees one page only.
        raw.driver_connection.executescript("PRAGMA incremental_vacuum;")  # type: ignore[union-attr]
    finally:
        raw.close()


def sqlite_auto_vacuum(engine: Engine) -> bool:
    """Whether a SQLite file can hand free pages back (auto_vacuum is FULL or INCREMENTAL)."""
    with engine.connect() as conn:
        return bool(conn.execute(text("PRAGMA auto_vacuum")).scalar())
