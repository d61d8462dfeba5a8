"""CLI commands of the prediction log: ``db upgrade``, ``feedback export``, ``logs stats``,
``logs prune``, ``logs erase``, ``logs audit`` and ``logs partition``."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from app.cli.errors import ExitCode, fail
from app.config import ConfigError, load_settings

db_app = typer.Typer(help="The prediction log's database schema.", no_args_is_help=True)
feedback_app = typer.Typer(help="Corrections of logged predictions.", no_args_is_help=True)
logs_app = typer.Typer(help="The prediction log.", no_args_is_help=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url", help="SQLAlchemy URL (default: TEXTCLS_DATABASE_URL or its default)."
    ),
]
Since = Annotated[
    str | None,
    typer.Option(
        "--since", help="Start date, YYYY-MM-DD or an ISO date-time, UTC unless it says otherwise."
    ),
]


def parse_since(value: str | None) -> datetime:
    """``value`` as an aware UTC datetime; no value means the beginning of time."""
    if not value:
        return datetime(1970, 1, 1, tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"--since {value!r} is not a date (YYYY-MM-DD)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _database_url(database_url: str | None) -> str:
    if database_url:
        return database_url
    try:
        return load_settings().database_url
    except ConfigError as exc:
        raise fail(str(exc)) from None


@contextmanager
def engine_for(database_url: str | None) -> Iterator[Engine]:
    """An engine for the command; database errors become one clear line and exit 1."""
    from app.predlog.engine import create_db_engine

    url = _database_url(database_url)
    try:
        engine = create_db_engine(url)
    except (ArgumentError, ModuleNotFoundError) as exc:
        raise fail(f"invalid database URL: {exc}") from None
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        yield engine
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        hint = " (has `textcls db upgrade` been run?)" if "prediction_log" in reason else ""
        raise fail(f"database {shown}: {reason}{hint}", ExitCode.FAILED) from None
    finally:
        engine.dispose()


@db_app.command("upgrade")
def upgrade_command(
    database_url: DatabaseUrl = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Create or upgrade the prediction log's tables (Alembic migrations in the package)."""
    from app.predlog.migrate import current_revision, upgrade

    with engine_for(database_url) as engine:
        upgrade(engine, revision)
        typer.echo(f"database at revision {current_revision(engine)}")


