"""What the log writer's database and spill file say, for /readyz, /healthz and the tests."""

from __future__ import annotations

from sqlalchemy import Engine

from app.predlog.log_store import LogStore
from app.predlog.losses import RowLosses
from app.predlog.spiller import Spiller


class LogStatus:
    """Read-only views of the writer's parts; the writer sets them up."""

    _store: LogStore
    _spiller: Spiller
    losses: RowLosses

    @property
    def engine(self) -> Engine | None:
        return self._store.engine

    @property
    def healthy(self) -> bool:
        return self._store.healthy

    @property
    def status(self) -> str:
        return self._store.status

    @property
    def write_errors(self) -> int:
        return self._store.write_errors

    @property
    def rows_rejected(self) -> int:
        return self._store.rows_rejected

    @property
    def rows_spilled(self) -> int:
        return self._spiller.rows_spilled

    @property
    def rows_dropped(self) -> dict[str, int]:
        return self.losses.by_reason

    @property
    def health(self) -> str:
        """``ok``, or ``degraded: ...`` saying why (for /healthz: the log is not the service)."""
        if self.losses.recent:
            why = self._spiller.failure or "no space"
            return f"degraded: losing rows ({self.losses.total} lost), {why}"
        if not self._store.healthy and self._store.status != "not started":
            return f"degraded: {self._store.status}"
        return "ok"

    @property
    def spill_pending(self) -> bool:
        """The spill file holds rows not yet replayed."""
        return self._spiller.pending
