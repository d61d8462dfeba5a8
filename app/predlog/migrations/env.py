"""Alembic environment: runs on the connection handed over by ``app.predlog.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from app.predlog.engine import create_db_engine
from app.predlog.tables import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "no database: use app.predlog.migrate.upgrade(engine) or set sqlalchemy.url"
        )
    engine = create_db_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; run textcls db upgrade")
run_migrations_online()