@feedback_app.command("export")
def export_command(
    *,
    out: Annotated[Path, typer.Option("--out", help="CSV file to write (text,label).")],
    since: Since = None,
    skip_missing_text: Annotated[
        bool, typer.Option(help="Leave out corrections whose text was not logged.")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Write corrected predictions as training data: the text and its corrected label."""
    from app.predlog.reports import corrected_examples

    start = parse_since(since)
    with engine_for(database_url) as engine:
        examples = corrected_examples(engine, start)
    missing = sum(e.text is None for e in examples)
    if missing and not skip_missing_text:
        raise fail(
            f"{missing} of {len(examples)} corrected predictions have no text in the log: they "
            "were logged with TEXTCLS_LOG_TEXT=hash or none. Texts cannot be recovered; pass "
            "--skip-missing-text to export the others.",
            ExitCode.FAILED,
        )
    rows = [(e.text, e.label) for e in examples if e.text is not None]
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    skipped = f" ({missing} without text left out)" if missing else ""
    typer.echo(f"wrote {len(rows)} corrected examples to {out}{skipped}")


@logs_app.command("stats")
def stats_command(
    since: Since = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Requests, fallback rate, label distribution and accuracy on corrected predictions."""
    from app.predlog.reports import log_stats

    with engine_for(database_url) as engine:
        stats = log_stats(engine, parse_since(since))
    if as_json:
        body = {
            "since": stats.since.isoformat(),
            "requests": stats.requests,
            "predictions": stats.predictions,
            "fallback_rate": stats.fallback_rate,
            "labels": stats.labels,
            "with_feedback": stats.with_feedback,
            "accuracy": stats.accuracy,
        }
        typer.echo(json.dumps(body, indent=2))
        return
    typer.echo(f"since            {stats.since.isoformat()}")
    typer.echo(f"requests         {stats.requests}")
    typer.echo(f"predictions      {stats.predictions}")
    rate = "n/a" if stats.fallback_rate is None else f"{stats.fallback_rate:.1%}"
    typer.echo(f"fallback rate    {rate}")
    accuracy = "n/a" if stats.accuracy is None else f"{stats.accuracy:.1%}"
    typer.echo(f"accuracy         {accuracy} on {stats.with_feedback} predictions with feedback")
    typer.echo("labels")
    for label, count in stats.labels.items():
        share = count / stats.predictions if stats.predictions else 0.0
        typer.echo(f"  {label:<24} {count:>8}  {share:6.1%}")


def _age(value: str | None, option: str) -> float | None:
    from app.predlog.retention import parse_age

    try:
        return None if value is None else parse_age(value)
    except ValueError:
        raise fail(
            f"{option} {value!r} is not an age such as 30d, 12h or 2w", ExitCode.BAD_INPUT
        ) from None


def _age_option(what: str) -> Any:
    return typer.Option(help=f"{what} (30d, 12h or 2w; default: the TEXTCLS_ setting).")


@logs_app.command("prune")
def prune_command(
    *,
    older_than: Annotated[str | None, _age_option("Delete rows older than this")] = None,
    text_older_than: Annotated[str | None, _age_option("Blank texts older than this")] = None,
    feedback_older_than: Annotated[
        str | None, _age_option("Delete feedback older than this")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count, change nothing.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Apply the log's retention once (from cron, say): what the server does periodically."""
    from app.predlog.partitions import PartitionResult, is_partitioned, manage_partitions
    from app.predlog.records import utc_now
    from app.predlog.retention import RetentionPolicy, prune

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise fail(str(exc), ExitCode.BAD_INPUT) from None
    policy = RetentionPolicy.from_settings(settings).overridden(
        row_days=_age(older_than, "--older-than"),
        text_days=_age(text_older_than, "--text-older-than"),
        feedback_days=_age(feedback_older_than, "--feedback-older-than"),
    )
    typer.echo(policy.describe(settings.log_text))
    now = utc_now()
    with engine_for(database_url or settings.database_url) as engine:
        parts = PartitionResult()
        if is_partitioned(engine):
            parts = manage_partitions(engine, policy, now=now, dry_run=dry_run)
        counts = prune(
            engine,
            policy,
            now=now,
            batch_rows=settings.log_prune_batch_rows,
            dry_run=dry_run,
            counted_until=parts.dropped_until,
        )
    counts.partitions_dropped = parts.dropped
    counts.deleted += parts.rows_deleted
    typer.echo(counts.describe(dry_run=dry_run))


@logs_app.command("erase")
def erase_command(
    *,
    request_id: Annotated[str | None, typer.Option(help="Erase this request's rows.")] = None,
    text_contains: Annotated[
        str | None, typer.Option(help="Erase rows whose text holds this (case-sensitive).")
    ] = None,
    client: Annotated[str | None, typer.Option(help="Erase every row of this client.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count, erase nothing.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Erase prediction rows and their feedback on request (right to erasure), with an audit."""
    from app.predlog.erasure import erase, one_selector

    try:
        selector = one_selector(request_id=request_id, text_contains=text_contains, client=client)
    except ValueError as exc:
        raise fail(str(exc), ExitCode.BAD_INPUT) from None
    with engine_for(database_url) as engine:
        erased = erase(engine, selector, dry_run=dry_run, source="cli")
    typer.echo(erased.describe(selector))


@logs_app.command("audit")
def audit_command(
    since: Since = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """The erasures recorded in log_audit: when, what was asked, how many rows went."""
    from app.predlog.erasure import audit_entries, audit_line

    with engine_for(database_url) as engine:
        entries = audit_entries(engine, parse_since(since))
    for entry in entries:
        typer.echo(audit_line(entry, as_json=as_json))


@logs_app.command("partition")
def partition_command(
    days: Annotated[
        int, typer.Option("--days", min=1, max=31, help="Days per partition (1 daily, 7 weekly).")
    ] = 1,
    database_url: DatabaseUrl = None,
) -> None:
    """PostgreSQL: convert prediction_log into a table partitioned by created_at.

    Run it with the servers stopped (it copies the table). Afterwards the pruner creates
    partitions ahead and drops whole partitions past the retention.
    """
    from app.predlog.partitions import NotPostgres, partition_table

    with engine_for(database_url) as engine:
        try:
            result = partition_table(engine, days=days)
        except NotPostgres as exc:
            raise fail(str(exc), ExitCode.BAD_INPUT) from None
    typer.echo(
        f"prediction_log partitioned by {days}-day ranges of created_at: {result.partitions} "
        f"partitions, {result.rows} rows moved"
    )


def register(cli: typer.Typer) -> None:
    """Add the ``db``, ``feedback`` and ``logs`` command groups to the root CLI."""
    cli.add_typer(db_app, name="db")
    cli.add_typer(feedback_app, name="feedback")
    cli.add_typer(logs_app, name="logs")
