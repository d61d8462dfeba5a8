"""Run the prediction log's Alembic migrations programmatically, from any working directory."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Alembic keeps the running migration's context in module globals (alembic.context, .op), so
# two threads of one process must not migrate at once.
_ALEMBIC_LOCK = threading.Lock()


def alembic_config() -> Config:
    """An Alembic config pointing at the migrations shipped inside this package (no .ini file)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``revision`` (default: the newest)."""
    from alembic.runtime.migration import MigrationContext

    cfg = alembic_config()
    with _ALEMBIC_LOCK, engine.begin() as conn:
        before = MigrationContext.configure(conn).get_current_revision()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        after = MigrationContext.configure(conn).get_current_revision()
    if after != before:
        # One line instead of Alembic's own INFO lines, which `textcls serve` turns off.
        log.info("prediction log schema upgraded: %s -> %s", before or "empty", after)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def downgrade(engine: Engine, revision: str) -> None:
    """Downgrade the database behind ``engine`` to ``revision`` (``base``: no tables)."""
    cfg = alembic_config()
    with _ALEMBIC_LOCK, engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
