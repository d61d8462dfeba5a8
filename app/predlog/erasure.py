"""Erasure on request: delete the log rows of one request, one client, or holding a text.

Feedback on an erased prediction goes with it, and so does a correction sent with a matching
text. Each erasure (a dry run excepted) writes an audit row in ``log_audit`` and one log line
saying what was asked and how many rows went, never the text itself. Rows are deleted in
batches, so the log writer's INSERTs keep going meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    SQLColumnExpression,
    delete,
    exists,
    func,
    insert,
    select,
)
from sqlalchemy.orm import Session

from app.predlog.records import utc_now
from app.predlog.tables import Feedback, LogAudit, PredictionLog

log = logging.getLogger(__name__)

ERASE_BATCH_ROWS = 5000
SelectorKind = Literal["request_id", "text_contains", "client"]


@dataclass(frozen=True, slots=True)
class Selector:
    """Which rows to erase: those of a request id, of a client, or whose text holds ``value``."""

    kind: SelectorKind
    value: str

    def describe(self) -> str:
        """What the audit keeps: the request id or client, but never a text, only its length."""
        if self.kind == "text_contains":
            return f"text containing a {len(self.value)}-character string"
        return f"{self.kind}={self.value!r}"[:255]


def one_selector(**given: str | None) -> Selector:
    """The one non-empty selector among ``given`` (request_id, text_contains, client)."""
    chosen = [(kind, value) for kind, value in given.items() if value is not None]
    if len(chosen) != 1 or not chosen[0][1]:
        raise ValueError("give exactly one non-empty --request-id, --text-contains or --client")
    kind, value = chosen[0]
    assert value is not None and kind in ("request_id", "text_contains", "client")
    return Selector(kind, value)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Erased:
    rows: int
    feedback: int
    dry_run: bool

    def describe(self, selector: Selector) -> str:
        counts = f"{self.rows} prediction rows and {self.feedback} feedback rows"
        if self.dry_run:
            return f"would erase {counts} matching {selector.describe()} (dry run: nothing erased)"
        return f"erased {counts} matching {selector.describe()}; recorded in log_audit"


def _contains(
    conn: Connection, column: SQLColumnExpression[str | None], s: str
) -> ColumnElement[bool]:
    """``column`` holds ``s``, case and all (LIKE would ignore case on SQLite, and wildcards)."""
    if conn.dialect.name == "postgresql":
        return func.strpos(column, s) > 0
    return func.instr(column, s) > 0


def _rows_where(conn: Connection, selector: Selector) -> ColumnElement[bool]:
    if selector.kind == "request_id":
        return PredictionLog.request_id == selector.value
    if selector.kind == "client":
        return PredictionLog.client == selector.value
    # A row logged as a hash (TEXTCLS_LOG_TEXT=hash) matches when its whole text is the string.
    digest = hashlib.sha256(selector.value.encode("utf-8")).hexdigest()
    return _contains(conn, PredictionLog.text, selector.value) | (
        PredictionLog.text_sha256 == digest
    )


def _feedback_where(conn: Connection, selector: Selector) -> ColumnElement[bool]:
    of_rows = exists().where(
        (PredictionLog.request_id == Feedback.request_id)
        & (PredictionLog.index == Feedback.index)
        & _rows_where(conn, selector)
    )
    if selector.kind == "request_id":
        return of_rows | (Feedback.request_id == selector.value)
    if selector.kind == "text_contains":
        return of_rows | _contains(conn, Feedback.text, selector.value)
    return of_rows


def erase(engine: Engine, selector: Selector, *, dry_run: bool = False, source: str) -> Erased:
    """Delete the rows ``selector`` matches and their feedback; how many (or would, dry)."""
    if not selector.value:
        raise ValueError("an erasure needs a non-empty request id, client or text")
    with engine.connect() as conn:
        rows_where = _rows_where(conn, selector)
        feedback_where = _feedback_where(conn, selector)
        if dry_run:
            rows = conn.scalar(select(func.count()).select_from(PredictionLog).where(rows_where))
            fb = conn.scalar(select(func.count()).select_from(Feedback).where(feedback_where))
            return Erased(rows=rows or 0, feedback=fb or 0, dry_run=True)
        # Feedback first: it is found through the rows it corrects.
        fb = _delete_in_batches(conn, Feedback, id_column=Feedback.id, where=feedback_where)
        rows = _delete_in_batches(conn, PredictionLog, id_column=PredictionLog.id, where=rows_where)
        with conn.begin():
            conn.execute(
                insert(LogAudit).values(
                    created_at=utc_now(),
                    action="erase",
                    selector=selector.describe(),
                    rows=rows,
                    feedback=fb,
                    source=source[:64],
                )
            )
    log.warning(
        "erased %d prediction rows and %d feedback rows matching %s (asked through %s)",
        rows,
        fb,
        selector.describe(),
        source,
    )
    return Erased(rows=rows, feedback=fb, dry_run=False)


def _delete_in_batches(
    conn: Connection,
    table: type[PredictionLog] | type[Feedback],
    *,
    id_column: SQLColumnExpression[int],
    where: ColumnElement[bool],
) -> int:
    total = 0
    while True:
        with conn.begin():
            ids = select(id_column).where(where).limit(ERASE_BATCH_ROWS)
            n = conn.execute(delete(table).where(id_column.in_(ids))).rowcount
        total += n
        if n < ERASE_BATCH_ROWS:
            return total


def audit_entries(engine: Engine, since: datetime) -> list[LogAudit]:
    """The audit rows written at or after ``since``, oldest first."""
    with Session(engine, expire_on_commit=False) as session:
        return list(
            session.scalars(
                select(LogAudit).where(LogAudit.created_at >= since).order_by(LogAudit.id)
            )
        )


def audit_line(entry: LogAudit, *, as_json: bool) -> str:
    """One audit row as ``textcls logs audit`` prints it."""
    if as_json:
        return json.dumps(
            {
                "created_at": entry.created_at.isoformat(),
                "action": entry.action,
                "selector": entry.selector,
                "rows": entry.rows,
                "feedback": entry.feedback,
                "source": entry.source,
            }
        )
    return (
        f"{entry.created_at.isoformat(timespec='seconds')}  {entry.action}  {entry.selector}  "
        f"{entry.rows} rows, {entry.feedback} feedback  ({entry.source})"
    )
